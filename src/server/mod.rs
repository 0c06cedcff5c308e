//! The gateway: one hyper + tower service for every dialect. The router is
//! a stack of layers (see [`layers`]) over a dispatcher that hands each
//! request to its front end (CF v2, CF v3, Gcore, ops). It is generic over
//! the request body, so tests drive it in process on a paused clock.

pub mod answer;
pub mod app;
pub mod audit;
pub mod auth;
pub mod authorize;
pub mod cf;
pub mod dry_run;
pub mod emulator;
pub mod gcore;
pub mod http;
pub mod idempotency;
pub mod layers;
pub mod ledger;
pub mod lifecycle;
pub mod listen;
pub mod live;
pub mod log_writer;
pub mod metrics;
pub mod noops;
pub mod offload;
pub mod renders;
pub mod rescue;
pub mod route;
mod shared_socket;
pub mod ui;
pub mod watch;
mod worded;

pub use app::App;
pub use listen::{serve, serve_live};

use crate::error::{Error, Kind};
use ::http::{Request, StatusCode};
use bytes::Bytes;
use futures_util::FutureExt;
use http::{Ctx, Principal, RequestId, Resp};
use route::{Dialect, Route, RouteId};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tower::{ServiceBuilder, ServiceExt};

/// The gateway as a tower service for requests with any body type; built
/// once per config ([`live::Live`] keeps it) and called by reference.
pub fn router<B>(
    app: Arc<App>,
) -> impl layers::Handle<Request<B>>
       + tower::Service<Request<B>, Response = Resp, Error = Infallible, Future = layers::BoxFuture>
       + Clone
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use layers::from_fn;
    let server = &app.cfg.server;
    let request_limit = Duration::from_secs(server.request_timeout_s);
    let (max_body, body_limit) = (server.max_body_bytes, Duration::from_secs(server.body_timeout_s));
    let (observed, planned, audited) = (app.clone(), app.clone(), app.clone());
    let (auth, lifecycle) = (app.auth.clone(), app.lifecycle.clone());
    let keys = idempotency::Keys::new(&app);
    ServiceBuilder::new()
        .layer(from_fn(layers::classify))
        .layer(from_fn(move |req, next| layers::observe(observed.clone(), req, next)))
        .layer(from_fn(move |req, next| dry_run::dry_run(planned.clone(), req, next)))
        .layer(from_fn(layers::rescue_panics))
        .layer(from_fn(move |req, next| {
            layers::deadline(request_limit, lifecycle.clone(), req, next)
        }))
        .layer(from_fn(move |req, next| {
            layers::read_body(max_body, body_limit, req, next)
        }))
        .layer(from_fn(move |req, next| layers::authenticate(auth.clone(), req, next)))
        .layer(from_fn(move |req, next| {
            idempotency::idempotency(keys.clone(), req, next)
        }))
        .layer(from_fn(move |req, next| ledger::record(audited.clone(), req, next)))
        .service(Dispatch { app })
}

/// Serve one request through the whole stack (tests call this directly).
pub async fn call<B>(app: &Arc<App>, req: Request<B>) -> Resp
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match router(app.clone()).oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// The innermost service: hands the request to its front end.
#[derive(Clone)]
struct Dispatch {
    app: Arc<App>,
}

impl layers::Handle<Request<Bytes>> for Dispatch {
    fn handle(&self, req: Request<Bytes>) -> layers::BoxFuture {
        Box::pin(dispatch(self.app.clone(), req).map(Ok))
    }
}

/// Marks requests that came in on `server.admin_listen`.
#[derive(Debug, Clone, Copy)]
pub struct AdminPort;

fn dispatch(app: Arc<App>, req: Request<Bytes>) -> impl std::future::Future<Output = Resp> {
    // Not an `async fn`: the request is taken apart as the call is made,
    // so the future held for the whole of a waiting write keeps the
    // handler's context only, not the request beside it (see `observe`).
    match context(&app, req) {
        Ok(ctx) => futures_util::future::Either::Left(front_end(app, ctx)),
        Err(refused) => futures_util::future::Either::Right(std::future::ready(*refused)),
    }
}

/// The request's front end, with its context.
#[allow(clippy::manual_async_fn)] // an `async fn` would keep the context twice
fn front_end(app: Arc<App>, ctx: Ctx) -> impl std::future::Future<Output = Resp> {
    async move {
        let app = &*app;
        // Each front end's future is boxed on its own, so a request holds the
        // state of its own front end, not room for the largest of them (a
        // waiting CF v2 write would otherwise carry the Gcore front end's size).
        match ctx.route.dialect() {
            Dialect::Ops => Box::pin(ops(app, &ctx)).await,
            Dialect::Cf => Box::pin(cf::v2::handle(app, &ctx)).await,
            Dialect::CfV3 => Box::pin(cf::v3::handle(app, &ctx)).await,
            Dialect::Gcore => Box::pin(gcore::handle(app, &ctx)).await,
            Dialect::Emulator => Box::pin(emulator::handle(app, &ctx)).await,
            Dialect::Ui => Box::pin(ui::handle(app, &ctx)).await,
        }
    }
}

/// The handler's context of a request, or the 404 of a route that does not
/// live on this listener.
fn context(app: &App, req: Request<Bytes>) -> Result<Ctx, Box<Resp>> {
    let (mut parts, body) = req.into_parts();
    let route = parts
        .extensions
        .remove::<Route>()
        .unwrap_or_else(|| route::classify(parts.uri.path()));
    // With an admin listener, the ops endpoints and the page live there and
    // only there; the emulator's controls live nowhere else.
    let on_admin = parts.extensions.remove::<AdminPort>().is_some();
    let admin_only = matches!(route.dialect(), Dialect::Ops | Dialect::Emulator | Dialect::Ui);
    let emulator_elsewhere = route.dialect() == Dialect::Emulator && !on_admin;
    if emulator_elsewhere || (app.cfg.server.admin_listen.is_some() && admin_only != on_admin) {
        let id = parts
            .extensions
            .get::<RequestId>()
            .map_or_else(String::new, |r| r.0.to_string());
        let dialect = match route.dialect() {
            _ if on_admin => Dialect::Ops,
            // Not found on the API listener, in the words of the API's own 404.
            Dialect::Emulator | Dialect::Ui => Dialect::Cf,
            other => other,
        };
        return Err(Box::new(rescue::render(
            dialect,
            &Error::new(Kind::NoRoute, "Not Found"),
            &id,
        )));
    }
    Ok(Ctx {
        query: http::parse_query(parts.uri.query()),
        path: parts.uri.path().to_string(),
        request_id: parts
            .extensions
            .remove::<RequestId>()
            .map_or_else(String::new, |r| r.0.to_string()),
        principal: parts.extensions.remove::<Principal>().unwrap_or_default(),
        dry_run: parts.extensions.remove::<dry_run::DryRun>().is_some(),
        method: parts.method,
        headers: parts.headers,
        route,
        body,
    })
}

/// How old the probe's last answer may be before it counts as stale.
pub(crate) fn fresh(app: &App) -> Duration {
    Duration::from_secs(app.cfg.server.readiness_interval_s * 2 + 1)
}

/// `/metrics`: the gauges read from their owners first.
async fn metrics(app: &App) -> Resp {
    let ready = !app.lifecycle.is_draining() && matches!(app.readiness.now(fresh(app)), Some(Ok(())));
    // A store that is down must not hold the scrape up; the gauges then
    // keep their last values.
    let held = tokio::time::timeout(Duration::from_secs(1), app.stores.records.held())
        .await
        .ok()
        .and_then(Result::ok);
    app.metrics.refresh(ready, &app.service.pending_tasks(), held);
    http::raw(
        StatusCode::OK,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        Bytes::from(app.metrics.render()),
    )
}

/// `/readyz`: 503 while draining; else the background probe's last answer,
/// at once (none yet, or a stale one: 503). Only where no prober runs
/// (tests calling the app in process) does it probe itself.
async fn readyz(app: &App) -> Resp {
    let backend = app.service.backend().name();
    if app.lifecycle.is_draining() {
        return http::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"status": "draining", "backend": backend}),
        );
    }
    let state = match app.readiness.now(fresh(app)) {
        Some(s) => s,
        None => app.readiness.probe(&app.service, &app.stores).await,
    };
    match state {
        Ok(()) => http::json(
            StatusCode::OK,
            &serde_json::json!({"status": "ready", "backend": backend}),
        ),
        Err(error) => http::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"status": "unavailable", "backend": backend, "error": error}),
        ),
    }
}

async fn ops(app: &App, ctx: &Ctx) -> Resp {
    if !Route::ops_method(&ctx.method) {
        let e = Error::new(Kind::MethodNotAllowed, "only GET and HEAD are served here");
        return rescue::render(Dialect::Ops, &e, &ctx.request_id);
    }
    match ctx.route.id {
        RouteId::Healthz => http::raw(StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n")),
        RouteId::Readyz => readyz(app).await,
        _ => metrics(app).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waiting write holds its request's whole future: the dispatch must
    /// not reserve room for every front end (it was 5.4 KB, the Gcore front
    /// end's size, for every CF request) nor keep the request beside the
    /// handler's context (1,128 bytes in a release build).
    #[tokio::test]
    async fn dispatch_holds_only_its_own_front_end() {
        let app = Arc::new(App::new(crate::config::Config::default()).expect("default config"));
        let dispatching = dispatch(app, Request::new(Bytes::new()));
        let size = std::mem::size_of_val(&dispatching);
        assert!(size < 1024, "dispatch future is {size} bytes");
    }
}
