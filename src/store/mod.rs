//! What sgbridge keeps itself, behind one seam, in the store the config
//! names (`[store]`):
//!
//! - `memory`: one process, nothing kept (the default);
//! - `sqlite`: one process, durable — the embedded backend's groups and
//!   tasks, the gateway's own tasks and idempotency records survive a
//!   restart (WAL, synchronous commits);
//! - `postgres`: several replicas share everything — per-group write
//!   exclusion and CF name reservations (leases a dead replica gives up
//!   when they expire), idempotency records, the tasks the gateway runs and
//!   the embedded backend's groups.
//!
//! Each part is a small trait — [`crate::coord::Coord`], [`Records`],
//! [`TaskLog`], [`GroupLog`] — so the write path, the idempotency layer,
//! the task registry and the embedded backend stay unaware of the engine.
//! Records are stored in the Gcore wire form (groups, tasks), the one
//! complete form of a group with its rule ids and timestamps.

pub mod audit;
pub mod dump;
mod memory;
mod migrations;
mod pg_tls;
mod postgres;
mod rows;
mod sqlite;
#[cfg(test)]
pub(crate) mod testing;

pub use audit::{AuditEvent, AuditLog, MemoryAudit};
pub use memory::MemoryRecords;

use crate::config::{IdempotencyConfig, StoreConfig, StoreKind};
use crate::coord::{Coord, Memory};
use crate::model::{Group, Scope, Task, TaskId};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// The store failed or could not be reached; the text is safe to show (no
/// URL, no password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the state store is unavailable: {0}")]
pub struct StoreError(pub String);

/// An answer kept for an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// How much the idempotency records may hold, in every store. A caller
/// past its own quota loses its own oldest answers; a store past its total
/// loses the oldest answers of the caller holding the most bytes, so no
/// caller can push out the answers of one that holds less than it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// Answers kept in all.
    pub max_keys: u64,
    /// Bytes of answers kept in all.
    pub max_bytes: u64,
    /// Answers one caller (credential) may have kept.
    pub caller_keys: u64,
    /// Bytes of answers one caller may have kept.
    pub caller_bytes: u64,
}

impl From<&IdempotencyConfig> for RecordLimits {
    fn from(c: &IdempotencyConfig) -> Self {
        RecordLimits {
            max_keys: c.max_keys,
            max_bytes: c.max_bytes,
            caller_keys: c.max_keys_per_caller,
            caller_bytes: c.max_bytes_per_caller,
        }
    }
}

impl Answer {
    /// What the answer takes in a store.
    pub fn size(&self) -> u64 {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        (self.body.len() + headers) as u64
    }
}

/// What a key's record says when a request carrying it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// No record: this request is the first, and now holds the key.
    Fresh,
    /// The first request with this key is still being answered.
    InFlight {
        fingerprint: u64,
    },
    Done {
        fingerprint: u64,
        answer: Answer,
    },
}

/// One kept idempotency answer, as `sgbridge store export` moves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub principal: String,
    pub key: String,
    pub fingerprint: u64,
    pub answer: Answer,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Idempotency records, per caller and key.
#[async_trait]
pub trait Records: Send + Sync {
    /// Claims the key for a request (fingerprint) or reports who has it.
    /// An unfinished claim lapses after `in_flight` (its request died).
    async fn begin(
        &self,
        principal: &str,
        key: &str,
        fingerprint: u64,
        in_flight: Duration,
    ) -> Result<Begin, StoreError>;

    /// Keeps the answer for `ttl`, within the store's [`RecordLimits`].
    async fn finish(
        &self,
        principal: &str,
        key: &str,
        fingerprint: u64,
        answer: Answer,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Forgets the claim (the request failed in a way a retry may fix).
    async fn abandon(&self, principal: &str, key: &str) -> Result<(), StoreError>;

    /// The answers kept now: (how many, their bytes), for `/metrics`.
    async fn held(&self) -> Result<(u64, u64), StoreError>;

    /// Kept answers after `after` (principal, key), in that order, at most
    /// `limit`: `store export` reads them a page at a time.
    async fn page(&self, after: Option<(String, String)>, limit: usize) -> Result<Vec<Kept>, StoreError>;
}

/// The newest PostgreSQL schema version this binary knows (and migrates to).
pub fn postgres_schema_version() -> i64 {
    migrations::POSTGRES.len() as i64
}

/// Whether this failed login also sweeps every name's expired failures:
/// one in 64, so names tried once (a storm of made-up users) do not stay for
/// ever, at the cost of a table scan only now and then.
fn sweep_failures_now() -> bool {
    static FAILURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    FAILURES
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .is_multiple_of(64)
}

/// The token issuer's state in a shared or durable store: failed logins
/// (UAA's lockout, counted across replicas) and the signing key (one key
/// for every replica, kept across restarts).
#[async_trait]
pub trait LoginLog: Send + Sync {
    /// Records a failed login of `user` at `at` (unix seconds), forgetting
    /// this user's failures before `forget_before`.
    async fn login_failed(&self, user: &str, at: i64, forget_before: i64) -> Result<(), StoreError>;

    /// The times of `user`'s failed logins since `since`, oldest first.
    async fn login_failures(&self, user: &str, since: i64) -> Result<Vec<i64>, StoreError>;

    /// Forgets `user`'s failed logins (a successful login).
    async fn login_succeeded(&self, user: &str) -> Result<(), StoreError>;

    /// The signing key kept in the store (PEM): `candidate` when none was
    /// (it is kept), else the one already there (another replica's).
    async fn signing_key(&self, candidate: &str) -> Result<String, StoreError>;
}

/// Where a task registry keeps its tasks.
#[async_trait]
pub trait TaskLog: Send + Sync {
    /// Saves a task's current state (in the background, in order).
    fn save(&self, registry: &'static str, task: &Task);

    /// Saves the tasks and waits until they are durable.
    async fn save_now(&self, registry: &'static str, tasks: &[Task]) -> Result<(), StoreError>;

    /// Every task a registry kept.
    async fn load_all(&self, registry: &'static str) -> Result<Vec<Task>, StoreError>;

    /// One task, wherever it was started (another replica included).
    async fn load(&self, registry: &'static str, id: &TaskId) -> Result<Option<Task>, StoreError>;

    /// Deletes ended tasks the registry has let go of (in the background).
    fn forget(&self, registry: &'static str, ids: Vec<TaskId>);

    /// A registry's tasks after id `after`, in id order, at most `limit`:
    /// `store export` reads them a page at a time.
    async fn page(&self, registry: &'static str, after: Option<String>, limit: usize) -> Result<Vec<Task>, StoreError>;
}

/// One change to the embedded backend's groups.
#[derive(Debug, Clone)]
pub enum GroupChange {
    Put { scope: Scope, seq: u64, group: Group },
    Gone { scope: Scope, id: crate::model::GroupId },
}

/// The groups other processes changed since a cursor (a shared store).
#[derive(Debug, Default)]
pub struct Changes {
    /// Where the next look starts.
    pub cursor: i64,
    /// `put` holds every group there is: the look began behind tombstones
    /// already swept, so a group held and not in `put` is gone.
    pub full: bool,
    /// Groups as they are now, with their scope and creation order.
    pub put: Vec<(Scope, u64, Group)>,
    pub gone: Vec<(Scope, crate::model::GroupId)>,
}

/// Where the embedded backend keeps its groups.
#[async_trait]
pub trait GroupLog: Send + Sync {
    /// Applies the changes and the tasks' states in one durable commit.
    async fn commit(&self, changes: &[GroupChange], tasks: &[Task]) -> Result<(), StoreError>;

    /// Every group, with its scope and creation order.
    async fn load(&self) -> Result<Vec<(Scope, u64, Group)>, StoreError>;

    /// Whether other processes change the same groups (replicas on one
    /// shared store): then the backend looks for [`changes`](Self::changes)
    /// before each operation, and tasks are read from the store.
    fn shared(&self) -> bool {
        false
    }

    /// What changed since `cursor` (0: everything).
    async fn changes(&self, cursor: i64) -> Result<Changes, StoreError> {
        Ok(Changes {
            cursor,
            ..Changes::default()
        })
    }
}

/// Where store calls and lock waits are reported.
pub trait StoreTelemetry: Send + Sync {
    fn store_call(&self, op: &'static str, ok: bool, took: Duration);
    fn lock_wait(&self, took: Duration);
    fn pool(&self, size: usize, available: usize);
}

/// Reports nothing.
pub struct NoStoreTelemetry;

impl StoreTelemetry for NoStoreTelemetry {
    fn store_call(&self, _: &'static str, _: bool, _: Duration) {}
    fn lock_wait(&self, _: Duration) {}
    fn pool(&self, _: usize, _: usize) {}
}

/// How many audit events the memory store keeps (the newest).
pub const MEMORY_AUDIT_EVENTS: usize = 10_000;

/// The store's parts, as the rest of the gateway uses them.
#[derive(Clone)]
pub struct Stores {
    pub kind: StoreKind,
    pub coord: Arc<dyn Coord>,
    pub records: Arc<dyn Records>,
    /// `None` for the memory store: tasks live in their registries only.
    pub tasks: Option<Arc<dyn TaskLog>>,
    pub groups: Option<Arc<dyn GroupLog>>,
    /// `None` for the memory store: the issuer keeps its state in the process.
    pub logins: Option<Arc<dyn LoginLog>>,
    /// Audit events (the memory store: a ring of the newest [`MEMORY_AUDIT_EVENTS`]).
    pub audit: Arc<dyn AuditLog>,
    ping: Option<Arc<dyn Ping>>,
}

#[async_trait]
trait Ping: Send + Sync {
    async fn ping(&self) -> Result<(), StoreError>;

    /// Processes serving from this store now (1: this one).
    async fn replicas(&self) -> Result<u64, StoreError> {
        Ok(1)
    }

    /// The periodic housekeeping, now.
    async fn housekeep(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

impl Stores {
    /// The memory store: one process, nothing kept.
    pub fn memory(idempotency: &IdempotencyConfig) -> Stores {
        Stores {
            kind: StoreKind::Memory,
            coord: Arc::new(Memory::default()),
            records: Arc::new(MemoryRecords::new(RecordLimits::from(idempotency))),
            tasks: None,
            groups: None,
            logins: None,
            audit: Arc::new(MemoryAudit::new(MEMORY_AUDIT_EVENTS)),
            ping: None,
        }
    }

    /// Opens the configured store, migrating its schema.
    pub async fn open(
        cfg: &StoreConfig,
        env: &crate::config::Env,
        idempotency: &IdempotencyConfig,
        telemetry: Arc<dyn StoreTelemetry>,
    ) -> Result<Stores, String> {
        match cfg.kind {
            StoreKind::Memory => Ok(Stores::memory(idempotency)),
            StoreKind::Sqlite => {
                let path = cfg.path.as_ref().ok_or("store.kind = \"sqlite\" needs store.path")?;
                let db = Arc::new(sqlite::Sqlite::open(path, idempotency.into(), telemetry).await?);
                Ok(Stores {
                    kind: StoreKind::Sqlite,
                    coord: Arc::new(Memory::default()),
                    records: db.clone(),
                    tasks: Some(db.clone()),
                    groups: Some(db.clone()),
                    logins: Some(db.clone()),
                    audit: db.clone(),
                    ping: Some(db),
                })
            }
            StoreKind::Postgres => {
                let db = postgres::Postgres::open(cfg, env, idempotency.into(), telemetry).await?;
                Ok(Stores {
                    kind: StoreKind::Postgres,
                    coord: db.coord(),
                    records: db.clone(),
                    tasks: Some(db.clone()),
                    groups: Some(db.clone()),
                    logins: Some(db.clone()),
                    audit: db.clone(),
                    ping: Some(db),
                })
            }
        }
    }

    /// Replicas alive on this store (their leases unexpired); 1 for a
    /// store only this process uses.
    pub async fn replicas_alive(&self) -> Result<u64, StoreError> {
        match &self.ping {
            Some(p) => p.replicas().await,
            None => Ok(1),
        }
    }

    /// Sweeps now what the store's housekeeping sweeps every minute
    /// (PostgreSQL: expired answers and locks, ended tasks, tombstones).
    pub async fn housekeep(&self) -> Result<(), StoreError> {
        match &self.ping {
            Some(p) => p.housekeep().await,
            None => Ok(()),
        }
    }

    /// Whether the store answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.ping {
            Some(p) => p.ping().await,
            None => Ok(()),
        }
    }
}
