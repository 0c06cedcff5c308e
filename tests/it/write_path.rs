//! The write path under concurrency and faults: the seven defects of the
//! write-path issue, each driven in process on tokio's paused clock against
//! a scripted backend (or the embedded one), through the whole tower stack.

use crate::support::scripted::{PollFault, Scripted};
use crate::support::*;
use futures_util::future::join_all;
use http::{Method, StatusCode};
use serde_json::Value;
use sgbridge::config::Config;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const CF_GROUPS: &str = "/v2/security_groups";
const GCORE: &str = "/cloud/v2/security_groups/1/1";

fn config() -> Config {
    let mut c = Config::default();
    c.wait.poll_ms = 100;
    c.wait.max_poll_ms = 1000;
    c.wait.deadline_s = 60;
    c
}

fn gateway(delay: Duration) -> (InProc, Scripted) {
    let backend = Scripted::new(delay);
    (InProc::new(config(), Arc::new(backend.clone())), backend)
}

async fn cf_create(gw: &InProc, name: &str, rules: &str) -> String {
    let r = gw
        .cf(
            Method::POST,
            CF_GROUPS,
            &format!(r#"{{"name":"{name}","rules":{rules}}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
    r.json()["metadata"]["guid"].as_str().unwrap().to_string()
}

async fn gcore_group(gw: &InProc, id: &str) -> Value {
    let r = gw
        .gcore(Method::GET, &format!("/cloud/v1/securitygroups/1/1/{id}"), "")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()
}

fn ingress_rules(group: &Value) -> usize {
    group["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["direction"] == "ingress")
        .count()
}

const WEB: &str = r#"[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443"}]"#;
const PUT_RULES: &str = r#"{"rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"8443"}]}"#;
const SSH_IN: &str = r#"{"direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22,"remote_ip_prefix":"10.0.0.0/8"}"#;

/// 1. A CF PUT while a Gcore caller's rule add is still running keeps that rule.
#[tokio::test(start_paused = true)]
async fn a_cf_put_keeps_the_rule_a_gcore_caller_just_added() {
    let (gw, _) = gateway(Duration::from_secs(5));
    let id = cf_create(&gw, "web", WEB).await;
    let added = gw.gcore(Method::POST, &format!("{GCORE}/{id}/rules"), SSH_IN).await;
    assert_eq!(added.status, StatusCode::OK);
    assert_eq!(added.json()["tasks"].as_array().unwrap().len(), 1);
    // The rule add's task is still running when the CF PUT arrives.
    let put = gw.cf(Method::PUT, &format!("{CF_GROUPS}/{id}"), PUT_RULES).await;
    assert_eq!(
        put.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&put.body)
    );
    let group = gcore_group(&gw, &id).await;
    assert_eq!(ingress_rules(&group), 1, "the Gcore caller's rule survived: {group}");
    let ports: Vec<u64> = group["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["direction"] == "egress")
        .map(|r| r["port_range_min"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [8443], "and the CF PUT applied");
}

/// 1b. The same with a Gcore PATCH of the whole rule set.
#[tokio::test(start_paused = true)]
async fn a_cf_put_keeps_rules_a_gcore_patch_set() {
    let (gw, _) = gateway(Duration::from_secs(5));
    let id = cf_create(&gw, "web", WEB).await;
    let group = gcore_group(&gw, &id).await;
    let mut rules: Vec<Value> = group["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::json!({"direction": r["direction"], "protocol": r["protocol"],
                "port_range_min": r["port_range_min"], "port_range_max": r["port_range_max"],
                "remote_ip_prefix": r["remote_ip_prefix"], "ethertype": r["ethertype"]})
        })
        .collect();
    rules.push(serde_json::from_str(SSH_IN).unwrap());
    let body = serde_json::json!({ "rules": rules }).to_string();
    let patched = gw.gcore(Method::PATCH, &format!("{GCORE}/{id}"), &body).await;
    assert_eq!(
        patched.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&patched.body)
    );
    let put = gw.cf(Method::PUT, &format!("{CF_GROUPS}/{id}"), PUT_RULES).await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert_eq!(ingress_rules(&gcore_group(&gw, &id).await), 1);
}

/// 2. A create applied whose answer was lost is found, not made twice.
#[tokio::test(start_paused = true)]
async fn a_lost_create_answer_makes_no_second_group() {
    let (gw, backend) = gateway(Duration::from_secs(2));
    backend.script(|s| s.lose_create_answer = true);
    let first = gw.cf(Method::POST, CF_GROUPS, r#"{"name":"lost","rules":[]}"#).await;
    assert_eq!(
        first.status,
        StatusCode::CREATED,
        "reconciled in the same request: {}",
        String::from_utf8_lossy(&first.body)
    );
    let retry = gw.cf(Method::POST, CF_GROUPS, r#"{"name":"lost","rules":[]}"#).await;
    assert_eq!(retry.status, StatusCode::BAD_REQUEST);
    assert_eq!(retry.json()["error_code"], "CF-SecurityGroupNameTaken");
    let list = gw.cf(Method::GET, &format!("{CF_GROUPS}?q=name:lost"), "").await;
    assert_eq!(list.json()["total_results"], 1);
    assert_eq!(backend.creates.load(Ordering::SeqCst), 1, "sent once");
}

/// 2b. When the lost create cannot be reconciled at once (the backend cannot
/// say what is pending), the caller's immediate retry finds it.
#[tokio::test(start_paused = true)]
async fn an_immediate_retry_finds_the_in_flight_create() {
    let (gw, backend) = gateway(Duration::from_secs(5));
    backend.script(|s| {
        s.lose_create_answer = true;
        s.task_list_failures = 1;
    });
    let first = gw.cf(Method::POST, CF_GROUPS, r#"{"name":"lost","rules":[]}"#).await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(first.header("retry-after").is_some());
    let retry = gw.cf(Method::POST, CF_GROUPS, r#"{"name":"lost","rules":[]}"#).await;
    assert_eq!(
        retry.status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&retry.body)
    );
    assert_eq!(retry.json()["error_code"], "CF-SecurityGroupNameTaken");
    assert_eq!(backend.creates.load(Ordering::SeqCst), 1, "no second create was sent");
    let list = gw.cf(Method::GET, &format!("{CF_GROUPS}?q=name:lost"), "").await;
    assert_eq!(list.json()["total_results"], 1);
}

/// 3a. A Gcore PATCH of tags + rules whose task fails stores neither.
#[tokio::test(start_paused = true)]
async fn a_failed_gcore_patch_stores_no_tags() {
    let (gw, _) = gateway(Duration::from_secs(1));
    let id = cf_create(&gw, "web", WEB).await;
    let missing = "72797142-1dd1-45d8-b55c-cb51fe6f94fa";
    let body = format!(
        r#"{{"tags":{{"owner":"team-a"}},"rules":[{{"direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22,"remote_group_id":"{missing}"}}]}}"#
    );
    let r = gw
        .send(
            Method::PATCH,
            &format!("{GCORE}/{id}"),
            &[("authorization", GCORE_AUTH), ("prefer", "wait=30")],
            &body,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let group = gcore_group(&gw, &id).await;
    assert!(
        !group["tags_v2"].as_array().unwrap().iter().any(|t| t["key"] == "owner"),
        "{group}"
    );
    assert_eq!(ingress_rules(&group), 0);
}

/// 3b. A CF PUT whose task fails keeps no new `log` flags, even when the
/// backend stored the tag change outside its task.
#[tokio::test(start_paused = true)]
async fn a_failed_cf_put_stores_no_log_flags() {
    let (gw, backend) = gateway(Duration::from_secs(1));
    let id = cf_create(&gw, "web", WEB).await;
    let before = gcore_group(&gw, &id).await["tags_v2"].clone();
    backend.script(|s| {
        s.poll = true;
        s.fail_update_keeping_tags = true;
    });
    let logged = r#"{"rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"8443","log":true}]}"#;
    let r = gw.cf(Method::PUT, &format!("{CF_GROUPS}/{id}"), logged).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_GATEWAY,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let text = r.json()["description"].as_str().unwrap().to_string();
    assert!(
        text.contains("Scripted failure") && text.contains("nothing was applied"),
        "{text}"
    );
    assert_eq!(
        gcore_group(&gw, &id).await["tags_v2"],
        before,
        "the tag change was undone"
    );
    let get = gw.cf(Method::GET, &format!("{CF_GROUPS}/{id}"), "").await.json();
    assert!(get["entity"]["rules"][0].get("log").is_none(), "{get}");
}

/// 3c. Deleting a group another group's rule names removes that rule too, so
/// the referring group stays writable.
#[tokio::test(start_paused = true)]
async fn deleting_a_referenced_group_leaves_no_dangling_rule() {
    let (gw, _) = gateway(Duration::from_millis(300));
    let target = cf_create(&gw, "target", "[]").await;
    let holder = cf_create(&gw, "holder", WEB).await;
    let rule = format!(
        r#"{{"direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22,"remote_group_id":"{target}"}}"#
    );
    let r = gw
        .send(
            Method::POST,
            &format!("{GCORE}/{holder}/rules"),
            &[("authorization", GCORE_AUTH), ("prefer", "wait=30")],
            &rule,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(ingress_rules(&gcore_group(&gw, &holder).await), 1);
    let del = gw.cf(Method::DELETE, &format!("{CF_GROUPS}/{target}"), "").await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(ingress_rules(&gcore_group(&gw, &holder).await), 0);
    let put = gw.cf(Method::PUT, &format!("{CF_GROUPS}/{holder}"), PUT_RULES).await;
    assert_eq!(
        put.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&put.body)
    );
}

/// 4. Flapping polls (three 503s) and a hung poll do not fail a healthy write.
#[tokio::test(start_paused = true)]
async fn poll_failures_are_retried_within_the_deadline() {
    let (gw, backend) = gateway(Duration::from_secs(1));
    let id = cf_create(&gw, "web", WEB).await;
    backend.script(|s| {
        s.poll = true;
        s.poll_faults = [PollFault::Unavailable, PollFault::Unavailable, PollFault::Unavailable].into();
    });
    let put = gw.cf(Method::PUT, &format!("{CF_GROUPS}/{id}"), PUT_RULES).await;
    assert_eq!(
        put.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&put.body)
    );
    backend.script(|s| s.poll_faults = [PollFault::Hang].into());
    let again = r#"{"rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"9443"}]}"#;
    let put = gw.cf(Method::PUT, &format!("{CF_GROUPS}/{id}"), again).await;
    assert_eq!(
        put.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&put.body)
    );
    assert!(backend.polls.load(Ordering::SeqCst) >= 5);
}

/// 5. Creates of different names do not queue behind one another.
#[tokio::test(start_paused = true)]
async fn creates_of_different_names_run_side_by_side() {
    let (gw, _) = gateway(Duration::from_secs(20));
    let started = Instant::now();
    let replies = join_all((0..7).map(|i| {
        let gw = &gw;
        async move {
            gw.cf(Method::POST, CF_GROUPS, &format!(r#"{{"name":"g{i}","rules":[]}}"#))
                .await
        }
    }))
    .await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "seven 20 s creates took {:?}",
        started.elapsed()
    );
}

/// 6. A task is never evicted while it runs, however short the TTL of ended
/// tasks; and lock entries go with their holders.
#[tokio::test(start_paused = true)]
async fn a_running_task_outlives_the_task_ttl() {
    let mut cfg = config();
    cfg.backend.embedded.task_ttl_s = 1;
    cfg.backend.embedded.task_delay_ms = 10_000;
    let backend = Scripted::with_config(&cfg.backend.embedded);
    let gw = InProc::new(cfg, Arc::new(backend.clone()));
    // Other tasks come and go meanwhile, sweeping ended ones.
    let id = cf_create(&gw, "web", WEB).await;
    let put = gw.cf(Method::PUT, &format!("{CF_GROUPS}/{id}"), PUT_RULES).await;
    assert_eq!(
        put.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&put.body)
    );
    backend.script(|s| s.poll = true);
    let again = r#"{"rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"9443"}]}"#;
    let put = gw.cf(Method::PUT, &format!("{CF_GROUPS}/{id}"), again).await;
    assert_eq!(
        put.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&put.body)
    );
}

/// 7. A CF async-delete job is answered by another replica.
#[tokio::test(start_paused = true)]
async fn a_delete_job_is_answered_by_any_replica() {
    let backend = Arc::new(Scripted::new(Duration::from_millis(300)));
    let a = InProc::new(config(), backend.clone());
    let b = InProc::new(config(), backend);
    let id = cf_create(&a, "web", WEB).await;
    let del = a.cf(Method::DELETE, &format!("{CF_GROUPS}/{id}?async=true"), "").await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    let job = del.json();
    assert_eq!(job["entity"]["status"], "queued");
    let url = job["metadata"]["url"].as_str().unwrap().to_string();
    let polled = b.cf(Method::GET, &url, "").await;
    assert_eq!(
        polled.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&polled.body)
    );
    assert_eq!(polled.json()["entity"]["status"], "finished");
    let unknown = b
        .cf(Method::GET, "/v2/jobs/72797142-1dd1-45d8-b55c-cb51fe6f94fa", "")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

/// Failures in every layer answer in the caller's dialect.
#[tokio::test(start_paused = true)]
async fn layer_failures_answer_in_the_callers_dialect() {
    let mut cfg = config();
    cfg.server.max_body_bytes = 10;
    let gw = InProc::new(cfg, Arc::new(Scripted::new(Duration::from_millis(10))));
    let big = "x".repeat(100);
    let cf = gw.cf(Method::POST, CF_GROUPS, &big).await;
    assert_eq!(cf.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(cf.json()["error_code"], "CF-RequestEntityTooLarge");
    let gcore = gw.gcore(Method::POST, GCORE, &big).await;
    assert_eq!(gcore.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(gcore.json()["exception_class"], "HTTPError");
    assert!(gcore.header("request_id").is_some());
    let anon = gw.send(Method::GET, "/cloud/v1/tasks", &[], "").await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    assert!(anon.json()["exception_class"].is_string());
    let v3 = gw.send(Method::GET, "/v3/security_groups", &[], "").await;
    assert_eq!(v3.status, StatusCode::UNAUTHORIZED);
    assert_eq!(v3.json()["errors"][0]["title"], "CF-NotAuthenticated");
    let traced = gw
        .send(
            Method::GET,
            CF_GROUPS,
            &[("authorization", CF_AUTH), ("x-vcap-request-id", "trace-123")],
            "",
        )
        .await;
    assert_eq!(traced.header("x-vcap-request-id"), Some("trace-123"));
}

/// Issue 28: a CF PUT that changes nothing does not queue behind a write
/// that holds the group (a task of 10 s here): it is answered from one
/// read at once, with the group as it is, and the write in progress still
/// lands. Without it, the no-op waited 10 s and then undid that write.
#[tokio::test(start_paused = true)]
async fn an_unchanged_put_does_not_wait_for_a_write_in_progress() {
    let (gw, _backend) = gateway(Duration::from_secs(10));
    let gw = Arc::new(gw);
    let id = cf_create(&gw, "web", WEB).await;
    let url = format!("{CF_GROUPS}/{id}");
    let change = tokio::spawn({
        let (gw, url) = (gw.clone(), url.clone());
        async move { gw.cf(Method::PUT, &url, PUT_RULES).await }
    });
    // A second of paused time: the change is waiting on its task, holding
    // the group (nothing in process takes time; the task takes 10 s).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!change.is_finished());
    let started = Instant::now();
    let same = gw.cf(Method::PUT, &url, &format!(r#"{{"rules":{WEB}}}"#)).await;
    assert_eq!(
        same.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&same.body)
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert!(!change.is_finished());
    assert_eq!(same.json()["entity"]["rules"][0]["ports"], "443");
    let changed = change.await.unwrap();
    assert_eq!(changed.status, StatusCode::CREATED);
    assert_eq!(changed.json()["entity"]["rules"][0]["ports"], "8443");
    let now = gw.cf(Method::GET, &url, "").await;
    assert_eq!(now.json()["entity"]["rules"][0]["ports"], "8443");
}

/// Issue 28: a CF change already known to change nothing is answered
/// without parse or plan (`server::noops`), with the very answer the full
/// protocol gives (status, body, `X-Cf-Warnings` of port-25 narrowing), on
/// v2 and v3; and never for a group that changed since, by any route, even
/// back to equal rules (a new state), nor for other bytes.
#[tokio::test(start_paused = true)]
async fn a_known_noop_answers_as_the_full_protocol_and_never_for_a_changed_group() {
    let gw = InProc::from_config(config());
    let id = cf_create(&gw, "web", WEB).await;
    let v2 = format!("{CF_GROUPS}/{id}");
    let v3 = format!("/v3/security_groups/{id}");
    let narrowed = r#"{"rules":[{"protocol":"tcp","destination":"0.0.0.0/0","ports":"20-30"}]}"#;
    let put = |body: &'static str| {
        let (gw, v2) = (&gw, v2.clone());
        async move { gw.cf(Method::PUT, &v2, body).await }
    };
    let first = put(narrowed).await;
    assert_eq!(
        first.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let warned = first.header("x-cf-warnings").map(str::to_string);
    assert!(warned.is_some(), "port 25 is narrowed with a warning");
    // The full protocol's no-op (remembered), then the known one: the same answer.
    let full = put(narrowed).await;
    let known = put(narrowed).await;
    for r in [&full, &known] {
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.body, first.body);
        assert_eq!(r.header("x-cf-warnings").map(str::to_string), warned);
    }

    // A Gcore caller changes the group behind the gateway's back...
    let gcore = format!("{GCORE}/{id}");
    let r = gw.gcore(Method::PATCH, &gcore, r#"{"name":"renamed"}"#).await;
    assert!(r.status.is_success(), "{}", String::from_utf8_lossy(&r.body));
    let task = r.json()["tasks"][0].as_str().map(str::to_string);
    let task = task.expect("the embedded backend answers with a task");
    loop {
        let t = gw
            .gcore(Method::GET, &format!("/cloud/v1/tasks/{task}"), "")
            .await
            .json();
        if t["state"] == "FINISHED" {
            break;
        }
        assert!(t["state"] == "NEW" || t["state"] == "RUNNING", "{t}");
        // Paused time: the task's delay passes at once.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...so the same bytes are planned again and answered as the group now is.
    let after = put(narrowed).await;
    assert_eq!(after.status, StatusCode::CREATED);
    assert_eq!(after.json()["entity"]["name"], "renamed");

    // A real change, then a change back to the first rules: each is applied.
    assert_eq!(put(PUT_RULES).await.json()["entity"]["rules"][0]["ports"], "8443");
    let back = put(narrowed).await;
    assert_eq!(back.json()["entity"]["rules"], first.json()["entity"]["rules"]);
    let read = gw.cf(Method::GET, &v2, "").await;
    assert_eq!(read.json()["entity"]["rules"], back.json()["entity"]["rules"]);
    assert_ne!(read.json()["entity"]["rules"][0]["ports"], "8443");

    // v3: its own bytes, the same rule (the v2 bytes mean nothing to it).
    let patch = r#"{"rules":[{"protocol":"tcp","destination":"0.0.0.0/0","ports":"20-30"}]}"#;
    let answers = [
        gw.cf(Method::PATCH, &v3, patch).await,
        gw.cf(Method::PATCH, &v3, patch).await,
        gw.cf(Method::PATCH, &v3, patch).await,
    ];
    for r in &answers {
        assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.body, answers[0].body);
    }
    assert_eq!(gw.cf(Method::GET, &v3, "").await.body, answers[0].body);
    // A v3 change, then the v2 bytes known before: planned again, applied.
    let r = gw
        .cf(
            Method::PATCH,
            &v3,
            r#"{"rules":[{"protocol":"udp","destination":"10.0.0.1","ports":"53"}]}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let again = put(narrowed).await;
    assert_eq!(again.json()["entity"]["rules"][0]["protocol"], "tcp");
    assert_eq!(
        gw.cf(Method::GET, &v2, "").await.json()["entity"]["rules"][0]["protocol"],
        "tcp"
    );
}
