//! The SQLite store: one process, durable. WAL journal with synchronous
//! commits (`synchronous = FULL`), so what was acknowledged survives a
//! crash. Calls run on the blocking pool, one at a time (one connection).
//! Locks stay in process memory: one process is all this store serves.

mod audit;
mod groups;
mod logins;
mod records;
mod tasks;

use super::{migrations, Ping, RecordLimits, StoreError, StoreTelemetry};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

pub struct Sqlite {
    conn: Arc<Mutex<Connection>>,
    telemetry: Arc<dyn StoreTelemetry>,
    limits: RecordLimits,
}

fn db_error(e: impl std::fmt::Display) -> StoreError {
    StoreError(crate::sanitize::foreign_text(&e.to_string(), &[]))
}

/// Seconds since the epoch, by the wall clock (expiries outlive the process).
fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
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

#[async_trait]
impl Ping for Sqlite {
    async fn ping(&self) -> Result<(), StoreError> {
        self.run("ping", |conn| {
            conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db_error)
        })
        .await
    }
}
