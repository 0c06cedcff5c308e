//! Audit events in their table, filtered and paged in SQL (indexed by
//! time, target and type).

use super::{db_error, Sqlite};
use crate::store::audit::{self, AuditEvent, AuditLog, EventQuery, Party, SqlValue};
use crate::store::StoreError;
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};

fn event(r: &Row<'_>) -> rusqlite::Result<AuditEvent> {
    Ok(AuditEvent {
        guid: r.get(0)?,
        kind: r.get(1)?,
        created_at: r.get(2)?,
        updated_at: r.get(3)?,
        actor: Party {
            guid: r.get(4)?,
            kind: r.get(5)?,
            name: r.get(6)?,
        },
        target: Party {
            guid: r.get(7)?,
            kind: r.get(8)?,
            name: r.get(9)?,
        },
        space_guid: r.get(10)?,
        organization_guid: r.get(11)?,
        data: r.get(12)?,
        request_id: r.get(13)?,
    })
}

fn value(v: SqlValue) -> Value {
    match v {
        SqlValue::Text(t) => Value::Text(t),
        SqlValue::Int(i) => Value::Integer(i),
    }
}

#[async_trait]
impl AuditLog for Sqlite {
    async fn put(&self, e: &AuditEvent) -> Result<(), StoreError> {
        let e = e.clone();
        self.run("audit_put", move |conn| {
            conn.execute(
                &audit::upsert_sql(&|n| format!("?{n}")),
                params![
                    e.guid,
                    e.kind,
                    e.created_at,
                    e.updated_at,
                    e.actor.guid,
                    e.actor.kind,
                    e.actor.name,
                    e.target.guid,
                    e.target.kind,
                    e.target.name,
                    e.space_guid,
                    e.organization_guid,
                    e.data,
                    e.request_id
                ],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn discard(&self, guid: &str) -> Result<(), StoreError> {
        let guid = guid.to_string();
        self.run("audit_discard", move |conn| {
            conn.execute("DELETE FROM sgbridge_audit_events WHERE guid = ?1", params![guid])
                .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn get(&self, guid: &str) -> Result<Option<AuditEvent>, StoreError> {
        let guid = guid.to_string();
        self.run("audit_get", move |conn| {
            conn.query_row(
                &format!("SELECT {} FROM sgbridge_audit_events WHERE guid = ?1", audit::COLUMNS),
                params![guid],
                event,
            )
            .optional()
            .map_err(db_error)
        })
        .await
    }

    async fn list(&self, q: &EventQuery) -> Result<(u64, Vec<AuditEvent>), StoreError> {
        let q = q.clone();
        self.run("audit_list", move |conn| {
            let (cond, values) = q.condition(&|n| format!("?{n}"));
            let values: Vec<Value> = values.into_iter().map(value).collect();
            let total: i64 = conn
                .query_row(&EventQuery::count_sql(&cond), params_from_iter(values.iter()), |r| {
                    r.get(0)
                })
                .map_err(db_error)?;
            let sql = q.select_sql(&cond);
            let mut stmt = conn.prepare(&sql).map_err(db_error)?;
            let rows = stmt
                .query_map(params_from_iter(values.iter()), event)
                .map_err(db_error)?;
            let events = rows.collect::<Result<Vec<_>, _>>().map_err(db_error)?;
            Ok((u64::try_from(total).unwrap_or(0), events))
        })
        .await
    }

    async fn page(&self, after: i64, limit: usize) -> Result<(Vec<AuditEvent>, i64), StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run("audit_page", move |conn| {
            let sql = format!(
                "SELECT {}, seq FROM sgbridge_audit_events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                audit::COLUMNS
            );
            let mut stmt = conn.prepare(&sql).map_err(db_error)?;
            let rows = stmt
                .query_map(params![after, limit], |r| Ok((event(r)?, r.get::<_, i64>(14)?)))
                .map_err(db_error)?;
            let rows = rows.collect::<Result<Vec<_>, _>>().map_err(db_error)?;
            let last = rows.last().map_or(after, |(_, seq)| *seq);
            Ok((rows.into_iter().map(|(e, _)| e).collect(), last))
        })
        .await
    }

    async fn sweep(&self, before: i64, keep: u64) -> Result<u64, StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.run("audit_sweep", move |conn| {
            let [old, past] = crate::store::audit::SWEEP_SQL;
            let old = conn.execute(old, params![before]).map_err(db_error)?;
            let past = conn.execute(past, params![keep]).map_err(db_error)?;
            Ok((old + past) as u64)
        })
        .await
    }
}
