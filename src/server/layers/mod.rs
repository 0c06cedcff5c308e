//! Cross-cutting concerns as tower layers, outermost first: classify the
//! route and assign the request id, observe (access log, metrics), rescue
//! panics, bound the request's duration, bound and read the body,
//! authenticate. Each concern is one async function of the request and the
//! next service ([`from_fn`], as axum's middleware); each failure is answered
//! in the caller's dialect through `rescue`.

mod auth;
mod body;
mod classify;
mod deadline;
pub mod observe;
mod panic;

pub use auth::authenticate;
pub use body::read_body;
pub use classify::classify;
pub use deadline::deadline;
pub use observe::observe;
pub use panic::rescue_panics;

use super::http::{RequestId, Resp};
use super::route::{Dialect, Route};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::ServiceExt;

pub type BoxFuture = Pin<Box<dyn Future<Output = Result<Resp, Infallible>> + Send>>;

/// A layer made of an async function `f(request, next)`.
#[derive(Clone)]
pub struct FnLayer<F> {
    f: F,
}

pub fn from_fn<F>(f: F) -> FnLayer<F> {
    FnLayer { f }
}

impl<S, F: Clone> tower::Layer<S> for FnLayer<F> {
    type Service = FnService<S, F>;
    fn layer(&self, inner: S) -> FnService<S, F> {
        FnService {
            inner,
            f: self.f.clone(),
        }
    }
}

#[derive(Clone)]
pub struct FnService<S, F> {
    inner: S,
    f: F,
}

impl<S, F, B, Fut> tower::Service<http::Request<B>> for FnService<S, F>
where
    F: Fn(http::Request<B>, S) -> Fut,
    Fut: Future<Output = Resp> + Send + 'static,
    S: Clone,
{
    type Response = Resp;
    type Error = Infallible;
    type Future = BoxFuture;

    /// Every service of the stack is ready at all times (none holds a
    /// resource that runs out); readiness is the inner call's business.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> BoxFuture {
        let fut = (self.f)(req, self.inner.clone());
        Box::pin(async move { Ok(fut.await) })
    }
}

/// Calls the next service of the stack.
pub async fn next<S, B>(inner: S, req: http::Request<B>) -> Resp
where
    S: tower::Service<http::Request<B>, Response = Resp, Error = Infallible>,
{
    match inner.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// The dialect and request id a layer answers a failure with.
pub fn answer_as<B>(req: &http::Request<B>) -> (Dialect, String) {
    let dialect = req.extensions().get::<Route>().map_or(Dialect::Cf, Route::dialect);
    let id = req
        .extensions()
        .get::<RequestId>()
        .map_or_else(String::new, |r| r.0.to_string());
    (dialect, id)
}
