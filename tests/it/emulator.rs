//! The embedded backend as an emulator with faults: each effect through the
//! Gcore and CF dialects, scoping, `times`, seeded probabilities repeated
//! by two processes, refused definitions, admin-only controls, reset and
//! snapshot/restore. (The real Gcore SDK meets the same faults in
//! `tests/clients/test_emulator.py`.)

use crate::support::process::Proc;
use crate::support::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use sgbridge::config::Config;
use std::io::{Read, Write};

const BASE: &str = "/cloud/v2/security_groups/1/1";
const V1: &str = "/cloud/v1/securitygroups/1/1";
const RULE: &str = r#"{"direction":"egress","protocol":"tcp","port_range_min":443,"port_range_max":443,"remote_ip_prefix":"10.0.0.0/8"}"#;

type Emu = Emulator;

async fn emulator(tune: impl FnOnce(&mut Config)) -> Emu {
    Emulator::start(tune).await
}

impl Emulator {
    async fn gcore(&self, method: Method, path: &str, body: &str) -> Reply {
        self.http.gcore(method, &format!("{}{path}", self.api), body).await
    }

    async fn cf(&self, method: Method, path: &str, body: &str) -> Reply {
        self.http.cf(method, &format!("{}{path}", self.api), body).await
    }

    async fn task(&self, id: &str) -> Value {
        finish_task_at(&self.http, &self.api, id).await
    }

    /// A Gcore task as it is now.
    async fn task_now(&self, id: &str) -> Value {
        self.gcore(Method::GET, &format!("/cloud/v1/tasks/{id}"), "")
            .await
            .json()
    }

    /// A Gcore group with one rule; its id.
    async fn create(&self, name: &str) -> String {
        let r = self
            .gcore(Method::POST, BASE, &format!(r#"{{"name":"{name}","rules":[{RULE}]}}"#))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
        let t = self.task(r.json()["tasks"][0].as_str().unwrap()).await;
        assert_eq!(t["state"], "FINISHED", "{t}");
        t["created_resources"]["security_groups"][0]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn group(&self, id: &str) -> Value {
        let r = self.gcore(Method::GET, &format!("{V1}/{id}"), "").await;
        assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    /// A CF group (on the CF scope, project 1 region 1); its guid.
    async fn cf_create(&self, name: &str) -> String {
        let body = json!({"name": name, "rules": [{"protocol": "tcp", "destination": "10.0.0.0/8", "ports": "443"}]});
        let r = self.cf(Method::POST, "/v2/security_groups", &body.to_string()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
        r.json()["metadata"]["guid"].as_str().unwrap().to_string()
    }
}

impl Emulator {
    /// A CF PUT of the group's rules to one DNS rule.
    async fn cf_put_dns(&self, guid: &str) -> Reply {
        let body = json!({"rules": [{"protocol": "udp", "destination": "10.0.0.0/8", "ports": "53"}]});
        self.cf(Method::PUT, &format!("/v2/security_groups/{guid}"), &body.to_string())
            .await
    }

    /// Asserts the CF group still has the rule it was created with.
    async fn cf_unchanged(&self, guid: &str) {
        let now = self
            .cf(Method::GET, &format!("/v2/security_groups/{guid}"), "")
            .await
            .json();
        assert_eq!(now["entity"]["rules"][0]["protocol"], "tcp", "nothing applied: {now}");
    }
}

fn rule_ports(group: &Value) -> Vec<u64> {
    let mut ports: Vec<u64> = group["security_group_rules"]
        .as_array()
        .map(|rules| rules.iter().filter_map(|r| r["port_range_min"].as_u64()).collect())
        .unwrap_or_default();
    ports.sort_unstable();
    ports
}

fn patch_rules(port: u16) -> String {
    format!(
        r#"{{"rules":[{{"direction":"egress","protocol":"tcp","port_range_min":{port},"port_range_max":{port},"remote_ip_prefix":"10.0.0.0/8"}}]}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controls_are_for_admins_on_the_admin_listener_only() {
    let emu = emulator(|c| {
        c.auth = toml::from_str(
            r#"
            [[cf_tokens]]
            name = "admin"
            secret = "admin-token-0123456789"
            [[cf_tokens]]
            name = "reader"
            secret = "reader-token-0123456789"
            read_only = true
            [[gcore_keys]]
            name = "all"
            secret = "all-projects-key-0123"
            [[gcore_keys]]
            name = "one"
            secret = "one-project-key-01234"
            projects = [1]
            "#,
        )
        .expect("auth config");
    })
    .await;
    let get = |base: &str, auth: &str| {
        let url = format!("{base}/_emulator/faults");
        let headers = [("authorization", auth.to_string())];
        let http = &emu.http;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            http.send(Method::GET, &url, &h, "").await.status
        }
    };
    assert_eq!(
        get(&emu.api, "bearer admin-token-0123456789").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&emu.api, "").await, StatusCode::NOT_FOUND);
    assert_eq!(get(&emu.admin, "").await, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&emu.admin, "bearer wrong").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(&emu.admin, "bearer reader-token-0123456789").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&emu.admin, "APIKey one-project-key-01234").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(get(&emu.admin, "bearer admin-token-0123456789").await, StatusCode::OK);
    assert_eq!(get(&emu.admin, "APIKey all-projects-key-0123").await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_error_is_the_emulated_apis_answer_and_a_backend_failure_to_cf() {
    let emu = emulator(|_| {}).await;
    let id = emu.create("web").await;
    emu.arm(
        json!([{"operation": "security_groups.update", "effect": "http_error", "status": 503,
        "message": "Service is under maintenance", "retry_after_s": 2, "times": 1}]),
    )
    .await;
    let r = emu
        .gcore(Method::PATCH, &format!("{BASE}/{id}"), &patch_rules(80))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(
        r.header("x-should-retry"),
        None,
        "the SDK decides by the status, as against Gcore"
    );
    assert_eq!(r.json()["message"], "Service is under maintenance");
    assert_eq!(r.json()["exception_class"], "ServiceUnavailableError");
    // Spent: the next one goes through.
    let r = emu
        .gcore(Method::PATCH, &format!("{BASE}/{id}"), &patch_rules(80))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    emu.task(r.json()["tasks"][0].as_str().unwrap()).await;
    assert_eq!(rule_ports(&emu.group(&id).await), [80]);
    assert_eq!(emu.hits().await, [1]);

    // A CF caller meets it as the gateway meets a failing Gcore.
    let guid = emu.cf_create("cf-web").await;
    emu.arm(
        json!([{"operation": "security_groups.update", "effect": "http_error", "status": 500,
        "message": "Internal failure 42"}]),
    )
    .await;
    let r = emu.cf_put_dns(&guid).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_GATEWAY,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        r.json()["description"]
            .as_str()
            .unwrap()
            .contains("Internal failure 42"),
        "{}",
        r.json()
    );
    emu.control(Method::DELETE, "/_emulator/faults", "").await;
    emu.cf_unchanged(&guid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_error_ends_the_task_and_applies_nothing() {
    let emu = emulator(|_| {}).await;
    let id = emu.create("web").await;
    emu.arm(json!([{"operation": "security_groups.update", "effect": "task_error",
        "message": "Quota exceeded for security group rules", "group_name": "web"}]))
        .await;
    let r = emu
        .gcore(Method::PATCH, &format!("{BASE}/{id}"), &patch_rules(80))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let t = emu.task(r.json()["tasks"][0].as_str().unwrap()).await;
    assert_eq!(t["state"], "ERROR");
    assert_eq!(t["error"], "Quota exceeded for security group rules");
    assert_eq!(rule_ports(&emu.group(&id).await), [443], "nothing applied");
    // The group is free again, and another group is not affected.
    let other = emu.create("db").await;
    let r = emu
        .gcore(Method::PATCH, &format!("{BASE}/{other}"), &patch_rules(5432))
        .await;
    assert_eq!(
        emu.task(r.json()["tasks"][0].as_str().unwrap()).await["state"],
        "FINISHED"
    );

    // A CF PUT meets the ERROR as the CF error a gateway on Gcore answers.
    let guid = emu.cf_create("cf-web").await;
    emu.arm(json!([{"operation": "security_groups.update", "effect": "task_error", "message": "Neutron said no"}]))
        .await;
    let r = emu.cf_put_dns(&guid).await;
    assert!(r.status.is_client_error() || r.status.is_server_error(), "{}", r.status);
    let text = r.json()["description"].as_str().unwrap().to_string();
    assert!(text.contains("Neutron said no"), "{text}");
    emu.cf_unchanged(&guid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_task_holds_its_group_until_a_reset() {
    let emu = emulator(|c| c.wait.deadline_s = 1).await;
    let id = emu.create("web").await;
    emu.arm(json!([{"operation": "rules.create", "effect": "task_stuck", "times": 1}]))
        .await;
    let r = emu
        .gcore(
            Method::POST,
            &format!("{BASE}/{id}/rules"),
            RULE.replace("443", "8443").as_str(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    let task = r.json()["tasks"][0].as_str().unwrap().to_string();
    // A task started after it, with the same delay, has finished: it still
    // runs, and holds the group.
    emu.create("later").await;
    let t = emu.task_now(&task).await;
    assert_eq!(t["state"], "RUNNING");
    let busy = emu
        .gcore(Method::PATCH, &format!("{BASE}/{id}"), &patch_rules(80))
        .await;
    assert_eq!(busy.status, StatusCode::CONFLICT);

    let r = emu.control(Method::POST, "/_emulator/reset", "").await;
    assert_eq!(r.status, StatusCode::OK);
    let gone = emu.gcore(Method::GET, &format!("/cloud/v1/tasks/{task}"), "").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(emu.gcore(Method::GET, V1, "").await.json()["count"], 0);
    assert_eq!(emu.hits().await, Vec::<u64>::new(), "reset: the config's faults (none)");

    // A CF write whose task never ends meets the wait deadline.
    let guid = emu.cf_create("cf-web").await;
    emu.arm(json!([{"operation": "security_groups.update", "effect": "task_stuck"}]))
        .await;
    let body = json!({"rules": []});
    let r = emu
        .cf(Method::PUT, &format!("/v2/security_groups/{guid}"), &body.to_string())
        .await;
    assert_eq!(
        r.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_is_gcores_409_and_the_gateway_retries_it_for_cf() {
    let emu = emulator(|_| {}).await;
    let id = emu.create("web").await;
    emu.arm(json!([{"operation": "security_groups.update", "effect": "locked", "times": 2}]))
        .await;
    let r = emu
        .gcore(Method::PATCH, &format!("{BASE}/{id}"), &patch_rules(80))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.json()["message"].as_str().unwrap().contains("is already locked"),
        "{}",
        r.json()
    );
    assert_eq!(r.header("x-should-retry"), Some("true"));

    // The gateway waits a locked group out for a CF caller (one hit left).
    let guid = emu.cf_create("cf-web").await;
    let r = emu.cf_put_dns(&guid).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["entity"]["rules"][0]["protocol"], "udp");
    assert_eq!(emu.hits().await, [2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_the_answer_and_stacks_with_an_error() {
    let emu = emulator(|_| {}).await;
    let id = emu.create("web").await;
    emu.arm(json!([
        {"operation": "security_groups.get", "effect": "latency", "delay_ms": 300, "max_delay_ms": 400},
        {"operation": "security_groups.get", "effect": "http_error", "status": 502, "times": 1}
    ]))
    .await;
    let started = tokio::time::Instant::now();
    let r = emu.gcore(Method::GET, &format!("{V1}/{id}"), "").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    let started = tokio::time::Instant::now();
    assert_eq!(
        emu.gcore(Method::GET, &format!("{V1}/{id}"), "").await.status,
        StatusCode::OK
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(emu.hits().await, [2, 1]);

    // A CF read is a backend read: it waits as long.
    let guid = emu.cf_create("cf-web").await;
    emu.arm(json!([{"operation": "security_groups.get", "effect": "latency", "delay_ms": 300}]))
        .await;
    let started = tokio::time::Instant::now();
    let r = emu.cf(Method::GET, &format!("/v2/security_groups/{guid}"), "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert!(emu.hits().await[0] >= 1);
}

/// A raw HTTP/1.1 GET: the bytes answered before the connection closed.
fn raw_get(base: &str, path: &str) -> Vec<u8> {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let req =
        format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: {GCORE_AUTH}\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_closes_the_connection_without_an_answer() {
    let emu = emulator(|_| {}).await;
    let id = emu.create("web").await;
    emu.arm(json!([{"operation": "security_groups.get", "effect": "reset", "times": 1}]))
        .await;
    let (api, path) = (emu.api.clone(), format!("{V1}/{id}"));
    let answered = tokio::task::spawn_blocking(move || raw_get(&api, &path)).await.unwrap();
    assert!(answered.is_empty(), "{}", String::from_utf8_lossy(&answered));
    assert_eq!(
        emu.gcore(Method::GET, &format!("{V1}/{id}"), "").await.status,
        StatusCode::OK
    );

    // The CF caller hears that the backend could not be reached.
    let guid = emu.cf_create("cf-web").await;
    emu.arm(json!([{"operation": "security_groups.get", "effect": "reset", "times": 1}]))
        .await;
    let r = emu.cf(Method::GET, &format!("/v2/security_groups/{guid}"), "").await;
    assert!(r.status.is_server_error(), "{}", r.status);
    assert!(String::from_utf8_lossy(&r.body).contains("reset"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_scoped_by_project_region_and_group_name() {
    let emu = emulator(|_| {}).await;
    let web = emu.create("web").await;
    let db = emu.create("db").await;
    emu.arm(json!([
        {"operation": "security_groups.get", "effect": "http_error", "status": 500, "project_id": 2},
        {"operation": "security_groups.get", "effect": "http_error", "status": 500, "region_id": 9},
        {"operation": "security_groups.get", "effect": "http_error", "status": 418, "group_name": "db"}
    ]))
    .await;
    assert_eq!(
        emu.gcore(Method::GET, &format!("{V1}/{web}"), "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        emu.gcore(Method::GET, &format!("{V1}/{db}"), "").await.status.as_u16(),
        418
    );
    let other = emu
        .gcore(Method::GET, &format!("/cloud/v1/securitygroups/2/1/{web}"), "")
        .await;
    assert_eq!(other.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(emu.hits().await, [1, 0, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_meets_the_faults_of_copy_not_of_create() {
    let emu = emulator(|_| {}).await;
    let id = emu.create("web").await;
    emu.arm(json!([
        {"operation": "security_groups.create", "effect": "http_error", "status": 500},
        {"operation": "security_groups.copy", "effect": "task_error", "message": "copy refused", "times": 1}
    ]))
    .await;
    let r = emu
        .gcore(Method::POST, &format!("{V1}/{id}/copy"), r#"{"name":"web-copy"}"#)
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        r.json()["message"].as_str().unwrap().contains("copy refused"),
        "{}",
        r.json()
    );
    let r = emu
        .gcore(Method::POST, &format!("{V1}/{id}/copy"), r#"{"name":"web-copy"}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(emu.hits().await, [0, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_faults_are_refused_naming_the_field() {
    let emu = emulator(|_| {}).await;
    let cases = [
        (
            json!([{"operation": "security_groups.update", "effect": "http_error", "status": 302}]),
            "faults[0].status",
        ),
        (
            json!([{"operation": "tasks.get", "effect": "locked"}, {"operation": "nope", "effect": "reset"}]),
            "faults[1].operation",
        ),
        (
            json!([{"operation": "tasks.get", "effect": "task_error", "message": "x"}]),
            "faults[0].effect",
        ),
        (
            json!([{"operation": "rules.create", "effect": "latency"}]),
            "faults[0].delay_ms",
        ),
        (
            json!([{"operation": "rules.create", "effect": "reset", "probability": 1.5}]),
            "faults[0].probability",
        ),
    ];
    for (faults, field) in cases {
        let r = emu
            .control(
                Method::PUT,
                "/_emulator/faults",
                &json!({ "faults": faults }).to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{faults}");
        assert_eq!(r.json()["field"], field, "{}", r.json());
        assert!(r.json()["error"].as_str().unwrap().starts_with(field), "{}", r.json());
    }
    assert_eq!(emu.hits().await, Vec::<u64>::new(), "a refused list arms nothing");
    let faults = json!({"faults": [{"operation": "tasks.get", "effect": "locked"}]}).to_string();
    let r = emu
        .control(Method::PUT, "/_emulator/faults?dry_run=true", &faults)
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "no dry run: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(emu.hits().await, Vec::<u64>::new());

    // The same checks at start: check-config names the field too.
    let path = scratch("emulator").join("sgbridge.toml");
    std::fs::write(
        &path,
        "[[backend.embedded.faults]]\noperation = \"security_groups.update\"\neffect = \"http_error\"\nstatus = 200\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("status: 200 is not an error status"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_restores_what_a_reset_emptied() {
    let emu = emulator(|_| {}).await;
    let web = emu.create("web").await;
    let db = emu.create("db").await;
    let before = (emu.group(&web).await, emu.group(&db).await);
    let snapshot = emu.control(Method::GET, "/_emulator/state", "").await;
    assert_eq!(snapshot.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&snapshot.body).to_string();
    assert!(text.starts_with(r#"{"sgbridge_store":2"#), "{text}");

    emu.control(Method::POST, "/_emulator/reset", "").await;
    assert_eq!(emu.gcore(Method::GET, V1, "").await.json()["count"], 0);

    let r = emu.control(Method::PUT, "/_emulator/state", &text).await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["groups"], 2);
    assert_eq!((emu.group(&web).await, emu.group(&db).await), before);
    let again = emu.control(Method::GET, "/_emulator/state", "").await;
    let lines = |t: &str| t.lines().skip(1).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(lines(&String::from_utf8_lossy(&again.body)), lines(&text));
    // The groups work as before: a write after the restore applies.
    let r = emu
        .gcore(Method::PATCH, &format!("{BASE}/{web}"), &patch_rules(80))
        .await;
    assert_eq!(
        emu.task(r.json()["tasks"][0].as_str().unwrap()).await["state"],
        "FINISHED"
    );

    let bad = emu
        .control(Method::PUT, "/_emulator/state", r#"{"sgbridge_store":99}"#)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["error"].as_str().unwrap().contains("version 99"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_timing_is_set_per_operation() {
    let emu = emulator(|_| {}).await;
    let r = emu
        .control(
            Method::PUT,
            "/_emulator/timing",
            r#"{"task_delay_ms": 10, "task_delays_ms": {"rules.create": 60000}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    let id = emu.create("web").await;
    let r = emu
        .gcore(
            Method::POST,
            &format!("{BASE}/{id}/rules"),
            RULE.replace("443", "8443").as_str(),
        )
        .await;
    let task = r.json()["tasks"][0].as_str().unwrap().to_string();
    // A create started after it has finished (10 ms): the rule's minute is not up.
    emu.create("db").await;
    let t = emu.task_now(&task).await;
    assert_eq!(t["state"], "RUNNING", "rules.create runs a minute");
    let bad = emu
        .control(
            Method::PUT,
            "/_emulator/timing",
            r#"{"task_delay_ms": 1, "task_delays_ms": {"tasks.get": 5}}"#,
        )
        .await;
    assert_eq!(bad.json()["field"], "task_delays_ms.tasks.get");
}

/// The outcome of 40 reads of one group against `sgbridge serve` with a
/// fault that hits half of them, seeded.
fn forty_reads(seed: u64) -> Vec<u16> {
    let path = scratch("emulator").join("sgbridge.toml");
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[backend.embedded]
task_delay_ms = 10
seed = {seed}
[[backend.embedded.faults]]
operation = "security_groups.list"
effect = "http_error"
status = 503
probability = 0.5
"#
    );
    std::fs::write(&path, config).unwrap();
    let proc = Proc::serve(&path, &[]);
    let url = format!("{}{V1}", proc.base);
    let client = std::net::TcpStream::connect(proc.base.trim_start_matches("http://")).map(drop);
    assert!(client.is_ok());
    (0..40)
        .map(|_| {
            let answer = raw_get(&proc.base, url.trim_start_matches(&proc.base));
            let text = String::from_utf8_lossy(&answer);
            text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_repeats_the_same_faults_in_another_process() {
    let (first, second, other) = tokio::task::spawn_blocking(|| (forty_reads(7), forty_reads(7), forty_reads(8)))
        .await
        .unwrap();
    assert_eq!(first, second);
    assert!(first.contains(&503) && first.contains(&200), "{first:?}");
    assert_ne!(first, other, "another seed, other draws");
}

/// A gateway on the embedded backend kept in SQLite at `db`, called in process.
async fn on_sqlite(db: &std::path::Path) -> InProc {
    let mut cfg = quick_config();
    cfg.server.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.store.kind = sgbridge::config::StoreKind::Sqlite;
    cfg.store.path = Some(db.to_path_buf());
    let app = sgbridge::server::App::open(cfg).await.expect("open the store");
    InProc {
        app: std::sync::Arc::new(app),
    }
}

async fn groups_on(gw: &InProc) -> Value {
    gw.gcore(Method::GET, V1, "").await.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_durable_store_a_reset_and_a_restore_outlive_a_restart() {
    let db = scratch("emulator-sqlite").join("sgbridge.db");
    let gw = on_sqlite(&db).await;
    let r = gw
        .gcore(Method::POST, BASE, &format!(r#"{{"name":"kept","rules":[{RULE}]}}"#))
        .await;
    let task = r.json()["tasks"][0].as_str().unwrap().to_string();
    for _ in 0..500 {
        let t = gw
            .gcore(Method::GET, &format!("/cloud/v1/tasks/{task}"), "")
            .await
            .json();
        if t["state"] != "RUNNING" {
            assert_eq!(t["state"], "FINISHED");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before = groups_on(&gw).await;
    assert_eq!(before["count"], 1);
    let snapshot = gw.admin(Method::GET, "/_emulator/state", "").await;
    let snapshot = String::from_utf8_lossy(&snapshot.body).to_string();
    assert_eq!(
        gw.admin(Method::POST, "/_emulator/reset", "").await.status,
        StatusCode::OK
    );
    drop(gw);

    let gw = on_sqlite(&db).await;
    assert_eq!(groups_on(&gw).await["count"], 0, "the reset reached the store");
    let r = gw.admin(Method::PUT, "/_emulator/state", &snapshot).await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    drop(gw);

    let gw = on_sqlite(&db).await;
    assert_eq!(groups_on(&gw).await, before, "the restore reached the store");
    let t = gw.gcore(Method::GET, &format!("/cloud/v1/tasks/{task}"), "").await;
    assert_eq!(t.json()["state"], "FINISHED", "and the tasks with it");
}
