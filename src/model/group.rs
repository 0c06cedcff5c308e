//! Security groups as backends store them, and the changes written to them.
//!
//! Backends store a group in one of two shapes ([`Shape`]):
//! - **atomic**: one stored rule per destination network and port range, each
//!   with an id, plus key/value tags (Gcore's shape; Cloud Foundry's own state
//!   has no field there and is carried by the mapping layer);
//! - **compact**: rules as written, with lists of destinations and ports, plus
//!   Cloud Foundry's attributes (defaults, space bindings) natively.
//!
//! The shapes say how a group is stored, not how a caller spells it: both
//! dialects read and write either shape through `crate::mapping`.

use super::ids::{GroupId, Uuid};
use super::rule::{Atom, Rule};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// A key/value tag; read-only tags are the backend's and are never changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag {
    pub key: String,
    pub value: String,
    pub read_only: bool,
}

impl Tag {
    /// A tag the caller may change.
    pub fn writable(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
            read_only: false,
        }
    }
}

/// A change to tags, as Gcore's PATCH says it (RFC 7386 JSON Merge Patch).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TagPatch {
    #[default]
    Keep,
    /// `"tags": null`: remove every tag that is not read-only.
    RemoveAll,
    /// Set keys with `Some`, delete keys with `None`.
    Merge(Vec<(String, Option<String>)>),
}

impl TagPatch {
    /// The tags after this patch; read-only tags never change.
    pub fn apply(&self, tags: &[Tag]) -> Vec<Tag> {
        match self {
            TagPatch::Keep => tags.to_vec(),
            TagPatch::RemoveAll => tags.iter().filter(|t| t.read_only).cloned().collect(),
            TagPatch::Merge(changes) => {
                let mut out = tags.to_vec();
                for (key, value) in changes {
                    let pos = out.iter().position(|t| &t.key == key);
                    match (pos, value) {
                        (Some(i), _) if out[i].read_only => {}
                        (Some(i), Some(v)) => out[i].value = v.clone(),
                        (Some(i), None) => {
                            out.remove(i);
                        }
                        (None, Some(v)) => out.push(Tag::writable(key, v)),
                        (None, None) => {}
                    }
                }
                out
            }
        }
    }

    /// The keys this patch sets or deletes (`RemoveAll`: every writable key of `current`).
    pub fn keys<'a>(&'a self, current: &'a [Tag]) -> Vec<&'a str> {
        match self {
            TagPatch::Keep => Vec::new(),
            TagPatch::RemoveAll => current
                .iter()
                .filter(|t| !t.read_only)
                .map(|t| t.key.as_str())
                .collect(),
            TagPatch::Merge(changes) => changes.iter().map(|(k, _)| k.as_str()).collect(),
        }
    }

    /// The merge patch that turns `from` back into `to` for the keys this
    /// patch touched: what undoes it.
    pub fn undo(&self, from: &[Tag], to: &[Tag]) -> TagPatch {
        let mut keys: Vec<&str> = self.keys(to);
        keys.sort_unstable();
        keys.dedup();
        let changes: Vec<(String, Option<String>)> = keys
            .into_iter()
            .filter_map(|k| {
                let before = to.iter().find(|t| t.key == k && !t.read_only).map(|t| t.value.clone());
                let after = from
                    .iter()
                    .find(|t| t.key == k && !t.read_only)
                    .map(|t| t.value.clone());
                (before != after).then(|| (k.to_string(), before))
            })
            .collect();
        if changes.is_empty() {
            TagPatch::Keep
        } else {
            TagPatch::Merge(changes)
        }
    }
}

/// The two lifecycles a CF group applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    Running,
    Staging,
}

/// State only Cloud Foundry has: global defaults and space bindings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct CfAttrs {
    pub running_default: bool,
    pub staging_default: bool,
    pub spaces: BTreeSet<Uuid>,
    pub staging_spaces: BTreeSet<Uuid>,
}

impl CfAttrs {
    pub fn spaces(&self, lifecycle: Lifecycle) -> &BTreeSet<Uuid> {
        match lifecycle {
            Lifecycle::Running => &self.spaces,
            Lifecycle::Staging => &self.staging_spaces,
        }
    }

    pub fn spaces_mut(&mut self, lifecycle: Lifecycle) -> &mut BTreeSet<Uuid> {
        match lifecycle {
            Lifecycle::Running => &mut self.spaces,
            Lifecycle::Staging => &mut self.staging_spaces,
        }
    }

    pub fn is_default(&self, lifecycle: Lifecycle) -> bool {
        match lifecycle {
            Lifecycle::Running => self.running_default,
            Lifecycle::Staging => self.staging_default,
        }
    }

    pub fn set_default(&mut self, lifecycle: Lifecycle, on: bool) {
        match lifecycle {
            Lifecycle::Running => self.running_default = on,
            Lifecycle::Staging => self.staging_default = on,
        }
    }
}

/// One stored rule of an atomic group: an atom with the id and bookkeeping
/// its backend gave it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupRule {
    pub id: Uuid,
    pub atom: Atom,
    pub revision: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What every group has, whatever its shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupMeta {
    pub id: GroupId,
    pub name: String,
    pub description: String,
    /// The region's display name.
    pub region: String,
    /// Grows with every change: the version a rendered view belongs to.
    pub revision: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AtomicContent {
    pub rules: Vec<GroupRule>,
    /// Every tag the backend holds, reserved ones included.
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CompactContent {
    pub rules: Vec<Rule>,
    pub attrs: CfAttrs,
}

/// Shared, so a group is cheap to hand out and clone (lists of thousands of
/// large groups); a change makes its own copy (`Arc::make_mut`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Content {
    Atomic(std::sync::Arc<AtomicContent>),
    Compact(std::sync::Arc<CompactContent>),
}

/// How a backend stores groups (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Atomic,
    Compact,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Group {
    pub meta: GroupMeta,
    pub content: Content,
}

impl Group {
    pub fn id(&self) -> &GroupId {
        &self.meta.id
    }

    pub fn name(&self) -> &str {
        &self.meta.name
    }

    pub fn shape(&self) -> Shape {
        match self.content {
            Content::Atomic(_) => Shape::Atomic,
            Content::Compact(_) => Shape::Compact,
        }
    }

    /// The tags of an atomic group; a compact group has none.
    pub fn tags(&self) -> &[Tag] {
        match &self.content {
            Content::Atomic(c) => &c.tags,
            Content::Compact(_) => &[],
        }
    }
}

/// A group to create, in the backend's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGroup {
    pub name: String,
    pub description: Option<String>,
    pub content: NewContent,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NewContent {
    /// `rules: None` asks for the backend's default rules (Gcore's template);
    /// `Some(vec![])` for none.
    Atomic {
        rules: Option<Vec<Atom>>,
        tags: Vec<(String, String)>,
    },
    Compact {
        rules: Vec<Rule>,
        attrs: CfAttrs,
    },
}

/// A change to a group in the backend's shape; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub content: PatchContent,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PatchContent {
    /// `rules` is the complete new rule set.
    Atomic { rules: Option<Vec<Atom>>, tags: TagPatch },
    Compact {
        rules: Option<Vec<Rule>>,
        attrs: Option<CfAttrs>,
    },
}

impl GroupPatch {
    /// A patch that changes nothing, in the given shape.
    pub fn empty(shape: Shape) -> Self {
        GroupPatch {
            name: None,
            description: None,
            content: match shape {
                Shape::Atomic => PatchContent::Atomic {
                    rules: None,
                    tags: TagPatch::Keep,
                },
                Shape::Compact => PatchContent::Compact {
                    rules: None,
                    attrs: None,
                },
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && match &self.content {
                PatchContent::Atomic { rules, tags } => rules.is_none() && *tags == TagPatch::Keep,
                PatchContent::Compact { rules, attrs } => rules.is_none() && attrs.is_none(),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str, ro: bool) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
            read_only: ro,
        }
    }

    #[test]
    fn merge_patch_semantics() {
        let tags = vec![tag("a", "1", false), tag("ro", "x", true), tag("b", "2", false)];
        let p = TagPatch::Merge(vec![
            ("a".into(), Some("9".into())),
            ("b".into(), None),
            ("c".into(), Some("3".into())),
            ("ro".into(), None),
        ]);
        assert_eq!(
            p.apply(&tags),
            vec![tag("a", "9", false), tag("ro", "x", true), tag("c", "3", false)]
        );
        assert_eq!(TagPatch::RemoveAll.apply(&tags), vec![tag("ro", "x", true)]);
        assert_eq!(TagPatch::Keep.apply(&tags), tags);
    }

    #[test]
    fn undo_restores_touched_keys_only() {
        let before = vec![tag("a", "1", false), tag("keep", "k", false)];
        let p = TagPatch::Merge(vec![("a".into(), Some("2".into())), ("new".into(), Some("n".into()))]);
        let after = p.apply(&before);
        let undo = p.undo(&after, &before);
        assert_eq!(undo.apply(&after), before);
        assert_eq!(TagPatch::Keep.undo(&after, &before), TagPatch::Keep);
    }
}
