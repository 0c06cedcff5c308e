//! Task states, saved at once (SQLite has no background writer) and
//! forgotten once their registry lets them go.

use super::{db_error, Sqlite};
use crate::model::{Task, TaskId};
use crate::store::{rows, StoreError, TaskLog};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::time::Instant;

pub(super) fn put_tasks(conn: &Connection, registry: &str, tasks: &[Task]) -> Result<(), StoreError> {
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
