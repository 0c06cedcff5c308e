//! Dry runs: `?dry_run=true` (or `Sgbridge-Dry-Run: true`) on any write
//! answers the plan instead of making the change. The request runs the
//! whole protocol — validation, locks, reads, planning — and the backend
//! decorator stops each write before it is sent, noting it in the journal
//! ([`crate::backend::Instrumented`]). This layer then answers what was
//! planned: the backend requests, the rule changes in the caller's dialect
//! and as the backend would store them, counts, and warnings (port-25
//! narrowing). A request that fails before planning keeps its own answer
//! (a dry run of an invalid body is the same 400; of a delete or a task
//! acknowledgement of something that does not exist, the same 404). Reads
//! ignore `dry_run`: they change nothing, and answer as usual.

use super::audit::{GroupRef, Views};
use super::http::{json, Resp};
use super::layers::next;
use super::route::Route;
use super::App;
use crate::journal;
use http::{Request, StatusCode};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// Marks a request whose writes are planned only.
#[derive(Debug, Clone, Copy)]
pub struct DryRun;

pub const HEADER: &str = "sgbridge-dry-run";

/// Whether the caller asked for a dry run.
pub fn requested<B>(req: &Request<B>) -> bool {
    let query = req.uri().query().unwrap_or("");
    let in_query = form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "dry_run" && v == "true");
    let in_header = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    in_query || in_header
}

#[derive(Serialize)]
struct Plan {
    dry_run: bool,
    operation: String,
    backend: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<GroupRef>,
    /// The backend writes that would be sent, in order.
    backend_requests: Vec<String>,
    backend_rules_before: usize,
    backend_rules_after: usize,
    rules_added: Vec<Value>,
    rules_removed: Vec<Value>,
    backend_rules_added: Vec<Value>,
    backend_rules_removed: Vec<Value>,
    warnings: Vec<String>,
}

pub fn dry_run<S, B>(app: Arc<App>, mut req: Request<B>, inner: S) -> impl std::future::Future<Output = Resp>
where
    S: crate::server::layers::Rest<B>,
{
    use futures_util::future::Either;
    // A read changes nothing: `dry_run` on GET or HEAD is ignored and the
    // read answered as usual. Every other request holds only the
    // handler's future; a dry run's plan is boxed on its own.
    if !requested(&req) || matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
        return Either::Left(next(inner, req));
    }
    req.extensions_mut().insert(DryRun);
    let route = req.extensions().get::<Route>().cloned();
    Either::Right(Box::pin(planned(app, route, next(inner, req))))
}

/// A dry run's answer: the plan the handler recorded in the journal.
async fn planned(app: Arc<App>, route: Option<Route>, handler: impl std::future::Future<Output = Resp>) -> Resp {
    let resp = handler.await;
    let j = journal::snapshot();
    if j.unsent.is_empty() && !resp.status().is_success() {
        return resp;
    }
    let Some(route) = route else { return resp };
    journal::clear_failure();
    let views = Views {
        mapping: &app.service.settings().mapping,
        flags: super::cf::v2::flags(&app),
    };
    let count = |g: &Option<crate::model::Group>| g.as_ref().map_or(0, |g| views.backend_count(g));
    let changes = j.change.as_ref().map(|c| views.changes(route.dialect(), c));
    let changes = changes.unwrap_or_default();
    let plan = Plan {
        dry_run: true,
        operation: j
            .change
            .as_ref()
            .map_or_else(|| "none".to_string(), |c| c.op.to_string()),
        backend: app.service.backend().name(),
        scope: j.change.as_ref().map(|c| c.scope.to_string()),
        group: super::audit::group_ref(&j, None),
        backend_requests: j.unsent.clone(),
        backend_rules_before: j.change.as_ref().map_or(0, |c| count(&c.before)),
        backend_rules_after: j.change.as_ref().map_or(0, |c| count(&c.after)),
        rules_added: changes.rules_added,
        rules_removed: changes.rules_removed,
        backend_rules_added: changes.backend_rules_added,
        backend_rules_removed: changes.backend_rules_removed,
        warnings: j.warnings.clone(),
    };
    let mut out = json(StatusCode::OK, &plan);
    // The principal rides on the answer for the access line.
    if let Some(p) = resp.extensions().get::<super::http::Principal>() {
        out.extensions_mut().insert(p.clone());
    }
    out
}
