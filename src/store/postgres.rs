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

use super::pg_tls;
use super::{
    migrations, rows, Answer, Begin, Changes, GroupChange, GroupLog, LoginLog, Ping, RecordLimits, Records, StoreError,
    StoreTelemetry, TaskLog,
};
use crate::config::StoreConfig;
use crate::coord::locks::{KeyGuard, KeyedLocks};
use crate::coord::{Coord, CoordError, Held, LockKey, UncertainCreate};
use crate::model::{Group, Scope, Task, TaskId};
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
    replica: String,
    next_holder: AtomicU64,
    held: Mutex<HashSet<(String, String)>>,
    local: KeyedLocks<LockKey>,
    saves: mpsc::UnboundedSender<(&'static str, Task)>,
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
        let db = Arc::new(Postgres {
            pool,
            telemetry,
            limits,
            lease: Duration::from_secs(cfg.lock_lease_s),
            replica: crate::model::Uuid::new_random().to_string(),
            next_holder: AtomicU64::new(0),
            held: Mutex::new(HashSet::new()),
            local: KeyedLocks::default(),
            saves,
        });
        db.migrate()
            .await
            .map_err(|e| format!("cannot prepare the PostgreSQL store: {}", e.0))?;
        db.announce_alive()
            .await
            .map_err(|e| format!("cannot prepare the PostgreSQL store: {}", e.0))?;
        tokio::spawn(writer(Arc::downgrade(&db), queue));
        tokio::spawn(housekeeping(Arc::downgrade(&db)));
        Ok(db)
    }

    pub fn coord(self: &Arc<Self>) -> Arc<dyn Coord> {
        Arc::new(Shared(self.clone()))
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
        let rows = client
            .query(
                "INSERT INTO sgbridge_locks (key, holder, expires_at)
                 VALUES ($1, $2, now() + make_interval(secs => $3))
                 ON CONFLICT (key) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                 WHERE sgbridge_locks.expires_at < now() OR left(sgbridge_locks.holder, length($4)) = $4
                 RETURNING holder",
                &[&key, &holder, &seconds(self.lease), &ours],
            )
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
        client
            .execute(
                "DELETE FROM sgbridge_locks WHERE key = $1 AND holder = $2",
                &[&key, &holder],
            )
            .await
            .map_err(db_error)?;
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
                 DELETE FROM sgbridge_locks WHERE expires_at < now() - interval '1 minute';
                 DELETE FROM sgbridge_groups_gone WHERE gone_at < now() - interval '1 day';",
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
        for t in tasks {
            let body = rows::task_text(t)?;
            let id = t.id.to_string();
            // A later state never goes back to an earlier one (saves may race).
            client
                .execute(
                    "INSERT INTO sgbridge_tasks (registry, id, state, body, updated_at, owner)
                     VALUES ($1, $2, $3, $4, now(), $5)
                     ON CONFLICT (registry, id) DO UPDATE
                       SET state = EXCLUDED.state, body = EXCLUDED.body, updated_at = now()
                     WHERE sgbridge_tasks.state NOT IN ('FINISHED', 'ERROR') OR EXCLUDED.state IN ('FINISHED', 'ERROR')",
                    &[&registry, &id, &rows::state_name(t), &body, &self.replica],
                )
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }
}

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

fn lock_key(key: &LockKey) -> String {
    match key {
        LockKey::Group(s, id) => format!("group:{s}:{id}"),
        LockKey::Name(s, name) => format!("name:{s}:{name}"),
    }
}

/// A held lease; released (in the background) when dropped.
struct Lease {
    db: Arc<Postgres>,
    key: String,
    holder: String,
    _local: KeyGuard<LockKey>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let entry = (self.key.clone(), self.holder.clone());
        self.db.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&entry);
        let db = self.db.clone();
        // Without a runtime (shutting down) the lease simply expires.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = db.timed("release_lock", db.release(&entry.0, &entry.1)).await {
                    tracing::warn!(error = %e, "a write lock was not released; it expires on its own");
                }
            });
        }
    }
}

/// The coordination seam over the shared store.
struct Shared(Arc<Postgres>);

impl Shared {
    fn coord_error(e: StoreError) -> CoordError {
        CoordError(e.0)
    }

    fn held(&self, key: &LockKey, holder: String, local: KeyGuard<LockKey>) -> Held {
        let name = lock_key(key);
        self.0
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((name.clone(), holder.clone()));
        Held::new(Lease {
            db: self.0.clone(),
            key: name,
            holder,
            _local: local,
        })
    }
}

#[async_trait]
impl Coord for Shared {
    async fn lock(&self, key: LockKey) -> Result<Held, CoordError> {
        let started = Instant::now();
        let local = self.0.local.lock(key.clone()).await;
        let (name, holder) = (lock_key(&key), self.0.holder());
        let mut pause = Duration::from_millis(10);
        loop {
            let got = self.0.timed("acquire_lock", self.0.acquire(&name, &holder)).await;
            if got.map_err(Self::coord_error)? {
                break;
            }
            let jitter = Duration::from_millis(fastrand::u64(0..=pause.as_millis() as u64 / 2));
            tokio::time::sleep(pause + jitter).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
        self.0.telemetry.lock_wait(started.elapsed());
        Ok(self.held(&key, holder, local))
    }

    async fn try_lock(&self, key: LockKey) -> Result<Option<Held>, CoordError> {
        let Some(local) = self.0.local.try_lock(key.clone()) else {
            return Ok(None);
        };
        let (name, holder) = (lock_key(&key), self.0.holder());
        let got = self.0.timed("acquire_lock", self.0.acquire(&name, &holder)).await;
        Ok(got.map_err(Self::coord_error)?.then(|| self.held(&key, holder, local)))
    }

    async fn uncertain(&self, scope: Scope, name: &str) -> Result<Vec<UncertainCreate>, CoordError> {
        let db = &self.0;
        db.timed("uncertain", async {
            let client = db.client().await?;
            let found = client
                .query(
                    "SELECT marker, since FROM sgbridge_uncertain WHERE project_id = $1 AND region_id = $2 AND name = $3",
                    &[&(scope.project_id as i64), &(scope.region_id as i64), &name],
                )
                .await
                .map_err(db_error)?;
            Ok(found
                .iter()
                .map(|r| UncertainCreate {
                    scope,
                    name: name.to_string(),
                    marker: r.get(0),
                    since: r.get(1),
                })
                .collect())
        })
        .await
        .map_err(Self::coord_error)
    }

    async fn record_uncertain(&self, c: UncertainCreate) -> Result<(), CoordError> {
        let db = &self.0;
        db.timed("record_uncertain", async {
            let client = db.client().await?;
            client
                .execute(
                    "INSERT INTO sgbridge_uncertain (project_id, region_id, name, marker, since)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[
                        &(c.scope.project_id as i64),
                        &(c.scope.region_id as i64),
                        &c.name,
                        &c.marker,
                        &c.since,
                    ],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        })
        .await
        .map_err(Self::coord_error)
    }

    async fn settle(&self, scope: Scope, name: &str, marker: &str) -> Result<(), CoordError> {
        let db = &self.0;
        db.timed("settle_uncertain", async {
            let client = db.client().await?;
            client
                .execute(
                    "DELETE FROM sgbridge_uncertain WHERE project_id = $1 AND region_id = $2 AND name = $3 AND marker = $4",
                    &[&(scope.project_id as i64), &(scope.region_id as i64), &name, &marker],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        })
        .await
        .map_err(Self::coord_error)
    }
}

/// What a record's answer takes (as [`Answer::size`] counts it).
const ANSWER_BYTES: &str = "(COALESCE(octet_length(body), 0) + COALESCE(octet_length(headers), 0))";

/// Holds the records within `limits`: `principal`'s own quota (its oldest
/// answers go), then the totals (the oldest answers of the caller holding
/// the most bytes go first). Replicas may both trim at once; each deletes
/// only what is past a bound when it looks.
async fn keep_within(
    client: &deadpool_postgres::Object,
    principal: &str,
    limits: RecordLimits,
) -> Result<(), tokio_postgres::Error> {
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    client
        .execute(
            &format!(
                "DELETE FROM sgbridge_idempotency t USING (
                   SELECT key, ROW_NUMBER() OVER w AS n, SUM({ANSWER_BYTES}) OVER w AS running
                   FROM sgbridge_idempotency WHERE principal = $1 AND done
                   WINDOW w AS (ORDER BY expires_at DESC, key DESC ROWS UNBOUNDED PRECEDING)) o
                 WHERE t.principal = $1 AND t.key = o.key AND (o.n > $2 OR o.running > $3)"
            ),
            &[&principal, &as_i64(limits.caller_keys), &as_i64(limits.caller_bytes)],
        )
        .await?;
    for _ in 0..10_000 {
        let row = client
            .query_one(
                &format!(
                    "SELECT COUNT(*)::bigint, COALESCE(SUM({ANSWER_BYTES}), 0)::bigint FROM sgbridge_idempotency WHERE done"
                ),
                &[],
            )
            .await?;
        let (keys, bytes): (i64, i64) = (row.get(0), row.get(1));
        if keys <= as_i64(limits.max_keys) && bytes <= as_i64(limits.max_bytes) {
            break;
        }
        let excess = (keys - as_i64(limits.max_keys)).max(1);
        client
            .execute(
                &format!(
                    "DELETE FROM sgbridge_idempotency t USING (
                       SELECT principal, key FROM sgbridge_idempotency WHERE done AND principal = (
                         SELECT principal FROM sgbridge_idempotency WHERE done GROUP BY principal
                         ORDER BY SUM({ANSWER_BYTES}) DESC, COUNT(*) DESC LIMIT 1)
                       ORDER BY expires_at, key LIMIT $1) o
                     WHERE t.principal = o.principal AND t.key = o.key"
                ),
                &[&excess],
            )
            .await?;
    }
    Ok(())
}

#[async_trait]
impl Records for Postgres {
    async fn begin(
        &self,
        principal: &str,
        key: &str,
        fingerprint: u64,
        in_flight: Duration,
    ) -> Result<Begin, StoreError> {
        let fp = fingerprint as i64;
        self.timed("idempotency_begin", async {
            let client = self.client().await?;
            let claimed = client
                .query(
                    "INSERT INTO sgbridge_idempotency (principal, key, fingerprint, done, expires_at)
                     VALUES ($1, $2, $3, false, now() + make_interval(secs => $4))
                     ON CONFLICT (principal, key) DO UPDATE
                       SET fingerprint = EXCLUDED.fingerprint, done = false, status = NULL, headers = NULL,
                           body = NULL, expires_at = EXCLUDED.expires_at
                     WHERE sgbridge_idempotency.expires_at < now()
                     RETURNING true",
                    &[&principal, &key, &fp, &seconds(in_flight)],
                )
                .await
                .map_err(db_error)?;
            if !claimed.is_empty() {
                return Ok(Begin::Fresh);
            }
            let row = client
                .query_one(
                    "SELECT fingerprint, done, status, headers, body FROM sgbridge_idempotency
                     WHERE principal = $1 AND key = $2",
                    &[&principal, &key],
                )
                .await
                .map_err(db_error)?;
            let fingerprint = row.get::<_, i64>(0) as u64;
            if !row.get::<_, bool>(1) {
                return Ok(Begin::InFlight { fingerprint });
            }
            let answer = Answer {
                status: u16::try_from(row.get::<_, Option<i32>>(2).unwrap_or(500)).unwrap_or(500),
                headers: rows::headers_from(&row.get::<_, Option<String>>(3).unwrap_or_default()),
                body: row.get::<_, Option<Vec<u8>>>(4).unwrap_or_default(),
            };
            Ok(Begin::Done { fingerprint, answer })
        })
        .await
    }

    async fn finish(
        &self,
        principal: &str,
        key: &str,
        fingerprint: u64,
        answer: Answer,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let (fp, status) = (fingerprint as i64, i32::from(answer.status));
        let headers = rows::headers_text(&answer);
        self.timed("idempotency_finish", async {
            let client = self.client().await?;
            client
                .execute(
                    "UPDATE sgbridge_idempotency SET done = true, status = $4, headers = $5, body = $6,
                       expires_at = now() + make_interval(secs => $7)
                     WHERE principal = $1 AND key = $2 AND fingerprint = $3",
                    &[&principal, &key, &fp, &status, &headers, &answer.body, &seconds(ttl)],
                )
                .await
                .map_err(db_error)?;
            keep_within(&client, principal, self.limits).await.map_err(db_error)
        })
        .await
    }

    async fn abandon(&self, principal: &str, key: &str) -> Result<(), StoreError> {
        self.timed("idempotency_abandon", async {
            let client = self.client().await?;
            client
                .execute(
                    "DELETE FROM sgbridge_idempotency WHERE principal = $1 AND key = $2 AND NOT done",
                    &[&principal, &key],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn page(&self, after: Option<(String, String)>, limit: usize) -> Result<Vec<super::Kept>, StoreError> {
        let (principal, key) = after.unwrap_or_default();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.timed("records_page", async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT principal, key, fingerprint, status, headers, body,
                            extract(epoch FROM expires_at)::bigint
                     FROM sgbridge_idempotency
                     WHERE done AND (principal, key) > ($1, $2) ORDER BY principal, key LIMIT $3",
                    &[&principal, &key, &limit],
                )
                .await
                .map_err(db_error)?;
            Ok(rows
                .iter()
                .map(|r| super::Kept {
                    principal: r.get(0),
                    key: r.get(1),
                    fingerprint: r.get::<_, i64>(2) as u64,
                    answer: Answer {
                        status: u16::try_from(r.get::<_, Option<i32>>(3).unwrap_or(0)).unwrap_or(0),
                        headers: rows::headers_from(&r.get::<_, Option<String>>(4).unwrap_or_default()),
                        body: r.get::<_, Option<Vec<u8>>>(5).unwrap_or_default(),
                    },
                    expires_at: r.get(6),
                })
                .collect())
        })
        .await
    }

    async fn held(&self) -> Result<(u64, u64), StoreError> {
        self.timed("records_held", async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    &format!(
                        "SELECT COUNT(*)::bigint, COALESCE(SUM({ANSWER_BYTES}), 0)::bigint FROM sgbridge_idempotency WHERE done"
                    ),
                    &[],
                )
                .await
                .map_err(db_error)?;
            let (keys, bytes): (i64, i64) = (row.get(0), row.get(1));
            Ok((keys.max(0) as u64, bytes.max(0) as u64))
        })
        .await
    }
}

#[async_trait]
impl TaskLog for Postgres {
    fn save(&self, registry: &'static str, task: &Task) {
        let _ = self.saves.send((registry, task.clone()));
    }

    async fn save_now(&self, registry: &'static str, tasks: &[Task]) -> Result<(), StoreError> {
        self.timed("save_tasks", async {
            let client = self.client().await?;
            self.put_tasks(&client, registry, tasks).await
        })
        .await
    }

    async fn load_all(&self, registry: &'static str) -> Result<Vec<Task>, StoreError> {
        self.timed("load_tasks", async {
            let client = self.client().await?;
            let found = client
                .query("SELECT body FROM sgbridge_tasks WHERE registry = $1", &[&registry])
                .await
                .map_err(db_error)?;
            found.iter().map(|r| rows::task_from(r.get(0))).collect()
        })
        .await
    }

    async fn load(&self, registry: &'static str, id: &TaskId) -> Result<Option<Task>, StoreError> {
        let id = id.to_string();
        self.timed("load_task", async {
            let client = self.client().await?;
            let found = client
                .query_opt(
                    "SELECT body FROM sgbridge_tasks WHERE registry = $1 AND id = $2",
                    &[&registry, &id],
                )
                .await
                .map_err(db_error)?;
            found.map(|r| rows::task_from(r.get(0))).transpose()
        })
        .await
    }

    async fn page(&self, registry: &'static str, after: Option<String>, limit: usize) -> Result<Vec<Task>, StoreError> {
        let after = after.unwrap_or_default();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.timed("tasks_page", async {
            let client = self.client().await?;
            let found = client
                .query(
                    "SELECT body FROM sgbridge_tasks WHERE registry = $1 AND id > $2 ORDER BY id LIMIT $3",
                    &[&registry, &after, &limit],
                )
                .await
                .map_err(db_error)?;
            found.iter().map(|r| rows::task_from(r.get(0))).collect()
        })
        .await
    }

    fn forget(&self, registry: &'static str, ids: Vec<TaskId>) {
        let (pool, telemetry) = (self.pool.clone(), self.telemetry.clone());
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // shutting down: the daily sweep takes them
        };
        runtime.spawn(async move {
            let started = Instant::now();
            let deleted = async {
                let client = pool.get().await.map_err(db_error)?;
                client
                    .execute(
                        "DELETE FROM sgbridge_tasks WHERE registry = $1 AND id = ANY($2)
                         AND state IN ('FINISHED', 'ERROR')",
                        &[&registry, &ids],
                    )
                    .await
                    .map_err(db_error)
            }
            .await;
            telemetry.store_call("forget_tasks", deleted.is_ok(), started.elapsed());
            if let Err(e) = deleted {
                tracing::warn!(error = %e, "ended tasks were not deleted; the daily sweep will");
            }
        });
    }
}

#[async_trait]
impl GroupLog for Postgres {
    async fn commit(&self, changes: &[GroupChange], tasks: &[Task]) -> Result<(), StoreError> {
        self.timed("commit_groups", async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            if !changes.is_empty() {
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&GROUPS_LOCK])
                    .await
                    .map_err(db_error)?;
            }
            for change in changes {
                match change {
                    GroupChange::Put { scope, seq, group } => {
                        let body = rows::group_text(*scope, group)?;
                        tx.execute(
                            "INSERT INTO sgbridge_groups (project_id, region_id, id, seq, revision, body, changed)
                             VALUES ($1, $2, $3, $4, $5, $6, nextval('sgbridge_group_changes'))
                             ON CONFLICT (project_id, region_id, id) DO UPDATE
                               SET revision = EXCLUDED.revision, body = EXCLUDED.body, changed = EXCLUDED.changed
                             WHERE sgbridge_groups.revision <= EXCLUDED.revision",
                            &[
                                &(scope.project_id as i64),
                                &(scope.region_id as i64),
                                &group.id().to_string(),
                                &(*seq as i64),
                                &(group.meta.revision as i64),
                                &body,
                            ],
                        )
                        .await
                        .map_err(db_error)?;
                    }
                    GroupChange::Gone { scope, id } => {
                        let key: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                            [&(scope.project_id as i64), &(scope.region_id as i64), &id.to_string()];
                        tx.execute(
                            "DELETE FROM sgbridge_groups WHERE project_id = $1 AND region_id = $2 AND id = $3",
                            &key,
                        )
                        .await
                        .map_err(db_error)?;
                        tx.execute(
                            "INSERT INTO sgbridge_groups_gone (project_id, region_id, id, changed)
                             VALUES ($1, $2, $3, nextval('sgbridge_group_changes')) ON CONFLICT DO NOTHING",
                            &key,
                        )
                        .await
                        .map_err(db_error)?;
                    }
                }
            }
            self.put_tasks(&tx, "embedded", tasks).await?;
            tx.commit().await.map_err(db_error)
        })
        .await
    }

    async fn load(&self) -> Result<Vec<(Scope, u64, Group)>, StoreError> {
        self.timed("load_groups", async {
            let client = self.client().await?;
            let found = client
                .query("SELECT project_id, region_id, seq, body FROM sgbridge_groups", &[])
                .await
                .map_err(db_error)?;
            found
                .iter()
                .map(|r| {
                    let scope = Scope {
                        project_id: r.get::<_, i64>(0) as u64,
                        region_id: r.get::<_, i64>(1) as u64,
                    };
                    Ok((scope, r.get::<_, i64>(2) as u64, rows::group_from(r.get(3))?))
                })
                .collect()
        })
        .await
    }

    fn shared(&self) -> bool {
        true
    }

    async fn changes(&self, cursor: i64) -> Result<Changes, StoreError> {
        self.timed("group_changes", async {
            let client = self.client().await?;
            // One statement, one snapshot: a prefix of the changes in order.
            let found = client
                .query(
                    "SELECT project_id, region_id, id, seq, body, changed FROM sgbridge_groups WHERE changed > $1
                     UNION ALL
                     SELECT project_id, region_id, id, 0, NULL, changed FROM sgbridge_groups_gone WHERE changed > $1",
                    &[&cursor],
                )
                .await
                .map_err(db_error)?;
            let mut out = Changes {
                cursor,
                ..Changes::default()
            };
            for r in found {
                let scope = Scope {
                    project_id: r.get::<_, i64>(0) as u64,
                    region_id: r.get::<_, i64>(1) as u64,
                };
                out.cursor = out.cursor.max(r.get::<_, i64>(5));
                match r.get::<_, Option<&str>>(4) {
                    Some(body) => out
                        .put
                        .push((scope, r.get::<_, i64>(3) as u64, rows::group_from(body)?)),
                    None => {
                        let id = crate::model::GroupId::parse(r.get::<_, &str>(2))
                            .ok_or_else(|| StoreError("a stored group id is not valid".into()))?;
                        out.gone.push((scope, id));
                    }
                }
            }
            Ok(out)
        })
        .await
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
}

#[async_trait]
impl LoginLog for Postgres {
    async fn login_failed(&self, user: &str, at: i64, forget_before: i64) -> Result<(), StoreError> {
        self.timed("login_failed", async {
            let client = self.client().await?;
            client
                .execute(
                    "WITH gone AS (DELETE FROM sgbridge_login_failures WHERE username = $1 AND at < $3)
                     INSERT INTO sgbridge_login_failures (username, at) VALUES ($1, $2)",
                    &[&user, &at, &forget_before],
                )
                .await
                .map_err(db_error)?;
            if super::sweep_failures_now() {
                client
                    .execute("DELETE FROM sgbridge_login_failures WHERE at < $1", &[&forget_before])
                    .await
                    .map_err(db_error)?;
            }
            Ok(())
        })
        .await
    }

    async fn login_failures(&self, user: &str, since: i64) -> Result<Vec<i64>, StoreError> {
        self.timed("login_failures", async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT at FROM sgbridge_login_failures WHERE username = $1 AND at >= $2 ORDER BY at",
                    &[&user, &since],
                )
                .await
                .map_err(db_error)?;
            Ok(rows.iter().map(|r| r.get::<_, i64>(0)).collect())
        })
        .await
    }

    async fn login_succeeded(&self, user: &str) -> Result<(), StoreError> {
        self.timed("login_succeeded", async {
            let client = self.client().await?;
            client
                .execute("DELETE FROM sgbridge_login_failures WHERE username = $1", &[&user])
                .await
                .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn signing_key(&self, candidate: &str) -> Result<String, StoreError> {
        self.timed("signing_key", async {
            let client = self.client().await?;
            // Replicas starting together: the first insert wins, every one reads it.
            client
                .execute(
                    "INSERT INTO sgbridge_signing_keys (id, pem, created_at)
                     VALUES (1, $1, extract(epoch FROM now())::bigint) ON CONFLICT (id) DO NOTHING",
                    &[&candidate],
                )
                .await
                .map_err(db_error)?;
            let row = client
                .query_one("SELECT pem FROM sgbridge_signing_keys WHERE id = 1", &[])
                .await
                .map_err(db_error)?;
            Ok(row.get(0))
        })
        .await
    }
}
