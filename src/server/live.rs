//! The gateway as it runs: the current [`App`], swapped atomically when the
//! config is reloaded (SIGHUP). Each request takes the `App` current when
//! it arrives and keeps it to its end, so in-flight requests finish on the
//! config they started with.

use super::layers::Handle;
use super::App;
use crate::config::Config;
use arc_swap::ArcSwap;
use hyper::body::Incoming;
use std::path::PathBuf;
use std::sync::Arc;

/// An `App` and the request stack built for it.
struct Served {
    app: Arc<App>,
    router: Arc<dyn Handle<http::Request<Incoming>>>,
}

impl Served {
    fn new(app: Arc<App>) -> Served {
        Served {
            router: Arc::new(super::router::<Incoming>(app.clone())),
            app,
        }
    }
}

pub struct Live {
    current: ArcSwap<Served>,
    /// Where the config came from (`None`: the built-in defaults).
    path: Option<PathBuf>,
}

impl Live {
    pub fn new(app: App, path: Option<PathBuf>) -> Live {
        Live {
            current: ArcSwap::from_pointee(Served::new(Arc::new(app))),
            path,
        }
    }

    pub fn app(&self) -> Arc<App> {
        self.current.load().app.clone()
    }

    /// The request stack of the current `App`.
    pub fn router(&self) -> Arc<dyn Handle<http::Request<Incoming>>> {
        self.current.load().router.clone()
    }

    /// Where the config came from (`None`: the built-in defaults).
    pub fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    /// [`reload`](Self::reload), its outcome logged (`why`: what asked).
    pub fn reload_logged(&self, why: &str) {
        match self.reload() {
            Ok(kept) if kept.is_empty() => tracing::info!(why, "config reloaded"),
            Ok(kept) => tracing::warn!(
                why,
                not_applied = kept.join(", ").as_str(),
                "config reloaded; these settings need a restart and keep their old values"
            ),
            Err(e) => tracing::error!(why, error = %e, "config reload failed; still serving the previous config"),
        }
    }

    /// Reads the config file again and, if it is valid, serves it from now
    /// on. Answers the sections that changed but need a restart (they keep
    /// their old values); a bad file changes nothing.
    pub fn reload(&self) -> Result<Vec<&'static str>, String> {
        let Some(path) = &self.path else {
            return Err("no --config file to reload".into());
        };
        let outcome = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .and_then(|text| toml::from_str::<Config>(&text).map_err(|e| format!("{}: {e}", path.display())))
            .and_then(|cfg| self.apply(cfg));
        let label = if outcome.is_ok() { "ok" } else { "failed" };
        self.app()
            .metrics
            .reloads
            .get_or_create(&super::metrics::OutcomeLabels { outcome: label })
            .inc();
        outcome
    }

    /// Serves `cfg` from now on (restart-only sections keep their values).
    /// What is checked is the config that would run: the new file with the
    /// listeners, backend and store actually in use, so a reload can never
    /// pass on a `listen` it does not get (the development credentials on
    /// a loopback address in the file, while the process serves 0.0.0.0).
    pub fn apply(&self, mut cfg: Config) -> Result<Vec<&'static str>, String> {
        let old = self.app();
        // Where `*_env` settings are read is the process's, not the file's.
        cfg.env = old.cfg.env.clone();
        let kept = keep_restart_only(&old.cfg, &mut cfg);
        cfg.validate().map_err(|e| e.to_string())?;
        let app = old.reconfigured(cfg)?;
        self.current.store(Arc::new(Served::new(Arc::new(app))));
        Ok(kept)
    }
}

/// Puts back every setting a running process cannot change (listeners,
/// TLS, the backend and what its clients hold, the poller's pace, the
/// audit stream, the log format, the idempotency store), and names those
/// the new file changed.
fn keep_restart_only(old: &Config, new: &mut Config) -> Vec<&'static str> {
    let mut kept = Vec::new();
    macro_rules! keep {
        ($name:literal, $($field:tt)+) => {
            if format!("{:?}", old.$($field)+) != format!("{:?}", new.$($field)+) {
                kept.push($name);
                new.$($field)+ = old.$($field)+.clone();
            }
        };
    }
    keep!("server.listen", server.listen);
    keep!("server.admin_listen", server.admin_listen);
    keep!("server.listen_backlog", server.listen_backlog);
    keep!("server.watch_config_s", server.watch_config_s);
    keep!("server.readiness_interval_s", server.readiness_interval_s);
    keep!("server.tls", server.tls);
    keep!("backend", backend);
    keep!("cf.project_id", cf.project_id);
    keep!("cf.region_id", cf.region_id);
    keep!("wait.poll_ms", wait.poll_ms);
    keep!("wait.max_poll_ms", wait.max_poll_ms);
    keep!("audit", audit);
    keep!("log", log);
    keep!("idempotency", idempotency);
    keep!("store", store);
    kept
}
