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
use futures_util::FutureExt;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

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
            inner: Arc::new(inner),
            f: self.f.clone(),
        }
    }
}

/// A service of the stack called through a shared reference: none keeps
/// state between calls, so the stack is built once per config and each
/// layer hands the rest of it on as one `Arc` (no copy of the stack per
/// request and layer).
pub trait Handle<Req>: Send + Sync + 'static {
    fn handle(&self, req: Req) -> BoxFuture;
}

/// The rest of the stack, as a layer function receives it.
pub struct Next<S>(Arc<S>);

impl<S> Clone for Next<S> {
    fn clone(&self) -> Self {
        Next(self.0.clone())
    }
}

impl<S: Handle<Req>, Req> tower::Service<Req> for Next<S> {
    type Response = Resp;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> BoxFuture {
        self.0.handle(req)
    }
}

pub struct FnService<S, F> {
    inner: Arc<S>,
    f: F,
}

impl<S, F: Clone> Clone for FnService<S, F> {
    fn clone(&self) -> Self {
        FnService {
            inner: self.inner.clone(),
            f: self.f.clone(),
        }
    }
}

impl<S, F, B, Fut> Handle<http::Request<B>> for FnService<S, F>
where
    F: Fn(http::Request<B>, Next<S>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Resp> + Send + 'static,
    S: Send + Sync + 'static,
{
    fn handle(&self, req: http::Request<B>) -> BoxFuture {
        // `map`, not `async move { Ok(fut.await) }`: an async block keeps
        // the captured future and the awaited one in separate slots, so
        // each layer's box was twice its future (16.8 KB a request, held
        // for the whole wait of a write).
        Box::pin((self.f)(req, Next(self.inner.clone())).map(Ok))
    }
}

impl<S, F, B> tower::Service<http::Request<B>> for FnService<S, F>
where
    Self: Handle<http::Request<B>>,
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
        self.handle(req)
    }
}

/// The rest of the stack, as a layer calls it: every service of it
/// answers with a response, never fails, and boxes its future.
pub trait Rest<B>: tower::Service<http::Request<B>, Response = Resp, Error = Infallible, Future = BoxFuture> {}

impl<S, B> Rest<B> for S where
    S: tower::Service<http::Request<B>, Response = Resp, Error = Infallible, Future = BoxFuture>
{
}

/// Calls the next service of the stack. The call is made at once (every
/// service of the stack is always ready), so the caller's future holds the
/// next one's boxed future, not the request and the service waiting for a
/// first poll.
pub fn next<S, B>(mut inner: S, req: http::Request<B>) -> impl Future<Output = Resp>
where
    S: Rest<B>,
{
    let fut = inner.call(req);
    async move {
        match fut.await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }
}

/// The dialect and request id a layer answers a failure with (the id
/// shared, not copied: most requests never fail, and several layers keep it).
pub fn answer_as<B>(req: &http::Request<B>) -> (Dialect, Arc<str>) {
    let dialect = req.extensions().get::<Route>().map_or(Dialect::Cf, Route::dialect);
    let id = req
        .extensions()
        .get::<RequestId>()
        .map_or_else(|| Arc::from(""), |r| r.0.clone());
    (dialect, id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tower::Layer;

    async fn layer_with_state(req: http::Request<Bytes>, inner: Next<Inner>) -> Resp {
        let state = [7u8; 1024];
        let resp = next(inner, req).await;
        std::hint::black_box(state);
        resp
    }

    struct Inner;

    impl Handle<http::Request<Bytes>> for Inner {
        fn handle(&self, _: http::Request<Bytes>) -> BoxFuture {
            Box::pin(std::future::ready(Ok(Resp::default())))
        }
    }

    /// A waiting write holds every layer's future for the whole of its
    /// wait: none keeps the request (two slots of it, as an `async fn`
    /// taking it would) or room for what it does after the answer.
    #[test]
    fn the_layers_a_waiting_write_holds_are_small() {
        let app = Arc::new(crate::server::App::new(crate::config::Config::default()).expect("default config"));
        let req = || http::Request::new(Bytes::new());
        let body = || http::Request::new(http_body_util::Full::new(Bytes::new()));
        let inner = || Next(Arc::new(Inner));
        let limit = std::time::Duration::from_secs(1);
        let keys = crate::server::idempotency::Keys::new(&app);
        let sizes = [
            ("classify", std::mem::size_of_val(&classify(req(), inner()))),
            ("observe", std::mem::size_of_val(&observe(app.clone(), req(), inner()))),
            (
                "deadline",
                std::mem::size_of_val(&deadline(limit, app.lifecycle.clone(), req(), inner())),
            ),
            (
                "authenticate",
                std::mem::size_of_val(&authenticate(app.auth.clone(), req(), inner())),
            ),
            (
                "read_body",
                std::mem::size_of_val(&read_body(1024, limit, body(), inner())),
            ),
            (
                "idempotency",
                std::mem::size_of_val(&crate::server::idempotency::idempotency(keys, req(), inner())),
            ),
            (
                "ledger",
                std::mem::size_of_val(&crate::server::ledger::record(app.clone(), req(), inner())),
            ),
        ];
        for (layer, size) in sizes {
            assert!(size <= 1024, "{layer}: {size} bytes ({sizes:?})");
        }
    }

    /// A waiting write holds one box per layer: each must be the size of
    /// its layer's future, not twice it.
    #[test]
    fn a_layer_boxes_its_future_once() {
        let service = from_fn(layer_with_state).layer(Inner);
        let direct = layer_with_state(http::Request::new(Bytes::new()), Next(Arc::new(Inner)));
        let boxed = service.handle(http::Request::new(Bytes::new()));
        let (direct, boxed) = (std::mem::size_of_val(&direct), std::mem::size_of_val(&*boxed));
        assert!(boxed < direct + 64, "boxed {boxed} bytes for a {direct}-byte future");
    }
}
