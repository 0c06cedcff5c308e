//! The gateway: one hyper + tower service for every dialect. The router is
//! a stack of layers (see [`layers`]) over a dispatcher that hands each
//! request to its front end (CF v2, CF v3, Gcore, ops). It is generic over
//! the request body, so tests drive it in process on a paused clock.

pub mod auth;
pub mod cf;
pub mod gcore;
pub mod http;
pub mod layers;
pub mod listen;
pub mod metrics;
pub mod rescue;
pub mod route;

pub use listen::serve;

use crate::backend::embedded::Embedded;
use crate::backend::gcore::GcoreHttp;
use crate::backend::{Backend, Cx};
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

/// Everything a request handler needs.
pub struct App {
    pub cfg: Config,
    pub service: Service,
    pub metrics: Arc<metrics::Metrics>,
    pub auth: Arc<auth::Authenticator>,
    /// When this gateway started (the timestamps of directory resources).
    pub started: chrono::DateTime<chrono::Utc>,
    /// The address actually bound (port 0 picks one).
    bound: OnceLock<SocketAddr>,
}

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
        let service = Service::new(backend, Arc::new(Memory::default()), settings(&cfg, cf_scope))
            .with_telemetry(metrics.clone());
        Ok(App {
            auth: Arc::new(auth::Authenticator::new(&cfg.auth).map_err(|e| e.to_string())?),
            service,
            metrics,
            started: chrono::Utc::now(),
            bound: OnceLock::new(),
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
    let (metrics, auth) = (app.metrics.clone(), app.auth.clone());
    ServiceBuilder::new()
        .layer(from_fn(layers::classify))
        .layer(from_fn(move |req, next| layers::observe(metrics.clone(), req, next)))
        .layer(from_fn(layers::rescue_panics))
        .layer(from_fn(move |req, next| layers::deadline(request_limit, req, next)))
        .layer(from_fn(move |req, next| {
            layers::read_body(max_body, body_limit, req, next)
        }))
        .layer(from_fn(move |req, next| layers::authenticate(auth.clone(), req, next)))
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

async fn dispatch(app: &App, req: Request<Bytes>) -> Resp {
    let (mut parts, body) = req.into_parts();
    let route = parts
        .extensions
        .remove::<Route>()
        .unwrap_or_else(|| route::classify(parts.uri.path()));
    let ctx = Ctx {
        query: http::parse_query(parts.uri.query()),
        path: parts.uri.path().to_string(),
        request_id: parts
            .extensions
            .remove::<RequestId>()
            .map_or_else(String::new, |r| r.0.to_string()),
        principal: parts.extensions.remove::<Principal>().unwrap_or_default(),
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

async fn ops(app: &App, ctx: &Ctx) -> Resp {
    if !Route::ops_method(&ctx.method) {
        let e = Error::new(Kind::MethodNotAllowed, "only GET and HEAD are served here");
        return rescue::render(Dialect::Ops, &e, &ctx.request_id);
    }
    match ctx.route.id {
        RouteId::Healthz => http::raw(StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n")),
        RouteId::Readyz => match app.service.ready(&Cx::new(ctx.request_id.clone())).await {
            Ok(()) => http::json(
                StatusCode::OK,
                &serde_json::json!({"status": "ready", "backend": app.service.backend().name()}),
            ),
            Err(e) => http::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"status": "unavailable", "backend": app.service.backend().name(), "error": e.message()}),
            ),
        },
        _ => http::raw(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Bytes::from(app.metrics.render()),
        ),
    }
}
