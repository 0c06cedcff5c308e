//! One access line and the request metrics per request. Labels come from
//! closed sets (the route template, a fixed list of methods), so no request
//! can add a label value.

use super::next;
use crate::server::http::{Principal, RequestId, Resp};
use crate::server::metrics::Metrics;
use crate::server::route::{Route, RouteId};
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

pub async fn observe<S, B>(metrics: Arc<Metrics>, req: Request<B>, inner: S) -> Resp
where
    S: tower::Service<Request<B>, Response = Resp, Error = std::convert::Infallible>,
{
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req.extensions().get::<Route>().map_or(RouteId::CfOther, |r| r.id);
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let client = req.extensions().get::<ClientAddr>().map(|c| c.0);
    metrics.in_flight.inc();
    let (resp, journal) = crate::journal::collect(next(inner, req)).await;
    metrics.in_flight.dec();
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    metrics.observe(route, method, status, elapsed);
    let bytes = resp.body().size_hint().exact().unwrap_or(0);
    let principal = resp
        .extensions()
        .get::<Principal>()
        .map(|p| p.name.as_str())
        .unwrap_or("");
    let cause = journal.cause.as_deref().unwrap_or("");
    let tasks = journal.tasks.join(",");
    tracing::info!(
        target: "sgbridge::access",
        request_id = request_id.as_deref().unwrap_or(""),
        client = %client.map(|c| c.to_string()).unwrap_or_default(),
        principal,
        dialect = route.dialect().label(),
        method,
        route = route.template(),
        status,
        bytes,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        tasks = tasks.as_str(),
        warnings = journal.warnings.len(),
        cause,
        "request"
    );
    resp
}
