//! Fault injection: sgbridge with backend = gcore in front of the emulator,
//! its faults set through the emulator's API (as the emulator's users set
//! them), and in front of a port nobody answers. Every failure must reach
//! the CF caller as a CC-shaped error with the right status and the
//! backend's message, never a panic.

use crate::support::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

async fn create(http: &Http, gw: &Gateway, name: &str) -> String {
    let r = http
        .cf(
            Method::POST,
            &gw.url("/v2/security_groups"),
            &format!(r#"{{"name":"{name}"}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
    r.json()["metadata"]["guid"].as_str().unwrap().to_string()
}

const RULES: &str = r#"{"rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443"}]}"#;

/// A gateway with backend = gcore in front of an emulator (the embedded
/// backend with its fault controls): faults the emulator can express are
/// injected through its API, as users of the emulator do.
async fn chain(deadline_s: u64) -> (Emulator, Gateway, Http) {
    let emulator = Emulator::start(|_| {}).await;
    let mut cfg = quick_config();
    cfg.wait.deadline_s = deadline_s;
    let gw = start_gcore_backed(&emulator.api, cfg).await;
    (emulator, gw, Http::default())
}

/// The emulator's tasks, newest first.
async fn emulator_tasks(emulator: &Emulator) -> Vec<Value> {
    let url = format!("{}/cloud/v1/tasks?order_by=desc", emulator.api);
    let r = emulator.http.gcore(Method::GET, &url, "").await;
    r.json()["results"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_error_is_a_cf_error_naming_the_task() {
    let (emulator, gw, http) = chain(5).await;
    let guid = create(&http, &gw, "e").await;
    emulator
        .arm(json!([{"operation": "security_groups.update", "effect": "task_error", "message": "Quota exceeded"}]))
        .await;
    let r = http
        .cf(Method::PUT, &gw.url(&format!("/v2/security_groups/{guid}")), RULES)
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    let body = r.json();
    assert_eq!(body["error_code"], "CF-BackendRejected");
    let text = body["description"].as_str().unwrap();
    let failed = emulator_tasks(&emulator).await;
    let task = failed.iter().find(|t| t["state"] == "ERROR").expect("the failed task");
    assert!(
        text.contains("Quota exceeded") && text.contains(task["id"].as_str().unwrap()),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_never_finishes_hits_the_deadline() {
    let (emulator, gw, http) = chain(1).await;
    let guid = create(&http, &gw, "slow").await;
    // A latency of nothing counts the polls.
    emulator
        .arm(json!([
            {"operation": "security_groups.update", "effect": "task_stuck"},
            {"operation": "tasks.get", "effect": "latency", "delay_ms": 0}
        ]))
        .await;
    let r = http
        .cf(Method::PUT, &gw.url(&format!("/v2/security_groups/{guid}")), RULES)
        .await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    let body = r.json();
    assert_eq!(body["error_code"], "CF-GatewayTimeout");
    let text = body["description"].as_str().unwrap();
    let hits = emulator.hits().await;
    assert_eq!(hits[0], 1);
    assert!(hits[1] >= 2, "it polled ({})", hits[1]);
    let stuck = emulator_tasks(&emulator).await;
    let task = stuck.iter().find(|t| t["state"] == "RUNNING").expect("the stuck task");
    assert!(text.contains(task["id"].as_str().unwrap()), "names the task id: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_groups_are_retried_within_the_deadline() {
    let (emulator, gw, http) = chain(5).await;
    let guid = create(&http, &gw, "locked").await;
    emulator
        .arm(
            json!([{"operation": "security_groups.update", "effect": "latency", "delay_ms": 0},
                     {"operation": "security_groups.update", "effect": "locked", "times": 2}]),
        )
        .await;
    let r = http
        .cf(Method::PUT, &gw.url(&format!("/v2/security_groups/{guid}")), RULES)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(emulator.hits().await, [3, 2], "two 409s, then the write");
    // A lock that outlasts the deadline is a 504, not a hang.
    emulator
        .arm(json!([{"operation": "security_groups.update", "effect": "locked"}]))
        .await;
    let mut cfg = quick_config();
    cfg.wait.deadline_s = 1;
    let short = start_gcore_backed(&emulator.api, cfg).await;
    // (A PUT of the rules the group already has changes nothing and sends nothing.)
    let other = r#"{"rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"8443"}]}"#;
    let r = http
        .cf(Method::PUT, &short.url(&format!("/v2/security_groups/{guid}")), other)
        .await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(r.json()["description"].as_str().unwrap().contains("locked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_down_or_failing() {
    let http = Http::default();
    // Nothing listens on this port.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let gw = start_gcore_backed(&dead, quick_config()).await;
    let r = http.cf(Method::GET, &gw.url("/v2/security_groups"), "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["error_code"], "CF-ServiceUnavailable");
    let ready = settled_readiness(&http, &gw.url("/readyz")).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);

    let (emulator, gw, _) = chain(5).await;
    emulator
        .arm(
            json!([{"operation": "security_groups.create", "effect": "http_error", "status": 500,
            "message": "injected failure"}]),
        )
        .await;
    let r = http
        .cf(Method::POST, &gw.url("/v2/security_groups"), r#"{"name":"x"}"#)
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(r.json()["description"].as_str().unwrap().contains("injected failure"));

    // Connections closed without an answer (the gateway retries its reads, then gives up).
    emulator
        .arm(json!([{"operation": "security_groups.list", "effect": "reset"}]))
        .await;
    let r = http.cf(Method::GET, &gw.url("/v2/security_groups"), "").await;
    assert!(matches!(r.status.as_u16(), 502 | 503), "{}", r.status);
    assert_eq!(emulator.hits().await, [3], "the first read and two retries");

    // Slower than the backend request timeout (5 s in tests): a 504.
    let (emulator, gw, _) = chain(30).await;
    emulator
        .arm(json!([{"operation": "security_groups.list", "effect": "latency", "delay_ms": 6000}]))
        .await;
    let r = http.cf(Method::GET, &gw.url("/v2/security_groups"), "").await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_to_one_group_each_see_their_own_state() {
    let (emulator, gw, http) = chain(10).await;
    let guid = create(&http, &gw, "busy").await;
    emulator
        .control(Method::PUT, "/_emulator/timing", r#"{"task_delay_ms": 150}"#)
        .await;
    let http = std::sync::Arc::new(http);
    let mut writers = Vec::new();
    for port in 1000..1008u16 {
        let http = http.clone();
        let url = gw.url(&format!("/v2/security_groups/{guid}"));
        writers.push(tokio::spawn(async move {
            let body = format!(r#"{{"rules":[{{"protocol":"tcp","destination":"10.0.0.0/8","ports":"{port}"}}]}}"#);
            let r = http.cf(Method::PUT, &url, &body).await;
            (port, r.status, r.json())
        }));
    }
    for w in writers {
        let (port, status, body) = w.await.unwrap();
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(
            body["entity"]["rules"],
            json!([{"protocol": "tcp", "destination": "10.0.0.0/8", "ports": port.to_string()}])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_wait_does_not_break_the_gateway() {
    let (emulator, gw, http) = chain(30).await;
    let guid = create(&http, &gw, "left").await;
    emulator
        .arm(json!([{"operation": "security_groups.update", "effect": "task_stuck"}]))
        .await;
    let url = gw.url(&format!("/v2/security_groups/{guid}"));
    let abandoned = tokio::spawn(async move { Http::default().cf(Method::PUT, &url, RULES).await });
    // Leave once the write's task is stuck and the gateway waits on it.
    while emulator.hits().await != [1] {
        tokio::task::yield_now().await;
    }
    abandoned.abort();
    let r = http
        .cf(Method::GET, &gw.url(&format!("/v2/security_groups/{guid}")), "")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let metrics = http.send(Method::GET, &gw.url("/metrics"), &[], "").await;
    assert!(String::from_utf8_lossy(&metrics.body).contains("sgbridge_http_requests_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_at_once_while_the_backend_never_answers() {
    // The kernel completes the connects; nobody ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = quick_config();
    cfg.server.readiness_interval_s = 1;
    cfg.env = cfg.env.with("SGBRIDGE_TEST_GCORE_KEY", "dev-api-key");
    cfg.backend.kind = sgbridge::config::BackendKind::Gcore;
    cfg.backend.gcore.base_url = format!("http://{}", silent.local_addr().unwrap());
    cfg.backend.gcore.project_id = 1;
    cfg.backend.gcore.region_id = 1;
    cfg.backend.gcore.api_key_env = "SGBRIDGE_TEST_GCORE_KEY".into();
    cfg.backend.gcore.request_timeout_s = 120;
    let gw = start(cfg).await;
    let http = Http::default();
    let readyz = || async {
        tokio::time::timeout(
            Duration::from_secs(10),
            http.send(Method::GET, &gw.url("/readyz"), &[], ""),
        )
        .await
        .expect("/readyz answered without waiting on the backend")
    };
    let first = readyz().await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    for _ in 0..500 {
        let r = readyz().await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        if r.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("did not answer within 1 s"))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the probe never gave up on the silent backend");
}
