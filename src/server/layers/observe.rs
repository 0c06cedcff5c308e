//! One access line, the request metrics and (for writes) one audit record
//! per request, from what the request's journal collected. Labels come from
//! closed sets (the route template, a fixed list of methods), so no request
//! can add a label value.

use super::next;
use crate::server::audit;
use crate::server::http::{Principal, RequestId, Resp};
use crate::server::route::{Dialect, Route, RouteId};
use crate::server::App;
use http::{Method, Request};
use http_body::Body as _;
use std::sync::Arc;
use tokio::time::Instant;

/// The client's address, set by the listener.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// The method as a label from a closed set.
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// What the access line and the audit record take from the request.
struct Seen {
    started: Instant,
    method: &'static str,
    route: Option<Route>,
    request_id: Option<Arc<str>>,
    client: Option<std::net::SocketAddr>,
    dry_run: bool,
}

/// The layer. The request goes to the handler at once and only what the
/// report needs is kept, and the report is its own (boxed) future: this
/// one is held for the whole of a waiting write, and an `async fn` taking
/// the request keeps two slots for it (its argument and its local) and
/// room for every later step (2,080 bytes a request in a release build;
/// now 800).
pub fn observe<S, B>(app: Arc<App>, req: Request<B>, inner: S) -> impl std::future::Future<Output = Resp>
where
    S: crate::server::layers::Rest<B>,
{
    let seen = Seen {
        started: Instant::now(),
        method: method_label(req.method()),
        route: req.extensions().get::<Route>().cloned(),
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
        client: req.extensions().get::<ClientAddr>().map(|c| c.0),
        dry_run: crate::server::dry_run::requested(&req),
    };
    let handler = next(inner, req);
    async move {
        app.metrics.in_flight.inc();
        let (resp, journal) = crate::journal::collect(handler).await;
        app.metrics.in_flight.dec();
        Box::pin(report(app, seen, resp, journal)).await
    }
}

/// The request's metrics, access line and audit record.
async fn report(app: Arc<App>, seen: Seen, resp: Resp, journal: crate::journal::Journal) -> Resp {
    let Seen {
        started,
        method,
        route,
        request_id,
        client,
        dry_run,
    } = seen;
    let route_id = route.as_ref().map_or(RouteId::CfOther, |r| r.id);
    let metrics = &app.metrics;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    metrics.observe(route_id, method, status, elapsed);
    if let Some(o) = resp
        .extensions()
        .get::<crate::server::auth::login::endpoint::LoginOutcome>()
    {
        metrics
            .logins
            .get_or_create(&crate::server::metrics::OutcomeLabels { outcome: o.0 })
            .inc();
        if let Some(who) = resp.extensions().get::<Principal>() {
            let id = request_id.as_deref().unwrap_or("");
            crate::server::ledger::login(&app, who, o.0, id).await;
        }
    }
    let bytes = resp.body().size_hint().exact().unwrap_or(0);
    // The answer names its caller; one made outside the handler (deadline,
    // shutdown grace, panic) does not, and the journal still does.
    let principal = resp
        .extensions()
        .get::<Principal>()
        .map(|p| p.name.as_str())
        .or(journal.principal.as_deref())
        .unwrap_or("");
    let request_id = request_id.as_deref().unwrap_or("");
    let client = client.map(|c| c.to_string()).unwrap_or_default();
    let cause = bounded(journal.cause.as_deref().unwrap_or(""));
    let tasks = journal.tasks.join(",");
    tracing::info!(
        target: "sgbridge::access",
        request_id,
        client = client.as_str(),
        principal,
        dialect = route_id.dialect().label(),
        method,
        route = route_id.template(),
        status,
        bytes,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        backend_calls = journal.backend_calls,
        tasks = tasks.as_str(),
        warnings = journal.warnings.len(),
        cause = cause.as_ref(),
        "request"
    );
    let audited = !matches!(route_id.dialect(), Dialect::Ops | Dialect::Ui);
    if is_write(method) && audited && app.audit.enabled() {
        let path_id = route.as_ref().and_then(|r| {
            (0..4)
                .map(|i| r.param(i))
                .find(|p| crate::model::Uuid::parse(p).is_some())
                .map(str::to_string)
        });
        let views = audit::Views {
            mapping: &app.service.settings().mapping,
            flags: crate::server::cf::v2::flags(&app),
        };
        app.audit
            .write(&audit::Record {
                timestamp: crate::timefmt::now_rfc3339(),
                request_id,
                principal,
                client,
                dialect: route_id.dialect().label(),
                method,
                route: route_id.template(),
                operation: journal
                    .change
                    .as_ref()
                    .map_or_else(|| format!("{method} {}", route_id.template()), |c| c.op.to_string()),
                scope: journal.change.as_ref().map(|c| c.scope.to_string()),
                group: audit::group_ref(&journal, path_id.as_deref()),
                changes: journal.change.as_ref().map(|c| views.changes(route_id.dialect(), c)),
                outcome: audit::outcome(status, &journal, dry_run),
                status,
                error: journal.cause.as_deref().map(bounded).as_deref(),
                tasks: &journal.tasks,
            })
            .await;
    }
    resp
}

/// The longest error text an access line or audit record carries: an error
/// quoting a huge body must not make a huge log line.
const MAX_CAUSE: usize = 2048;

/// `text` cut to [`MAX_CAUSE`] bytes (at a character boundary), saying so.
pub(crate) fn bounded(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_CAUSE {
        return text.into();
    }
    let mut end = MAX_CAUSE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len()).into()
}

fn is_write(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_cause_is_cut_at_a_character_boundary() {
        assert_eq!(bounded("short"), "short");
        let long = "é".repeat(MAX_CAUSE);
        let cut = bounded(&long);
        assert!(cut.len() < MAX_CAUSE + 40, "{}", cut.len());
        assert!(cut.ends_with(&format!("({} bytes in all)", long.len())));
    }
}
