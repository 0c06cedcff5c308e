//! What outlives a config reload: the process's place in its lifecycle
//! (serving, draining after SIGTERM, stopping at the end of the grace
//! period) and the readiness the background probe last saw.

use crate::backend::Cx;
use crate::service::Service;
use crate::store::Stores;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Draining and stopping, shared by every request of the process.
#[derive(Debug)]
pub struct Lifecycle {
    draining: AtomicBool,
    stop: watch::Sender<bool>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            draining: AtomicBool::new(false),
            stop: watch::channel(false).0,
        }
    }
}

impl Lifecycle {
    /// SIGTERM arrived: `/readyz` answers 503 from now on.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The grace period is over: every request still open is answered now.
    pub fn stop_now(&self) {
        self.stop.send_replace(true);
    }

    /// Resolves once [`stop_now`](Self::stop_now) was called.
    pub async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// The readiness the background probe last saw. `/readyz` answers from it
/// at once, whatever the backend does: no answer yet, or one older than the
/// probe's rhythm allows (a probe stuck on a silent backend), is "not ready".
#[derive(Debug, Default)]
pub struct Readiness {
    last: Mutex<Option<Probe>>,
    /// A background prober runs (the binary); without one (tests calling the
    /// app in process) `/readyz` probes when it has nothing fresh.
    background: AtomicBool,
}

#[derive(Debug, Clone)]
struct Probe {
    at: Instant,
    error: Option<String>,
}

/// The longest error text `/readyz` shows (it is sanitised where made).
const MAX_ERROR: usize = 200;

impl Readiness {
    /// Asks the store and the backend once and remembers the answer.
    pub async fn probe(&self, service: &Service, stores: &Stores) -> Result<(), String> {
        let outcome = match stores.ping().await {
            Err(e) => Err(e.to_string()),
            Ok(()) => service
                .ready(&Cx::new("readiness-probe"))
                .await
                .map_err(|e| e.message().to_string()),
        };
        let outcome = outcome.map_err(|mut text| {
            if text.len() > MAX_ERROR {
                let mut cut = MAX_ERROR;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                text.push('…');
            }
            text
        });
        if let Ok(mut last) = self.last.lock() {
            *last = Some(Probe {
                at: Instant::now(),
                error: outcome.clone().err(),
            });
        }
        outcome
    }

    /// The last probe's answer if it is younger than `fresh`.
    pub fn cached(&self, fresh: Duration) -> Option<Result<(), String>> {
        let last = self.last.lock().ok()?.clone()?;
        (last.at.elapsed() <= fresh).then(|| last.error.map_or(Ok(()), Err))
    }

    /// What `/readyz` answers now, without waiting on anything while a
    /// background prober runs; `None`: no prober, and nothing fresh.
    pub fn now(&self, fresh: Duration) -> Option<Result<(), String>> {
        if let Some(answer) = self.cached(fresh) {
            return Some(answer);
        }
        if !self.background.load(Ordering::SeqCst) {
            return None;
        }
        let last = self.last.lock().ok().and_then(|l| l.clone());
        Some(Err(match last {
            None => "the first readiness probe has not answered yet".to_string(),
            Some(p) => format!(
                "the readiness probe has not answered for {} s",
                p.at.elapsed().as_secs()
            ),
        }))
    }

    /// One probe, given up after `limit` (a backend that takes connections
    /// and never answers is not ready, and the prober goes on).
    async fn probe_within(&self, service: &Service, stores: &Stores, limit: Duration) {
        if tokio::time::timeout(limit, self.probe(service, stores)).await.is_err() {
            if let Ok(mut last) = self.last.lock() {
                *last = Some(Probe {
                    at: Instant::now(),
                    error: Some(format!(
                        "the store or the backend did not answer within {} s",
                        limit.as_secs()
                    )),
                });
            }
        }
    }

    /// Probes every `interval` (each probe bounded by it) until the process stops.
    pub async fn run(&self, service: Service, stores: Stores, interval: Duration, lifecycle: &Lifecycle) {
        self.background.store(true, Ordering::SeqCst);
        let limit = interval.max(Duration::from_secs(1));
        loop {
            self.probe_within(&service, &stores, limit).await;
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = lifecycle.stopped() => return,
            }
        }
    }
}
