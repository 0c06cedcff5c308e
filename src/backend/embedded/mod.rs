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
//!
//! The backend is also an emulator that misbehaves on purpose: faults
//! armed from the config or `/_emulator/faults` meet calls by the Gcore
//! SDK's operation names. Rooms: `state` (the groups as a state machine),
//! `runner` (tasks, and the faults calls meet), `durable` (stores),
//! `faults` (which call meets which fault), `emulator` (the controls).

mod durable;
mod emulator;
mod faults;
mod gone;
mod runner;
mod state;

pub use faults::FaultView;
pub use runner::Timing;

use runner::{Started, Target};
use state::{now, stored, Entry, Op, State};

use super::{Backend, BackendError, Cx, ErrorKind, Result, Write};
use crate::config::faults::Operation;
use crate::config::EmbeddedConfig;
use crate::dialect::gcore::body::valid_patch_name;
use crate::dialect::gcore::rule::{opens_smtp, SMTP_BLOCKED};
use crate::dialect::gcore::template::default_rules;
use crate::model::{
    Atom, Group, GroupId, GroupPatch, NewContent, NewGroup, PatchContent, Scope, Shape, Task, TaskId, TaskQuery, Uuid,
};
use crate::store::{GroupLog, TaskLog};
use crate::tasks::TaskRegistry;
use async_trait::async_trait;
use faults::Faults;
use std::collections::HashSet;
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
    /// Looks at a shared store for other replicas' changes, coalesced.
    looks: durable::Looks,
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
                looks: durable::Looks::default(),
            }),
        }
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
}

#[async_trait]
impl Backend for Embedded {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn shape(&self) -> Shape {
        Shape::Atomic
    }

    fn shares_content(&self) -> bool {
        true
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
        let previous = self.state().remove(scope, id)?;
        self.save_or_undo(scope, previous).await?;
        if self.shared().is_some() {
            self.state().gone.insert((scope, id.clone()));
        }
        Ok(())
    }

    async fn task(&self, cx: &Cx, id: &TaskId) -> Result<Task> {
        self.meet(cx, Operation::TasksGet, None, Target::Task(id)).await?;
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
        self.meet(cx, Operation::TasksAcknowledgeOne, None, Target::Task(id))
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
