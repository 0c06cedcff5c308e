//! Security groups as the model sees them: Gcore's shape (rules are atoms with
//! ids), with CF's extra state derived from reserved tags (see `cf_state`).

use super::cf_state;
use super::ids::{GroupId, Uuid};
use super::rule::Atom;
use chrono::{DateTime, Utc};

/// A key/value tag; read-only tags are the backend's and are never changed.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// A group to create. `rules: None` asks for the backend's default rules
/// (Gcore's template); `Some(vec![])` for none.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGroup {
    pub name: String,
    pub description: Option<String>,
    pub rules: Option<Vec<Atom>>,
    pub tags: Vec<(String, String)>,
}

/// A change to a group; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    /// The complete new rule set.
    pub rules: Option<Vec<Atom>>,
    pub tags: TagPatch,
}

/// State only Cloud Foundry has: kept in reserved tags (see `cf_state`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CfAttrs {
    pub running_default: bool,
    pub staging_default: bool,
    pub spaces: std::collections::BTreeSet<Uuid>,
    pub staging_spaces: std::collections::BTreeSet<Uuid>,
}

/// One stored rule: an atom with the id and bookkeeping its backend gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRule {
    pub id: Uuid,
    pub atom: Atom,
    pub revision: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityGroup {
    pub id: GroupId,
    pub name: String,
    pub description: String,
    pub rules: Vec<GroupRule>,
    /// Every tag the backend holds, reserved ones included.
    pub tags: Vec<Tag>,
    /// The region's display name (Gcore's `region`).
    pub region: String,
    pub revision: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SecurityGroup {
    /// The CF attributes carried in reserved tags.
    pub fn cf_attrs(&self) -> CfAttrs {
        cf_state::decode(&self.tags).0
    }

    /// The atoms, with CF `log` flags restored from reserved tags.
    pub fn atoms(&self) -> Vec<Atom> {
        let mut atoms: Vec<Atom> = self.rules.iter().map(|r| r.atom.clone()).collect();
        let (_, logged) = cf_state::decode(&self.tags);
        cf_state::apply_log(&mut atoms, &logged);
        atoms
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
}
