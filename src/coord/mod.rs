//! Coordination between concurrent writes: the one seam behind which the
//! gateway keeps what it owns about writes in flight.
//!
//! - keyed locks: every write to a group runs alone, from either dialect; a
//!   CF create holds the lock of its name (not a global one) through its wait;
//! - uncertain creates: a create whose answer was lost is remembered, so it
//!   is reconciled before anything of that name is created again.
//!
//! [`Memory`] serves one process. A shared store (several replicas) puts the
//! same operations behind this trait.

pub mod locks;

use crate::model::{GroupId, Scope};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use locks::{KeyGuard, KeyedLocks};
use std::collections::HashMap;
use std::sync::Mutex;

/// What a lock is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LockKey {
    /// Writes to one group.
    Group(Scope, GroupId),
    /// Creates (and renames) to one CF name.
    Name(Scope, String),
}

/// A create sent to the backend whose outcome is not known: the answer was
/// lost or came too late. `marker` is the reserved tag value the created
/// group carries, so it can be recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncertainCreate {
    pub scope: Scope,
    pub name: String,
    pub marker: String,
    /// When it was sent (the backend's tasks since then may be it).
    pub since: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the coordination store is unavailable: {0}")]
pub struct CoordError(pub String);

/// A held lock; released when dropped.
pub struct Held(#[allow(dead_code)] Box<dyn Send + Sync>);

impl Held {
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Held(Box::new(guard))
    }
}

#[async_trait]
pub trait Coord: Send + Sync + 'static {
    /// Waits for the lock of `key` and holds it until the returned value drops.
    async fn lock(&self, key: LockKey) -> Result<Held, CoordError>;

    /// The lock of `key` if nobody holds it now.
    async fn try_lock(&self, key: LockKey) -> Result<Option<Held>, CoordError>;

    /// Creates of `name` in `scope` whose outcome is not known.
    async fn uncertain(&self, scope: Scope, name: &str) -> Result<Vec<UncertainCreate>, CoordError>;

    async fn record_uncertain(&self, create: UncertainCreate) -> Result<(), CoordError>;

    /// Forgets an uncertain create once its outcome is known.
    async fn settle(&self, scope: Scope, name: &str, marker: &str) -> Result<(), CoordError>;
}

/// Coordination within one process.
#[derive(Default)]
pub struct Memory {
    locks: KeyedLocks<LockKey>,
    uncertain: Mutex<HashMap<(Scope, String), Vec<UncertainCreate>>>,
}

impl Memory {
    /// Locks held or waited for now (for tests and metrics).
    pub fn lock_entries(&self) -> usize {
        self.locks.len()
    }
}

struct MemoryHeld(#[allow(dead_code)] KeyGuard<LockKey>);

#[async_trait]
impl Coord for Memory {
    async fn lock(&self, key: LockKey) -> Result<Held, CoordError> {
        Ok(Held::new(MemoryHeld(self.locks.lock(key).await)))
    }

    async fn try_lock(&self, key: LockKey) -> Result<Option<Held>, CoordError> {
        Ok(self.locks.try_lock(key).map(|g| Held::new(MemoryHeld(g))))
    }

    async fn uncertain(&self, scope: Scope, name: &str) -> Result<Vec<UncertainCreate>, CoordError> {
        let map = self.uncertain.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(&(scope, name.to_string())).cloned().unwrap_or_default())
    }

    async fn record_uncertain(&self, create: UncertainCreate) -> Result<(), CoordError> {
        let mut map = self.uncertain.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((create.scope, create.name.clone())).or_default().push(create);
        Ok(())
    }

    async fn settle(&self, scope: Scope, name: &str, marker: &str) -> Result<(), CoordError> {
        let mut map = self.uncertain.lock().unwrap_or_else(|p| p.into_inner());
        let key = (scope, name.to_string());
        if let Some(list) = map.get_mut(&key) {
            list.retain(|c| c.marker != marker);
            if list.is_empty() {
                map.remove(&key);
            }
        }
        Ok(())
    }
}
