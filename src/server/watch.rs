//! Config changes without a signal: the config file and the secret files it
//! names are read every `server.watch_config_s`, and a change reloads
//! exactly as SIGHUP does. Contents are compared, not timestamps: a
//! Kubernetes ConfigMap or Secret mounted as a directory is updated by
//! swapping a symlink (`..data`), which a read through the file's path
//! sees, and a rewrite within the same second is not missed.

use super::live::Live;
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

/// Reloads whenever what the files hold changes, until the process ends.
pub async fn run(live: Arc<Live>, every: Duration) {
    let watched = |live: &Live| {
        let mut paths = Vec::from_iter(live.path().cloned());
        paths.extend(live.app().cfg.watched_files());
        paths
    };
    let mut paths = watched(&live);
    let mut seen = contents(&paths);
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = contents(&paths);
        if now == seen {
            continue;
        }
        live.reload_logged("a watched file changed");
        // A reload may name other secret files; a refused one keeps the
        // old list, and the same broken content is not tried again.
        paths = watched(&live);
        seen = contents(&paths);
    }
}
