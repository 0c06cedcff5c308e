//! The gateway's parts for one config: the service over its backend and
//! store, the credentials, the streams and caches requests use — built from
//! the config ([`App::open`]), over a given backend (tests), or from a
//! running gateway under a new config (a reload).

use super::{audit, auth, lifecycle, metrics, noops, renders};
use crate::backend::embedded::Embedded;
use crate::backend::gcore::GcoreHttp;
use crate::backend::{Backend, Instrumented};
use crate::config::{BackendKind, Config, Port25, StoreKind};
use crate::mapping::{on_cf, on_gcore, Mapping};
use crate::model::Scope;
use crate::service::tracker::PollConfig;
use crate::service::{Service, Settings};
use crate::store::Stores;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Everything a request handler needs: one config's view of the gateway.
/// A reload makes a new `App` over the same service, store, metrics and
/// lifecycle ([`super::live::Live`]); requests in flight keep the one they
/// started with.
pub struct App {
    pub cfg: Config,
    pub service: Service,
    pub stores: Stores,
    pub metrics: Arc<metrics::Metrics>,
    pub auth: Arc<auth::Authenticator>,
    pub lifecycle: Arc<lifecycle::Lifecycle>,
    pub readiness: Arc<lifecycle::Readiness>,
    pub audit: Arc<audit::Audit>,
    /// Rendered group bodies (per config: flags change what is rendered).
    pub renders: renders::Renders,
    /// CF changes known to change nothing (per config, as `renders`).
    pub noops: noops::Noops,
    /// When this gateway started (the timestamps of directory resources).
    pub started: chrono::DateTime<chrono::Utc>,
    /// The address actually bound (port 0 picks one).
    pub(super) bound: Arc<OnceLock<SocketAddr>>,
    /// The token issuer's key and lockout counts (outlive reloads).
    login: Arc<auth::login::State>,
    /// The embedded backend, when it is the backend: the emulator's controls act on it.
    pub emulator: Option<Embedded>,
    /// The page's signed-in people (outlive reloads; checked against the
    /// current users on every request).
    pub ui_sessions: Arc<super::ui::session::Sessions>,
}

/// The URL the gateway announces: `server.external_url`, else the address
/// it listens on (once bound). Never a request's `Host`.
fn announced(cfg: &Config, bound: &OnceLock<SocketAddr>) -> String {
    if !cfg.server.external_url.is_empty() {
        return cfg.server.external_url.trim_end_matches('/').to_string();
    }
    let addr = bound.get().copied().unwrap_or(cfg.server.listen);
    format!("http://{addr}")
}

fn authenticator(
    cfg: &Config,
    bound: &Arc<OnceLock<SocketAddr>>,
    state: &Arc<auth::login::State>,
) -> Result<auth::Authenticator, String> {
    let (cfg2, bound) = (cfg.clone(), bound.clone());
    let url: auth::login::Announced = Arc::new(move || announced(&cfg2, &bound));
    auth::Authenticator::new(&cfg.auth, &cfg.env, state.clone(), url).map_err(|e| e.to_string())
}

/// The most rendered JSON kept (64 MiB: about 20,000 groups of 100 rules).
const RENDER_CACHE_BYTES: u64 = 64 << 20;
/// What the known no-op changes may hold (their bodies and the states they
/// keep alive).
const NOOPS_BYTES: u64 = 16 << 20;

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

/// Where CF groups live for the configured backend.
fn cf_scope(cfg: &Config) -> Scope {
    match cfg.backend.kind {
        BackendKind::Gcore => Scope {
            project_id: cfg.backend.gcore.project_id,
            region_id: cfg.backend.gcore.region_id,
        },
        BackendKind::Embedded | BackendKind::Cf => Scope {
            project_id: cfg.cf.project_id,
            region_id: cfg.cf.region_id,
        },
    }
}

/// The Gcore or Cloud Controller backend the config names (`None`: the
/// embedded one).
fn remote(cfg: &Config) -> Result<Option<Arc<dyn Backend>>, String> {
    Ok(match cfg.backend.kind {
        BackendKind::Embedded => None,
        BackendKind::Gcore => Some(Arc::new(
            GcoreHttp::new(&cfg.backend.gcore, &cfg.env).map_err(|e| e.to_string())?,
        )),
        BackendKind::Cf => {
            let flags = crate::dialect::cf::CfFlags {
                comma_delimited_destinations: cfg.cf.enable_comma_delimited_destinations,
                ipv6: cfg.cf.enable_ipv6,
            };
            Some(Arc::new(crate::backend::cf::CloudController::new(
                &cfg.backend.cf,
                &cfg.env,
                cf_scope(cfg),
                flags,
            )?))
        }
    })
}

/// The backend the config names; the embedded one kept in the store when
/// the store is durable (its state taken back from it).
async fn backend(cfg: &Config, stores: &Stores) -> Result<Backends, String> {
    if let Some(b) = remote(cfg)? {
        return Ok((b, None));
    }
    let (e, g) = (&cfg.backend.embedded, &cfg.gcore);
    let (Some(groups), Some(tasks)) = (&stores.groups, &stores.tasks) else {
        return Ok(embedded(Embedded::new(e, g.smtp_blocked, g.max_rules)));
    };
    let durable = Embedded::durable(e, g.smtp_blocked, g.max_rules, groups.clone(), tasks.clone());
    durable
        .restore(tasks.as_ref())
        .await
        .map_err(|e| format!("cannot take the embedded backend's state back: {e}"))?;
    Ok(embedded(durable))
}

/// The backend, and the embedded one again when it is that (for the emulator's controls).
type Backends = (Arc<dyn Backend>, Option<Embedded>);

fn embedded(e: Embedded) -> Backends {
    (Arc::new(e.clone()), Some(e))
}

impl App {
    /// The gateway for `cfg`: its store opened (and migrated), its backend
    /// built (and, when durable, its state taken back).
    pub async fn open(cfg: Config) -> Result<App, String> {
        let metrics: Arc<metrics::Metrics> = Arc::default();
        let stores = Stores::open(&cfg.store, &cfg.env, &cfg.idempotency, metrics.clone()).await?;
        let backends = backend(&cfg, &stores).await?;
        let scope = cf_scope(&cfg);
        let login = Arc::new(auth::login::State::open(&cfg.auth, &stores).await?);
        App::assemble(cfg, backends, scope, stores, metrics, login)
    }

    /// The gateway for `cfg` with the memory store (no `await` needed; the
    /// binary uses [`App::open`]).
    pub fn new(cfg: Config) -> Result<App, String> {
        if cfg.store.kind != StoreKind::Memory {
            return Err("a durable store is opened with App::open".into());
        }
        let stores = Stores::memory(&cfg.idempotency);
        let (e, g) = (&cfg.backend.embedded, &cfg.gcore);
        let backends = match remote(&cfg)? {
            Some(b) => (b, None),
            None => embedded(Embedded::new(e, g.smtp_blocked, g.max_rules)),
        };
        let scope = cf_scope(&cfg);
        App::assemble(cfg, backends, scope, stores, Arc::default(), Arc::default())
    }

    /// The gateway over a given backend (tests use a scripted one).
    pub fn with_backend(cfg: Config, backend: Arc<dyn Backend>, cf_scope: Scope) -> Result<App, String> {
        let stores = Stores::memory(&cfg.idempotency);
        App::assemble(cfg, (backend, None), cf_scope, stores, Arc::default(), Arc::default())
    }

    fn assemble(
        cfg: Config,
        (backend, emulator): Backends,
        cf_scope: Scope,
        stores: Stores,
        metrics: Arc<metrics::Metrics>,
        login: Arc<auth::login::State>,
    ) -> Result<App, String> {
        let backend = Arc::new(Instrumented::new(backend, metrics.clone()));
        let mut service =
            Service::new(backend, stores.coord.clone(), settings(&cfg, cf_scope)).with_telemetry(metrics.clone());
        if let Some(log) = &stores.tasks {
            service = service.with_task_log(log.clone());
        }
        let bound = Arc::default();
        Ok(App {
            auth: Arc::new(authenticator(&cfg, &bound, &login)?),
            audit: Arc::new(
                audit::Audit::new(&cfg.audit, metrics.audit_write_failures.clone()).map_err(|e| e.to_string())?,
            ),
            renders: renders::Renders::new(RENDER_CACHE_BYTES),
            noops: noops::Noops::new(NOOPS_BYTES),
            service,
            stores,
            metrics,
            lifecycle: Arc::default(),
            readiness: Arc::default(),
            started: chrono::Utc::now(),
            bound,
            login,
            emulator,
            ui_sessions: Arc::default(),
            cfg,
        })
    }

    /// This gateway under a new config: the same service (backend, locks,
    /// tasks), store, metrics, lifecycle and audit stream; new credentials,
    /// CF directory, mapping policy and limits.
    pub fn reconfigured(&self, cfg: Config) -> Result<App, String> {
        let service = self.service.with_settings(settings(&cfg, self.service.cf_scope()));
        Ok(App {
            auth: Arc::new(authenticator(&cfg, &self.bound, &self.login)?),
            service,
            stores: self.stores.clone(),
            metrics: self.metrics.clone(),
            lifecycle: self.lifecycle.clone(),
            readiness: self.readiness.clone(),
            audit: self.audit.clone(),
            renders: renders::Renders::new(RENDER_CACHE_BYTES),
            noops: noops::Noops::new(NOOPS_BYTES),
            started: self.started,
            bound: self.bound.clone(),
            login: self.login.clone(),
            emulator: self.emulator.clone(),
            ui_sessions: self.ui_sessions.clone(),
            cfg,
        })
    }

    /// The URL the gateway announces: `server.external_url`, else the
    /// address it listens on. Never a request's `Host`.
    pub fn external_url(&self) -> String {
        announced(&self.cfg, &self.bound)
    }
}
