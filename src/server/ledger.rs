//! Audit events kept in the store, for `GET /v3/audit_events` and the
//! page: one per change of a security group (every dialect, every
//! backend) and one per login.
//!
//! A change's event is written before the request reaches its handler
//! (its intent: `data.outcome = "pending"`) and completed with what changed
//! once the answer is known — or dropped when nothing changed (the caller
//! was refused, or the request failed before it planned a change). A write
//! whose intent cannot be stored is refused (503, in the caller's dialect)
//! before anything is sent. So every change that happened has its event.
//! With the embedded backend on a durable store, the commit of the change
//! marks the event `applied` in its own transaction
//! ([`crate::store::audit::settle_sql`]); on a remote backend an event that
//! stays `pending` was cut short (the process stopped, or the request was
//! dropped) and may or may not have been applied.
//!
//! The stdout/file audit stream ([`super::audit`]) is written as before.

use super::audit::Views;
use super::http::{Principal, RequestId, Resp};
use super::layers::{answer_as, next};
use super::route::{Route, RouteId};
use super::App;
use crate::error::{Error, Kind};
use crate::journal::Journal;
use crate::store::audit::{AuditEvent, Party};
use crate::timefmt::unix_now;
use http::{Method, Request};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Events of changes to security groups. The Cloud Controller itself
/// records none for security groups; the names follow its
/// `audit.<resource>.<verb>` form.
pub fn event_type(route: RouteId, method: &Method) -> Option<&'static str> {
    use RouteId as R;
    Some(match (route, method.as_str()) {
        (R::CfGroups | R::V3Groups | R::GcoreCreate, "POST") => "audit.security_group.create",
        (R::CfGroup, "PUT") | (R::V3Group | R::GcorePatch, "PATCH") => "audit.security_group.update",
        (R::CfGroup | R::V3Group | R::GcoreGroup, "DELETE") => "audit.security_group.delete",
        (R::CfGroupSpace | R::CfSpaceGroup, "PUT") | (R::V3GroupSpaces, "POST") => "audit.security_group.bind",
        (R::CfGroupSpace | R::CfSpaceGroup | R::V3GroupSpace, "DELETE") => "audit.security_group.unbind",
        (R::CfDefault, "PUT") => "audit.security_group.default_enable",
        (R::CfDefault, "DELETE") => "audit.security_group.default_disable",
        (R::GcoreRules, "POST") => "audit.security_group.rule_create",
        (R::GcoreRule | R::GcoreV1Rule, "DELETE") => "audit.security_group.rule_delete",
        (R::GcoreV1Rule, "PUT") => "audit.security_group.rule_replace",
        (R::GcoreCopy, "POST") => "audit.security_group.copy",
        (R::GcoreRevert, "POST") => "audit.security_group.revert",
        _ => return None,
    })
}

pub const LOGIN: &str = "audit.user.login";
pub const LOGIN_FAILED: &str = "audit.user.login_failed";

/// Every type the gateway records (the page offers them as a filter).
pub const TYPES: &[&str] = &[
    "audit.security_group.create",
    "audit.security_group.update",
    "audit.security_group.delete",
    "audit.security_group.bind",
    "audit.security_group.unbind",
    "audit.security_group.default_enable",
    "audit.security_group.default_disable",
    "audit.security_group.rule_create",
    "audit.security_group.rule_delete",
    "audit.security_group.rule_replace",
    "audit.security_group.copy",
    "audit.security_group.revert",
    LOGIN,
    LOGIN_FAILED,
];

/// The group and space a route names in its path.
fn path_target(route: &Route) -> (String, String) {
    use RouteId as R;
    let p = |i| route.param(i).to_string();
    match route.id {
        R::CfGroup | R::V3Group | R::V3GroupSpaces => (p(0), String::new()),
        R::CfGroupSpace | R::V3GroupSpace => (p(0), p(2)),
        R::CfSpaceGroup => (p(2), p(0)),
        R::CfDefault => (p(1), String::new()),
        R::GcorePatch | R::GcoreRules | R::GcoreRule | R::GcoreGroup | R::GcoreCopy | R::GcoreRevert => {
            (p(2), String::new())
        }
        _ => (String::new(), String::new()),
    }
}

pub fn actor(p: &Principal) -> Party {
    let identity = if p.id.is_empty() { &p.name } else { &p.id };
    Party {
        // The same caller is the same actor on every replica and across
        // restarts; its identity is never a secret.
        guid: crate::model::Uuid::derived(identity).as_str().to_string(),
        kind: if p.gcore_key { "gcore_api_key" } else { "user" }.into(),
        name: p.name.clone(),
    }
}

fn group_party(guid: String, name: String) -> Party {
    Party {
        guid,
        kind: "security_group".into(),
        name,
    }
}

/// The layer: writes the intent, calls the handler, completes or drops it.
/// The request goes to the handler's future at once (which runs only once
/// the intent is stored), and the completion is its own (boxed) future:
/// this one is held for the whole of a waiting write, so it keeps neither
/// the request nor room for the completion's state.
pub fn record<S>(app: Arc<App>, req: Request<bytes::Bytes>, inner: S) -> impl std::future::Future<Output = Resp>
where
    S: crate::server::layers::Rest<bytes::Bytes>,
{
    // The dialect and request id a refusal is answered with.
    let intent = intent(&req).map(|i| (i, answer_as(&req)));
    let handler = next(inner, req);
    async move {
        // Used in place, and moved only into the completion: a binding by
        // value would keep a second slot for it through the wait.
        let Some((event, (dialect, id))) = &intent else {
            return handler.await;
        };
        if let Err(e) = app.stores.audit.put(event).await {
            app.metrics.audit_write_failures.inc();
            tracing::error!(error = %e, "the audit event could not be stored; the change was refused");
            let text = "The change was not made: its audit event could not be stored";
            return super::rescue::render(*dialect, &Error::new(Kind::Unavailable, text), id);
        }
        let resp = handler.await;
        match intent {
            Some((event, _)) => Box::pin(settle(app, event, resp)).await,
            None => resp,
        }
    }
}

/// Completes the intent with what the request did, or drops it.
async fn settle(app: Arc<App>, intent: AuditEvent, resp: Resp) -> Resp {
    let journal = crate::journal::snapshot();
    let status = resp.status().as_u16();
    let views = Views {
        mapping: &app.service.settings().mapping,
        flags: super::cf::v2::flags(&app),
    };
    let written = match complete(intent.clone(), &journal, status, views) {
        Some(event) => app.stores.audit.put(&event).await,
        None => app.stores.audit.discard(&intent.guid).await,
    };
    if let Err(e) = written {
        app.metrics.audit_write_failures.inc();
        tracing::error!(event = intent.guid, error = %e, "an audit event was not completed; it stays pending");
    }
    sweep_now_and_then(&app);
    resp
}

/// The event a write request will make, if it is one that changes groups
/// and its caller may make it (a refused caller changes nothing).
fn intent(req: &Request<bytes::Bytes>) -> Option<AuditEvent> {
    let route = req.extensions().get::<Route>()?;
    let kind = event_type(route.id, req.method())?;
    let principal = req.extensions().get::<Principal>()?;
    if req.extensions().get::<super::dry_run::DryRun>().is_some()
        || !super::authorize::passes(principal, route, req.method())
    {
        return None;
    }
    let (group, space) = path_target(route);
    let request_id = req.extensions().get::<RequestId>().map_or("", |r| &*r.0);
    let now = unix_now();
    Some(AuditEvent {
        guid: uuid::Uuid::new_v4().to_string(),
        kind: kind.into(),
        created_at: now,
        updated_at: now,
        actor: actor(principal),
        target: group_party(group, String::new()),
        space_guid: space,
        organization_guid: String::new(),
        data: json!({
            "outcome": "pending",
            "request_id": request_id,
            "dialect": route.dialect().label(),
            "method": req.method().as_str(),
            "route": route.id.template(),
        })
        .to_string(),
        request_id: request_id.to_string(),
    })
}

/// The intent completed with what the request did, or `None` when it
/// changed nothing.
fn complete(mut event: AuditEvent, journal: &Journal, status: u16, views: Views<'_>) -> Option<AuditEvent> {
    let outcome = super::audit::outcome(status, journal, false);
    let keep = match outcome {
        "applied" | "accepted" => true,
        // A failure after the change was planned may have been applied
        // (a timeout, a reset): kept, with the failure.
        "failed" => journal.change.is_some(),
        _ => false,
    };
    if !keep {
        return None;
    }
    let mut data: Map<String, Value> = serde_json::from_str(&event.data).unwrap_or_default();
    data.insert("outcome".into(), outcome.into());
    data.insert("status".into(), status.into());
    data.insert("tasks".into(), json!(journal.tasks));
    if let Some(cause) = &journal.cause {
        data.insert(
            "error".into(),
            super::layers::observe::bounded(cause).into_owned().into(),
        );
    }
    if let Some(change) = &journal.change {
        data.insert("scope".into(), change.scope.to_string().into());
        data.insert("operation".into(), change.op.into());
        data.extend(views.both_dialects(change));
    }
    if let Some(g) = super::audit::group_ref(journal, Some(&event.target.guid)) {
        // A create still running on tasks has no id yet.
        if !g.id.is_empty() {
            event.target.guid = g.id;
        }
        event.target.name = g.name;
    }
    event.data = Value::Object(data).to_string();
    event.updated_at = unix_now().max(event.created_at);
    Some(event)
}

/// Retention: one write in 256 also forgets events past `audit.retention_days`
/// and the oldest past `audit.max_events`.
fn sweep_now_and_then(app: &Arc<App>) {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if !n.is_multiple_of(256) {
        return;
    }
    let days = i64::from(app.cfg.audit.retention_days);
    let (log, before) = (app.stores.audit.clone(), unix_now() - days * 86_400);
    let keep = app.cfg.audit.max_events;
    tokio::spawn(async move {
        if let Err(e) = log.sweep(before, keep).await {
            tracing::warn!(error = %e, "old audit events were not swept");
        }
    });
}

/// Records a login (or a refused one) as an event.
pub async fn login(app: &App, who: &Principal, outcome: &'static str, request_id: &str) {
    let (kind, reason) = match outcome {
        "ok" | "client" => (LOGIN, None),
        "bad_credentials" | "locked" => (LOGIN_FAILED, Some(outcome)),
        _ => return,
    };
    let mut actor = actor(who);
    if outcome == "client" {
        actor.kind = "client".into();
    }
    let now = unix_now();
    let mut data = json!({ "request_id": request_id, "grant": if outcome == "client" { "client_credentials" } else { "password" } });
    if let Some(r) = reason {
        data["reason"] = r.into();
    }
    let event = AuditEvent {
        guid: uuid::Uuid::new_v4().to_string(),
        kind: kind.into(),
        created_at: now,
        updated_at: now,
        target: actor.clone(),
        actor,
        space_guid: String::new(),
        organization_guid: String::new(),
        data: data.to_string(),
        request_id: request_id.to_string(),
    };
    if let Err(e) = app.stores.audit.put(&event).await {
        app.metrics.audit_write_failures.inc();
        tracing::error!(error = %e, "a login's audit event was not stored");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_route_on_groups_has_a_type_and_reads_have_none() {
        assert_eq!(
            event_type(RouteId::CfGroup, &Method::PUT),
            Some("audit.security_group.update")
        );
        assert_eq!(
            event_type(RouteId::GcoreRules, &Method::POST),
            Some("audit.security_group.rule_create")
        );
        assert_eq!(event_type(RouteId::CfGroup, &Method::GET), None);
        assert_eq!(event_type(RouteId::GcoreTaskAck, &Method::POST), None);
    }

    #[test]
    fn an_actor_guid_is_stable() {
        let who = |id: &str| Principal {
            id: id.into(),
            name: "alice".into(),
            ..Principal::default()
        };
        let a = actor(&who("uaa|zone|origin|user-1")).guid;
        assert_eq!(a, actor(&who("uaa|zone|origin|user-1")).guid);
        assert_ne!(a, actor(&who("uaa|zone|origin|user-2")).guid);
        assert!(crate::model::Uuid::parse(&a).is_some());
    }
}
