//! A panic in a handler becomes a 500 in the caller's dialect, never a
//! dropped connection; the panic's text is logged, not sent.

use super::{answer_as, BoxFuture};
use crate::error::Error;
use crate::server::http::Resp;
use crate::server::rescue;
use futures_util::FutureExt;
use http::Request;
use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};

#[derive(Clone, Default)]
pub struct PanicLayer;

impl<S> tower::Layer<S> for PanicLayer {
    type Service = Rescue<S>;
    fn layer(&self, inner: S) -> Rescue<S> {
        Rescue { inner }
    }
}

#[derive(Clone)]
pub struct Rescue<S> {
    inner: S,
}

impl<S, B> tower::Service<Request<B>> for Rescue<S>
where
    S: tower::Service<Request<B>, Response = Resp, Error = std::convert::Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Resp;
    type Error = std::convert::Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> BoxFuture {
        let (dialect, id) = answer_as(&req);
        let fut = AssertUnwindSafe(self.inner.call(req)).catch_unwind();
        Box::pin(async move {
            match fut.await {
                Ok(r) => r,
                Err(_) => {
                    tracing::error!(request_id = %id, "a handler panicked");
                    Ok(rescue::render(dialect, &Error::internal("internal error"), &id))
                }
            }
        })
    }
}
