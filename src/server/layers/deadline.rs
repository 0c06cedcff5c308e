//! An upper bound on a whole request, waiting included: past it the caller
//! gets the dialect's 504. At the end of the shutdown grace period every
//! request still open is answered the same way — in its dialect, naming the
//! tasks it waited on — never with a cut connection.

use super::{answer_as, next};
use crate::error::{Applied, Error, Kind};
use crate::server::http::Resp;
use crate::server::lifecycle::Lifecycle;
use crate::server::rescue;
use http::Request;
use std::sync::Arc;
use std::time::Duration;

pub fn deadline<S, B>(
    limit: Duration,
    lifecycle: Arc<Lifecycle>,
    req: Request<B>,
    inner: S,
) -> impl std::future::Future<Output = Resp>
where
    S: crate::server::layers::Rest<B>,
{
    // Not an `async fn`: its future would keep two slots for the request
    // for the whole of a waiting write (see `observe`).
    let (dialect, id) = answer_as(&req);
    let handler = next(inner, req);
    async move {
        tokio::select! {
            r = tokio::time::timeout(limit, handler) => match r {
                Ok(r) => r,
                Err(_) => rescue::render(dialect, &Error::new(Kind::RequestTimeout, "The request timed out"), &id),
            },
            _ = lifecycle.stopped() => rescue::render(dialect, &stopping(), &id),
        }
    }
}

/// The answer for a request cut short by the end of the grace period.
fn stopping() -> Error {
    let tasks = crate::journal::current_tasks();
    let text = if tasks.is_empty() {
        "The gateway is shutting down before this request finished".to_string()
    } else {
        format!(
            "The gateway is shutting down; the change is still running on backend tasks {}",
            tasks.join(", ")
        )
    };
    Error::new(Kind::Unavailable, text).with_applied(Applied::Unknown)
}
