//! The token issuer's state: failed-login counts and the signing key.

use super::{db_error, unix_now, Sqlite};
use crate::store::{LoginLog, StoreError};
use async_trait::async_trait;
use rusqlite::params;

#[async_trait]
impl LoginLog for Sqlite {
    async fn login_failed(&self, user: &str, at: i64, forget_before: i64) -> Result<(), StoreError> {
        let user = user.to_string();
        let everyone = crate::store::sweep_failures_now();
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
