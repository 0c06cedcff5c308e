//! Waiting on Gcore tasks: poll every task of a write until it is FINISHED or
//! ERROR, with a short first delay and doubling intervals up to a cap, and a
//! deadline; and retrying writes refused with 409 ("locked by another task")
//! inside the same deadline. Waiting holds no thread: a waiter is a future
//! asleep on a timer.

use super::{Backend, BackendError, ErrorKind, Result};
use crate::dialect::gcore::wire::{TaskOut, TaskState};
use crate::model::Uuid;
use std::future::Future;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};

/// The polling schedule.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub first: Duration,
    pub max: Duration,
    pub deadline: Instant,
}

impl Schedule {
    pub fn new(first: Duration, max: Duration, within: Duration) -> Self {
        Schedule {
            first,
            max,
            deadline: Instant::now() + within,
        }
    }

    /// The delays: `first`, then doubling, capped at `max`.
    fn delays(&self) -> impl Iterator<Item = Duration> {
        let (first, max) = (self.first, self.max);
        std::iter::successors(Some(first), move |d| Some((*d * 2).min(max)))
    }
}

/// Why waiting ended without every task finished.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WaitError {
    #[error("task {id} failed: {error}")]
    TaskFailed { id: String, error: String },
    #[error("tasks still running at the deadline: {}", .pending.join(", "))]
    Deadline { pending: Vec<String> },
    #[error("{0}")]
    Backend(BackendError),
}

/// Poll every task until all are FINISHED (→ their final bodies), one is
/// ERROR, or the deadline passes.
pub async fn tasks(
    backend: &Backend,
    ids: &[Uuid],
    schedule: Schedule,
) -> std::result::Result<Vec<TaskOut>, WaitError> {
    let mut pending: Vec<Uuid> = ids.to_vec();
    let mut done: Vec<TaskOut> = Vec::with_capacity(ids.len());
    let mut delays = schedule.delays();
    while !pending.is_empty() {
        let next = Instant::now() + delays.next().unwrap_or(schedule.max);
        if next > schedule.deadline {
            return Err(WaitError::Deadline {
                pending: pending.iter().map(ToString::to_string).collect(),
            });
        }
        sleep_until(next).await;
        let mut still = Vec::with_capacity(pending.len());
        for id in pending {
            let task = match backend.task(&id).await {
                Ok(t) => t,
                // A task the backend cannot show yet is still pending; other failures end the wait.
                Err(e) if e.kind == ErrorKind::NotFound => {
                    still.push(id);
                    continue;
                }
                Err(e) => return Err(WaitError::Backend(e)),
            };
            match task.state {
                TaskState::Finished => done.push(task),
                TaskState::Error => {
                    return Err(WaitError::TaskFailed {
                        id: task.id,
                        error: task.error.unwrap_or_else(|| "no error message".into()),
                    })
                }
                TaskState::New | TaskState::Running => still.push(id),
            }
        }
        pending = still;
    }
    Ok(done)
}

/// Run a write, retrying it while the backend answers 409, until the deadline.
pub async fn retry_conflicts<T, F, Fut>(schedule: Schedule, mut write: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut delays = schedule.delays();
    loop {
        match write().await {
            Err(e) if e.kind == ErrorKind::Conflict => {
                let next = Instant::now() + delays.next().unwrap_or(schedule.max);
                if next > schedule.deadline {
                    return Err(e);
                }
                sleep_until(next).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_doubles_to_the_cap() {
        let s = Schedule::new(
            Duration::from_millis(150),
            Duration::from_secs(1),
            Duration::from_secs(60),
        );
        let d: Vec<u128> = s.delays().take(6).map(|d| d.as_millis()).collect();
        assert_eq!(d, [150, 300, 600, 1000, 1000, 1000]);
    }

    #[tokio::test(start_paused = true)]
    async fn conflicts_are_retried_until_success_or_deadline() {
        let s = Schedule::new(
            Duration::from_millis(100),
            Duration::from_millis(400),
            Duration::from_secs(2),
        );
        let mut calls = 0;
        let r: Result<u8> = retry_conflicts(s, || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(BackendError::new(ErrorKind::Conflict, "locked"))
                } else {
                    Ok(7)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        let s = Schedule::new(
            Duration::from_millis(100),
            Duration::from_millis(400),
            Duration::from_secs(1),
        );
        let r: Result<u8> =
            retry_conflicts(s, || async { Err(BackendError::new(ErrorKind::Conflict, "locked")) }).await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::Conflict);
    }
}
