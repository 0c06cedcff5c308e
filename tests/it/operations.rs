//! Operating features in process (issue 11): the audit stream, dry runs,
//! Idempotency-Key, the metrics an operator acts on, the admin listener,
//! readiness from the background probe, and config reloads.

use crate::support::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use sgbridge::config::{AuditTarget, Config};
use sgbridge::server::live::Live;
use sgbridge::server::App;
use std::sync::Arc;

const WEB: &str = r#"{"name":"web","rules":[{"protocol":"tcp","destination":"10.0.0.1-10.0.0.6","ports":"443"}]}"#;

fn audited(dir: &std::path::Path) -> Config {
    let mut c = quick_config();
    c.audit.target = AuditTarget::File;
    c.audit.path = Some(dir.join("audit.jsonl"));
    c
}

fn audit_lines(dir: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
        .collect()
}

fn scratch() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sgbridge-ops-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn uuid_like() -> String {
    format!("{:x}{:x}", std::process::id(), fastrand_u64())
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish()
}

#[tokio::test]
async fn every_write_leaves_one_audit_record_with_who_what_and_outcome() {
    let dir = scratch();
    let gw = InProc::from_config(audited(&dir));
    let created = gw.cf(Method::POST, "/v2/security_groups", WEB).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let guid = created.json()["metadata"]["guid"].as_str().unwrap().to_string();
    let change = r#"{"rules":[{"protocol":"udp","destination":"10.0.0.2","ports":"53"}]}"#;
    let updated = gw.cf(Method::PUT, &format!("/v2/security_groups/{guid}"), change).await;
    assert_eq!(updated.status, StatusCode::CREATED);
    let failed = gw
        .cf(
            Method::PUT,
            &format!("/v2/security_groups/{guid}"),
            r#"{"rules":[{"protocol":"tcp"}]}"#,
        )
        .await;
    assert_eq!(failed.status, StatusCode::BAD_REQUEST);
    let gcore = gw
        .gcore(
            Method::PATCH,
            &format!("/cloud/v2/security_groups/1/1/{guid}"),
            r#"{"tags":{"team":"net"}}"#,
        )
        .await;
    assert_eq!(gcore.status, StatusCode::OK);

    // Records are written by their own thread, after the answer.
    gw.app.audit.flush(std::time::Duration::from_secs(30)).await;
    let lines = audit_lines(&dir);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    for l in &lines {
        for key in [
            "timestamp",
            "request_id",
            "principal",
            "client",
            "dialect",
            "route",
            "operation",
            "outcome",
            "status",
            "tasks",
        ] {
            assert!(l.get(key).is_some(), "{key} missing in {l}");
        }
        assert!(!l["principal"].as_str().unwrap().is_empty(), "{l}");
    }
    let (create, update, bad, tags) = (&lines[0], &lines[1], &lines[2], &lines[3]);
    assert_eq!(create["operation"], "create");
    assert_eq!(create["outcome"], "applied");
    assert_eq!(create["group"], json!({"id": guid, "name": "web"}));
    assert_eq!(create["scope"], "1/1");
    assert_eq!(
        create["changes"]["rules_added"],
        json!([{"protocol": "tcp", "destination": "10.0.0.1-10.0.0.6", "ports": "443"}])
    );
    // The backend stores the range as its minimal cover: four Gcore rules.
    assert_eq!(create["changes"]["backend_rules_added"].as_array().unwrap().len(), 4);
    assert_eq!(create["tasks"].as_array().unwrap().len(), 1);

    assert_eq!(update["operation"], "update");
    assert_eq!(
        update["changes"]["rules_removed"],
        json!([{"protocol": "tcp", "destination": "10.0.0.1-10.0.0.6", "ports": "443"}])
    );
    assert_eq!(
        update["changes"]["rules_added"],
        json!([{"protocol": "udp", "destination": "10.0.0.2", "ports": "53"}])
    );
    assert_eq!(update["changes"]["backend_rules_removed"].as_array().unwrap().len(), 4);

    assert_eq!(bad["outcome"], "rejected");
    assert_eq!(bad["status"], 400);
    assert_eq!(bad["group"]["id"], guid.as_str());
    assert!(bad["error"].as_str().unwrap().starts_with("caller: "), "{bad}");
    assert!(bad.get("changes").is_none());

    // A Gcore caller's change is shown in Gcore's words; it is still running.
    assert_eq!(tags["dialect"], "gcore");
    assert_eq!(tags["outcome"], "accepted");
    assert_eq!(tags["principal"], "dev");
}

#[tokio::test]
async fn a_dry_run_answers_the_plan_and_changes_nothing() {
    let gw = InProc::from_config(quick_config());
    let smtp = r#"{"name":"mail","rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"20-30"}]}"#;
    let plan = gw.cf(Method::POST, "/v2/security_groups?dry_run=true", smtp).await;
    assert_eq!(plan.status, StatusCode::OK, "{}", String::from_utf8_lossy(&plan.body));
    let p = plan.json();
    assert_eq!(p["dry_run"], true);
    assert_eq!(p["operation"], "create");
    assert_eq!(p["backend"], "embedded");
    assert_eq!(p["backend_requests"].as_array().unwrap().len(), 1);
    assert!(p["backend_requests"][0]
        .as_str()
        .unwrap()
        .starts_with("create group \"mail\""));
    // Port 25 is carved out of 20-30: two backend rules, and a warning.
    assert_eq!(p["backend_rules_after"], 2);
    assert!(p["warnings"][0].as_str().unwrap().contains("port 25"), "{p}");
    let list = gw.cf(Method::GET, "/v2/security_groups?q=name:mail", "").await.json();
    assert_eq!(list["total_results"], 0, "nothing was created");

    // A Gcore PATCH dry run, with the header form.
    let created = gw
        .send(
            Method::POST,
            "/cloud/v2/security_groups/1/1",
            &[("authorization", GCORE_AUTH), ("prefer", "wait=10")],
            r#"{"name":"g","rules":[],"tags":{"a":"1"}}"#,
        )
        .await
        .json();
    let id = created["id"].as_str().unwrap();
    let patch = r#"{"tags":{"a":null,"b":"2"},"rules":[{"direction":"egress","protocol":"udp","port_range_min":53,"port_range_max":53}]}"#;
    let plan = gw
        .send(
            Method::PATCH,
            &format!("/cloud/v2/security_groups/1/1/{id}"),
            &[("authorization", GCORE_AUTH), ("sgbridge-dry-run", "true")],
            patch,
        )
        .await;
    assert_eq!(plan.status, StatusCode::OK);
    let p = plan.json();
    assert_eq!(p["operation"], "update");
    let request = p["backend_requests"][0].as_str().unwrap();
    assert!(
        request.contains("rules → 1 rules") && request.contains("tags"),
        "{request}"
    );
    assert_eq!(p["rules_added"][0]["protocol"], "udp");
    let now = gw
        .gcore(Method::GET, &format!("/cloud/v1/securitygroups/1/1/{id}"), "")
        .await
        .json();
    assert_eq!(now["security_group_rules"], json!([]));
    assert_eq!(now["tags_v2"][0]["key"], "a");

    // A dry run of an invalid body is the same 400.
    let bad = gw
        .cf(Method::POST, "/v2/security_groups?dry_run=true", r#"{"name":""}"#)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_answers_once() {
    let mut cfg = quick_config();
    cfg.backend.embedded.task_delay_ms = 300;
    let gw = Arc::new(InProc::from_config(cfg));
    let with_key = |key: &'static str| [("authorization", CF_AUTH), ("idempotency-key", key)];
    let first = gw
        .send(Method::POST, "/v2/security_groups", &with_key("k-1"), WEB)
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let replay = gw
        .send(Method::POST, "/v2/security_groups", &with_key("k-1"), WEB)
        .await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body, first.body, "the stored answer, not a second create");
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let groups = gw.cf(Method::GET, "/v2/security_groups?q=name:web", "").await.json();
    assert_eq!(groups["total_results"], 1);

    let other = gw
        .send(
            Method::POST,
            "/v2/security_groups",
            &with_key("k-1"),
            r#"{"name":"other"}"#,
        )
        .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.json()["error_code"], "CF-UnprocessableEntity");

    // The same key while the first is still waiting on its task: 409.
    let body = r#"{"name":"slow"}"#;
    let gw2 = gw.clone();
    let running = tokio::spawn(async move {
        gw2.send(
            Method::POST,
            "/v2/security_groups",
            &[("authorization", CF_AUTH), ("idempotency-key", "k-2")],
            body,
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let busy = gw
        .send(Method::POST, "/v2/security_groups", &with_key("k-2"), body)
        .await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    assert_eq!(busy.json()["error_code"], "CF-Conflict");
    assert_eq!(running.await.unwrap().status, StatusCode::CREATED);

    // Keys belong to their caller: a Gcore key with the same name is new.
    let g = gw
        .send(
            Method::POST,
            "/cloud/v2/security_groups/1/1",
            &[("authorization", GCORE_AUTH), ("idempotency-key", "\"k-1\"")],
            r#"{"name":"gc","rules":[]}"#,
        )
        .await;
    assert_eq!(g.status, StatusCode::OK);
    let reused = gw
        .send(
            Method::POST,
            "/cloud/v2/security_groups/1/1",
            &[("authorization", GCORE_AUTH), ("idempotency-key", "\"k-1\"")],
            r#"{"name":"gc2","rules":[]}"#,
        )
        .await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.json()["exception_class"], "UnprocessableEntityError");
}

#[tokio::test]
async fn metrics_show_backend_calls_polls_waits_and_the_build() {
    let gw = InProc::from_config(quick_config());
    assert_eq!(
        gw.cf(Method::POST, "/v2/security_groups", WEB).await.status,
        StatusCode::CREATED
    );
    let text = String::from_utf8_lossy(&gw.send(Method::GET, "/metrics", &[], "").await.body).to_string();
    for needle in [
        "sgbridge_backend_calls_total{op=\"create\",outcome=\"ok\"} 1",
        "sgbridge_backend_call_duration_seconds_bucket{le=\"180.0\",op=\"create\"} 1",
        "sgbridge_task_waits_in_flight 0",
        "sgbridge_task_polls_per_wait_count 1",
        "sgbridge_task_wait_duration_seconds_bucket{le=\"180.0\"} 1",
        "sgbridge_build_info{version=\"",
        "sgbridge_http_requests_total{dialect=\"cf\",route=\"/v2/security_groups\",method=\"POST\",status=\"201\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
    assert!(!text.contains("commit=\"\""), "the build names its commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_endpoints_move_to_the_admin_listener() {
    let mut cfg = quick_config();
    cfg.server.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    let (_live, api, admin) = start_live(cfg).await;
    let http = Http::default();
    let get = |base: &str, path: &str| format!("{base}{path}");
    assert_eq!(
        http.send(Method::GET, &get(&admin, "/healthz"), &[], "").await.status,
        StatusCode::OK
    );
    let ready = settled_readiness(&http, &get(&admin, "/readyz")).await;
    assert_eq!(ready.json()["status"], "ready");
    assert_eq!(
        http.send(Method::GET, &get(&api, "/metrics"), &[], "").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        http.send(Method::POST, &get(&admin, "/metrics"), &[], "").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        http.cf(Method::GET, &get(&admin, "/v2/security_groups"), "")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        http.cf(Method::GET, &get(&api, "/v2/security_groups"), "").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_comes_from_the_background_probe() {
    let mut cfg = quick_config();
    cfg.server.readiness_interval_s = 3600;
    let (_live, api, _) = start_live(cfg).await;
    let http = Http::default();
    settled_readiness(&http, &format!("{api}/readyz")).await;
    for _ in 0..20 {
        assert_eq!(
            http.send(Method::GET, &format!("{api}/readyz"), &[], "").await.status,
            StatusCode::OK
        );
    }
    let text =
        String::from_utf8_lossy(&http.send(Method::GET, &format!("{api}/metrics"), &[], "").await.body).to_string();
    assert!(
        text.contains("sgbridge_backend_calls_total{op=\"ready\",outcome=\"ok\"} 1\n"),
        "twenty probes, one backend call:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_takes_new_credentials_and_keeps_what_needs_a_restart() {
    let mut cfg = quick_config();
    cfg.auth.cf_bearer_tokens = vec!["token-a".into()];
    let (live, api, _) = start_live(cfg.clone()).await;
    let http = Http::default();
    let list = |tok: &'static str| {
        let http = &http;
        let url = format!("{api}/v2/security_groups");
        async move {
            http.send(Method::GET, &url, &[("authorization", &format!("bearer {tok}"))], "")
                .await
                .status
        }
    };
    assert_eq!(list("token-a").await, StatusCode::OK);
    let mut next = cfg.clone();
    next.auth.cf_bearer_tokens = vec!["token-b".into()];
    next.backend.embedded.task_delay_ms = 1;
    let kept = live.apply(next).unwrap();
    assert_eq!(kept, ["backend"]);
    assert_eq!(list("token-b").await, StatusCode::OK);
    assert_eq!(list("token-a").await, StatusCode::UNAUTHORIZED);
    assert_eq!(live.app().cfg.backend.embedded.task_delay_ms, 50, "the backend is kept");
}

/// A reload is checked against the listener actually bound: a file that
/// names a loopback `listen` cannot bring the development credentials back
/// on a process serving every address (they answered 200 there).
#[tokio::test]
async fn a_reload_is_checked_against_the_listeners_actually_bound() {
    let mut cfg = quick_config();
    cfg.server.listen = "0.0.0.0:0".parse().unwrap();
    cfg.server.external_url = "http://sgbridge.example.com".into();
    cfg.auth.cf_bearer_tokens = vec!["own-token".into()];
    cfg.auth.gcore_keys.clear();
    let dir = std::env::temp_dir().join(format!("sgbridge-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sgbridge.toml");
    let live = Live::new(App::new(cfg).unwrap(), Some(path.clone()));
    // The shipped defaults: loopback listen, development credentials.
    std::fs::write(&path, include_str!("../../config/sgbridge.toml")).unwrap();
    let e = live.reload().unwrap_err();
    assert!(e.contains("development credentials"), "{e}");
    assert_eq!(
        live.app().cfg.auth.cf_bearer_tokens,
        ["own-token"],
        "the old config stays"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn reads_carry_an_etag_and_answer_304_until_the_group_changes() {
    let gw = InProc::from_config(quick_config());
    let guid = gw.cf(Method::POST, "/v2/security_groups", WEB).await.json()["metadata"]["guid"]
        .as_str()
        .unwrap()
        .to_string();
    for (path, auth) in [
        (format!("/v3/security_groups/{guid}"), CF_AUTH),
        (format!("/cloud/v1/securitygroups/1/1/{guid}"), GCORE_AUTH),
    ] {
        let first = gw.send(Method::GET, &path, &[("authorization", auth)], "").await;
        assert_eq!(first.status, StatusCode::OK);
        let etag = first.header("etag").expect("an etag").to_string();
        let again = gw.send(Method::GET, &path, &[("authorization", auth)], "").await;
        assert_eq!(again.body, first.body, "the same bytes from the render cache");
        let cached = gw
            .send(
                Method::GET,
                &path,
                &[("authorization", auth), ("if-none-match", &etag)],
                "",
            )
            .await;
        assert_eq!(cached.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(cached.body.is_empty());
        let _ = gw
            .cf(
                Method::PUT,
                &format!("/v2/security_groups/{guid}"),
                &format!(r#"{{"name":"web-{}"}}"#, path.len()),
            )
            .await;
        let changed = gw
            .send(
                Method::GET,
                &path,
                &[("authorization", auth), ("if-none-match", &etag)],
                "",
            )
            .await;
        assert_eq!(changed.status, StatusCode::OK, "a changed group is rendered again");
        assert_ne!(changed.header("etag"), Some(etag.as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_parsed_off_the_workers_with_the_same_answers() {
    let gw = InProc::from_config(quick_config());
    // ~130 KB: parsed on the blocking pool; 2,000 rules are over the cap.
    let rules: Vec<String> = (0..2000)
        .map(|i| {
            format!(
                r#"{{"protocol":"tcp","destination":"10.{}.{}.0/24","ports":"443"}}"#,
                i / 256,
                i % 256
            )
        })
        .collect();
    let body = format!(r#"{{"name":"big","rules":[{}]}}"#, rules.join(","));
    assert!(body.len() > 64 * 1024);
    let r = gw.cf(Method::POST, "/v2/security_groups", &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["description"].as_str().unwrap().contains("250"),
        "{}",
        r.json()
    );
    let bad = format!(r#"{{"name":"big","rules":[{},{{"protocol":"tcp"}}]}}"#, rules.join(","));
    let r = gw.cf(Method::POST, "/v2/security_groups", &bad).await;
    assert_eq!(r.json()["error_code"], "CF-SecurityGroupInvalid");
}

/// What an operator alerts on is in `/metrics` (issue 26): readiness,
/// config reloads by outcome, audit records that could not be written,
/// tasks not ended yet, idempotency answers kept.
#[tokio::test]
async fn metrics_say_what_an_operator_alerts_on() {
    let mut cfg = quick_config();
    // Every write fails on /dev/full (ENOSPC): each audit record is lost.
    cfg.audit.target = AuditTarget::File;
    cfg.audit.path = Some("/dev/full".into());
    cfg.backend.embedded.task_delay_ms = 3_600_000;
    let dir = std::env::temp_dir().join(format!("sgbridge-alerts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sgbridge.toml");
    let live = Live::new(App::new(cfg).unwrap(), Some(path.clone()));
    let gw = InProc { app: live.app() };
    let value = |text: &str, name: &str| -> i64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let scrape = || async { String::from_utf8(gw.send(Method::GET, "/metrics", &[], "").await.body.to_vec()).unwrap() };

    assert_eq!(gw.send(Method::GET, "/readyz", &[], "").await.status, StatusCode::OK);
    let m = scrape().await;
    assert_eq!(value(&m, "sgbridge_ready"), 1);
    assert_eq!(value(&m, "sgbridge_idempotency_records"), 0);
    assert_eq!(value(&m, r#"sgbridge_tasks_pending{runner="backend"}"#), 0);

    for (name, key) in [("a", "k1"), ("b", "k2")] {
        let r = gw
            .send(
                Method::POST,
                "/cloud/v2/security_groups/1/1",
                &[("authorization", GCORE_AUTH), ("idempotency-key", key)],
                &format!(r#"{{"name":"{name}"}}"#),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    }
    // The records are written (and fail) on their own thread.
    gw.app.audit.flush(std::time::Duration::from_secs(30)).await;
    let m = scrape().await;
    assert_eq!(
        value(&m, r#"sgbridge_tasks_pending{runner="backend"}"#),
        2,
        "two creates still running"
    );
    assert_eq!(value(&m, "sgbridge_idempotency_records"), 2);
    assert!(value(&m, "sgbridge_idempotency_record_bytes") > 0);
    assert_eq!(value(&m, "sgbridge_audit_write_failures_total"), 2);

    std::fs::write(&path, "not toml").unwrap();
    assert!(live.reload().is_err());
    std::fs::write(&path, include_str!("../../config/sgbridge.toml")).unwrap();
    live.reload().unwrap();
    let m = String::from_utf8(
        InProc { app: live.app() }
            .send(Method::GET, "/metrics", &[], "")
            .await
            .body
            .to_vec(),
    )
    .unwrap();
    assert_eq!(value(&m, r#"sgbridge_config_reloads_total{outcome="failed"}"#), 1);
    assert_eq!(value(&m, r#"sgbridge_config_reloads_total{outcome="ok"}"#), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
