//! An upper bound on a whole request, waiting included: past it the caller
//! gets the dialect's 504.

use super::{answer_as, BoxFuture};
use crate::error::{Error, Kind};
use crate::server::http::Resp;
use crate::server::rescue;
use http::Request;
use std::task::{Context, Poll};
use std::time::Duration;

#[derive(Clone)]
pub struct DeadlineLayer {
    limit: Duration,
}

impl DeadlineLayer {
    pub fn new(limit: Duration) -> Self {
        DeadlineLayer { limit }
    }
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            limit: self.limit,
        }
    }
}

#[derive(Clone)]
pub struct Deadline<S> {
    inner: S,
    limit: Duration,
}

impl<S, B> tower::Service<Request<B>> for Deadline<S>
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
        let fut = tokio::time::timeout(self.limit, self.inner.call(req));
        Box::pin(async move {
            match fut.await {
                Ok(r) => r,
                Err(_) => {
                    let e = Error::new(Kind::RequestTimeout, "The request timed out");
                    Ok(rescue::render(dialect, &e, &id))
                }
            }
        })
    }
}
