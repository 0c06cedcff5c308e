//! Fault injection: sgbridge with backend = gcore against a scripted fake
//! Gcore API. Every failure must reach the CF caller as a CC-shaped error
//! with the right status and the backend's message, never a panic.

use crate::support::fake_gcore::{self, TaskFate};
use crate::support::*;
use http::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

async fn setup(deadline_s: u64) -> (fake_gcore::FakeGcore, Gateway, Http) {
    let fake = fake_gcore::start().await;
    let mut cfg = quick_config();
    cfg.wait.deadline_s = deadline_s;
    let gw = start_gcore_backed(&fake.url(), cfg).await;
    (fake, gw, Http::default())
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_error_is_a_cf_error_naming_the_task() {
    let (fake, gw, http) = setup(5).await;
    let guid = create(&http, &gw, "e").await;
    fake.script(|s| s.fate = TaskFate::Error);
    let r = http
        .cf(Method::PUT, &gw.url(&format!("/v2/security_groups/{guid}")), RULES)
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    let body = r.json();
    assert_eq!(body["error_code"], "CF-BackendRejected");
    let text = body["description"].as_str().unwrap();
    assert!(
        text.contains("Scripted failure: quota exceeded") && text.contains("00000000-0000-4000-8000-"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_never_finishes_hits_the_deadline() {
    let (fake, gw, http) = setup(1).await;
    let guid = create(&http, &gw, "slow").await;
    fake.script(|s| s.fate = TaskFate::Never);
    let r = http
        .cf(Method::PUT, &gw.url(&format!("/v2/security_groups/{guid}")), RULES)
        .await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    let body = r.json();
    assert_eq!(body["error_code"], "CF-GatewayTimeout");
    let text = body["description"].as_str().unwrap();
    let polls = fake
        .requests()
        .iter()
        .filter(|l| l.starts_with("GET /cloud/v1/tasks/"))
        .count();
    assert!(polls >= 2, "it polled ({polls})");
    let task = fake
        .requests()
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("GET /cloud/v1/tasks/").map(str::to_string))
        .unwrap();
    assert!(text.contains(&task), "names the task id: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_groups_are_retried_within_the_deadline() {
    let (fake, gw, http) = setup(5).await;
    let guid = create(&http, &gw, "locked").await;
    fake.script(|s| s.conflicts = 2);
    let r = http
        .cf(Method::PUT, &gw.url(&format!("/v2/security_groups/{guid}")), RULES)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
    let patches = fake.requests().iter().filter(|l| l.starts_with("PATCH ")).count();
    assert_eq!(patches, 3, "two 409s, then the write");
    // A lock that outlasts the deadline is a 504, not a hang.
    fake.script(|s| s.conflicts = 1000);
    let mut cfg = quick_config();
    cfg.wait.deadline_s = 1;
    let short = start_gcore_backed(&fake.url(), cfg).await;
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

    let (fake, gw, _) = setup(5).await;
    fake.script(|s| s.fail_all = Some(StatusCode::INTERNAL_SERVER_ERROR));
    let r = http
        .cf(Method::POST, &gw.url("/v2/security_groups"), r#"{"name":"x"}"#)
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(r.json()["description"].as_str().unwrap().contains("scripted failure"));

    fake.script(|s| {
        s.fail_all = None;
        s.drop_connections = true;
    });
    // A fresh gateway: its pool holds no connection opened before the change.
    let fresh = start_gcore_backed(&fake.url(), quick_config()).await;
    let r = http.cf(Method::GET, &fresh.url("/v2/security_groups"), "").await;
    assert!(matches!(r.status.as_u16(), 502 | 503), "{}", r.status);

    // Slower than the backend request timeout (5 s in tests): a 504.
    let (fake, gw, _) = setup(30).await;
    fake.script(|s| s.delay = Duration::from_secs(6));
    let r = http.cf(Method::GET, &gw.url("/v2/security_groups"), "").await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_to_one_group_each_see_their_own_state() {
    let (fake, gw, http) = setup(10).await;
    let guid = create(&http, &gw, "busy").await;
    fake.script(|s| s.fate = TaskFate::FinishAfter(2));
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
    let (fake, gw, http) = setup(30).await;
    let guid = create(&http, &gw, "left").await;
    fake.script(|s| s.fate = TaskFate::Never);
    let url = gw.url(&format!("/v2/security_groups/{guid}"));
    let abandoned = tokio::spawn(async move { Http::default().cf(Method::PUT, &url, RULES).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    abandoned.abort();
    fake.script(|s| s.fate = TaskFate::FinishAfter(1));
    let r = http
        .cf(Method::GET, &gw.url(&format!("/v2/security_groups/{guid}")), "")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let metrics = http.send(Method::GET, &gw.url("/metrics"), &[], "").await;
    assert!(String::from_utf8_lossy(&metrics.body).contains("sgbridge_http_requests_total"));
}

/// `/readyz` answers at once whatever the backend does (issue 26): before
/// the first probe has answered, and while probes hang on a backend that
/// takes connections and never answers, it is 503 at once, never a wait
/// for the backend's request timeout; then the probe's own bound says why.
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
