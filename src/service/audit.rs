//! What each write protocol tells the request's journal for the audit
//! record: the group before, and the group after — or, while the change
//! still runs on tasks, the group as planned. Recorded before the commit
//! (so a failed write is audited with what it tried) and again after it.

use super::Service;
use crate::journal::{self, Change};
use crate::model::{
    AtomicContent, CompactContent, Content, Group, GroupMeta, GroupPatch, GroupRule, NewContent, NewGroup,
    PatchContent, Scope, Uuid,
};
use std::sync::Arc;

impl Service {
    pub(super) fn note(&self, op: &'static str, scope: Scope, before: Option<&Group>, after: Option<&Group>) {
        journal::change(Change {
            op,
            scope,
            before: before.cloned(),
            after: after.cloned(),
            planned: false,
        });
    }

    /// Reads the group about to be deleted, for the audit record (a
    /// missing group is the delete's own 404 to report).
    pub(super) async fn note_delete(&self, cx: &crate::backend::Cx, scope: Scope, id: &crate::model::GroupId) {
        if let Ok(before) = self.get(cx, scope, id).await {
            self.note("delete", scope, Some(&before), None);
        }
    }

    pub(super) fn note_planned(&self, op: &'static str, scope: Scope, before: Option<&Group>, after: Group) {
        journal::change(Change {
            op,
            scope,
            before: before.cloned(),
            after: Some(after),
            planned: true,
        });
    }
}

fn planned_rule(group: &Group, atom: &crate::model::Atom) -> GroupRule {
    GroupRule {
        id: Uuid::from_random(0),
        atom: atom.clone(),
        revision: 0,
        created_at: group.meta.updated_at,
        updated_at: group.meta.updated_at,
    }
}

/// `current` with `patch` applied (rule ids of new rules are unknown yet).
pub(super) fn patched(current: &Group, patch: &GroupPatch) -> Group {
    let mut g = current.clone();
    if let Some(name) = &patch.name {
        g.meta.name = name.clone();
    }
    if let Some(d) = &patch.description {
        g.meta.description = d.clone();
    }
    let template = g.clone();
    match (&mut g.content, &patch.content) {
        (Content::Atomic(c), PatchContent::Atomic { rules, tags }) => {
            let c = Arc::make_mut(c);
            if let Some(atoms) = rules {
                c.rules = atoms.iter().map(|a| planned_rule(&template, a)).collect();
            }
            c.tags = tags.apply(&c.tags);
        }
        (Content::Compact(c), PatchContent::Compact { rules, attrs }) => {
            let c = Arc::make_mut(c);
            if let Some(r) = rules {
                c.rules = r.clone();
            }
            if let Some(a) = attrs {
                c.attrs = a.clone();
            }
        }
        _ => {}
    }
    g
}

/// `current` with one rule more.
pub(super) fn with_rule(current: &Group, atom: &crate::model::Atom) -> Group {
    let mut g = current.clone();
    if let Content::Atomic(c) = &mut g.content {
        Arc::make_mut(c).rules.push(planned_rule(current, atom));
    }
    g
}

/// `current` without the rule `rule_id`.
pub(super) fn without_rule(current: &Group, rule_id: &Uuid) -> Group {
    let mut g = current.clone();
    if let Content::Atomic(c) = &mut g.content {
        Arc::make_mut(c).rules.retain(|r| &r.id != rule_id);
    }
    g
}

/// A group about to be created, as planned (its id is not known yet; an
/// omitted Gcore rule set is the backend's template, shown as none).
pub(super) fn planned_new(new: &NewGroup) -> Group {
    let now = chrono::Utc::now();
    let meta = GroupMeta {
        id: Uuid::from_random(0),
        name: new.name.clone(),
        description: new.description.clone().unwrap_or_default(),
        region: String::new(),
        revision: 0,
        created_at: now,
        updated_at: now,
    };
    let content = match &new.content {
        NewContent::Atomic { tags, .. } => Content::Atomic(Arc::new(AtomicContent {
            rules: Vec::new(),
            tags: tags
                .iter()
                .map(|(k, v)| crate::model::Tag::writable(k.clone(), v.clone()))
                .collect(),
        })),
        NewContent::Compact { rules, attrs } => Content::Compact(Arc::new(CompactContent {
            rules: rules.clone(),
            attrs: attrs.clone(),
        })),
    };
    let mut group = Group { meta, content };
    if let NewContent::Atomic { rules: Some(atoms), .. } = &new.content {
        let template = group.clone();
        if let Content::Atomic(c) = &mut group.content {
            Arc::make_mut(c).rules = atoms.iter().map(|a| planned_rule(&template, a)).collect();
        }
    }
    group
}
