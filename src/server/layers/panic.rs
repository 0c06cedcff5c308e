//! A panic in a handler becomes a 500 in the caller's dialect, never a
//! dropped connection; the panic's text is logged, not sent.

use super::{answer_as, next};
use crate::error::Error;
use crate::server::http::Resp;
use crate::server::rescue;
use futures_util::FutureExt;
use http::Request;
use std::panic::AssertUnwindSafe;

pub fn rescue_panics<S, B>(req: Request<B>, inner: S) -> impl std::future::Future<Output = Resp>
where
    S: crate::server::layers::Rest<B>,
{
    // Not an `async fn`: its future would keep two slots for the request
    // for the whole of a waiting write (see `observe`).
    let (dialect, id) = answer_as(&req);
    // The call too: a layer within may do its first steps as it is called.
    let called = std::panic::catch_unwind(AssertUnwindSafe(|| next(inner, req)));
    async move {
        let answered = match called {
            Ok(handler) => AssertUnwindSafe(handler).catch_unwind().await,
            Err(e) => Err(e),
        };
        match answered {
            Ok(r) => r,
            Err(_) => {
                tracing::error!(request_id = %id, "a handler panicked");
                rescue::render(dialect, &Error::internal("internal error"), &id)
            }
        }
    }
}
