//! The gateway as it runs: the current [`App`], swapped atomically when the
//! config is reloaded (SIGHUP). Each request takes the `App` current when
//! it arrives and keeps it to its end, so in-flight requests finish on the
//! config they started with.

use super::layers::Handle;
use super::App;
use crate::config::Config;
use arc_swap::ArcSwap;
use hyper::body::Incoming;
use std::net::SocketAddr;
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
    /// `--listen`, which overrides the file's `server.listen`.
    listen: Option<SocketAddr>,
}

impl Live {
    pub fn new(app: App, path: Option<PathBuf>, listen: Option<SocketAddr>) -> Live {
        Live {
            current: ArcSwap::from_pointee(Served::new(Arc::new(app))),
            path,
            listen,
        }
    }

    pub fn app(&self) -> Arc<App> {
        self.current.load().app.clone()
    }

    /// The request stack of the current `App`.
    pub fn router(&self) -> Arc<dyn Handle<http::Request<Incoming>>> {
        self.current.load().router.clone()
    }

    /// Reads the config file again and, if it is valid, serves it from now
    /// on. Answers the sections that changed but need a restart (they keep
    /// their old values); a bad file changes nothing.
    pub fn reload(&self) -> Result<Vec<&'static str>, String> {
        let Some(path) = &self.path else {
            return Err("no --config file to reload".into());
        };
        let mut cfg = Config::load(path).map_err(|e| e.to_string())?;
        if let Some(addr) = self.listen {
            cfg.server.listen = addr;
        }
        cfg.validate().map_err(|e| e.to_string())?;
        self.apply(cfg)
    }

    /// Serves `cfg` from now on (restart-only sections keep their values).
    pub fn apply(&self, mut cfg: Config) -> Result<Vec<&'static str>, String> {
        let old = self.app();
        let kept = keep_restart_only(&old.cfg, &mut cfg);
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
