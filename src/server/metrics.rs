//! Prometheus metrics (`GET /metrics`). Every label value comes from a closed
//! set (route templates, a fixed method list, status codes the gateway
//! answers), so the series count is bounded whatever callers send.

use super::route::RouteId;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub dialect: &'static str,
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub dialect: &'static str,
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

/// Request durations: 1 ms to past the longest wait deadline (about 131 s).
fn buckets() -> impl Iterator<Item = f64> {
    [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0,
        120.0, 180.0,
    ]
    .into_iter()
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<RouteLabels, Histogram>,
    pub in_flight: Gauge,
    pub task_waits: Family<OutcomeLabels, Counter>,
    pub task_wait_seconds: Histogram,
    pub waiting: Gauge,
    pub conflict_retries: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sgbridge");
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| Histogram::new(buckets()));
        let in_flight = Gauge::default();
        let task_waits = Family::<OutcomeLabels, Counter>::default();
        let task_wait_seconds = Histogram::new(buckets());
        let waiting = Gauge::default();
        let conflict_retries = Counter::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, waiting included",
            duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "Requests being answered now",
            in_flight.clone(),
        );
        registry.register("task_waits", "Waits on backend tasks, by outcome", task_waits.clone());
        registry.register(
            "task_wait_duration_seconds",
            "How long writes waited on backend tasks",
            task_wait_seconds.clone(),
        );
        registry.register(
            "conflict_retries",
            "Writes tried again after the backend answered 409 (locked)",
            conflict_retries.clone(),
        );
        Metrics {
            registry,
            requests,
            duration,
            in_flight,
            task_waits,
            task_wait_seconds,
            waiting,
            conflict_retries,
        }
    }
}

impl crate::service::Telemetry for Metrics {
    fn wait_ended(&self, outcome: &'static str, took: Duration) {
        self.task_waits.get_or_create(&OutcomeLabels { outcome }).inc();
        self.task_wait_seconds.observe(took.as_secs_f64());
    }

    fn conflict_retry(&self) {
        self.conflict_retries.inc();
    }
}

impl Metrics {
    pub fn observe(&self, route: RouteId, method: &'static str, status: u16, took: Duration) {
        let dialect = route.dialect().label();
        let route = route.template();
        self.requests
            .get_or_create(&RequestLabels {
                dialect,
                route,
                method,
                status,
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabels { dialect, route })
            .observe(took.as_secs_f64());
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
