//! Backends store and change security groups, speaking model values, with
//! Gcore's semantics: writes answer task ids and complete asynchronously;
//! [`wait`] polls those tasks. `embedded` keeps groups in process (the default);
//! `gcore` talks to the Gcore Cloud API over HTTPS.
//!
//! Backends depend on the model and, for the wire, on the Gcore dialect (the
//! arrow runs backend → dialect); never on the server.

pub mod embedded;
pub mod gcore;
pub mod wait;

use crate::dialect::gcore::wire::TaskOut;
use crate::model::{Atom, GroupId, SecurityGroup, Uuid};
pub use crate::model::{GroupPatch, NewGroup};
use std::fmt;

/// Where groups live: Gcore's project and region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub project_id: u64,
    pub region_id: u64,
}

/// What went wrong, in terms both front ends can render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The backend refused the request as invalid (Gcore 400).
    Invalid,
    NotFound,
    /// Locked by another task, or a conflicting state (Gcore 409).
    Conflict,
    /// The backend refused our credentials (401/403): a gateway configuration problem.
    Unauthorized,
    /// The backend could not be reached.
    Unavailable,
    /// The backend did not answer in time.
    Timeout,
    /// The backend answered with a server error or something unreadable.
    Upstream,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BackendError {
    pub kind: ErrorKind,
    /// The backend's own message (never a credential).
    pub message: String,
    /// The backend's status code, when it answered.
    pub status: Option<u16>,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl BackendError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        BackendError {
            kind,
            message: message.into(),
            status: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
}

pub type Result<T> = std::result::Result<T, BackendError>;

/// The configured backend. An enum rather than a trait object: two variants,
/// static dispatch, async methods without boxing.
#[derive(Clone)]
pub enum Backend {
    Embedded(embedded::Embedded),
    Gcore(gcore::GcoreHttp),
}

macro_rules! dispatch {
    ($self:ident, $b:ident => $call:expr) => {
        match $self {
            Backend::Embedded($b) => $call,
            Backend::Gcore($b) => $call,
        }
    };
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Embedded(_) => "embedded",
            Backend::Gcore(_) => "gcore",
        }
    }

    /// Every group of the scope, oldest first; `name` filters by exact name.
    pub async fn list(&self, scope: Scope, name: Option<&str>) -> Result<Vec<SecurityGroup>> {
        dispatch!(self, b => b.list(scope, name).await)
    }

    pub async fn get(&self, scope: Scope, id: &GroupId) -> Result<SecurityGroup> {
        dispatch!(self, b => b.get(scope, id).await)
    }

    /// Starts creating a group; the first task's `created_resources` names it.
    pub async fn create(&self, scope: Scope, group: NewGroup) -> Result<Vec<Uuid>> {
        dispatch!(self, b => b.create(scope, group).await)
    }

    /// Starts a change; no tasks when nothing changes.
    pub async fn update(&self, scope: Scope, id: &GroupId, patch: GroupPatch) -> Result<Vec<Uuid>> {
        dispatch!(self, b => b.update(scope, id, patch).await)
    }

    pub async fn add_rule(&self, scope: Scope, id: &GroupId, rule: Atom) -> Result<Vec<Uuid>> {
        dispatch!(self, b => b.add_rule(scope, id, rule).await)
    }

    pub async fn delete_rule(&self, scope: Scope, id: &GroupId, rule_id: &Uuid) -> Result<Vec<Uuid>> {
        dispatch!(self, b => b.delete_rule(scope, id, rule_id).await)
    }

    /// Deletes a group at once (Gcore's delete is synchronous).
    pub async fn delete(&self, scope: Scope, id: &GroupId) -> Result<()> {
        dispatch!(self, b => b.delete(scope, id).await)
    }

    pub async fn task(&self, id: &Uuid) -> Result<TaskOut> {
        dispatch!(self, b => b.task(id).await)
    }

    /// Whether the backend answers (for `/readyz`).
    pub async fn ready(&self) -> Result<()> {
        dispatch!(self, b => b.ready().await)
    }
}
