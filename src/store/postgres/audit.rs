//! Audit events in their table, shared by every replica: any replica
//! reads what another wrote. Filtered and paged in SQL (indexed by time,
//! target and type).

use super::{db_error, Postgres};
use crate::store::audit::{self, AuditEvent, AuditLog, EventQuery, Party, SqlValue};
use crate::store::StoreError;
use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

fn event(r: &Row) -> AuditEvent {
    AuditEvent {
        guid: r.get(0),
        kind: r.get(1),
        created_at: r.get(2),
        updated_at: r.get(3),
        actor: Party {
            guid: r.get(4),
            kind: r.get(5),
            name: r.get(6),
        },
        target: Party {
            guid: r.get(7),
            kind: r.get(8),
            name: r.get(9),
        },
        space_guid: r.get(10),
        organization_guid: r.get(11),
        data: r.get(12),
        request_id: r.get(13),
    }
}

fn value(v: &SqlValue) -> &(dyn ToSql + Sync) {
    match v {
        SqlValue::Text(t) => t,
        SqlValue::Int(i) => i,
    }
}

/// The event upsert in PostgreSQL's placeholders, written once (it runs on
/// every write, and its text is the prepared-statement cache's key).
static UPSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| audit::upsert_sql(&|n| format!("${n}")));

#[async_trait]
impl AuditLog for Postgres {
    async fn put(&self, e: &AuditEvent) -> Result<(), StoreError> {
        self.timed("audit_put", async {
            let client = self.client().await?;
            let upsert = super::prepared(&client, &UPSERT).await?;
            client
                .execute(
                    &upsert,
                    &[
                        &e.guid,
                        &e.kind,
                        &e.created_at,
                        &e.updated_at,
                        &e.actor.guid,
                        &e.actor.kind,
                        &e.actor.name,
                        &e.target.guid,
                        &e.target.kind,
                        &e.target.name,
                        &e.space_guid,
                        &e.organization_guid,
                        &e.data,
                        &e.request_id,
                    ],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn discard(&self, guid: &str) -> Result<(), StoreError> {
        self.timed("audit_discard", async {
            let client = self.client().await?;
            client
                .execute("DELETE FROM sgbridge_audit_events WHERE guid = $1", &[&guid])
                .await
                .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn get(&self, guid: &str) -> Result<Option<AuditEvent>, StoreError> {
        self.timed("audit_get", async {
            let client = self.client().await?;
            let row = client
                .query_opt(
                    &format!("SELECT {} FROM sgbridge_audit_events WHERE guid = $1", audit::COLUMNS),
                    &[&guid],
                )
                .await
                .map_err(db_error)?;
            Ok(row.as_ref().map(event))
        })
        .await
    }

    async fn list(&self, q: &EventQuery) -> Result<(u64, Vec<AuditEvent>), StoreError> {
        self.timed("audit_list", async {
            let client = self.client().await?;
            let (cond, values) = q.condition(&|n| format!("${n}"));
            let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(value).collect();
            let total: i64 = client
                .query_one(&EventQuery::count_sql(&cond), &params)
                .await
                .map_err(db_error)?
                .get(0);
            let sql = q.select_sql(&cond);
            let rows = client.query(&sql, &params).await.map_err(db_error)?;
            Ok((u64::try_from(total).unwrap_or(0), rows.iter().map(event).collect()))
        })
        .await
    }

    async fn page(&self, after: i64, limit: usize) -> Result<(Vec<AuditEvent>, i64), StoreError> {
        self.timed("audit_page", async {
            let client = self.client().await?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = client
                .query(
                    &format!(
                        "SELECT {}, seq FROM sgbridge_audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
                        audit::COLUMNS
                    ),
                    &[&after, &limit],
                )
                .await
                .map_err(db_error)?;
            let last = rows.last().map_or(after, |r| r.get::<_, i64>(14));
            Ok((rows.iter().map(event).collect(), last))
        })
        .await
    }

    async fn sweep(&self, before: i64, keep: u64) -> Result<u64, StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.timed("audit_sweep", async {
            let client = self.client().await?;
            let [old, past] = crate::store::audit::SWEEP_SQL;
            let old = client.execute(old, &[&before]).await.map_err(db_error)?;
            let past = client.execute(past, &[&keep]).await.map_err(db_error)?;
            Ok(old + past)
        })
        .await
    }
}
