//! Config changes without a signal: the config file and the secret files it
//! names are read every `server.watch_config_s`, and a change reloads
//! exactly as SIGHUP does. Contents are compared, not timestamps: a
//! Kubernetes ConfigMap or Secret mounted as a directory is updated by
//! swapping a symlink (`..data`), which a read through the file's path
//! sees, and a rewrite within the same second is not missed.

use super::live::Live;
use crate::config::Config;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What the watched files hold now (a missing file counts as a state too).
fn contents(paths: &[PathBuf]) -> u64 {
    let mut h = DefaultHasher::new();
    for p in paths {
        p.hash(&mut h);
        std::fs::read(p).ok().hash(&mut h);
    }
    h.finish()
}

/// The files to watch: the config file, the files the running config
/// names, and those the file on disk names when it parses (a refused change
/// — a secret file not there yet — is tried again when that file appears).
fn watched(path: Option<&PathBuf>, running: &Config) -> Vec<PathBuf> {
    let mut paths = Vec::from_iter(path.cloned());
    paths.extend(running.watched_files());
    let on_disk = path.and_then(|p| std::fs::read_to_string(p).ok());
    if let Some(cfg) = on_disk.and_then(|t| toml::from_str::<Config>(&t).ok()) {
        paths.extend(cfg.watched_files());
    }
    paths.sort();
    paths.dedup();
    paths
}

/// What the watched files held when the config was read: changes are
/// measured from here, however late the watcher starts (a change made
/// while the gateway was still starting is not missed).
pub struct Baseline {
    paths: Vec<PathBuf>,
    seen: u64,
}

impl Baseline {
    /// Takes it now: call it right after reading `cfg` from `path`.
    pub fn now(path: Option<&PathBuf>, cfg: &Config) -> Baseline {
        let paths = watched(path, cfg);
        let seen = contents(&paths);
        Baseline { paths, seen }
    }

    /// Reloads whenever what the files hold changes, until the process ends.
    pub async fn run(self, live: Arc<Live>, every: Duration) {
        let Baseline { mut paths, mut seen } = self;
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = contents(&paths);
            if now == seen {
                continue;
            }
            live.reload_logged("a watched file changed");
            // What triggered this reload counts as seen, not what is there now:
            // a write landing meanwhile (or the end of a file written in place
            // that the reload read half of) is another change, tried next tick.
            // The same broken content is not tried again.
            let names = watched(live.path(), &live.app().cfg);
            seen = if names == paths { now } else { contents(&names) };
            paths = names;
        }
    }
}
