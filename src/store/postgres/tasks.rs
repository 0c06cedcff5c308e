//! Task states, saved in the background (a writer queue) or at once, and
//! swept once their registry lets them go.

use super::{db_error, Postgres};
use crate::model::{Task, TaskId};
use crate::store::{rows, StoreError, TaskLog};
use async_trait::async_trait;
use tokio::time::Instant;

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
