//! The gateway: one hyper + tower service for every dialect. The router is
//! a stack of layers (see [`layers`]) over a dispatcher that hands each
//! request to its front end (CF v2, CF v3, Gcore, ops). It is generic over
//! the request body, so tests drive it in process on a paused clock.

pub mod audit;
pub mod auth;
pub mod cf;
pub mod dry_run;
pub mod gcore;
pub mod http;
pub mod idempotency;
pub mod layers;
pub mod lifecycle;
pub mod listen;
pub mod live;
pub mod metrics;
pub mod offload;
pub mod renders;
pub mod rescue;
pub mod route;

pub use listen::{serve, serve_live};

use crate::backend::embedded::Embedded;
use crate::backend::gcore::GcoreHttp;
use crate::backend::Backend;
use crate::config::{BackendKind, Config, Port25};
use crate::coord::Memory;
use crate::error::{Error, Kind};
use crate::mapping::{on_cf, on_gcore, Mapping};
use crate::model::Scope;
use crate::service::{Service, Settings};
use crate::tasks::PollConfig;
use ::http::{Request, StatusCode};
use bytes::Bytes;
use http::{Ctx, Principal, RequestId, Resp};
use route::{Dialect, Route, RouteId};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tower::{ServiceBuilder, ServiceExt};

/// Everything a request handler needs: one config's view of the gateway.
/// A reload makes a new `App` over the same service, metrics and lifecycle
/// ([`live::Live`]); requests in flight keep the one they started with.
pub struct App {
    pub cfg: Config,
    pub service: Service,
    pub metrics: Arc<metrics::Metrics>,
    pub auth: Arc<auth::Authenticator>,
    pub lifecycle: Arc<lifecycle::Lifecycle>,
    pub readiness: Arc<lifecycle::Readiness>,
    pub audit: Arc<audit::Audit>,
    pub idempotency: Arc<idempotency::Store>,
    /// Rendered group bodies (per config: flags change what is rendered).
    pub renders: renders::Renders,
    /// When this gateway started (the timestamps of directory resources).
    pub started: chrono::DateTime<chrono::Utc>,
    /// The address actually bound (port 0 picks one).
    bound: Arc<OnceLock<SocketAddr>>,
}

/// The most rendered JSON kept (64 MiB: about 20,000 groups of 100 rules).
const RENDER_CACHE_BYTES: u64 = 64 << 20;

fn settings(cfg: &Config, cf_scope: Scope) -> Settings {
    let smtp = match cfg.gcore.port25 {
        Port25::Narrow => on_gcore::SmtpPolicy::Narrow,
        Port25::Reject => on_gcore::SmtpPolicy::Reject,
        Port25::Allow => on_gcore::SmtpPolicy::Allow,
    };
    Settings {
        mapping: Mapping {
            gcore: on_gcore::Policy {
                smtp,
                max_rules: cfg.gcore.max_rules,
            },
            cf: on_cf::Policy {
                drop_unsupported: cfg.backend.cf.drop_unsupported,
            },
        },
        cf_scope,
        deadline: cfg.wait.deadline(),
        poll: PollConfig {
            interval: cfg.wait.poll(),
            max_backoff: cfg.wait.max_poll(),
            round_timeout: Duration::from_secs(cfg.backend.gcore.request_timeout_s.max(1)),
        },
        conflict_backoff: (cfg.wait.poll(), cfg.wait.max_poll()),
        task_ttl: Duration::from_secs(cfg.backend.embedded.task_ttl_s),
    }
}

impl App {
    /// The gateway for `cfg`, with the backend it names.
    pub fn new(cfg: Config) -> Result<App, String> {
        let (backend, scope): (Arc<dyn Backend>, Scope) = match cfg.backend.kind {
            BackendKind::Embedded => (
                Arc::new(Embedded::new(
                    &cfg.backend.embedded,
                    cfg.gcore.smtp_blocked,
                    cfg.gcore.max_rules,
                )),
                Scope {
                    project_id: cfg.cf.project_id,
                    region_id: cfg.cf.region_id,
                },
            ),
            BackendKind::Gcore => (
                Arc::new(GcoreHttp::new(&cfg.backend.gcore).map_err(|e| e.to_string())?),
                Scope {
                    project_id: cfg.backend.gcore.project_id,
                    region_id: cfg.backend.gcore.region_id,
                },
            ),
            BackendKind::Cf => {
                let scope = Scope {
                    project_id: cfg.cf.project_id,
                    region_id: cfg.cf.region_id,
                };
                let flags = crate::dialect::cf::CfFlags {
                    comma_delimited_destinations: cfg.cf.enable_comma_delimited_destinations,
                    ipv6: cfg.cf.enable_ipv6,
                };
                (
                    Arc::new(crate::backend::cf::CloudController::new(&cfg.backend.cf, scope, flags)?),
                    scope,
                )
            }
        };
        App::with_backend(cfg, backend, scope)
    }

    /// The gateway over a given backend (tests use a scripted one).
    pub fn with_backend(cfg: Config, backend: Arc<dyn Backend>, cf_scope: Scope) -> Result<App, String> {
        let metrics: Arc<metrics::Metrics> = Arc::default();
        let backend = Arc::new(crate::backend::Instrumented::new(backend, metrics.clone()));
        let service = Service::new(backend, Arc::new(Memory::default()), settings(&cfg, cf_scope))
            .with_telemetry(metrics.clone());
        Ok(App {
            auth: Arc::new(auth::Authenticator::new(&cfg.auth).map_err(|e| e.to_string())?),
            audit: Arc::new(audit::Audit::new(&cfg.audit).map_err(|e| e.to_string())?),
            idempotency: Arc::new(idempotency::Store::new(&cfg.idempotency)),
            renders: renders::Renders::new(RENDER_CACHE_BYTES),
            service,
            metrics,
            lifecycle: Arc::default(),
            readiness: Arc::default(),
            started: chrono::Utc::now(),
            bound: Arc::default(),
            cfg,
        })
    }

    /// This gateway under a new config: the same service (backend, locks,
    /// tasks), metrics, lifecycle and audit stream; new credentials, CF
    /// directory, mapping policy and limits.
    pub fn reconfigured(&self, cfg: Config) -> Result<App, String> {
        let service = self.service.with_settings(settings(&cfg, self.service.cf_scope()));
        Ok(App {
            auth: Arc::new(auth::Authenticator::new(&cfg.auth).map_err(|e| e.to_string())?),
            service,
            metrics: self.metrics.clone(),
            lifecycle: self.lifecycle.clone(),
            readiness: self.readiness.clone(),
            audit: self.audit.clone(),
            idempotency: self.idempotency.clone(),
            renders: renders::Renders::new(RENDER_CACHE_BYTES),
            started: self.started,
            bound: self.bound.clone(),
            cfg,
        })
    }

    /// The URL the gateway announces: `server.external_url`, else the
    /// address it listens on. Never a request's `Host`.
    pub fn external_url(&self) -> String {
        if !self.cfg.server.external_url.is_empty() {
            return self.cfg.server.external_url.trim_end_matches('/').to_string();
        }
        let addr = self.bound.get().copied().unwrap_or(self.cfg.server.listen);
        format!("http://{addr}")
    }
}

/// The gateway as a tower service for requests with any body type.
pub fn router<B>(
    app: Arc<App>,
) -> impl tower::Service<Request<B>, Response = Resp, Error = Infallible, Future = impl Send> + Clone + Send
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use layers::from_fn;
    let server = &app.cfg.server;
    let request_limit = Duration::from_secs(server.request_timeout_s);
    let (max_body, body_limit) = (server.max_body_bytes, Duration::from_secs(server.body_timeout_s));
    let (observed, planned) = (app.clone(), app.clone());
    let (auth, lifecycle, keys) = (app.auth.clone(), app.lifecycle.clone(), app.idempotency.clone());
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

impl tower::Service<Request<Bytes>> for Dispatch {
    type Response = Resp;
    type Error = Infallible;
    type Future = layers::BoxFuture;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Bytes>) -> layers::BoxFuture {
        let app = self.app.clone();
        Box::pin(async move { Ok(dispatch(&app, req).await) })
    }
}

/// Marks requests that came in on `server.admin_listen`.
#[derive(Debug, Clone, Copy)]
pub struct AdminPort;

async fn dispatch(app: &App, req: Request<Bytes>) -> Resp {
    let (mut parts, body) = req.into_parts();
    let route = parts
        .extensions
        .remove::<Route>()
        .unwrap_or_else(|| route::classify(parts.uri.path()));
    // With an admin listener, the ops endpoints live there and only there.
    let on_admin = parts.extensions.remove::<AdminPort>().is_some();
    if app.cfg.server.admin_listen.is_some() && (route.dialect() == Dialect::Ops) != on_admin {
        let id = parts
            .extensions
            .get::<RequestId>()
            .map_or_else(String::new, |r| r.0.to_string());
        let dialect = if on_admin { Dialect::Ops } else { route.dialect() };
        return rescue::render(dialect, &Error::new(Kind::NoRoute, "Not Found"), &id);
    }
    let ctx = Ctx {
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
    };
    match ctx.route.dialect() {
        Dialect::Ops => ops(app, &ctx).await,
        Dialect::Cf => cf::v2::handle(app, &ctx).await,
        Dialect::CfV3 => cf::v3::handle(app, &ctx).await,
        Dialect::Gcore => gcore::handle(app, &ctx).await,
    }
}

/// `/readyz`: 503 while draining; else the background probe's last answer
/// (or, when none is fresh — no prober runs in process tests — one probe now).
async fn readyz(app: &App) -> Resp {
    let backend = app.service.backend().name();
    if app.lifecycle.is_draining() {
        return http::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"status": "draining", "backend": backend}),
        );
    }
    let fresh = Duration::from_secs(app.cfg.server.readiness_interval_s * 2 + 1);
    let state = match app.readiness.cached(fresh) {
        Some(s) => s,
        None => app.readiness.probe(&app.service).await,
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
        _ => http::raw(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Bytes::from(app.metrics.render()),
        ),
    }
}
