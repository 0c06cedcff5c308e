//! `GET /v3/audit_events[/:guid]`: the events the store keeps
//! ([`crate::server::ledger`]), with CC's filters, order, paging and 400
//! `CF-BadQueryParameter` for a bad query. Who sees what, as CC: admins,
//! admin read-only and global auditors every event; any other reader the
//! events of spaces and orgs it holds roles in — sgbridge knows no roles,
//! so an empty list (and 404 for one event).

use crate::dialect::cf::v3::audit as wire;
use crate::dialect::cf::v3::query::{self, ListQuery, OrderField, Relation, TimeFilter};
use crate::dialect::cf::v3::wire::{Guid, Link, Page, SelfLink};
use crate::dialect::cf::v3::V3Error;
use crate::server::http::{json, Ctx, Resp};
use crate::server::App;
use crate::store::audit::{AuditEvent, EventQuery, OrderBy, Seconds};
use http::StatusCode;

/// Passes CC's token gate (a read scope); the caller may see every event.
fn gate(ctx: &Ctx) -> Result<bool, V3Error> {
    let scopes = &ctx.principal.cf;
    scopes
        .read_scope()
        .then(|| scopes.reads_all())
        .ok_or(V3Error::NotAuthorized)
}

fn seconds(f: &TimeFilter) -> Seconds {
    match f {
        TimeFilter::Any(list) => Seconds::AnyOf(list.iter().map(|t| t.timestamp()).collect()),
        TimeFilter::Compare(r, t) => {
            let t = t.timestamp();
            match r {
                Relation::Lt => Seconds::Lt(t),
                Relation::Lte => Seconds::Lte(t),
                Relation::Gt => Seconds::Gt(t),
                Relation::Gte => Seconds::Gte(t),
            }
        }
    }
}

/// The store's query for a parsed list query.
fn store_query(q: &ListQuery) -> EventQuery {
    let (order, descending) = match q.order {
        None => (OrderBy::Written, false),
        Some((OrderField::UpdatedAt, d)) => (OrderBy::UpdatedAt, d),
        Some((_, d)) => (OrderBy::CreatedAt, d),
    };
    let range = q.window(usize::MAX);
    EventQuery {
        guids: q.guids.clone(),
        types: q.types.clone(),
        target_guids: q.target_guids.clone(),
        target_guids_not: q.target_guids_not.clone(),
        space_guids: q.space_guids.clone(),
        organization_guids: q.organization_guids.clone(),
        actor_names: None,
        created: q.created_ats.as_ref().map(seconds),
        updated: q.updated_ats.as_ref().map(seconds),
        order,
        descending,
        offset: range.start as u64,
        limit: q.per_page as u64,
    }
}

fn time(secs: i64) -> String {
    crate::dialect::cf::render::timestamp(&chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default())
}

fn party(p: crate::store::audit::Party) -> wire::Party {
    wire::Party {
        guid: p.guid,
        kind: p.kind,
        name: p.name,
    }
}

fn guid(g: String) -> Option<Guid> {
    (!g.is_empty()).then_some(Guid { guid: g })
}

pub fn object(app: &App, e: AuditEvent) -> wire::AuditEvent {
    let data = serde_json::value::RawValue::from_string(e.data)
        .unwrap_or_else(|_| serde_json::value::RawValue::from_string("{}".into()).unwrap_or_default());
    wire::AuditEvent {
        links: SelfLink {
            this: Link {
                href: format!("{}/v3/audit_events/{}", app.external_url(), e.guid),
            },
        },
        guid: e.guid,
        created_at: time(e.created_at),
        updated_at: time(e.updated_at),
        kind: e.kind,
        actor: party(e.actor),
        target: party(e.target),
        data,
        space: guid(e.space_guid),
        organization: guid(e.organization_guid),
    }
}

fn unavailable(e: crate::store::StoreError) -> V3Error {
    V3Error::BackendUnavailable(e.to_string())
}

/// `GET /v3/audit_events`.
pub async fn list(app: &App, ctx: &Ctx) -> Result<Resp, V3Error> {
    let sees_all = gate(ctx)?;
    let q = query::parse(&ctx.query, &query::AUDIT_EVENTS)?;
    let (total, events) = if sees_all {
        app.stores.audit.list(&store_query(&q)).await.map_err(unavailable)?
    } else {
        (0, Vec::new())
    };
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let page = Page {
        pagination: q.pagination(&format!("{}/v3/audit_events", app.external_url()), total),
        resources: events.into_iter().map(|e| object(app, e)).collect(),
    };
    Ok(json(StatusCode::OK, &page))
}

/// `GET /v3/audit_events/:guid`.
pub async fn get(app: &App, ctx: &Ctx, guid: &str) -> Result<Resp, V3Error> {
    let not_found = V3Error::ResourceNotFound("Event");
    if !gate(ctx)? {
        return Err(not_found);
    }
    match app.stores.audit.get(guid).await.map_err(unavailable)? {
        Some(e) => Ok(json(StatusCode::OK, &object(app, e))),
        None => Err(not_found),
    }
}
