//! Waiting on tasks until they end, within a deadline.
//!
//! Backends that run tasks in this process announce completions
//! ([`TaskRegistry`]); a waiter simply sleeps on that. For the others, one
//! poller per scope serves every waiter of that scope: each round asks the
//! backend about all pending tasks at once (`Backend::task_states`), a short
//! interval apart while anyone waits, with jitter, so the backend's load does
//! not grow with the number of waiters. A failed round is retried with
//! backoff; only a task's ERROR or the waiter's deadline ends a wait.

use crate::backend::{Backend, Cx, Seen};
use crate::model::{Scope, Task, TaskId, TaskState};
use crate::tasks::{TaskRegistry, WaitError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How the poller runs.
#[derive(Debug, Clone, Copy)]
pub struct PollConfig {
    /// Between rounds while anyone waits.
    pub interval: Duration,
    /// Longest pause after failed rounds.
    pub max_backoff: Duration,
    /// Upper bound on one round.
    pub round_timeout: Duration,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            interval: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            round_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Default)]
struct ScopeState {
    tasks: HashMap<TaskId, watch::Sender<Option<Task>>>,
    last_error: Option<String>,
}

/// Counts kept for metrics.
#[derive(Debug, Default)]
pub struct PollStats {
    pub rounds: std::sync::atomic::AtomicU64,
    pub failed_rounds: std::sync::atomic::AtomicU64,
}

pub struct Tracker {
    backend: Arc<dyn Backend>,
    cfg: PollConfig,
    scopes: Arc<Mutex<HashMap<Scope, ScopeState>>>,
    pub stats: Arc<PollStats>,
}

type Scopes = Arc<Mutex<HashMap<Scope, ScopeState>>>;

fn lock(scopes: &Scopes) -> std::sync::MutexGuard<'_, HashMap<Scope, ScopeState>> {
    scopes.lock().unwrap_or_else(|p| p.into_inner())
}

impl Tracker {
    pub fn new(backend: Arc<dyn Backend>, cfg: PollConfig) -> Self {
        Tracker {
            backend,
            cfg,
            scopes: Arc::default(),
            stats: Arc::default(),
        }
    }

    /// Waits until every task has FINISHED (→ the tasks), one has ERROR, or
    /// the deadline passes.
    pub async fn wait(&self, scope: Scope, ids: &[TaskId], deadline: Instant) -> Result<Vec<Task>, WaitError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match self.backend.task_events() {
            Some(registry) => wait_pushed(registry, ids, deadline).await,
            None => self.wait_polled(scope, ids, deadline).await,
        }
    }

    /// How many tasks are being polled now (all scopes).
    pub fn polled(&self) -> usize {
        lock(&self.scopes).values().map(|s| s.tasks.len()).sum()
    }

    async fn wait_polled(&self, scope: Scope, ids: &[TaskId], deadline: Instant) -> Result<Vec<Task>, WaitError> {
        let receivers: Vec<(TaskId, watch::Receiver<Option<Task>>)> = {
            let mut scopes = lock(&self.scopes);
            let start = !scopes.contains_key(&scope);
            let state = scopes.entry(scope).or_default();
            let rx = ids
                .iter()
                .map(|id| {
                    let tx = state.tasks.entry(id.clone()).or_insert_with(|| watch::channel(None).0);
                    (id.clone(), tx.subscribe())
                })
                .collect();
            if start {
                tokio::spawn(poll_scope(
                    self.backend.clone(),
                    self.cfg,
                    self.scopes.clone(),
                    self.stats.clone(),
                    scope,
                ));
            }
            rx
        };
        let mut done = Vec::with_capacity(ids.len());
        for (i, (id, mut rx)) in receivers.into_iter().enumerate() {
            let ended = tokio::time::timeout_at(
                deadline,
                rx.wait_for(|t| t.as_ref().is_some_and(|t| t.state.is_terminal())),
            )
            .await;
            let task = match ended {
                Ok(Ok(t)) => t.clone(),
                // The poller stopped (it cannot while we hold a receiver) or time ran out.
                _ => {
                    let last_error = lock(&self.scopes).get(&scope).and_then(|s| s.last_error.clone());
                    return Err(WaitError::Deadline {
                        pending: ids[i..].to_vec(),
                        last_error,
                    });
                }
            };
            match task {
                Some(t) if t.state == TaskState::Error => {
                    return Err(WaitError::Failed {
                        id,
                        error: t.error.unwrap_or_else(|| "no error message".into()),
                    })
                }
                Some(t) => done.push(t),
                None => unreachable!("wait_for returned a terminal task"),
            }
        }
        Ok(done)
    }
}

async fn wait_pushed(registry: &TaskRegistry, ids: &[TaskId], deadline: Instant) -> Result<Vec<Task>, WaitError> {
    let mut done = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let Some(mut rx) = registry.subscribe(id) else {
            return Err(WaitError::Failed {
                id: id.clone(),
                error: "the backend does not know this task".into(),
            });
        };
        if tokio::time::timeout_at(deadline, rx.wait_for(|s| s.is_terminal()))
            .await
            .is_err()
        {
            return Err(WaitError::Deadline {
                pending: ids[i..].to_vec(),
                last_error: None,
            });
        }
        match registry.get(id) {
            Some(t) if t.state == TaskState::Finished => done.push(t),
            Some(t) => {
                return Err(WaitError::Failed {
                    id: id.clone(),
                    error: t.error.unwrap_or_else(|| "no error message".into()),
                })
            }
            None => {
                return Err(WaitError::Failed {
                    id: id.clone(),
                    error: "the task expired before it was read".into(),
                })
            }
        }
    }
    Ok(done)
}

/// The pause before the next round: the interval (±25 % jitter), doubling
/// after each failed round up to the cap.
fn pause(cfg: &PollConfig, failures: u32) -> Duration {
    let base = if failures == 0 {
        cfg.interval
    } else {
        cfg.interval
            .saturating_mul(1u32 << failures.min(16))
            .min(cfg.max_backoff.max(cfg.interval))
    };
    base.mul_f64(0.75 + fastrand::f64() * 0.5)
}

/// The poll loop of one scope; ends when no waiter is left.
async fn poll_scope(backend: Arc<dyn Backend>, cfg: PollConfig, scopes: Scopes, stats: Arc<PollStats>, scope: Scope) {
    let cx = Cx::new("sgbridge-task-poller");
    let mut failures = 0u32;
    loop {
        tokio::time::sleep(pause(&cfg, failures)).await;
        let (ids, seen) = {
            let mut all = lock(&scopes);
            let Some(state) = all.get_mut(&scope) else { return };
            state.tasks.retain(|_, tx| tx.receiver_count() > 0);
            if state.tasks.is_empty() {
                all.remove(&scope);
                return;
            }
            let seen: Seen = state
                .tasks
                .iter()
                .filter_map(|(id, tx)| tx.borrow().as_ref().map(|t| (id.clone(), t.created_on)))
                .collect();
            (state.tasks.keys().cloned().collect::<Vec<_>>(), seen)
        };
        stats.rounds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let round = tokio::time::timeout(cfg.round_timeout, backend.task_states(&cx, scope, &ids, &seen)).await;
        let mut all = lock(&scopes);
        let Some(state) = all.get_mut(&scope) else { return };
        match round {
            Ok(Ok(tasks)) => {
                failures = 0;
                state.last_error = None;
                for task in tasks {
                    let terminal = task.state.is_terminal();
                    let id = task.id.clone();
                    if let Some(tx) = state.tasks.get(&id) {
                        tx.send_replace(Some(task));
                    }
                    if terminal {
                        state.tasks.remove(&id);
                    }
                }
            }
            Ok(Err(e)) => {
                failures += 1;
                stats.failed_rounds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(%scope, error = %e, "task poll failed; retrying");
                state.last_error = Some(e.message);
            }
            Err(_) => {
                failures += 1;
                stats.failed_rounds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(%scope, "task poll timed out; retrying");
                state.last_error = Some("the task poll timed out".into());
            }
        }
    }
}
