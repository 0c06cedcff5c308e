//! The token issuer's state: failed-login counts and the signing key.

use super::{db_error, Postgres};
use crate::store::{LoginLog, StoreError};
use async_trait::async_trait;

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
            if crate::store::sweep_failures_now() {
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
