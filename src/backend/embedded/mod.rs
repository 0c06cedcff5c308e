//! The embedded backend: security groups in process, with Gcore's semantics.
//!
//! Writes are checked at once (404, 409 while a task holds the group, the
//! port-25 block, the rule cap) and answer task ids; each task stays RUNNING
//! for the configured delay, then applies its whole change (rules, name,
//! description and tags together) and turns FINISHED, or applies nothing and
//! turns ERROR. PATCH `rules` replaces the set (unchanged rules keep their
//! ids); a PATCH that changes nothing answers no task; a tags-only PATCH
//! applies at once; tags follow JSON Merge Patch. Deleting a group also
//! deletes the rules of other groups that name it as `remote_group_id`, as
//! Neutron's foreign key does. Tasks live in a [`TaskRegistry`] (pending ones
//! are never evicted) that wakes waiters when they end.
//!
//! Groups live in memory; with a durable store ([`Embedded::durable`]) each
//! change is saved with its task's end, and restored at start. On a shared
//! store (replicas on PostgreSQL) every operation first takes in what other
//! replicas changed ([`GroupLog::changes`]), and tasks other replicas run are
//! read from the store, so any replica serves any group and any task; the
//! gateway's write locks (shared too) keep two replicas off one group.

mod emulator;
mod faults;

pub use faults::FaultView;

use super::{Backend, BackendError, Cx, ErrorKind, Injected, Result, Write};
use crate::config::faults::{Effect, Operation};
use crate::config::EmbeddedConfig;
use crate::dialect::gcore::body::valid_patch_name;
use crate::dialect::gcore::rule::{opens_smtp, SMTP_BLOCKED};
use crate::dialect::gcore::template::default_rules;
use crate::model::{
    Atom, AtomDest, AtomicContent, Content, Created, Group, GroupId, GroupMeta, GroupPatch, GroupRule, NewContent,
    NewGroup, PatchContent, Scope, Shape, Tag, TagPatch, Task, TaskId, TaskKind, TaskQuery, Uuid,
};
use crate::store::{GroupChange, GroupLog, StoreError, TaskLog};
use crate::tasks::TaskRegistry;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use faults::{Call, Faults, Stage};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Clone)]
pub struct Embedded {
    inner: Arc<Inner>,
}

struct Inner {
    /// Task delays: the default, and by operation.
    timing: Mutex<Timing>,
    /// The config's emulator settings (what a reset goes back to).
    cfg: EmbeddedConfig,
    faults: Faults,
    /// Bumped by a reset: tasks started before it neither apply nor stay stuck.
    epoch: tokio::sync::watch::Sender<u64>,
    region_name: String,
    smtp_blocked: bool,
    max_rules: usize,
    state: Mutex<State>,
    tasks: TaskRegistry,
    /// Where groups are kept beyond this process (a durable store).
    store: Option<Arc<dyn GroupLog>>,
    /// Where task starts are saved before they are answered (same store).
    task_log: Option<Arc<dyn TaskLog>>,
}

/// How long tasks stay RUNNING.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Timing {
    pub task_delay_ms: u64,
    pub task_delays_ms: std::collections::BTreeMap<Operation, u64>,
}

impl Timing {
    fn of(cfg: &EmbeddedConfig) -> Timing {
        Timing {
            task_delay_ms: cfg.task_delay_ms,
            task_delays_ms: cfg.task_delays_ms.clone(),
        }
    }

    fn delay(&self, op: Operation) -> Duration {
        Duration::from_millis(self.task_delays_ms.get(&op).copied().unwrap_or(self.task_delay_ms))
    }
}

/// The group a call names, as faults match it by name.
#[derive(Clone, Copy)]
enum Target<'a> {
    Named(&'a str),
    Id(&'a GroupId),
    None,
}

/// What a started task does.
enum Fate {
    Run,
    Fail(String),
    Stuck,
}

/// The backend call that carries an operation the caller asked for: a
/// Gcore `copy` is a read and a create, and meets its faults at the create.
fn carried_by(op: Operation) -> Operation {
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
fn attributed(cx: &Cx, method: Operation) -> Option<Operation> {
    let op = cx.operation.unwrap_or(method);
    (carried_by(op) == method).then_some(op)
}

/// A task registered but not yet let run: it waits for [`Embedded::announce`]
/// (a durable store saves its start first; the caller must not hear of a
/// task a crash could lose).
struct Started {
    id: TaskId,
    go: tokio::sync::oneshot::Sender<bool>,
}

#[derive(Default)]
struct State {
    groups: HashMap<(Scope, GroupId), Entry>,
    seq: u64,
    /// How far this process has read the shared store's changes.
    cursor: i64,
    /// Groups known deleted (a shared store): a read that began before the
    /// delete must not bring one back.
    gone: HashSet<(Scope, GroupId)>,
}

#[derive(Clone)]
struct Entry {
    meta: GroupMeta,
    content: Arc<AtomicContent>,
    seq: u64,
    /// The task holding the group, if any.
    locked_by: Option<TaskId>,
}

impl Entry {
    /// The content to change (copied first if a reader still holds it).
    fn content_mut(&mut self) -> &mut AtomicContent {
        Arc::make_mut(&mut self.content)
    }

    fn group(&self) -> Group {
        Group {
            meta: self.meta.clone(),
            content: Content::Atomic(self.content.clone()),
        }
    }
}

/// What a PATCH amounts to.
enum Change {
    /// A task that applies it.
    Task(Started),
    /// Nothing (Gcore answers no task).
    None,
    /// A tags-only change, applied at once; the entries as they were.
    Now(Vec<(GroupId, Option<Entry>)>),
}

/// A change a task applies when it completes.
enum Op {
    Create {
        id: GroupId,
        name: String,
        description: String,
        rules: Vec<Atom>,
        tags: Vec<(String, String)>,
    },
    Update {
        id: GroupId,
        name: Option<String>,
        description: Option<String>,
        rules: Option<Vec<Atom>>,
        tags: TagPatch,
    },
    AddRule {
        id: GroupId,
        rule_id: Uuid,
        atom: Atom,
    },
    DeleteRule {
        id: GroupId,
        rule_id: Uuid,
    },
}

impl Op {
    fn kind(&self) -> TaskKind {
        match self {
            Op::Create { .. } => TaskKind::CreateGroup,
            Op::Update { .. } => TaskKind::UpdateGroup,
            Op::AddRule { .. } => TaskKind::CreateRule,
            Op::DeleteRule { .. } => TaskKind::DeleteRule,
        }
    }

    /// The backend method (as an operation) that starts this task.
    fn method(&self) -> Operation {
        match self {
            Op::Create { .. } => Operation::GroupsCreate,
            Op::Update { .. } => Operation::GroupsUpdate,
            Op::AddRule { .. } => Operation::RulesCreate,
            Op::DeleteRule { .. } => Operation::RulesDelete,
        }
    }

    fn group(&self) -> &GroupId {
        match self {
            Op::Create { id, .. } | Op::Update { id, .. } | Op::AddRule { id, .. } | Op::DeleteRule { id, .. } => id,
        }
    }

    fn atoms(&self) -> Vec<&Atom> {
        match self {
            Op::Create { rules, .. } => rules.iter().collect(),
            Op::Update { rules, .. } => rules.iter().flatten().collect(),
            Op::AddRule { atom, .. } => vec![atom],
            Op::DeleteRule { .. } => Vec::new(),
        }
    }
}

fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

fn not_found() -> BackendError {
    BackendError::not_found("Security group not found")
}

fn locked(id: &GroupId) -> BackendError {
    BackendError::new(
        ErrorKind::Conflict,
        format!("Resource `{id}` is already locked by another task. Please try again later."),
    )
}

fn wrong_shape() -> BackendError {
    BackendError::new(
        ErrorKind::Unsupported,
        "the embedded backend stores groups in Gcore's (atomic) shape",
    )
}

/// Atoms as stored: `log` is not a Gcore rule field; duplicates collapse.
fn stored(atoms: Vec<Atom>) -> Vec<Atom> {
    let mut seen = HashSet::new();
    atoms
        .into_iter()
        .map(|a| Atom { log: false, ..a })
        .filter(|a| seen.insert(a.clone()))
        .collect()
}

fn new_rule(atom: Atom, at: DateTime<Utc>) -> GroupRule {
    GroupRule {
        id: Uuid::new_random(),
        atom,
        revision: 0,
        created_at: at,
        updated_at: at,
    }
}

impl Embedded {
    pub fn new(cfg: &EmbeddedConfig, smtp_blocked: bool, max_rules: usize) -> Self {
        Self::build(cfg, smtp_blocked, max_rules, None)
    }

    /// An embedded backend whose groups and tasks are kept in a durable
    /// store; call [`restore`](Self::restore) before serving.
    pub fn durable(
        cfg: &EmbeddedConfig,
        smtp_blocked: bool,
        max_rules: usize,
        groups: Arc<dyn GroupLog>,
        tasks: Arc<dyn TaskLog>,
    ) -> Self {
        Self::build(cfg, smtp_blocked, max_rules, Some((groups, tasks)))
    }

    fn build(
        cfg: &EmbeddedConfig,
        smtp_blocked: bool,
        max_rules: usize,
        store: Option<(Arc<dyn GroupLog>, Arc<dyn TaskLog>)>,
    ) -> Self {
        let mut tasks = TaskRegistry::new(Duration::from_secs(cfg.task_ttl_s));
        if let Some((_, log)) = &store {
            tasks = tasks.with_log(log.clone(), "embedded");
        }
        let faults = Faults::new(cfg.seed, cfg.faults.clone());
        if !cfg.faults.is_empty() {
            tracing::info!(
                faults = cfg.faults.len(),
                seed = faults.seed(),
                "emulator faults armed (set backend.embedded.seed to this seed to replay a run)"
            );
        }
        Embedded {
            inner: Arc::new(Inner {
                timing: Mutex::new(Timing::of(cfg)),
                cfg: cfg.clone(),
                faults,
                epoch: tokio::sync::watch::Sender::new(0),
                region_name: cfg.region_name.clone(),
                smtp_blocked,
                max_rules,
                state: Mutex::new(State::default()),
                tasks,
                task_log: store.as_ref().map(|(_, log)| log.clone()),
                store: store.map(|(groups, _)| groups),
            }),
        }
    }

    /// The store, if other processes share its groups.
    fn shared(&self) -> Option<&Arc<dyn GroupLog>> {
        self.inner.store.as_ref().filter(|s| s.shared())
    }

    /// Takes in what other replicas changed since the last look (a shared
    /// store; nothing to do otherwise). A group is replaced only by a later
    /// revision, so a look that began before a local change cannot undo it.
    async fn refresh(&self) -> Result<()> {
        let Some(store) = self.shared() else {
            return Ok(());
        };
        let since = self.state().cursor;
        let changes = store
            .changes(since)
            .await
            .map_err(|e| BackendError::new(ErrorKind::Unavailable, e.to_string()))?;
        let mut state = self.state();
        for (scope, id) in changes.gone {
            state.groups.remove(&(scope, id.clone()));
            state.gone.insert((scope, id));
        }
        for (scope, seq, group) in changes.put {
            let Content::Atomic(content) = group.content else {
                continue;
            };
            let key = (scope, group.meta.id.clone());
            if state.gone.contains(&key) {
                continue;
            }
            state.seq = state.seq.max(seq);
            match state.groups.get_mut(&key) {
                Some(e) if e.meta.revision >= group.meta.revision => {}
                Some(e) => {
                    e.meta = group.meta;
                    e.content = content;
                }
                None => {
                    let entry = Entry {
                        meta: group.meta,
                        content,
                        seq,
                        locked_by: None,
                    };
                    state.groups.insert(key, entry);
                }
            }
        }
        state.cursor = state.cursor.max(changes.cursor);
        Ok(())
    }

    /// A task, here or (a shared store) wherever it runs.
    async fn find_task(&self, id: &TaskId) -> Result<Option<Task>> {
        if let Some(t) = self.inner.tasks.get(id) {
            return Ok(Some(t));
        }
        match (self.shared(), &self.inner.task_log) {
            (Some(_), Some(log)) => log
                .load("embedded", id)
                .await
                .map_err(|e| BackendError::new(ErrorKind::Unavailable, e.to_string())),
            _ => Ok(None),
        }
    }

    /// Every task of every replica (a shared store), fresher local states first.
    async fn all_tasks(&self, log: &Arc<dyn TaskLog>) -> Result<Vec<Task>> {
        let stored = log
            .load_all("embedded")
            .await
            .map_err(|e| BackendError::new(ErrorKind::Unavailable, e.to_string()))?;
        Ok(stored
            .into_iter()
            .map(|t| self.inner.tasks.get(&t.id).unwrap_or(t))
            .collect())
    }

    /// Takes back what the store kept: every group, and the tasks (one that
    /// was still running when the process stopped ends in ERROR: nothing of
    /// it was applied, since a change is saved only with its task's end).
    /// On a shared store the groups are read as changes, and tasks stay in
    /// the store (a replica that stops has its tasks ended by another).
    pub async fn restore(&self, tasks: &dyn TaskLog) -> std::result::Result<(), StoreError> {
        let Some(store) = &self.inner.store else {
            return Ok(());
        };
        if store.shared() {
            return self.refresh().await.map_err(|e| StoreError(e.message));
        }
        let groups = store.load().await?;
        let kept = tasks.load_all("embedded").await?;
        let interrupted = self.inner.tasks.restore(kept);
        {
            let mut state = self.state();
            for (scope, seq, group) in groups {
                let Content::Atomic(content) = group.content else {
                    continue;
                };
                state.seq = state.seq.max(seq);
                let entry = Entry {
                    meta: group.meta,
                    content,
                    seq,
                    locked_by: None,
                };
                state.groups.insert((scope, entry.meta.id.clone()), entry);
            }
        }
        if !interrupted.is_empty() {
            tracing::warn!(
                count = interrupted.len(),
                "tasks interrupted by the restart end in ERROR"
            );
        }
        store.commit(&[], &interrupted).await
    }

    /// The stored form of groups `ids` of `scope` as they are now.
    fn snapshot(&self, scope: Scope, ids: &[GroupId]) -> Vec<GroupChange> {
        let state = self.state();
        ids.iter()
            .map(|id| match state.groups.get(&(scope, id.clone())) {
                Some(e) => GroupChange::Put {
                    scope,
                    seq: e.seq,
                    group: e.group(),
                },
                None => GroupChange::Gone { scope, id: id.clone() },
            })
            .collect()
    }

    /// Puts entries back as they were before a change the store refused.
    fn put_back(&self, scope: Scope, previous: Vec<(GroupId, Option<Entry>)>) {
        let mut state = self.state();
        for (id, entry) in previous {
            match entry {
                Some(mut e) => {
                    e.locked_by = None;
                    state.groups.insert((scope, id), e);
                }
                None => {
                    state.groups.remove(&(scope, id));
                }
            }
        }
    }

    fn copies(&self, scope: Scope, ids: &[GroupId]) -> Vec<(GroupId, Option<Entry>)> {
        let state = self.state();
        ids.iter()
            .map(|id| (id.clone(), state.groups.get(&(scope, id.clone())).cloned()))
            .collect()
    }

    /// Removes a group, and (Neutron's cascade) the rules of other groups
    /// that name it; answers the entries as they were.
    fn remove(&self, scope: Scope, id: &GroupId) -> Result<Vec<(GroupId, Option<Entry>)>> {
        let mut state = self.state();
        let key = (scope, id.clone());
        match state.groups.get(&key) {
            None => return Err(not_found()),
            Some(e) if e.locked_by.is_some() => return Err(locked(id)),
            Some(_) => {}
        }
        let mut previous = vec![(id.clone(), state.groups.remove(&key))];
        let at = now();
        let names_it = |r: &GroupRule| matches!(&r.atom.dest, AtomDest::Group(g, _) if g == id);
        for ((_, other), entry) in state.groups.iter_mut().filter(|((s, _), _)| *s == scope) {
            if entry.content.rules.iter().any(names_it) {
                previous.push((other.clone(), Some(entry.clone())));
                entry.content_mut().rules.retain(|r| !names_it(r));
                entry.meta.revision += 1;
                entry.meta.updated_at = at;
            }
        }
        Ok(previous)
    }

    /// Saves the groups a synchronous change touched, or undoes the change.
    async fn save_or_undo(&self, scope: Scope, previous: Vec<(GroupId, Option<Entry>)>) -> Result<()> {
        let Some(store) = &self.inner.store else {
            return Ok(());
        };
        let ids: Vec<GroupId> = previous.iter().map(|(id, _)| id.clone()).collect();
        let changes = self.snapshot(scope, &ids);
        if let Err(e) = store.commit(&changes, &[]).await {
            self.put_back(scope, previous);
            return Err(BackendError::new(
                ErrorKind::Unavailable,
                format!("{e}; nothing was changed"),
            ));
        }
        Ok(())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change is computed first, then stored in one step, so a panic
        // while holding the lock cannot leave a half-applied change.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_rules(&self, atoms: &[Atom]) -> Result<()> {
        if atoms.len() > self.inner.max_rules {
            return Err(BackendError::new(
                ErrorKind::Invalid,
                format!(
                    "rules: a security group holds at most {} rules, {} given",
                    self.inner.max_rules,
                    atoms.len()
                ),
            ));
        }
        if self.inner.smtp_blocked && atoms.iter().any(opens_smtp) {
            return Err(BackendError::new(ErrorKind::Invalid, SMTP_BLOCKED));
        }
        Ok(())
    }

    /// What a task started by `cx` for `op` does, and how long it runs.
    /// `held_name`: the name of the group a locked op holds (the caller
    /// holds the state's lock).
    fn fate(&self, cx: &Cx, scope: Scope, op: &Op, held_name: Option<&str>) -> (Fate, Duration) {
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
    fn start(&self, cx: &Cx, scope: Scope, op: Op, held_name: Option<&str>) -> Started {
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
                _ => this.apply(scope, &id, op),
            };
            // A durable change is saved with its task's end before anyone
            // hears of it; a save that fails undoes it.
            if let Some(store) = &this.inner.store {
                let changes = this.snapshot(scope, &target);
                let ending = this.inner.tasks.ending(&id, &outcome);
                if let Err(e) = store.commit(&changes, ending.as_slice()).await {
                    this.put_back(scope, previous);
                    outcome = Err(format!("the change could not be saved ({e}); nothing was applied"));
                }
            }
            this.inner.tasks.finish(&id, outcome);
        });
        Started { id: task, go }
    }

    fn timing_now(&self) -> MutexGuard<'_, Timing> {
        self.inner.timing.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn name_of(&self, scope: Scope, id: &GroupId) -> Option<String> {
        self.state()
            .groups
            .get(&(scope, id.clone()))
            .map(|e| e.meta.name.clone())
    }

    /// Meets the faults armed for a call of backend method `method`: waits
    /// out a latency, or answers the error a fault injects.
    async fn meet(&self, cx: &Cx, method: Operation, scope: Option<Scope>, group: Target<'_>) -> Result<()> {
        if !self.inner.faults.armed() {
            return Ok(());
        }
        let Some(op) = attributed(cx, method) else {
            return Ok(());
        };
        let name = match group {
            Target::Named(n) => Some(n.to_string()),
            Target::Id(id) => scope.and_then(|s| self.name_of(s, id)),
            Target::None => None,
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
    async fn announce(&self, started: Started) -> Result<Write> {
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
    fn start_locked(&self, cx: &Cx, scope: Scope, state: &mut State, op: Op) -> Result<Started> {
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

    fn apply(&self, scope: Scope, task: &TaskId, op: Op) -> std::result::Result<Created, String> {
        let mut state = self.state();
        let at = now();
        let target = op.group().clone();
        // Like Neutron, a remote group must exist when the rule is applied; the
        // task fails (ERROR) otherwise and the group is left as it was.
        if let Some(missing) = missing_remote_group(&state, scope, &target, &op.atoms()) {
            release(&mut state, scope, &target, task);
            return Err(format!(
                "Security group {missing} referenced by remote_group_id could not be found"
            ));
        }
        match op {
            Op::Create {
                id,
                name,
                description,
                rules,
                tags,
            } => {
                state.seq += 1;
                let seq = state.seq;
                let content = Arc::new(AtomicContent {
                    rules: rules.into_iter().map(|a| new_rule(a, at)).collect(),
                    tags: tags.into_iter().map(|(k, v)| Tag::writable(k, v)).collect(),
                });
                let meta = GroupMeta {
                    id: id.clone(),
                    name,
                    description,
                    region: self.inner.region_name.clone(),
                    revision: 2,
                    created_at: at,
                    updated_at: at,
                };
                state.groups.insert(
                    (scope, id.clone()),
                    Entry {
                        meta,
                        content,
                        seq,
                        locked_by: None,
                    },
                );
                Ok(Created {
                    groups: vec![id],
                    rules: Vec::new(),
                })
            }
            Op::Update {
                id,
                name,
                description,
                rules,
                tags,
            } => {
                let entry = held(&mut state, scope, &id, task)?;
                if let Some(name) = name {
                    entry.meta.name = name;
                }
                if let Some(d) = description {
                    entry.meta.description = d;
                }
                if let Some(atoms) = rules {
                    let mut old: HashMap<Atom, GroupRule> = entry
                        .content_mut()
                        .rules
                        .drain(..)
                        .map(|r| (r.atom.clone(), r))
                        .collect();
                    entry.content_mut().rules = atoms
                        .into_iter()
                        .map(|a| old.remove(&a).unwrap_or_else(|| new_rule(a, at)))
                        .collect();
                }
                entry.content_mut().tags = tags.apply(&entry.content.tags);
                touch(entry, at);
                Ok(Created {
                    groups: vec![id],
                    rules: Vec::new(),
                })
            }
            Op::AddRule { id, rule_id, atom } => {
                let entry = held(&mut state, scope, &id, task)?;
                let mut rule = new_rule(atom, at);
                rule.id = rule_id.clone();
                entry.content_mut().rules.push(rule);
                touch(entry, at);
                Ok(Created {
                    groups: Vec::new(),
                    rules: vec![rule_id],
                })
            }
            Op::DeleteRule { id, rule_id } => {
                let entry = held(&mut state, scope, &id, task)?;
                entry.content_mut().rules.retain(|r| r.id != rule_id);
                touch(entry, at);
                Ok(Created::default())
            }
        }
    }
}

fn touch(entry: &mut Entry, at: DateTime<Utc>) {
    entry.meta.revision += 1;
    entry.meta.updated_at = at;
    entry.locked_by = None;
}

/// Releases the group `task` holds, if it still holds it.
fn release(state: &mut State, scope: Scope, id: &GroupId, task: &TaskId) {
    if let Some(e) = state.groups.get_mut(&(scope, id.clone())) {
        if e.locked_by.as_ref() == Some(task) {
            e.locked_by = None;
        }
    }
}

/// The entry a task holds; an error if it was deleted meanwhile.
fn held<'a>(
    state: &'a mut State,
    scope: Scope,
    id: &GroupId,
    task: &TaskId,
) -> std::result::Result<&'a mut Entry, String> {
    match state.groups.get_mut(&(scope, id.clone())) {
        Some(e) if e.locked_by.as_ref() == Some(task) => Ok(e),
        _ => Err(format!("Security group {id} not found")),
    }
}

/// A remote group named by `atoms` that does not exist in the scope (a group
/// may name itself).
fn missing_remote_group(state: &State, scope: Scope, own: &GroupId, atoms: &[&Atom]) -> Option<GroupId> {
    atoms.iter().find_map(|a| match &a.dest {
        AtomDest::Group(id, _) if id != own && !state.groups.contains_key(&(scope, id.clone())) => Some(id.clone()),
        _ => None,
    })
}

#[async_trait]
impl Backend for Embedded {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn shape(&self) -> Shape {
        Shape::Atomic
    }

    async fn list(&self, cx: &Cx, scope: Scope, name: Option<&str>) -> Result<Vec<Group>> {
        let target = name.map_or(Target::None, Target::Named);
        self.meet(cx, Operation::GroupsList, Some(scope), target).await?;
        self.refresh().await?;
        let state = self.state();
        let mut found: Vec<&Entry> = state
            .groups
            .iter()
            .filter(|((s, _), e)| *s == scope && name.is_none_or(|n| e.meta.name == n))
            .map(|(_, e)| e)
            .collect();
        // Replicas number their creates alike: ties go by creation, then id.
        found.sort_by(|a, b| (a.seq, a.meta.created_at, &a.meta.id).cmp(&(b.seq, b.meta.created_at, &b.meta.id)));
        Ok(found.into_iter().map(Entry::group).collect())
    }

    async fn get(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<Group> {
        self.meet(cx, Operation::GroupsGet, Some(scope), Target::Id(id)).await?;
        self.refresh().await?;
        let state = self.state();
        state
            .groups
            .get(&(scope, id.clone()))
            .map(Entry::group)
            .ok_or_else(not_found)
    }

    async fn create(&self, cx: &Cx, scope: Scope, group: NewGroup) -> Result<Write> {
        let NewContent::Atomic { rules, tags } = group.content else {
            return Err(wrong_shape());
        };
        let target = Target::Named(&group.name);
        self.meet(cx, Operation::GroupsCreate, Some(scope), target).await?;
        let rules = stored(rules.unwrap_or_else(default_rules));
        self.check_rules(&rules)?;
        self.refresh().await?;
        let op = Op::Create {
            id: Uuid::new_random(),
            name: group.name,
            description: group.description.unwrap_or_default(),
            rules,
            tags,
        };
        let started = self.start(cx, scope, op, None);
        self.announce(started).await
    }

    async fn update(&self, cx: &Cx, scope: Scope, id: &GroupId, patch: GroupPatch) -> Result<Write> {
        let PatchContent::Atomic { rules, tags } = patch.content else {
            return Err(wrong_shape());
        };
        self.meet(cx, Operation::GroupsUpdate, Some(scope), Target::Id(id))
            .await?;
        if patch.name.as_deref().is_some_and(|n| !valid_patch_name(n)) {
            // Gcore's PATCH pattern, enforced here too so CF renames fail alike on both backends.
            return Err(BackendError::new(
                ErrorKind::Invalid,
                "name: String does not match expected pattern.",
            ));
        }
        let rules = rules.map(stored);
        if let Some(r) = &rules {
            self.check_rules(r)?;
        }
        self.refresh().await?;
        let change = {
            let mut state = self.state();
            let entry = state.groups.get_mut(&(scope, id.clone())).ok_or_else(not_found)?;
            if entry.locked_by.is_some() {
                return Err(locked(id));
            }
            let name = patch.name.filter(|n| *n != entry.meta.name);
            let description = patch.description.filter(|d| *d != entry.meta.description);
            let current: HashSet<&Atom> = entry.content.rules.iter().map(|r| &r.atom).collect();
            let rules = rules.filter(|r| r.len() != current.len() || !r.iter().all(|a| current.contains(a)));
            let tags_changed = tags.apply(&entry.content.tags) != entry.content.tags;
            if name.is_some() || description.is_some() || rules.is_some() {
                let op = Op::Update {
                    id: id.clone(),
                    name,
                    description,
                    rules,
                    tags,
                };
                Change::Task(self.start_locked(cx, scope, &mut state, op)?)
            } else if !tags_changed {
                // Gcore creates no task for a PATCH that changes nothing, or only tags.
                Change::None
            } else {
                let previous = vec![(id.clone(), Some(entry.clone()))];
                entry.content_mut().tags = tags.apply(&entry.content.tags);
                entry.meta.revision += 1;
                entry.meta.updated_at = now();
                Change::Now(previous)
            }
        };
        match change {
            Change::Task(started) => self.announce(started).await,
            Change::None => Ok(Write::Pending(Vec::new())),
            Change::Now(previous) => {
                self.save_or_undo(scope, previous).await?;
                Ok(Write::Pending(Vec::new()))
            }
        }
    }

    async fn add_rule(&self, cx: &Cx, scope: Scope, id: &GroupId, atom: Atom) -> Result<Write> {
        self.meet(cx, Operation::RulesCreate, Some(scope), Target::Id(id))
            .await?;
        let atom = Atom { log: false, ..atom };
        self.check_rules(std::slice::from_ref(&atom))?;
        self.refresh().await?;
        let started = {
            let mut state = self.state();
            let entry = state.groups.get(&(scope, id.clone())).ok_or_else(not_found)?;
            if entry.locked_by.is_some() {
                return Err(locked(id));
            }
            if let Some(existing) = entry.content.rules.iter().find(|r| r.atom == atom) {
                return Err(BackendError::new(
                    ErrorKind::Conflict,
                    format!("Security group rule already exists. Rule id is {}.", existing.id),
                ));
            }
            if entry.content.rules.len() >= self.inner.max_rules {
                return Err(BackendError::new(
                    ErrorKind::Invalid,
                    format!("rules: a security group holds at most {} rules", self.inner.max_rules),
                ));
            }
            let op = Op::AddRule {
                id: id.clone(),
                rule_id: Uuid::new_random(),
                atom,
            };
            self.start_locked(cx, scope, &mut state, op)?
        };
        self.announce(started).await
    }

    async fn delete_rule(&self, cx: &Cx, scope: Scope, id: &GroupId, rule_id: &Uuid) -> Result<Write> {
        self.meet(cx, Operation::RulesDelete, Some(scope), Target::Id(id))
            .await?;
        self.refresh().await?;
        let started = {
            let mut state = self.state();
            let entry = state.groups.get(&(scope, id.clone())).ok_or_else(not_found)?;
            if !entry.content.rules.iter().any(|r| &r.id == rule_id) {
                return Err(BackendError::not_found("Security group rule not found"));
            }
            let op = Op::DeleteRule {
                id: id.clone(),
                rule_id: rule_id.clone(),
            };
            self.start_locked(cx, scope, &mut state, op)?
        };
        self.announce(started).await
    }

    async fn delete(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<()> {
        self.meet(cx, Operation::GroupsDelete, Some(scope), Target::Id(id))
            .await?;
        self.refresh().await?;
        let previous = self.remove(scope, id)?;
        self.save_or_undo(scope, previous).await?;
        if self.shared().is_some() {
            self.state().gone.insert((scope, id.clone()));
        }
        Ok(())
    }

    async fn task(&self, cx: &Cx, id: &TaskId) -> Result<Task> {
        let scope = self.inner.tasks.get(id).map(|t| t.scope);
        self.meet(cx, Operation::TasksGet, scope, Target::None).await?;
        self.find_task(id)
            .await?
            .ok_or_else(|| BackendError::not_found(format!("Task {id} not found")))
    }

    async fn tasks(&self, cx: &Cx, query: &TaskQuery) -> Result<(usize, Vec<Task>)> {
        let scope = match (query.project_ids.as_slice(), query.region_ids.as_slice()) {
            ([project_id], [region_id]) => Some(Scope {
                project_id: *project_id,
                region_id: *region_id,
            }),
            _ => None,
        };
        self.meet(cx, Operation::TasksList, scope, Target::None).await?;
        match (self.shared(), &self.inner.task_log) {
            (Some(_), Some(log)) => Ok(crate::tasks::page(self.all_tasks(log).await?, query)),
            _ => Ok(self.inner.tasks.query(query)),
        }
    }

    async fn acknowledge(&self, cx: &Cx, id: &TaskId) -> Result<Task> {
        let scope = self.inner.tasks.get(id).map(|t| t.scope);
        self.meet(cx, Operation::TasksAcknowledgeOne, scope, Target::None)
            .await?;
        if let Some(t) = self.inner.tasks.acknowledge(id, 0) {
            return Ok(t);
        }
        let not_found = || BackendError::not_found(format!("Task {id} not found"));
        let (Some(mut task), Some(log)) = (self.find_task(id).await?, &self.inner.task_log) else {
            return Err(not_found());
        };
        if crate::tasks::acknowledge(&mut task, 0) {
            log.save_now("embedded", std::slice::from_ref(&task))
                .await
                .map_err(|e| BackendError::new(ErrorKind::Unavailable, e.to_string()))?;
        }
        Ok(task)
    }

    async fn acknowledge_all(&self, cx: &Cx, project_id: Option<u64>, region_id: Option<u64>) -> Result<()> {
        let scope = project_id
            .zip(region_id)
            .map(|(project_id, region_id)| Scope { project_id, region_id });
        self.meet(cx, Operation::TasksAcknowledgeAll, scope, Target::None)
            .await?;
        self.inner.tasks.acknowledge_all(project_id, region_id, 0);
        if let (Some(_), Some(log)) = (self.shared(), &self.inner.task_log) {
            let mut others = self.all_tasks(log).await?;
            others.retain_mut(|t| {
                project_id.is_none_or(|p| p == t.scope.project_id)
                    && region_id.is_none_or(|r| r == t.scope.region_id)
                    && crate::tasks::acknowledge(t, 0)
            });
            log.save_now("embedded", &others)
                .await
                .map_err(|e| BackendError::new(ErrorKind::Unavailable, e.to_string()))?;
        }
        Ok(())
    }

    fn task_events(&self) -> Option<&TaskRegistry> {
        Some(&self.inner.tasks)
    }

    async fn ready(&self, _cx: &Cx) -> Result<()> {
        Ok(())
    }
}
