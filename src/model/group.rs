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
