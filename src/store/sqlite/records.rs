//! Idempotency records: insert-or-return on a primary key, bounded per
//! answer, per caller and in total.

use super::{db_error, expiry, unix_now, Sqlite};
use crate::store::{rows, Answer, Begin, RecordLimits, Records, StoreError};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use std::time::Duration;

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

    async fn page(&self, after: Option<(String, String)>, limit: usize) -> Result<Vec<crate::store::Kept>, StoreError> {
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
                    Ok(crate::store::Kept {
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
