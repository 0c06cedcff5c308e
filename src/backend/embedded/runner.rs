//! The embedded backend's task runner and its faults: a write starts a
//! task (RUNNING for the operation's delay, holding its group), which then
//! applies its change, fails or sticks as a fault says; a durable store
//! saves the start before the caller hears of the task. Each backend call
//! meets the faults armed for its operation first ([`Embedded::meet`]).

use super::faults::{Call, Stage};
use super::state::{release, Op, State};
use super::{locked, not_found, Embedded};
use crate::backend::{BackendError, Cx, ErrorKind, Injected, Result, Write};
use crate::config::faults::{Effect, Operation};
use crate::config::EmbeddedConfig;
use crate::model::{GroupId, Scope, TaskId};
use std::sync::MutexGuard;
use std::time::Duration;

/// How long tasks stay RUNNING.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Timing {
    pub task_delay_ms: u64,
    pub task_delays_ms: std::collections::BTreeMap<Operation, u64>,
}

impl Timing {
    pub(super) fn of(cfg: &EmbeddedConfig) -> Timing {
        Timing {
            task_delay_ms: cfg.task_delay_ms,
            task_delays_ms: cfg.task_delays_ms.clone(),
        }
    }

    pub(super) fn delay(&self, op: Operation) -> Duration {
        Duration::from_millis(self.task_delays_ms.get(&op).copied().unwrap_or(self.task_delay_ms))
    }
}

/// The group a call names, as faults match it by name.
#[derive(Clone, Copy)]
pub(super) enum Target<'a> {
    Named(&'a str),
    Id(&'a GroupId),
    /// A task: faults match it by the scope it runs in.
    Task(&'a TaskId),
    None,
}

/// What a started task does.
pub(super) enum Fate {
    Run,
    Fail(String),
    Stuck,
}

/// The backend call that carries an operation the caller asked for: a
/// Gcore `copy` is a read and a create, and meets its faults at the create.
pub(super) fn carried_by(op: Operation) -> Operation {
    match op {
        Operation::GroupsCopy => Operation::GroupsCreate,
        Operation::GroupsRevert | Operation::RulesReplace => Operation::GroupsUpdate,
        other => other,
    }
}

/// The operation a call of backend method `method` meets faults as: the
/// caller's own (a Gcore caller's request meets them once, at the call
/// that carries it), else the method's (a CF caller's request meets the
/// faults of each call the gateway makes, as it would on Gcore).
pub(super) fn attributed(cx: &Cx, method: Operation) -> Option<Operation> {
    let op = cx.operation.unwrap_or(method);
    (carried_by(op) == method).then_some(op)
}

/// A task registered but not yet let run: it waits for [`Embedded::announce`]
/// (a durable store saves its start first; the caller must not hear of a
/// task a crash could lose).
pub(super) struct Started {
    id: TaskId,
    go: tokio::sync::oneshot::Sender<bool>,
}

impl Embedded {
    /// What a task started by `cx` for `op` does, and how long it runs.
    /// `held_name`: the name of the group a locked op holds (the caller
    /// holds the state's lock).
    pub(super) fn fate(&self, cx: &Cx, scope: Scope, op: &Op, held_name: Option<&str>) -> (Fate, Duration) {
        let method = op.method();
        let attributed = attributed(cx, method);
        let delay = self.timing_now().delay(attributed.unwrap_or(method));
        let Some(operation) = attributed else {
            return (Fate::Run, delay);
        };
        let name = match op {
            Op::Create { name, .. } => Some(name.as_str()),
            _ => held_name,
        };
        let call = Call {
            op: operation,
            scope: Some(scope),
            group_name: name,
        };
        let fate = match self.inner.faults.draw(&call, Stage::Task).effect {
            Some(Effect::TaskError { message }) => Fate::Fail(message),
            Some(Effect::TaskStuck) => Fate::Stuck,
            _ => Fate::Run,
        };
        (fate, delay)
    }

    /// Registers a RUNNING task for `op` (holding its group unless it is a
    /// create); once announced it runs for its delay, then applies its
    /// change, or fails or sticks as a fault says.
    pub(super) fn start(&self, cx: &Cx, scope: Scope, op: Op, held_name: Option<&str>) -> Started {
        let (fate, delay) = self.fate(cx, scope, &op, held_name);
        let task = self.inner.tasks.start(scope, op.kind(), Some(cx.request_id.clone()));
        let this = self.clone();
        let id = task.clone();
        let (go, announced) = tokio::sync::oneshot::channel();
        let mut epoch = self.inner.epoch.subscribe();
        tokio::spawn(async move {
            if announced.await != Ok(true) {
                let target = op.group().clone();
                release(&mut this.state(), scope, &target, &id);
                let outcome = Err("the task's start could not be saved; nothing was applied".to_string());
                this.inner.tasks.finish(&id, outcome);
                return;
            }
            let started = *epoch.borrow_and_update();
            if let Fate::Stuck = fate {
                // Until a reset: it ends the task (and empties the groups).
                let _ = epoch.changed().await;
                return;
            }
            tokio::time::sleep(delay).await;
            if *epoch.borrow() != started {
                return;
            }
            if let Err(e) = this.refresh().await {
                release(&mut this.state(), scope, op.group(), &id);
                this.inner
                    .tasks
                    .finish(&id, Err(format!("{}; nothing was applied", e.message)));
                return;
            }
            let target = vec![op.group().clone()];
            let previous = this.copies(scope, &target);
            let mut outcome = match fate {
                Fate::Fail(message) => {
                    release(&mut this.state(), scope, op.group(), &id);
                    Err(message)
                }
                _ => this.state().apply(scope, &id, op, &this.inner.region_name),
            };
            // A durable change is saved with its task's end before anyone
            // hears of it; a save that fails undoes it.
            if let Some(store) = &this.inner.store {
                let changes = this.snapshot(scope, &target);
                let ending = this.inner.tasks.ending(&id, &outcome);
                match store.commit(&changes, ending.as_slice()).await {
                    Ok(()) => {
                        if let Some(saved) = ending {
                            this.inner.tasks.finish_saved(saved);
                        }
                    }
                    Err(e) => {
                        this.put_back(scope, previous);
                        outcome = Err(format!("the change could not be saved ({e}); nothing was applied"));
                    }
                }
            }
            this.inner.tasks.finish(&id, outcome);
        });
        Started { id: task, go }
    }

    pub(super) fn timing_now(&self) -> MutexGuard<'_, Timing> {
        self.inner.timing.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn name_of(&self, scope: Scope, id: &GroupId) -> Option<String> {
        self.state()
            .groups
            .get(&(scope, id.clone()))
            .map(|e| e.meta.name.clone())
    }

    /// Meets the faults armed for a call of backend method `method`: waits
    /// out a latency, or answers the error a fault injects.
    pub(super) async fn meet(&self, cx: &Cx, method: Operation, scope: Option<Scope>, group: Target<'_>) -> Result<()> {
        if !self.inner.faults.armed() {
            return Ok(());
        }
        let Some(op) = attributed(cx, method) else {
            return Ok(());
        };
        // Looked up only once a fault is armed: a task read on the hot
        // path does not copy its task to learn a scope no fault asks for.
        let scope = match group {
            Target::Task(id) => self.inner.tasks.get(id).map(|t| t.scope),
            _ => scope,
        };
        let name = match group {
            Target::Named(n) => Some(n.to_string()),
            Target::Id(id) => scope.and_then(|s| self.name_of(s, id)),
            Target::Task(_) | Target::None => None,
        };
        let call = Call {
            op,
            scope,
            group_name: name.as_deref(),
        };
        let drawn = self.inner.faults.draw(&call, Stage::Answer);
        if drawn.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(drawn.delay_ms)).await;
        }
        match drawn.effect {
            Some(Effect::HttpError {
                status,
                message,
                retry_after_s,
            }) => Err(BackendError {
                status: Some(status),
                injected: Some(Injected::Answer { retry_after_s }),
                ..BackendError::new(ErrorKind::of_status(status), message)
            }),
            Some(Effect::Locked) => Err(match group {
                Target::Id(id) => locked(id),
                _ => BackendError::new(
                    ErrorKind::Conflict,
                    "Resource is already locked by another task. Please try again later.",
                ),
            }),
            Some(Effect::Reset) => {
                let e = BackendError {
                    injected: Some(Injected::Reset),
                    ..BackendError::new(ErrorKind::Unavailable, "the connection was reset (an emulator fault)")
                };
                // A caller behind a gateway cannot tell whether a write
                // whose connection broke was applied, as with a real API.
                Err(if op.starts_tasks() || op == Operation::GroupsDelete {
                    e.uncertain()
                } else {
                    e
                })
            }
            _ => Ok(()),
        }
    }

    /// Lets a started task run and answers it, once a durable store holds
    /// its start; if the store refuses, the task ends in ERROR having done
    /// nothing, and the caller hears that nothing changed.
    pub(super) async fn announce(&self, started: Started) -> Result<Write> {
        if let Some(log) = &self.inner.task_log {
            let task = self.inner.tasks.get(&started.id).into_iter().collect::<Vec<_>>();
            if let Err(e) = log.save_now("embedded", &task).await {
                let _ = started.go.send(false);
                return Err(BackendError::new(
                    ErrorKind::Unavailable,
                    format!("{e}; nothing was changed"),
                ));
            }
        }
        let _ = started.go.send(true);
        Ok(Write::Pending(vec![started.id]))
    }

    /// Lock the group for `op`'s task and start it.
    pub(super) fn start_locked(&self, cx: &Cx, scope: Scope, state: &mut State, op: Op) -> Result<Started> {
        let entry = state
            .groups
            .get_mut(&(scope, op.group().clone()))
            .ok_or_else(not_found)?;
        if entry.locked_by.is_some() {
            return Err(locked(op.group()));
        }
        let task = self.start(cx, scope, op, Some(&entry.meta.name));
        entry.locked_by = Some(task.id.clone());
        Ok(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gcore(op: Operation) -> Cx {
        Cx {
            operation: Some(op),
            ..Cx::default()
        }
    }

    #[test]
    fn a_gcore_request_meets_its_faults_once_at_the_call_that_carries_it() {
        let copy = gcore(Operation::GroupsCopy);
        assert_eq!(attributed(&copy, Operation::GroupsGet), None, "the copy's read");
        assert_eq!(attributed(&copy, Operation::GroupsCreate), Some(Operation::GroupsCopy));
        let patch = gcore(Operation::GroupsUpdate);
        assert_eq!(attributed(&patch, Operation::GroupsGet), None);
        assert_eq!(attributed(&patch, Operation::TasksGet), None, "the gateway's own polls");
        assert_eq!(
            attributed(&patch, Operation::GroupsUpdate),
            Some(Operation::GroupsUpdate)
        );
    }

    #[test]
    fn a_cf_request_meets_the_faults_of_each_backend_call() {
        let cf = Cx::default();
        for op in [Operation::GroupsGet, Operation::GroupsUpdate, Operation::TasksGet] {
            assert_eq!(attributed(&cf, op), Some(op));
        }
    }
}
