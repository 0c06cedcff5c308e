//! Idempotency records: insert-or-return on a primary key, bounded per
//! answer, per caller and in total.

use super::{db_error, seconds, Postgres};
use crate::store::{rows, Answer, Begin, RecordLimits, Records, StoreError};
use async_trait::async_trait;
use std::time::Duration;

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

    async fn page(&self, after: Option<(String, String)>, limit: usize) -> Result<Vec<crate::store::Kept>, StoreError> {
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
                .map(|r| crate::store::Kept {
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
