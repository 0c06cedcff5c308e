//! The request body, bounded: a declared length over the limit is refused
//! before a byte is read (413), a body that grows past it is cut off (413),
//! and one that does not arrive in time is a 408. Inner layers see the body
//! as bytes.

use super::{answer_as, next};
use crate::error::{Error, Kind};
use crate::server::http::Resp;
use crate::server::rescue;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Limited};
use std::convert::Infallible;
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub async fn read_body<S, B>(max: usize, limit: Duration, req: Request<B>, inner: S) -> Resp
where
    S: tower::Service<Request<Bytes>, Response = Resp, Error = Infallible, Future = crate::server::layers::BoxFuture>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let (dialect, id) = answer_as(&req);
    let fail = |kind: Kind, text: &str| rescue::render(dialect, &Error::new(kind, text), &id);
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
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
    next(inner, Request::from_parts(parts, bytes)).await
}
