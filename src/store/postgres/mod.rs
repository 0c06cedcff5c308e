//! The PostgreSQL store: several replicas share one database.
//!
//! - Write exclusion and CF name reservations are leases (`sgbridge_locks`):
//!   a row per held key, renewed while held, taken over once expired — so a
//!   replica that dies gives up what it held within `store.lock_lease_s`,
//!   and a waiting write holds no database connection. Within a replica
//!   the in-process locks queue writers first, so only one per key polls.
//! - Idempotency records are insert-or-return on a primary key.
//! - Tasks and the embedded backend's groups are rows holding their Gcore
//!   wire form.
//!
//! Pool (deadpool-postgres) bounded by `store.max_connections`; every
//! statement bounded by `statement_timeout`; expired rows swept by one
//! replica at a time (a transaction-scoped advisory lock). The URL comes
//! from the environment and is never written anywhere.

mod audit;
mod coord;
mod groups;
mod logins;
mod records;
mod tasks;

use super::pg_tls;
use super::{migrations, rows, Ping, RecordLimits, StoreError, StoreTelemetry};
use crate::config::StoreConfig;
use crate::coord::locks::KeyedLocks;
use crate::coord::{Coord, LockKey};
use crate::model::Task;
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::collections::HashSet;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Advisory lock keys (arbitrary constants of this program).
const MIGRATION_LOCK: i64 = 0x5367_6272_0001;
const SWEEP_LOCK: i64 = 0x5367_6272_0002;
/// Serialises group commits, so change numbers are seen in commit order.
const GROUPS_LOCK: i64 = 0x5367_6272_0003;

/// How long ended tasks stay in the table.
const TASK_KEEP: Duration = Duration::from_secs(24 * 3600);

pub struct Postgres {
    pool: Pool,
    telemetry: Arc<dyn StoreTelemetry>,
    limits: RecordLimits,
    lease: Duration,
    /// How long a deleted group's tombstone is kept (`store.tombstone_keep_s`).
    tombstones: Duration,
    replica: String,
    next_holder: AtomicU64,
    held: Mutex<HashSet<(String, String)>>,
    local: KeyedLocks<LockKey>,
    saves: mpsc::UnboundedSender<(&'static str, Task)>,
    /// Group changes waiting for their transaction ([`groups::committer`]).
    commits: mpsc::UnboundedSender<groups::Pending>,
}

/// A store error without the URL or password in it, with its causes (a
/// refused TLS handshake says why: an unknown issuer, another name).
fn db_error(e: impl std::error::Error) -> StoreError {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    StoreError(crate::sanitize::foreign_text(&text, &[]))
}

/// The statement `sql`, parsed and planned once per connection (deadpool
/// keeps it): the hot statements run for every write, and an unnamed one
/// is parsed and planned again on every call.
async fn prepared(
    client: &impl deadpool_postgres::GenericClient,
    sql: &str,
) -> Result<tokio_postgres::Statement, StoreError> {
    client.prepare_cached(sql).await.map_err(db_error)
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Postgres {
    pub async fn open(
        cfg: &StoreConfig,
        env: &crate::config::Env,
        limits: RecordLimits,
        telemetry: Arc<dyn StoreTelemetry>,
    ) -> Result<Arc<Postgres>, String> {
        let url = env
            .var(&cfg.url_env)
            .ok_or_else(|| format!("store.url_env: the environment variable {} is not set", cfg.url_env))?;
        let (url, tls) = crate::config::pg_url::split(url.trim())
            .map_err(|e| format!("the PostgreSQL URL in {}: {e}", cfg.url_env))?;
        let mut pg = tokio_postgres::Config::from_str(&url)
            .map_err(|_| format!("the PostgreSQL URL in {} is not valid", cfg.url_env))?;
        pg.ssl_mode(pg_tls::ssl_mode(&tls));
        let tls = pg_tls::client_config(&tls).map_err(|e| format!("TLS to PostgreSQL ({}): {e}", cfg.url_env))?;
        let timeout = Duration::from_millis(cfg.statement_timeout_ms);
        pg.options(format!("-c statement_timeout={}", cfg.statement_timeout_ms));
        pg.connect_timeout(timeout);
        pg.application_name("sgbridge");
        let manager = Manager::from_config(
            pg,
            tokio_postgres_rustls::MakeRustlsConnect::new(tls),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(cfg.max_connections)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| format!("the PostgreSQL pool: {e}"))?;
        let (saves, queue) = mpsc::unbounded_channel();
        let (commits, commit_queue) = mpsc::unbounded_channel();
        let db = Arc::new(Postgres {
            pool,
            telemetry,
            limits,
            lease: Duration::from_secs(cfg.lock_lease_s),
            tombstones: Duration::from_secs(cfg.tombstone_keep_s),
            replica: crate::model::Uuid::new_random().to_string(),
            next_holder: AtomicU64::new(0),
            held: Mutex::new(HashSet::new()),
            local: KeyedLocks::default(),
            saves,
            commits,
        });
        db.migrate()
            .await
            .map_err(|e| format!("cannot prepare the PostgreSQL store: {}", e.0))?;
        db.announce_alive()
            .await
            .map_err(|e| format!("cannot prepare the PostgreSQL store: {}", e.0))?;
        tokio::spawn(writer(Arc::downgrade(&db), queue));
        tokio::spawn(groups::committer(Arc::downgrade(&db), commit_queue));
        tokio::spawn(housekeeping(Arc::downgrade(&db)));
        Ok(db)
    }

    pub fn coord(self: &Arc<Self>) -> Arc<dyn Coord> {
        Arc::new(coord::Shared(self.clone()))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(db_error)
    }

    /// Runs one store operation, timed and reported.
    async fn timed<T>(
        &self,
        op: &'static str,
        f: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let out = f.await;
        self.telemetry.store_call(op, out.is_ok(), started.elapsed());
        out
    }

    /// Applies missing migrations, once across replicas starting together.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(db_error)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS sgbridge_schema (version bigint NOT NULL)")
            .await
            .map_err(db_error)?;
        // Only when missing: an ALTER needs the table's owner and its
        // strongest lock, which a role that only uses the store lacks.
        let has_column: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                 WHERE table_name = 'sgbridge_schema' AND column_name = 'readable_by'
                   AND table_schema = current_schema())",
                &[],
            )
            .await
            .map_err(db_error)?
            .get(0);
        if !has_column {
            tx.batch_execute("ALTER TABLE sgbridge_schema ADD COLUMN readable_by bigint")
                .await
                .map_err(db_error)?;
        }
        let newest = tx
            .query_opt(
                "SELECT version, readable_by FROM sgbridge_schema ORDER BY version DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(db_error)?;
        let (current, readable_by): (i64, Option<i64>) = newest.map_or((0, None), |r| (r.get(0), r.get(1)));
        let pending = migrations::pending(migrations::POSTGRES, current, readable_by).map_err(StoreError)?;
        for (i, m) in pending.iter().enumerate() {
            tx.batch_execute(m.statements).await.map_err(db_error)?;
            let version = current + 1 + i as i64;
            tx.execute(
                "INSERT INTO sgbridge_schema (version, readable_by) VALUES ($1, $2)",
                &[&version, &m.readable_by],
            )
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// Takes the lease of `key` if it is free, expired, or this replica's
    /// own. Callers hold the key's in-process lock, so a lease of this
    /// replica's is one whose release (spawned when it was dropped) has not
    /// reached the database yet: without the takeover, a write answered a
    /// moment ago left its group "locked by another task" (409) for the
    /// caller's next write.
    async fn acquire(&self, key: &str, holder: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let ours = format!("{}:", self.replica);
        let acquire = prepared(
            &client,
            "INSERT INTO sgbridge_locks (key, holder, expires_at)
                 VALUES ($1, $2, now() + make_interval(secs => $3))
                 ON CONFLICT (key) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                 WHERE sgbridge_locks.expires_at < now() OR left(sgbridge_locks.holder, length($4)) = $4
                 RETURNING holder",
        )
        .await?;
        let rows = client
            .query(&acquire, &[&key, &holder, &seconds(self.lease), &ours])
            .await
            .map_err(db_error)?;
        Ok(!rows.is_empty())
    }

    /// This replica's own lease, renewed with the locks it holds: while it
    /// lives, the tasks it runs are its own; once it lapses, any replica
    /// ends them ([`end_orphans`](Self::end_orphans)).
    async fn announce_alive(&self) -> Result<(), StoreError> {
        let (key, holder) = (format!("replica:{}", self.replica), format!("{}:alive", self.replica));
        self.acquire(&key, &holder).await?;
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((key, holder));
        Ok(())
    }

    /// Ends in ERROR the unfinished tasks of replicas that stopped renewing
    /// their lease (killed, or partitioned away for longer than it): nothing
    /// of such a task was applied, since a change is saved with its end.
    async fn end_orphans(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        let found = client
            .query(
                "SELECT registry, body FROM sgbridge_tasks t
                 WHERE state NOT IN ('FINISHED', 'ERROR') AND owner IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM sgbridge_locks l
                                   WHERE l.key = 'replica:' || t.owner AND l.expires_at > now())",
                &[],
            )
            .await
            .map_err(db_error)?;
        for row in found {
            let registry: String = row.get(0);
            let mut task = rows::task_from(row.get(1))?;
            let at = chrono::Utc::now();
            task.state = crate::model::TaskState::Error;
            task.error = Some("the replica running this task stopped before it finished; nothing was applied".into());
            task.updated_on = at;
            task.finished_on = Some(at);
            tracing::warn!(task = %task.id, "a task of a stopped replica ends in ERROR");
            self.put_tasks(&client, &registry, std::slice::from_ref(&task)).await?;
        }
        Ok(())
    }

    fn holder(&self) -> String {
        format!("{}:{}", self.replica, self.next_holder.fetch_add(1, Ordering::Relaxed))
    }

    async fn release(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let release = prepared(&client, "DELETE FROM sgbridge_locks WHERE key = $1 AND holder = $2").await?;
        client.execute(&release, &[&key, &holder]).await.map_err(db_error)?;
        Ok(())
    }

    /// Extends every lease this replica holds.
    async fn renew(&self) -> Result<(), StoreError> {
        let holders: Vec<String> = {
            let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            held.iter().map(|(_, h)| h.clone()).collect()
        };
        if holders.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        client
            .execute(
                "UPDATE sgbridge_locks SET expires_at = now() + make_interval(secs => $2) WHERE holder = ANY($1)",
                &[&holders, &seconds(self.lease)],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Deletes expired records; one replica at a time does it.
    async fn sweep(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let mine: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SWEEP_LOCK])
            .await
            .map_err(db_error)?
            .get(0);
        if mine {
            tx.batch_execute(
                "DELETE FROM sgbridge_idempotency WHERE expires_at < now();
                 DELETE FROM sgbridge_locks WHERE expires_at < now() - interval '1 minute';",
            )
            .await
            .map_err(db_error)?;
            // Tombstones go in change order, up to the newest one old
            // enough, and that number is written down: a replica whose
            // cursor is behind it reads every group again (`changes`).
            tx.execute(
                "WITH old AS (
                    DELETE FROM sgbridge_groups_gone WHERE changed <= (
                        SELECT max(changed) FROM sgbridge_groups_gone
                        WHERE gone_at < now() - make_interval(secs => $1))
                    RETURNING changed)
                 INSERT INTO sgbridge_marks (name, value)
                 SELECT 'gone_horizon', max(changed) FROM old HAVING count(*) > 0
                 ON CONFLICT (name) DO UPDATE SET value = GREATEST(sgbridge_marks.value, EXCLUDED.value)",
                &[&seconds(self.tombstones)],
            )
            .await
            .map_err(db_error)?;
            tx.execute(
                "DELETE FROM sgbridge_tasks WHERE state IN ('FINISHED', 'ERROR')
                 AND updated_at < now() - make_interval(secs => $1)",
                &[&seconds(TASK_KEEP)],
            )
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// Saves tasks as run by this replica.
    async fn put_tasks(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        registry: &str,
        tasks: &[Task],
    ) -> Result<(), StoreError> {
        if tasks.is_empty() {
            return Ok(());
        }
        let upsert = prepared(client, TASK_UPSERT).await?;
        for t in tasks {
            let body = rows::task_text(t)?;
            let id = t.id.to_string();
            client
                .execute(&upsert, &[&registry, &id, &rows::state_name(t), &body, &self.replica])
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }
}

/// Saves a task's state: (registry, id, state, body, owner). A later state
/// never goes back to an earlier one (saves may race).
pub(super) const TASK_UPSERT: &str = "INSERT INTO sgbridge_tasks (registry, id, state, body, updated_at, owner)
     VALUES ($1, $2, $3, $4, now(), $5)
     ON CONFLICT (registry, id) DO UPDATE
       SET state = EXCLUDED.state, body = EXCLUDED.body, updated_at = now()
     WHERE sgbridge_tasks.state NOT IN ('FINISHED', 'ERROR') OR EXCLUDED.state IN ('FINISHED', 'ERROR')";

/// Saves task states in the background, in the order they happened.
async fn writer(db: std::sync::Weak<Postgres>, mut queue: mpsc::UnboundedReceiver<(&'static str, Task)>) {
    while let Some((registry, task)) = queue.recv().await {
        let Some(db) = db.upgrade() else { return };
        let saved = db
            .timed("save_task", async {
                let client = db.client().await?;
                db.put_tasks(&client, registry, std::slice::from_ref(&task)).await
            })
            .await;
        if let Err(e) = saved {
            tracing::warn!(task = %task.id, error = %e, "a task's state was not saved");
        }
    }
}

/// Renews leases every third of their life; sweeps and reports the pool
/// every minute.
async fn housekeeping(db: std::sync::Weak<Postgres>) {
    let mut last_sweep = Instant::now();
    loop {
        let lease = match db.upgrade() {
            Some(db) => db.lease,
            None => return,
        };
        tokio::time::sleep(lease / 3).await;
        let Some(db) = db.upgrade() else { return };
        if let Err(e) = db.timed("renew_locks", db.renew()).await {
            tracing::warn!(error = %e, "write locks could not be renewed");
        }
        if let Err(e) = db.timed("end_orphans", db.end_orphans()).await {
            tracing::warn!(error = %e, "tasks of stopped replicas could not be ended");
        }
        let status = db.pool.status();
        db.telemetry.pool(status.size, status.available);
        if last_sweep.elapsed() >= Duration::from_secs(60) {
            last_sweep = Instant::now();
            if let Err(e) = db.timed("sweep", db.sweep()).await {
                tracing::warn!(error = %e, "expired records could not be swept");
            }
        }
    }
}

#[async_trait]
impl Ping for Postgres {
    async fn ping(&self) -> Result<(), StoreError> {
        self.timed("ping", async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await.map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn housekeep(&self) -> Result<(), StoreError> {
        self.timed("sweep", self.sweep()).await
    }

    /// Every replica renews its `replica:` lease while it runs.
    async fn replicas(&self) -> Result<u64, StoreError> {
        self.timed("replicas", async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "SELECT count(*) FROM sgbridge_locks WHERE key LIKE 'replica:%' AND expires_at > now()",
                    &[],
                )
                .await
                .map_err(db_error)?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0).max(1))
        })
        .await
    }
}
