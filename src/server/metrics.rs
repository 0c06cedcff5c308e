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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunnerLabels {
    pub runner: &'static str,
}

/// Request durations: 1 ms to past the longest wait deadline (about 131 s).
fn buckets() -> impl Iterator<Item = f64> {
    [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0,
        120.0, 180.0,
    ]
    .into_iter()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub op: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    pub commit: &'static str,
}

/// Polls of the task list during one wait: 0 (pushed) to past the most a
/// 60 s deadline allows at the default pace.
fn poll_buckets() -> impl Iterator<Item = f64> {
    [0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 600.0].into_iter()
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<RouteLabels, Histogram>,
    pub in_flight: Gauge,
    pub backend_calls: Family<CallLabels, Counter>,
    pub backend_call_seconds: Family<OpLabels, Histogram>,
    pub task_waits: Family<OutcomeLabels, Counter>,
    pub task_wait_seconds: Histogram,
    /// From a task's end to the wait on it noticing.
    pub task_lateness_seconds: Histogram,
    pub task_waits_in_flight: Gauge,
    pub polls_per_wait: Histogram,
    pub conflict_retries: Counter,
    pub store_calls: Family<CallLabels, Counter>,
    pub store_call_seconds: Family<OpLabels, Histogram>,
    pub lock_wait_seconds: Histogram,
    pub store_pool_size: Gauge,
    pub store_pool_available: Gauge,
    /// Token requests to the gateway's own issuer, by outcome (never by user:
    /// labels come from a closed set).
    pub logins: Family<OutcomeLabels, Counter>,
    /// What an operator alerts on: readiness, reloads, lost audit records,
    /// tasks piling up, idempotency records held. The gauges are read from
    /// their owners when `/metrics` is asked ([`Metrics::refresh`]).
    pub ready: Gauge,
    pub reloads: Family<OutcomeLabels, Counter>,
    pub audit_write_failures: Counter,
    /// Log lines dropped because their writer's queue was full.
    pub log_lines_dropped: Counter,
    pub tasks_pending: Family<RunnerLabels, Gauge>,
    pub idempotency_records: Gauge,
    pub idempotency_record_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sgbridge");
        let m = Metrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(buckets())),
            in_flight: Gauge::default(),
            backend_calls: Family::default(),
            backend_call_seconds: Family::new_with_constructor(|| Histogram::new(buckets())),
            task_waits: Family::default(),
            task_wait_seconds: Histogram::new(buckets()),
            task_lateness_seconds: Histogram::new(buckets()),
            task_waits_in_flight: Gauge::default(),
            polls_per_wait: Histogram::new(poll_buckets()),
            conflict_retries: Counter::default(),
            store_calls: Family::default(),
            store_call_seconds: Family::new_with_constructor(|| Histogram::new(buckets())),
            lock_wait_seconds: Histogram::new(buckets()),
            store_pool_size: Gauge::default(),
            store_pool_available: Gauge::default(),
            logins: Family::default(),
            ready: Gauge::default(),
            reloads: Family::default(),
            audit_write_failures: Counter::default(),
            log_lines_dropped: Counter::default(),
            tasks_pending: Family::default(),
            idempotency_records: Gauge::default(),
            idempotency_record_bytes: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("http_requests", "HTTP requests answered", m.requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, waiting included",
            m.duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "Requests being answered now",
            m.in_flight.clone(),
        );
        registry.register(
            "backend_calls",
            "Calls to the backend, by operation and outcome",
            m.backend_calls.clone(),
        );
        registry.register(
            "backend_call_duration_seconds",
            "Time the backend took to answer, by operation",
            m.backend_call_seconds.clone(),
        );
        registry.register("task_waits", "Waits on backend tasks, by outcome", m.task_waits.clone());
        registry.register(
            "logins",
            "Token requests to the gateway's own issuer (POST /oauth/token), by outcome (ok, bad_credentials, locked, shed, refreshed, refresh_refused, client)",
            m.logins.clone(),
        );
        registry.register(
            "task_wait_duration_seconds",
            "How long writes waited on backend tasks",
            m.task_wait_seconds.clone(),
        );
        registry.register(
            "task_wait_lateness_seconds",
            "From the end of the last task a write waited on (its finished_on) to the wait noticing it",
            m.task_lateness_seconds.clone(),
        );
        registry.register(
            "task_waits_in_flight",
            "Writes waiting on backend tasks now",
            m.task_waits_in_flight.clone(),
        );
        registry.register(
            "task_polls_per_wait",
            "Task-list polls made while one write waited (0: completion was pushed)",
            m.polls_per_wait.clone(),
        );
        registry.register(
            "conflict_retries",
            "Writes tried again after the backend answered 409 (locked)",
            m.conflict_retries.clone(),
        );
        registry.register(
            "store_calls",
            "Calls to the state store, by operation and outcome",
            m.store_calls.clone(),
        );
        registry.register(
            "store_call_duration_seconds",
            "Time the state store took, by operation",
            m.store_call_seconds.clone(),
        );
        registry.register(
            "lock_wait_duration_seconds",
            "Time writes waited for a group or name lock in the shared store",
            m.lock_wait_seconds.clone(),
        );
        registry.register(
            "store_pool_connections",
            "Connections the store pool holds",
            m.store_pool_size.clone(),
        );
        registry.register(
            "store_pool_idle_connections",
            "Connections of the store pool free now",
            m.store_pool_available.clone(),
        );
        registry.register(
            "ready",
            "1 when /readyz would answer 200 (store and backend answering, not draining)",
            m.ready.clone(),
        );
        registry.register(
            "config_reloads",
            "Config reloads, by outcome (ok, failed)",
            m.reloads.clone(),
        );
        registry.register(
            "audit_write_failures",
            "Audit records that could not be written",
            m.audit_write_failures.clone(),
        );
        registry.register(
            "log_lines_dropped",
            "Log lines (access lines first) dropped because stderr could not keep up",
            m.log_lines_dropped.clone(),
        );
        registry.register(
            "tasks_pending",
            "Tasks run in this process not ended yet, by runner (gateway, backend)",
            m.tasks_pending.clone(),
        );
        registry.register(
            "idempotency_records",
            "Idempotency answers kept in the store",
            m.idempotency_records.clone(),
        );
        registry.register(
            "idempotency_record_bytes",
            "Bytes of the idempotency answers kept in the store",
            m.idempotency_record_bytes.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: crate::build::VERSION,
                commit: crate::build::COMMIT,
            })
            .set(1);
        registry.register("build_info", "The running build (always 1)", build);
        Metrics { registry, ..m }
    }
}

impl crate::service::Telemetry for Metrics {
    fn wait_started(&self) {
        self.task_waits_in_flight.inc();
    }

    fn wait_ended(&self, outcome: &'static str, took: Duration, polls: u64) {
        self.task_waits_in_flight.dec();
        self.task_waits.get_or_create(&OutcomeLabels { outcome }).inc();
        self.task_wait_seconds.observe(took.as_secs_f64());
        self.polls_per_wait.observe(polls as f64);
    }

    fn wait_lateness(&self, late: Duration) {
        self.task_lateness_seconds.observe(late.as_secs_f64());
    }

    fn conflict_retry(&self) {
        self.conflict_retries.inc();
    }
}

impl crate::store::StoreTelemetry for Metrics {
    fn store_call(&self, op: &'static str, ok: bool, took: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.store_calls.get_or_create(&CallLabels { op, outcome }).inc();
        self.store_call_seconds
            .get_or_create(&OpLabels { op })
            .observe(took.as_secs_f64());
    }

    fn lock_wait(&self, took: Duration) {
        self.lock_wait_seconds.observe(took.as_secs_f64());
    }

    fn pool(&self, size: usize, available: usize) {
        self.store_pool_size.set(i64::try_from(size).unwrap_or(i64::MAX));
        self.store_pool_available
            .set(i64::try_from(available).unwrap_or(i64::MAX));
    }
}

impl crate::backend::CallTelemetry for Metrics {
    fn backend_call(&self, op: &'static str, outcome: &'static str, took: Duration) {
        self.backend_calls.get_or_create(&CallLabels { op, outcome }).inc();
        self.backend_call_seconds
            .get_or_create(&OpLabels { op })
            .observe(took.as_secs_f64());
    }
}

/// How many log lines the process's log writer dropped (set once, by
/// `serve`, which owns the writer; every `Metrics` of the process reads it).
static DROPPED_LOG_LINES: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicU64>> =
    std::sync::OnceLock::new();

/// Names where the log writer counts the lines it dropped.
pub fn count_dropped_log_lines(counted: std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let _ = DROPPED_LOG_LINES.set(counted);
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

    /// Sets the gauges read from their owners, just before a scrape.
    pub fn refresh(&self, ready: bool, pending: &[(&'static str, usize)], held: Option<(u64, u64)>) {
        self.ready.set(i64::from(ready));
        if let Some(dropped) = DROPPED_LOG_LINES.get() {
            // The writer counts in its own cell; the counter follows it.
            let dropped = dropped.load(std::sync::atomic::Ordering::Relaxed);
            let behind = dropped.saturating_sub(self.log_lines_dropped.get());
            self.log_lines_dropped.inc_by(behind);
        }
        for (runner, n) in pending {
            self.tasks_pending
                .get_or_create(&RunnerLabels { runner })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        if let Some((keys, bytes)) = held {
            self.idempotency_records.set(i64::try_from(keys).unwrap_or(i64::MAX));
            self.idempotency_record_bytes
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
