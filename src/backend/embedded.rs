//! The embedded backend: security groups in process, with Gcore's semantics.
//!
//! Writes are validated at once (404, 409 while a task holds the group, the
//! port-25 block, the rule cap) and answer task ids; each task stays RUNNING
//! for the configured delay, then applies its change and turns FINISHED (or
//! ERROR if the group vanished meanwhile). PATCH `rules` replaces the set
//! (unchanged rules keep their ids), a PATCH that changes nothing answers no
//! task, a tags-only PATCH applies at once, and tags follow JSON Merge Patch.
//! Finished tasks stay readable for `task_ttl_s` in a bounded cache.

use super::{BackendError, ErrorKind, GroupPatch, NewGroup, Result, Scope};
use crate::config::EmbeddedConfig;
use crate::dialect::gcore::body::valid_patch_name;
use crate::dialect::gcore::rule::{opens_smtp, SMTP_BLOCKED};
use crate::dialect::gcore::time::TaskTime;
use crate::dialect::gcore::wire::{TaskOut, TaskState};
use crate::model::narrow::{any_template, SMTP_PORT};
use crate::model::{Atom, AtomDest, Family, GroupId, GroupRule, SecurityGroup, Tag, Uuid};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Clone)]
pub struct Embedded {
    inner: Arc<Inner>,
}

struct Inner {
    delay: Duration,
    region_name: String,
    smtp_blocked: bool,
    max_rules: usize,
    state: Mutex<State>,
    tasks: moka::sync::Cache<Uuid, TaskOut>,
}

#[derive(Default)]
struct State {
    groups: HashMap<(Scope, GroupId), Entry>,
    seq: u64,
}

struct Entry {
    group: SecurityGroup,
    seq: u64,
    /// The task holding the group, if any.
    locked_by: Option<Uuid>,
}

/// A change a task applies when it completes.
enum Op {
    Create { id: GroupId, group: NewGroup },
    Update { id: GroupId, patch: GroupPatch },
    AddRule { id: GroupId, rule_id: Uuid, atom: Atom },
    DeleteRule { id: GroupId, rule_id: Uuid },
}

impl Op {
    fn task_type(&self) -> &'static str {
        match self {
            Op::Create { .. } => "create_security_group",
            Op::Update { .. } => "update_security_group",
            Op::AddRule { .. } => "create_security_group_rule",
            Op::DeleteRule { .. } => "delete_security_group_rule",
        }
    }
}

fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

pub fn new_id() -> Uuid {
    Uuid::from_random(uuid::Uuid::new_v4().as_u128())
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

/// Atoms as stored: `log` is CF state and lives in tags, not in rules.
fn stored(atoms: Vec<Atom>) -> Vec<Atom> {
    let mut seen = HashSet::new();
    atoms
        .into_iter()
        .map(|a| Atom { log: false, ..a })
        .filter(|a| seen.insert(a.clone()))
        .collect()
}

/// Gcore's default rules when a create omits `rules`: every protocol egress,
/// both ethertypes, port 25 carved out of TCP and UDP (as observed).
fn default_rules() -> Vec<Atom> {
    [Family::V4, Family::V6]
        .into_iter()
        .flat_map(|f| {
            any_template(f, SMTP_PORT).into_iter().map(move |proto| Atom {
                direction: crate::model::Direction::Egress,
                proto,
                dest: AtomDest::Any(f),
                description: None,
                log: false,
            })
        })
        .collect()
}

impl Embedded {
    pub fn new(cfg: &EmbeddedConfig, smtp_blocked: bool, max_rules: usize) -> Self {
        Embedded {
            inner: Arc::new(Inner {
                delay: Duration::from_millis(cfg.task_delay_ms),
                region_name: cfg.region_name.clone(),
                smtp_blocked,
                max_rules,
                state: Mutex::new(State::default()),
                tasks: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(Duration::from_secs(cfg.task_ttl_s.max(1)))
                    .build(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change
        // (every change is computed first, then stored), so poisoning is ignored.
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

    pub async fn list(&self, scope: Scope, name: Option<&str>) -> Result<Vec<SecurityGroup>> {
        let state = self.state();
        let mut found: Vec<&Entry> = state
            .groups
            .iter()
            .filter(|((s, _), e)| *s == scope && name.is_none_or(|n| e.group.name == n))
            .map(|(_, e)| e)
            .collect();
        found.sort_by_key(|e| e.seq);
        Ok(found.into_iter().map(|e| e.group.clone()).collect())
    }

    pub async fn get(&self, scope: Scope, id: &GroupId) -> Result<SecurityGroup> {
        let state = self.state();
        state
            .groups
            .get(&(scope, id.clone()))
            .map(|e| e.group.clone())
            .ok_or_else(not_found)
    }

    pub async fn create(&self, scope: Scope, mut group: NewGroup) -> Result<Vec<Uuid>> {
        let rules = stored(group.rules.take().unwrap_or_else(default_rules));
        self.check_rules(&rules)?;
        group.rules = Some(rules);
        let id = new_id();
        Ok(vec![self.start(scope, Op::Create { id, group })])
    }

    pub async fn update(&self, scope: Scope, id: &GroupId, mut patch: GroupPatch) -> Result<Vec<Uuid>> {
        if patch.name.as_deref().is_some_and(|n| !valid_patch_name(n)) {
            // Gcore's PATCH pattern, enforced here too so CF renames fail alike on both backends.
            return Err(BackendError::new(
                ErrorKind::Invalid,
                "name: String does not match expected pattern.",
            ));
        }
        if let Some(rules) = patch.rules.take() {
            let rules = stored(rules);
            self.check_rules(&rules)?;
            patch.rules = Some(rules);
        }
        let mut state = self.state();
        let entry = state.groups.get_mut(&(scope, id.clone())).ok_or_else(not_found)?;
        if entry.locked_by.is_some() {
            return Err(locked(id));
        }
        let g = &entry.group;
        let name = patch.name.take().filter(|n| *n != g.name);
        let description = patch.description.take().filter(|d| *d != g.description);
        let current: HashSet<&Atom> = g.rules.iter().map(|r| &r.atom).collect();
        let rules = patch
            .rules
            .take()
            .filter(|r| r.len() != current.len() || !r.iter().all(|a| current.contains(a)));
        let tags = patch.tags.apply(&g.tags);
        let tags_changed = tags != g.tags;
        if name.is_none() && description.is_none() && rules.is_none() {
            // Gcore creates no task for a PATCH that changes nothing, or only tags.
            if tags_changed {
                let g = &mut entry.group;
                g.tags = tags;
                g.revision += 1;
                g.updated_at = now();
            }
            return Ok(vec![]);
        }
        let patch = GroupPatch {
            name,
            description,
            rules,
            tags: crate::model::TagPatch::Keep,
        };
        let task = self.register(scope, "update_security_group");
        entry.locked_by = Some(task.clone());
        entry.group.tags = tags;
        drop(state);
        self.spawn(scope, task.clone(), Op::Update { id: id.clone(), patch });
        Ok(vec![task])
    }

    pub async fn add_rule(&self, scope: Scope, id: &GroupId, atom: Atom) -> Result<Vec<Uuid>> {
        let atom = Atom { log: false, ..atom };
        self.check_rules(std::slice::from_ref(&atom))?;
        let mut state = self.state();
        let entry = state.groups.get_mut(&(scope, id.clone())).ok_or_else(not_found)?;
        if entry.locked_by.is_some() {
            return Err(locked(id));
        }
        if let Some(existing) = entry.group.rules.iter().find(|r| r.atom == atom) {
            return Err(BackendError::new(
                ErrorKind::Conflict,
                format!("Security group rule already exists. Rule id is {}.", existing.id),
            ));
        }
        if entry.group.rules.len() >= self.inner.max_rules {
            return Err(BackendError::new(
                ErrorKind::Invalid,
                format!("rules: a security group holds at most {} rules", self.inner.max_rules),
            ));
        }
        let task = self.register(scope, "create_security_group_rule");
        entry.locked_by = Some(task.clone());
        drop(state);
        let op = Op::AddRule {
            id: id.clone(),
            rule_id: new_id(),
            atom,
        };
        self.spawn(scope, task.clone(), op);
        Ok(vec![task])
    }

    pub async fn delete_rule(&self, scope: Scope, id: &GroupId, rule_id: &Uuid) -> Result<Vec<Uuid>> {
        let mut state = self.state();
        let entry = state.groups.get_mut(&(scope, id.clone())).ok_or_else(not_found)?;
        if entry.locked_by.is_some() {
            return Err(locked(id));
        }
        if !entry.group.rules.iter().any(|r| &r.id == rule_id) {
            return Err(BackendError::not_found("Security group rule not found"));
        }
        let task = self.register(scope, "delete_security_group_rule");
        entry.locked_by = Some(task.clone());
        drop(state);
        let op = Op::DeleteRule {
            id: id.clone(),
            rule_id: rule_id.clone(),
        };
        self.spawn(scope, task.clone(), op);
        Ok(vec![task])
    }

    pub async fn delete(&self, scope: Scope, id: &GroupId) -> Result<()> {
        let mut state = self.state();
        let key = (scope, id.clone());
        match state.groups.get(&key) {
            None => Err(not_found()),
            Some(e) if e.locked_by.is_some() => Err(locked(id)),
            Some(_) => {
                state.groups.remove(&key);
                Ok(())
            }
        }
    }

    pub async fn task(&self, id: &Uuid) -> Result<TaskOut> {
        self.inner
            .tasks
            .get(id)
            .ok_or_else(|| BackendError::not_found(format!("Task {id} not found")))
    }

    pub async fn ready(&self) -> Result<()> {
        Ok(())
    }

    /// Register a RUNNING task and return its id.
    fn register(&self, scope: Scope, task_type: &str) -> Uuid {
        let id = new_id();
        let at = TaskTime(now());
        self.inner.tasks.insert(
            id.clone(),
            TaskOut {
                id: id.to_string(),
                task_type: task_type.to_string(),
                state: TaskState::Running,
                error: None,
                created_resources: None,
                data: None,
                detailed_state: None,
                created_on: Some(at),
                updated_on: Some(at),
                finished_on: None,
                project_id: Some(scope.project_id),
                region_id: Some(scope.region_id),
                request_id: None,
                user_id: Some(0),
                client_id: Some(0),
                acknowledged_at: None,
                acknowledged_by: None,
            },
        );
        id
    }

    fn start(&self, scope: Scope, op: Op) -> Uuid {
        let task = self.register(scope, op.task_type());
        self.spawn(scope, task.clone(), op);
        task
    }

    /// Let the task run for the configured delay, then apply its change.
    fn spawn(&self, scope: Scope, task: Uuid, op: Op) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(this.inner.delay).await;
            let outcome = this.apply(scope, &task, op);
            this.finish(&task, outcome);
        });
    }

    fn finish(&self, task: &Uuid, outcome: std::result::Result<BTreeMap<String, Vec<String>>, String>) {
        let Some(mut t) = self.inner.tasks.get(task) else {
            return;
        };
        let at = Some(TaskTime(now()));
        t.updated_on = at;
        t.finished_on = at;
        match outcome {
            Ok(created) => {
                t.state = TaskState::Finished;
                t.created_resources = Some(created);
            }
            Err(e) => {
                t.state = TaskState::Error;
                t.error = Some(e);
            }
        }
        self.inner.tasks.insert(task.clone(), t);
    }

    fn apply(&self, scope: Scope, task: &Uuid, op: Op) -> std::result::Result<BTreeMap<String, Vec<String>>, String> {
        let mut state = self.state();
        let at = now();
        // Like Neutron, a remote group must exist when the rule is applied; the
        // task fails (ERROR) otherwise and the group is left as it was.
        let (target, atoms): (&GroupId, Vec<&Atom>) = match &op {
            Op::Create { id, group } => (id, group.rules.iter().flatten().collect()),
            Op::Update { id, patch } => (id, patch.rules.iter().flatten().collect()),
            Op::AddRule { id, atom, .. } => (id, vec![atom]),
            Op::DeleteRule { id, .. } => (id, vec![]),
        };
        if let Some(missing) = missing_remote_group(&state, scope, target, &atoms) {
            if let Some(e) = state.groups.get_mut(&(scope, target.clone())) {
                if e.locked_by.as_ref() == Some(task) {
                    e.locked_by = None;
                }
            }
            return Err(format!(
                "Security group {missing} referenced by remote_group_id could not be found"
            ));
        }
        let created = |kind: &str, id: &Uuid| BTreeMap::from([(kind.to_string(), vec![id.to_string()])]);
        match op {
            Op::Create { id, group } => {
                state.seq += 1;
                let seq = state.seq;
                let rules = group
                    .rules
                    .unwrap_or_default()
                    .into_iter()
                    .map(|atom| new_rule(atom, at))
                    .collect();
                let tags = group.tags.into_iter().map(|(k, v)| Tag::writable(k, v)).collect();
                let g = SecurityGroup {
                    id: id.clone(),
                    name: group.name,
                    description: group.description.unwrap_or_default(),
                    rules,
                    tags,
                    region: self.inner.region_name.clone(),
                    revision: 2,
                    created_at: at,
                    updated_at: at,
                };
                state.groups.insert(
                    (scope, id.clone()),
                    Entry {
                        group: g,
                        seq,
                        locked_by: None,
                    },
                );
                Ok(created("security_groups", &id))
            }
            Op::Update { id, patch } => {
                let entry = held(&mut state, scope, &id, task)?;
                let g = &mut entry.group;
                if let Some(name) = patch.name {
                    g.name = name;
                }
                if let Some(d) = patch.description {
                    g.description = d;
                }
                if let Some(atoms) = patch.rules {
                    let mut old: HashMap<Atom, GroupRule> = g.rules.drain(..).map(|r| (r.atom.clone(), r)).collect();
                    g.rules = atoms
                        .into_iter()
                        .map(|a| old.remove(&a).unwrap_or_else(|| new_rule(a, at)))
                        .collect();
                }
                g.revision += 1;
                g.updated_at = at;
                entry.locked_by = None;
                Ok(created("security_groups", &id))
            }
            Op::AddRule { id, rule_id, atom } => {
                let entry = held(&mut state, scope, &id, task)?;
                let mut rule = new_rule(atom, at);
                rule.id = rule_id.clone();
                entry.group.rules.push(rule);
                entry.group.revision += 1;
                entry.group.updated_at = at;
                entry.locked_by = None;
                Ok(created("security_group_rules", &rule_id))
            }
            Op::DeleteRule { id, rule_id } => {
                let entry = held(&mut state, scope, &id, task)?;
                entry.group.rules.retain(|r| r.id != rule_id);
                entry.group.revision += 1;
                entry.group.updated_at = at;
                entry.locked_by = None;
                Ok(BTreeMap::new())
            }
        }
    }
}

/// The entry a task holds; an error if it was deleted meanwhile.
fn held<'a>(
    state: &'a mut State,
    scope: Scope,
    id: &GroupId,
    task: &Uuid,
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

fn new_rule(atom: Atom, at: DateTime<Utc>) -> GroupRule {
    GroupRule {
        id: new_id(),
        atom,
        revision: 0,
        created_at: at,
        updated_at: at,
    }
}
