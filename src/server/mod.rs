//! The gateway: one hyper + tower service for both dialects. It routes a
//! request to its front end (CF v2 under `/v2`, Gcore under `/cloud`), applies
//! auth, body limits and a request deadline, calls the backend, waits where
//! the caller needs a final answer, and renders the result in the caller's
//! dialect. Panics become a 500 in CC's shape, never a dropped connection.

pub mod auth;
pub mod cf;
pub mod gcore;
pub mod http;
pub mod metrics;

use crate::backend::embedded::{new_id, Embedded};
use crate::backend::gcore::GcoreHttp;
use crate::backend::wait::{self, Schedule, WaitError};
use crate::backend::{Backend, Scope};
use crate::config::{BackendKind, Config};
use crate::dialect::cf::CfError;
use crate::dialect::gcore::wire::TaskOut;
use crate::dialect::gcore::GcoreError;
use crate::model::{GroupId, Uuid};
use ::http::{Request, Response, StatusCode};
use bytes::Bytes;
use http::{BodyError, Ctx, Resp};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use metrics::{DialectLabels, Metrics, OutcomeLabels, RequestLabels};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tower::ServiceBuilder;
use tracing::Instrument;

/// Everything a request handler needs.
pub struct App {
    pub cfg: Config,
    pub backend: Backend,
    /// Where CF groups live on the backend.
    pub cf_scope: Scope,
    /// One writer per group at a time, so an answer shows its own write.
    locks: moka::sync::Cache<GroupId, Arc<Mutex<()>>>,
    /// CF creates run one at a time, keeping names unique in this gateway.
    pub create_lock: Mutex<()>,
    pub jobs: moka::sync::Cache<String, cf::Job>,
    pub metrics: Metrics,
    /// When this gateway started (the timestamps of directory resources).
    pub started: chrono::DateTime<chrono::Utc>,
}

impl App {
    pub fn new(cfg: Config) -> Result<App, String> {
        let (backend, cf_scope) = match cfg.backend.kind {
            BackendKind::Embedded => (
                Backend::Embedded(Embedded::new(
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
                Backend::Gcore(GcoreHttp::new(&cfg.backend.gcore).map_err(|e| e.to_string())?),
                Scope {
                    project_id: cfg.backend.gcore.project_id,
                    region_id: cfg.backend.gcore.region_id,
                },
            ),
            BackendKind::Cf => return Err("backend.kind = \"cf\" is not available in this version".into()),
        };
        Ok(App {
            cfg,
            backend,
            cf_scope,
            locks: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            create_lock: Mutex::new(()),
            jobs: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(3600))
                .build(),
            metrics: Metrics::default(),
            started: chrono::Utc::now(),
        })
    }

    pub fn schedule(&self) -> Schedule {
        Schedule::new(
            self.cfg.wait.first_poll(),
            self.cfg.wait.max_poll(),
            self.cfg.wait.deadline(),
        )
    }

    /// Wait on tasks, counted in the metrics.
    pub async fn wait(&self, tasks: &[Uuid], schedule: Schedule) -> Result<Vec<TaskOut>, WaitError> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        self.metrics.waiting.inc();
        let result = wait::tasks(&self.backend, tasks, schedule).await;
        self.metrics.waiting.dec();
        let outcome = match &result {
            Ok(_) => "finished",
            Err(WaitError::TaskFailed { .. }) => "error",
            Err(WaitError::Deadline { .. }) => "deadline",
            Err(WaitError::Backend(_)) => "backend_error",
        };
        self.metrics.task_waits.get_or_create(&OutcomeLabels { outcome }).inc();
        result
    }

    /// Hold the write lock of one group.
    pub async fn lock_group(&self, id: &GroupId) -> OwnedMutexGuard<()> {
        let lock = self.locks.get_with(id.clone(), || Arc::new(Mutex::new(())));
        lock.lock_owned().await
    }

    pub fn new_job(&self, created_at: String) -> cf::Job {
        let job = cf::Job::finished(new_id().to_string(), created_at);
        self.jobs.insert(job.guid().to_string(), job.clone());
        job
    }
}

/// A request body, read on demand within the configured limit.
pub struct RequestBody(Incoming);

impl RequestBody {
    pub async fn read(self, app: &App) -> Result<Bytes, BodyError> {
        http::read_body(self.0, app.cfg.server.max_body_bytes).await
    }
}

impl From<BodyError> for CfError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => CfError::PayloadTooLarge,
            BodyError::Broken(m) => CfError::MessageParse(m),
        }
    }
}

impl From<BodyError> for GcoreError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => GcoreError::PayloadTooLarge,
            BodyError::Broken(m) => GcoreError::validation(m),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Cf,
    Gcore,
    Ops,
}

impl Dialect {
    fn of(path: &str) -> Dialect {
        if path.starts_with("/cloud/") {
            Dialect::Gcore
        } else if matches!(path, "/healthz" | "/readyz" | "/metrics") {
            Dialect::Ops
        } else {
            Dialect::Cf
        }
    }

    fn label(self) -> &'static str {
        match self {
            Dialect::Cf => "cf",
            Dialect::Gcore => "gcore",
            Dialect::Ops => "ops",
        }
    }
}

/// Serve one request.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Resp {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let ctx = Ctx {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: http::parse_query(parts.uri.query()),
        headers: parts.headers,
        request_id: new_id().to_string(),
    };
    let dialect = Dialect::of(&ctx.path);
    let span = tracing::info_span!("request", id = %ctx.request_id, method = %ctx.method, path = %ctx.path);
    let resp = async {
        let deadline = Duration::from_secs(app.cfg.server.request_timeout_s);
        match tokio::time::timeout(deadline, route(&app, &ctx, dialect, body)).await {
            Ok(r) => r,
            Err(_) => match dialect {
                Dialect::Gcore => gcore::error(&GcoreError::Timeout("request timed out".into()), &ctx.request_id),
                _ => cf::error(&CfError::BackendTimeout("The request timed out".into())),
            },
        }
    }
    .instrument(span.clone())
    .await;
    let status = resp.status();
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "answered"
        );
    });
    app.metrics
        .requests
        .get_or_create(&RequestLabels {
            dialect: dialect.label(),
            method: ctx.method.to_string(),
            status: status.as_u16().to_string(),
        })
        .inc();
    app.metrics
        .duration
        .get_or_create(&DialectLabels {
            dialect: dialect.label(),
        })
        .observe(started.elapsed().as_secs_f64());
    let resp = http::with_header(resp, "x-request-id", &ctx.request_id);
    match dialect {
        Dialect::Cf => http::with_header(resp, "x-vcap-request-id", &ctx.request_id),
        Dialect::Gcore => http::with_header(resp, "request_id", &ctx.request_id),
        Dialect::Ops => resp,
    }
}

async fn route(app: &App, ctx: &Ctx, dialect: Dialect, body: Incoming) -> Resp {
    let declared = ctx
        .headers
        .get(::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.cfg.server.max_body_bytes as u64) {
        // Refused before a byte of the body is read.
        return match dialect {
            Dialect::Gcore => gcore::error(&GcoreError::PayloadTooLarge, &ctx.request_id),
            _ => cf::error(&CfError::PayloadTooLarge),
        };
    }
    let segs: Vec<&str> = ctx.path.trim_matches('/').split('/').collect();
    let body = RequestBody(body);
    match dialect {
        Dialect::Gcore => gcore::handle(app, ctx, &segs, body).await,
        Dialect::Ops => ops(app, ctx).await,
        Dialect::Cf => cf::handle(app, ctx, &segs, body).await,
    }
}

async fn ops(app: &App, ctx: &Ctx) -> Resp {
    match ctx.path.as_str() {
        "/healthz" => http::raw(StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n")),
        "/readyz" => match app.backend.ready().await {
            Ok(()) => http::json(
                StatusCode::OK,
                &serde_json::json!({"status": "ready", "backend": app.backend.name()}),
            ),
            Err(e) => http::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"status": "unavailable", "backend": app.backend.name(), "error": e.message}),
            ),
        },
        _ => http::raw(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Bytes::from(app.metrics.render()),
        ),
    }
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response<http::Body> {
    cf::error(&CfError::Unknown)
}

/// Serve connections from `listener` until `shutdown` resolves, then let
/// in-flight requests finish (up to 30 s).
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let svc = ServiceBuilder::new()
                    .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
                    .service_fn(move |req| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(handle(app, req).await) }
                    });
                let svc = hyper_util::service::TowerToHyperService::new(svc);
                // A client that never finishes its headers is cut off (slowloris).
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 30 s; closing");
    }
    Ok(())
}
