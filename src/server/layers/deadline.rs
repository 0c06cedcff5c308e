//! An upper bound on a whole request, waiting included: past it the caller
//! gets the dialect's 504.

use super::{answer_as, next};
use crate::error::{Error, Kind};
use crate::server::http::Resp;
use crate::server::rescue;
use http::Request;
use std::convert::Infallible;
use std::time::Duration;

pub async fn deadline<S, B>(limit: Duration, req: Request<B>, inner: S) -> Resp
where
    S: tower::Service<Request<B>, Response = Resp, Error = Infallible>,
{
    let (dialect, id) = answer_as(&req);
    match tokio::time::timeout(limit, next(inner, req)).await {
        Ok(r) => r,
        Err(_) => rescue::render(dialect, &Error::new(Kind::RequestTimeout, "The request timed out"), &id),
    }
}
