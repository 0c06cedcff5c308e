//! The SQLite store: one process, durable. WAL journal with synchronous
//! commits (`synchronous = FULL`), so what was acknowledged survives a
//! crash. Calls run on the blocking pool, one at a time (one connection).
//! Locks stay in process memory: one process is all this store serves.

use super::{
    migrations, rows, Answer, Begin, GroupChange, GroupLog, LoginLog, Ping, RecordLimits, Records, StoreError,
    StoreTelemetry, TaskLog,
};
use crate::model::{Group, Scope, Task, TaskId};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

pub struct Sqlite {
    conn: Arc<Mutex<Connection>>,
    telemetry: Arc<dyn StoreTelemetry>,
    limits: RecordLimits,
}

fn db_error(e: impl std::fmt::Display) -> StoreError {
    StoreError(crate::sanitize::foreign_text(&e.to_string(), &[]))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn expiry(d: Duration) -> i64 {
    unix_now().saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Sqlite {
    pub async fn open(path: &Path, limits: RecordLimits, telemetry: Arc<dyn StoreTelemetry>) -> Result<Sqlite, String> {
        let path = path.to_path_buf();
        let conn = tokio::task::spawn_blocking(move || prepare(&path))
            .await
            .map_err(|e| e.to_string())??;
        Ok(Sqlite {
            conn: Arc::new(Mutex::new(conn)),
            telemetry,
            limits,
        })
    }

    /// Runs `f` on the connection, on the blocking pool, timed.
    async fn run<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        let started = Instant::now();
        let out = tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError(e.to_string()))
        .and_then(|r| r);
        self.telemetry.store_call(op, out.is_ok(), started.elapsed());
        out
    }
}

fn prepare(path: &Path) -> Result<Connection, String> {
    let shown = path.display();
    let mut conn = Connection::open(path).map_err(|e| format!("store.path {shown}: {e}"))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .and_then(|_| conn.pragma_update(None, "synchronous", "FULL"))
        .and_then(|_| conn.busy_timeout(Duration::from_secs(5)))
        .map_err(|e| format!("store.path {shown}: {e}"))?;
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS sgbridge_schema (version INTEGER NOT NULL)")
        .map_err(|e| e.to_string())?;
    // The column of the compatibility policy (see `migrations`), added to
    // stores made before it.
    let has_column: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('sgbridge_schema') WHERE name = 'readable_by'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if !has_column {
        tx.execute_batch("ALTER TABLE sgbridge_schema ADD COLUMN readable_by INTEGER")
            .map_err(|e| e.to_string())?;
    }
    let (current, readable_by): (i64, Option<i64>) = tx
        .query_row(
            "SELECT version, readable_by FROM sgbridge_schema ORDER BY version DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(|e| e.to_string())?
        .unwrap_or((0, None));
    let pending = migrations::pending(migrations::SQLITE, current, readable_by)?;
    for (i, m) in pending.iter().enumerate() {
        tx.execute_batch(m.statements).map_err(|e| e.to_string())?;
        tx.execute(
            "INSERT INTO sgbridge_schema (version, readable_by) VALUES (?1, ?2)",
            params![current + 1 + i as i64, m.readable_by],
        )
        .map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())?;
    Ok(conn)
}

fn put_tasks(conn: &Connection, registry: &str, tasks: &[Task]) -> Result<(), StoreError> {
    for t in tasks {
        conn.execute(
            "INSERT INTO sgbridge_tasks (registry, id, state, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (registry, id) DO UPDATE SET state = excluded.state, body = excluded.body
             WHERE sgbridge_tasks.state NOT IN ('FINISHED', 'ERROR') OR excluded.state IN ('FINISHED', 'ERROR')",
            params![registry, t.id.to_string(), rows::state_name(t), rows::task_text(t)?],
        )
        .map_err(db_error)?;
    }
    Ok(())
}

/// What a record's answer takes (as [`Answer::size`] counts it).
const ANSWER_BYTES: &str = "(COALESCE(LENGTH(body), 0) + COALESCE(LENGTH(headers), 0))";

/// Holds the records within `limits`: `principal`'s own quota (its oldest
/// answers go), then the totals (the oldest answers of the caller holding
/// the most bytes go first).
fn keep_within(conn: &Connection, principal: &str, limits: RecordLimits) -> rusqlite::Result<()> {
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    conn.execute(
        &format!(
            "DELETE FROM sgbridge_idempotency WHERE rowid IN (
               SELECT rowid FROM (
                 SELECT rowid, ROW_NUMBER() OVER w AS n, SUM({ANSWER_BYTES}) OVER w AS running
                 FROM sgbridge_idempotency WHERE principal = ?1 AND done = 1
                 WINDOW w AS (ORDER BY expires_at DESC, rowid DESC ROWS UNBOUNDED PRECEDING))
               WHERE n > ?2 OR running > ?3)"
        ),
        params![principal, as_i64(limits.caller_keys), as_i64(limits.caller_bytes)],
    )?;
    // Each round empties part of one caller's share; the bound on rounds
    // only guards against a table changing under the loop.
    for _ in 0..10_000 {
        let (keys, bytes): (i64, i64) = conn.query_row(
            &format!("SELECT COUNT(*), COALESCE(SUM({ANSWER_BYTES}), 0) FROM sgbridge_idempotency WHERE done = 1"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if keys <= as_i64(limits.max_keys) && bytes <= as_i64(limits.max_bytes) {
            break;
        }
        let excess = (keys - as_i64(limits.max_keys)).max(1);
        conn.execute(
            &format!(
                "DELETE FROM sgbridge_idempotency WHERE rowid IN (
                   SELECT rowid FROM sgbridge_idempotency WHERE done = 1 AND principal = (
                     SELECT principal FROM sgbridge_idempotency WHERE done = 1 GROUP BY principal
                     ORDER BY SUM({ANSWER_BYTES}) DESC, COUNT(*) DESC LIMIT 1)
                   ORDER BY expires_at, rowid LIMIT ?1)"
            ),
            params![excess],
        )?;
    }
    Ok(())
}

#[async_trait]
impl Records for Sqlite {
    async fn begin(
        &self,
        principal: &str,
        key: &str,
        fingerprint: u64,
        in_flight: Duration,
    ) -> Result<Begin, StoreError> {
        let (principal, key) = (principal.to_string(), key.to_string());
        self.run("idempotency_begin", move |conn| {
            let tx = conn.transaction().map_err(db_error)?;
            let found: Option<(i64, bool, Option<i64>, Option<String>, Option<Vec<u8>>, i64)> = tx
                .query_row(
                    "SELECT fingerprint, done, status, headers, body, expires_at FROM sgbridge_idempotency
                     WHERE principal = ?1 AND key = ?2",
                    params![principal, key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )
                .optional()
                .map_err(db_error)?;
            let begin = match found {
                Some((fp, done, status, headers, body, expires)) if expires >= unix_now() => {
                    let fingerprint = fp as u64;
                    if done {
                        Begin::Done {
                            fingerprint,
                            answer: Answer {
                                status: status.and_then(|s| u16::try_from(s).ok()).unwrap_or(500),
                                headers: rows::headers_from(&headers.unwrap_or_default()),
                                body: body.unwrap_or_default(),
                            },
                        }
                    } else {
                        Begin::InFlight { fingerprint }
                    }
                }
                _ => {
                    tx.execute(
                        "INSERT OR REPLACE INTO sgbridge_idempotency (principal, key, fingerprint, done, expires_at)
                         VALUES (?1, ?2, ?3, 0, ?4)",
                        params![principal, key, fingerprint as i64, expiry(in_flight)],
                    )
                    .map_err(db_error)?;
                    Begin::Fresh
                }
            };
            tx.commit().map_err(db_error)?;
            Ok(begin)
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
        let (principal, key) = (principal.to_string(), key.to_string());
        let limits = self.limits;
        self.run("idempotency_finish", move |conn| {
            conn.execute(
                "UPDATE sgbridge_idempotency SET done = 1, status = ?4, headers = ?5, body = ?6, expires_at = ?7
                 WHERE principal = ?1 AND key = ?2 AND fingerprint = ?3",
                params![
                    principal,
                    key,
                    fingerprint as i64,
                    i64::from(answer.status),
                    rows::headers_text(&answer),
                    answer.body,
                    expiry(ttl)
                ],
            )
            .map_err(db_error)?;
            // Expired records go as new ones are kept.
            conn.execute(
                "DELETE FROM sgbridge_idempotency WHERE expires_at < ?1",
                params![unix_now()],
            )
            .map_err(db_error)?;
            keep_within(conn, &principal, limits).map_err(db_error)
        })
        .await
    }

    async fn abandon(&self, principal: &str, key: &str) -> Result<(), StoreError> {
        let (principal, key) = (principal.to_string(), key.to_string());
        self.run("idempotency_abandon", move |conn| {
            conn.execute(
                "DELETE FROM sgbridge_idempotency WHERE principal = ?1 AND key = ?2 AND done = 0",
                params![principal, key],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn page(&self, after: Option<(String, String)>, limit: usize) -> Result<Vec<super::Kept>, StoreError> {
        let (principal, key) = after.unwrap_or_default();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run("records_page", move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT principal, key, fingerprint, status, headers, body, expires_at FROM sgbridge_idempotency
                     WHERE done = 1 AND (principal, key) > (?1, ?2) ORDER BY principal, key LIMIT ?3",
                )
                .map_err(db_error)?;
            let rows = stmt
                .query_map(params![principal, key, limit], |r| {
                    Ok(super::Kept {
                        principal: r.get(0)?,
                        key: r.get(1)?,
                        fingerprint: r.get::<_, i64>(2)? as u64,
                        answer: Answer {
                            status: u16::try_from(r.get::<_, Option<i64>>(3)?.unwrap_or(0)).unwrap_or(0),
                            headers: rows::headers_from(&r.get::<_, Option<String>>(4)?.unwrap_or_default()),
                            body: r.get::<_, Option<Vec<u8>>>(5)?.unwrap_or_default(),
                        },
                        expires_at: r.get(6)?,
                    })
                })
                .map_err(db_error)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_error)
        })
        .await
    }

    async fn held(&self) -> Result<(u64, u64), StoreError> {
        self.run("records_held", |conn| {
            let (keys, bytes): (i64, i64) = conn
                .query_row(
                    &format!(
                        "SELECT COUNT(*), COALESCE(SUM({ANSWER_BYTES}), 0) FROM sgbridge_idempotency WHERE done = 1"
                    ),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(db_error)?;
            Ok((keys.max(0) as u64, bytes.max(0) as u64))
        })
        .await
    }
}

#[async_trait]
impl TaskLog for Sqlite {
    fn save(&self, registry: &'static str, task: &Task) {
        let conn = self.conn.clone();
        let task = task.clone();
        let write = move || {
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = put_tasks(&conn, registry, std::slice::from_ref(&task)) {
                tracing::warn!(task = %task.id, error = %e, "a task's state was not saved");
            }
        };
        // Written in place, so states land in the order they happened (a
        // task's start is saved by its starter, with `save_now`); the worker
        // is told it blocks. A single-threaded runtime (tests) cannot, and
        // writes behind.
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(write),
            Ok(_) => drop(tokio::task::spawn_blocking(write)),
            Err(_) => write(),
        }
    }

    async fn save_now(&self, registry: &'static str, tasks: &[Task]) -> Result<(), StoreError> {
        let tasks = tasks.to_vec();
        self.run("save_tasks", move |conn| put_tasks(conn, registry, &tasks))
            .await
    }

    async fn load_all(&self, registry: &'static str) -> Result<Vec<Task>, StoreError> {
        self.run("load_tasks", move |conn| {
            let mut stmt = conn
                .prepare("SELECT body FROM sgbridge_tasks WHERE registry = ?1")
                .map_err(db_error)?;
            let bodies = stmt
                .query_map(params![registry], |r| r.get::<_, String>(0))
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            bodies.iter().map(|b| rows::task_from(b)).collect()
        })
        .await
    }

    async fn load(&self, registry: &'static str, id: &TaskId) -> Result<Option<Task>, StoreError> {
        let id = id.to_string();
        self.run("load_task", move |conn| {
            let body: Option<String> = conn
                .query_row(
                    "SELECT body FROM sgbridge_tasks WHERE registry = ?1 AND id = ?2",
                    params![registry, id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_error)?;
            body.map(|b| rows::task_from(&b)).transpose()
        })
        .await
    }

    async fn page(&self, registry: &'static str, after: Option<String>, limit: usize) -> Result<Vec<Task>, StoreError> {
        let after = after.unwrap_or_default();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run("tasks_page", move |conn| {
            let mut stmt = conn
                .prepare("SELECT body FROM sgbridge_tasks WHERE registry = ?1 AND id > ?2 ORDER BY id LIMIT ?3")
                .map_err(db_error)?;
            let bodies = stmt
                .query_map(params![registry, after, limit], |r| r.get::<_, String>(0))
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            bodies.iter().map(|b| rows::task_from(b)).collect()
        })
        .await
    }

    fn forget(&self, registry: &'static str, ids: Vec<TaskId>) {
        let (conn, telemetry) = (self.conn.clone(), self.telemetry.clone());
        let delete = move || {
            let started = Instant::now();
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            let deleted = forget_tasks(&mut conn, registry, &ids);
            telemetry.store_call("forget_tasks", deleted.is_ok(), started.elapsed());
            if let Err(e) = deleted {
                tracing::warn!(error = %e, "ended tasks were not deleted");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(_) => drop(tokio::task::spawn_blocking(delete)),
            Err(_) => delete(),
        }
    }
}

/// Deletes ended tasks, in one transaction.
fn forget_tasks(conn: &mut Connection, registry: &str, ids: &[TaskId]) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(db_error)?;
    {
        let mut stmt = tx
            .prepare_cached(
                "DELETE FROM sgbridge_tasks WHERE registry = ?1 AND id = ?2 AND state IN ('FINISHED', 'ERROR')",
            )
            .map_err(db_error)?;
        for id in ids {
            stmt.execute(params![registry, id.to_string()]).map_err(db_error)?;
        }
    }
    tx.commit().map_err(db_error)
}

#[async_trait]
impl GroupLog for Sqlite {
    async fn commit(&self, changes: &[GroupChange], tasks: &[Task]) -> Result<(), StoreError> {
        let (changes, tasks) = (changes.to_vec(), tasks.to_vec());
        self.run("commit_groups", move |conn| {
            let tx = conn.transaction().map_err(db_error)?;
            for change in &changes {
                match change {
                    GroupChange::Put { scope, seq, group } => {
                        tx.execute(
                            "INSERT INTO sgbridge_groups (project_id, region_id, id, seq, revision, body)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                             ON CONFLICT (project_id, region_id, id) DO UPDATE
                               SET revision = excluded.revision, body = excluded.body
                             WHERE sgbridge_groups.revision <= excluded.revision",
                            params![
                                scope.project_id as i64,
                                scope.region_id as i64,
                                group.id().to_string(),
                                *seq as i64,
                                group.meta.revision as i64,
                                rows::group_text(*scope, group)?
                            ],
                        )
                        .map_err(db_error)?;
                    }
                    GroupChange::Gone { scope, id } => {
                        tx.execute(
                            "DELETE FROM sgbridge_groups WHERE project_id = ?1 AND region_id = ?2 AND id = ?3",
                            params![scope.project_id as i64, scope.region_id as i64, id.to_string()],
                        )
                        .map_err(db_error)?;
                    }
                }
            }
            put_tasks(&tx, "embedded", &tasks)?;
            tx.commit().map_err(db_error)
        })
        .await
    }

    async fn load(&self) -> Result<Vec<(Scope, u64, Group)>, StoreError> {
        self.run("load_groups", |conn| {
            let mut stmt = conn
                .prepare("SELECT project_id, region_id, seq, body FROM sgbridge_groups")
                .map_err(db_error)?;
            let found = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            found
                .into_iter()
                .map(|(p, r, seq, body)| {
                    let scope = Scope {
                        project_id: p as u64,
                        region_id: r as u64,
                    };
                    Ok((scope, seq as u64, rows::group_from(&body)?))
                })
                .collect()
        })
        .await
    }
}

#[async_trait]
impl Ping for Sqlite {
    async fn ping(&self) -> Result<(), StoreError> {
        self.run("ping", |conn| {
            conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db_error)
        })
        .await
    }
}

#[async_trait]
impl LoginLog for Sqlite {
    async fn login_failed(&self, user: &str, at: i64, forget_before: i64) -> Result<(), StoreError> {
        let user = user.to_string();
        let everyone = super::sweep_failures_now();
        self.run("login_failed", move |conn| {
            conn.execute(
                "DELETE FROM sgbridge_login_failures WHERE username = ?1 AND at < ?2",
                params![user, forget_before],
            )
            .map_err(db_error)?;
            if everyone {
                conn.execute(
                    "DELETE FROM sgbridge_login_failures WHERE at < ?1",
                    params![forget_before],
                )
                .map_err(db_error)?;
            }
            conn.execute(
                "INSERT INTO sgbridge_login_failures (username, at) VALUES (?1, ?2)",
                params![user, at],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn login_failures(&self, user: &str, since: i64) -> Result<Vec<i64>, StoreError> {
        let user = user.to_string();
        self.run("login_failures", move |conn| {
            let mut q = conn
                .prepare("SELECT at FROM sgbridge_login_failures WHERE username = ?1 AND at >= ?2 ORDER BY at")
                .map_err(db_error)?;
            let rows = q.query_map(params![user, since], |r| r.get(0)).map_err(db_error)?;
            rows.collect::<Result<Vec<i64>, _>>().map_err(db_error)
        })
        .await
    }

    async fn login_succeeded(&self, user: &str) -> Result<(), StoreError> {
        let user = user.to_string();
        self.run("login_succeeded", move |conn| {
            conn.execute("DELETE FROM sgbridge_login_failures WHERE username = ?1", params![user])
                .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn signing_key(&self, candidate: &str) -> Result<String, StoreError> {
        let candidate = candidate.to_string();
        self.run("signing_key", move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO sgbridge_signing_keys (id, pem, created_at) VALUES (1, ?1, ?2)",
                params![candidate, unix_now()],
            )
            .map_err(db_error)?;
            conn.query_row("SELECT pem FROM sgbridge_signing_keys WHERE id = 1", [], |r| r.get(0))
                .map_err(db_error)
        })
        .await
    }
}
