//! The embedded backend's groups as a state machine: what a task's change
//! does to them ([`State::apply`]), what a delete removes ([`State::remove`],
//! with Neutron's cascade), and the locks tasks hold. No I/O and no clock
//! beyond the timestamps it writes: every rule here is tested below.

use super::{locked, not_found};
use crate::backend::Result;
use crate::config::faults::Operation;
use crate::model::{
    Atom, AtomDest, AtomicContent, Content, Created, Group, GroupId, GroupMeta, GroupRule, Scope, Tag, TagPatch,
    TaskId, TaskKind, Uuid,
};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Default)]
pub(super) struct State {
    pub(super) groups: HashMap<(Scope, GroupId), Entry>,
    pub(super) seq: u64,
    /// How far this process has read the shared store's changes.
    pub(super) cursor: i64,
    /// Groups known deleted (a shared store): a read that began before the
    /// delete must not bring one back.
    pub(super) gone: super::gone::Gone,
}

#[derive(Clone)]
pub(super) struct Entry {
    pub(super) meta: GroupMeta,
    pub(super) content: Arc<AtomicContent>,
    pub(super) seq: u64,
    /// The task holding the group, if any.
    pub(super) locked_by: Option<TaskId>,
}

impl Entry {
    /// The content to change (copied first if a reader still holds it).
    pub(super) fn content_mut(&mut self) -> &mut AtomicContent {
        Arc::make_mut(&mut self.content)
    }

    pub(super) fn group(&self) -> Group {
        Group {
            meta: self.meta.clone(),
            content: Content::Atomic(self.content.clone()),
        }
    }
}

/// A change a task applies when it completes.
pub(super) enum Op {
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
    pub(super) fn kind(&self) -> TaskKind {
        match self {
            Op::Create { .. } => TaskKind::CreateGroup,
            Op::Update { .. } => TaskKind::UpdateGroup,
            Op::AddRule { .. } => TaskKind::CreateRule,
            Op::DeleteRule { .. } => TaskKind::DeleteRule,
        }
    }

    /// The backend method (as an operation) that starts this task.
    pub(super) fn method(&self) -> Operation {
        match self {
            Op::Create { .. } => Operation::GroupsCreate,
            Op::Update { .. } => Operation::GroupsUpdate,
            Op::AddRule { .. } => Operation::RulesCreate,
            Op::DeleteRule { .. } => Operation::RulesDelete,
        }
    }

    pub(super) fn group(&self) -> &GroupId {
        match self {
            Op::Create { id, .. } | Op::Update { id, .. } | Op::AddRule { id, .. } | Op::DeleteRule { id, .. } => id,
        }
    }

    pub(super) fn atoms(&self) -> Vec<&Atom> {
        match self {
            Op::Create { rules, .. } => rules.iter().collect(),
            Op::Update { rules, .. } => rules.iter().flatten().collect(),
            Op::AddRule { atom, .. } => vec![atom],
            Op::DeleteRule { .. } => Vec::new(),
        }
    }
}

pub(super) fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// Atoms as stored: `log` is not a Gcore rule field; duplicates collapse.
pub(super) fn stored(atoms: Vec<Atom>) -> Vec<Atom> {
    let mut seen = HashSet::new();
    atoms
        .into_iter()
        .map(|a| Atom { log: false, ..a })
        .filter(|a| seen.insert(a.clone()))
        .collect()
}

pub(super) fn new_rule(atom: Atom, at: DateTime<Utc>) -> GroupRule {
    GroupRule {
        id: Uuid::new_random(),
        atom,
        revision: 0,
        created_at: at,
        updated_at: at,
    }
}

pub(super) fn touch(entry: &mut Entry, at: DateTime<Utc>) {
    entry.meta.revision += 1;
    entry.meta.updated_at = at;
    entry.locked_by = None;
}

/// Releases the group `task` holds, if it still holds it.
pub(super) fn release(state: &mut State, scope: Scope, id: &GroupId, task: &TaskId) {
    if let Some(e) = state.groups.get_mut(&(scope, id.clone())) {
        if e.locked_by.as_ref() == Some(task) {
            e.locked_by = None;
        }
    }
}

/// The entry a task holds; an error if it was deleted meanwhile.
pub(super) fn held<'a>(
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
pub(super) fn missing_remote_group(state: &State, scope: Scope, own: &GroupId, atoms: &[&Atom]) -> Option<GroupId> {
    atoms.iter().find_map(|a| match &a.dest {
        AtomDest::Group(id, _) if id != own && !state.groups.contains_key(&(scope, id.clone())) => Some(id.clone()),
        _ => None,
    })
}

impl State {
    /// Removes a group, and (Neutron's cascade) the rules of other groups
    /// that name it; answers the entries as they were.
    pub(super) fn remove(&mut self, scope: Scope, id: &GroupId) -> Result<Vec<(GroupId, Option<Entry>)>> {
        let state = self;
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

    /// Applies a task's change (the task holds the group, unless it creates
    /// one); `region` names the region in a new group's body.
    pub(super) fn apply(
        &mut self,
        scope: Scope,
        task: &TaskId,
        op: Op,
        region: &str,
    ) -> std::result::Result<Created, String> {
        let state = self;
        let at = now();
        let target = op.group().clone();
        // Like Neutron, a remote group must exist when the rule is applied; the
        // task fails (ERROR) otherwise and the group is left as it was.
        if let Some(missing) = missing_remote_group(state, scope, &target, &op.atoms()) {
            release(state, scope, &target, task);
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
                    region: region.to_string(),
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
                let entry = held(state, scope, &id, task)?;
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
                let entry = held(state, scope, &id, task)?;
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
                let entry = held(state, scope, &id, task)?;
                entry.content_mut().rules.retain(|r| r.id != rule_id);
                touch(entry, at);
                Ok(Created::default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Direction, Family};

    const SCOPE: Scope = Scope {
        project_id: 1,
        region_id: 1,
    };

    fn any(direction: Direction) -> Atom {
        Atom {
            direction,
            proto: crate::model::AtomProto::Any,
            dest: AtomDest::Any(Family::V4),
            description: None,
            log: false,
        }
    }

    fn to_group(id: &GroupId) -> Atom {
        Atom {
            dest: AtomDest::Group(id.clone(), Family::V4),
            ..any(Direction::Ingress)
        }
    }

    /// A state with group `name` created by a task (rules `rules`); its id.
    fn created(state: &mut State, name: &str, rules: Vec<Atom>) -> GroupId {
        let id = Uuid::new_random();
        let op = Op::Create {
            id: id.clone(),
            name: name.into(),
            description: String::new(),
            rules,
            tags: vec![("k".into(), "v".into())],
        };
        state.apply(SCOPE, &Uuid::new_random(), op, "R-1").expect("created");
        id
    }

    /// Locks `id` for a new task; the task's id.
    fn lock(state: &mut State, id: &GroupId) -> TaskId {
        let task = Uuid::new_random();
        state.groups.get_mut(&(SCOPE, id.clone())).expect("group").locked_by = Some(task.clone());
        task
    }

    fn rules(state: &State, id: &GroupId) -> Vec<GroupRule> {
        state.groups[&(SCOPE, id.clone())].content.rules.clone()
    }

    #[test]
    fn an_update_keeps_the_ids_of_the_rules_it_keeps_and_frees_the_group() {
        let mut state = State::default();
        let id = created(&mut state, "web", vec![any(Direction::Egress)]);
        let kept = rules(&state, &id)[0].id.clone();
        let task = lock(&mut state, &id);
        let op = Op::Update {
            id: id.clone(),
            name: Some("web-2".into()),
            description: None,
            rules: Some(vec![any(Direction::Egress), any(Direction::Ingress)]),
            tags: TagPatch::Keep,
        };
        state.apply(SCOPE, &task, op, "R-1").expect("applied");
        let after = rules(&state, &id);
        assert_eq!(after.len(), 2);
        assert_eq!(after[0].id, kept);
        let entry = &state.groups[&(SCOPE, id)];
        assert_eq!((entry.meta.name.as_str(), entry.meta.revision), ("web-2", 3));
        assert_eq!(entry.locked_by, None);
        assert_eq!(entry.content.tags.len(), 1, "tags kept");
    }

    #[test]
    fn a_missing_remote_group_fails_the_task_and_changes_nothing() {
        let mut state = State::default();
        let id = created(&mut state, "web", vec![]);
        let task = lock(&mut state, &id);
        let ghost = Uuid::new_random();
        let op = Op::AddRule {
            id: id.clone(),
            rule_id: Uuid::new_random(),
            atom: to_group(&ghost),
        };
        let e = state.apply(SCOPE, &task, op, "R-1").expect_err("refused");
        assert!(e.contains(&ghost.to_string()), "{e}");
        assert!(rules(&state, &id).is_empty());
        assert_eq!(state.groups[&(SCOPE, id)].locked_by, None, "released");
    }

    #[test]
    fn a_task_whose_group_was_deleted_meanwhile_fails() {
        let mut state = State::default();
        let id = created(&mut state, "web", vec![]);
        let task = lock(&mut state, &id);
        state.groups.remove(&(SCOPE, id.clone()));
        let op = Op::DeleteRule {
            id: id.clone(),
            rule_id: Uuid::new_random(),
        };
        assert!(state.apply(SCOPE, &task, op, "R-1").is_err());
        assert!(state.groups.is_empty(), "nothing brought back");
    }

    #[test]
    fn a_delete_takes_the_rules_that_name_the_group_with_it() {
        let mut state = State::default();
        let db = created(&mut state, "db", vec![]);
        let web = created(&mut state, "web", vec![to_group(&db), any(Direction::Egress)]);
        let previous = state.remove(SCOPE, &db).expect("removed");
        assert_eq!(previous.len(), 2, "the group and the one naming it, as they were");
        let left = rules(&state, &web);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].atom, any(Direction::Egress));
        assert!(state.remove(SCOPE, &db).err().is_some_and(|e| e.is_not_found()));
        let task = lock(&mut state, &web);
        assert!(state.remove(SCOPE, &web).err().is_some_and(|e| e.is_conflict()));
        assert_eq!(state.groups[&(SCOPE, web)].locked_by, Some(task));
    }
}
