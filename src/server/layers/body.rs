//! The request body, bounded: a declared length over the limit is refused
//! before a byte is read (413), a body that grows past it is cut off (413),
//! and one that does not arrive in time is a 408. Inner layers see the body
//! as bytes.

use super::{answer_as, BoxFuture};
use crate::error::{Error, Kind};
use crate::server::http::Resp;
use crate::server::rescue;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Limited};
use std::task::{Context, Poll};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
pub struct BodyLayer {
    max: usize,
    timeout: Duration,
}

impl BodyLayer {
    pub fn new(max: usize, timeout: Duration) -> Self {
        BodyLayer { max, timeout }
    }
}

impl<S> tower::Layer<S> for BodyLayer {
    type Service = ReadBody<S>;
    fn layer(&self, inner: S) -> ReadBody<S> {
        ReadBody {
            inner,
            max: self.max,
            timeout: self.timeout,
        }
    }
}

#[derive(Clone)]
pub struct ReadBody<S> {
    inner: S,
    max: usize,
    timeout: Duration,
}

impl<S, B> tower::Service<Request<B>> for ReadBody<S>
where
    S: tower::Service<Request<Bytes>, Response = Resp, Error = std::convert::Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Resp;
    type Error = std::convert::Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> BoxFuture {
        let (dialect, id) = answer_as(&req);
        let (max, limit) = (self.max, self.timeout);
        let mut inner = self.inner.clone();
        std::mem::swap(&mut inner, &mut self.inner);
        Box::pin(async move {
            let declared = req
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let fail = |kind: Kind, text: &str| Ok(rescue::render(dialect, &Error::new(kind, text), &id));
            if declared.is_some_and(|n| n > max as u64) {
                return fail(Kind::TooLarge, "The request body is too large");
            }
            let (parts, body) = req.into_parts();
            let bytes = match tokio::time::timeout(limit, Limited::new(body, max).collect()).await {
                Err(_) => return fail(Kind::BodyTimeout, "The request body did not arrive in time"),
                Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                    return fail(Kind::TooLarge, "The request body is too large")
                }
                Ok(Err(e)) => return fail(Kind::BodyTimeout, &format!("The request body could not be read: {e}")),
                Ok(Ok(c)) => c.to_bytes(),
            };
            inner.call(Request::from_parts(parts, bytes)).await
        })
    }
}
