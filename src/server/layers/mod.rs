//! Cross-cutting concerns as tower layers, outermost first: classify the
//! route, assign the request id, observe (access log, metrics), rescue panics,
//! bound the request's duration, bound and read the body, authenticate.
//! Each failure is answered in the caller's dialect through `rescue`.

mod auth;
mod body;
mod classify;
mod deadline;
pub mod observe;
mod panic;

pub use auth::AuthLayer;
pub use body::BodyLayer;
pub use classify::ClassifyLayer;
pub use deadline::DeadlineLayer;
pub use observe::ObserveLayer;
pub use panic::PanicLayer;

use super::http::{RequestId, Resp};
use super::route::{Dialect, Route};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

pub type BoxFuture = Pin<Box<dyn Future<Output = Result<Resp, Infallible>> + Send>>;

/// The dialect and request id a layer answers a failure with.
fn answer_as<B>(req: &http::Request<B>) -> (Dialect, String) {
    let dialect = req.extensions().get::<Route>().map_or(Dialect::Cf, Route::dialect);
    let id = req
        .extensions()
        .get::<RequestId>()
        .map_or_else(String::new, |r| r.0.to_string());
    (dialect, id)
}
