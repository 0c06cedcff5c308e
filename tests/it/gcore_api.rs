//! The Gcore front end over the embedded backend: v2 writes answer tasks that
//! really run, PATCH semantics, locks, policy errors, lists and Prefer: wait.

use crate::support::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};

const BASE: &str = "/cloud/v2/security_groups/7/76";

async fn create(http: &Http, gw: &Gateway, body: &str) -> String {
    let r = http.gcore(Method::POST, &gw.url(BASE), body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    let task = r.json()["tasks"][0].as_str().unwrap().to_string();
    let t = finish_task(http, gw, &task).await;
    assert_eq!(t["state"], "FINISHED");
    assert_eq!(t["task_type"], "create_security_group");
    t["created_resources"]["security_groups"][0]
        .as_str()
        .unwrap()
        .to_string()
}

async fn group(http: &Http, gw: &Gateway, id: &str) -> Value {
    let r = http
        .gcore(Method::GET, &gw.url(&format!("/cloud/v1/securitygroups/7/76/{id}")), "")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()
}

fn error_class(r: &Reply) -> String {
    r.json()["exception_class"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_patch_and_tasks() {
    // Tasks long enough that the 409 check below always lands while one runs.
    let mut cfg = quick_config();
    cfg.backend.embedded.task_delay_ms = 400;
    let gw = start(cfg).await;
    let http = Http::default();
    let rule = r#"{"direction":"ingress","ethertype":"IPv4","protocol":"tcp","port_range_min":443,"port_range_max":443,"remote_ip_prefix":"10.0.0.0/8","description":"https"}"#;
    let id = create(
        &http,
        &gw,
        &format!(r#"{{"name":"sg-one","rules":[{rule}],"tags":{{"owner":"cf"}}}}"#),
    )
    .await;
    let g = group(&http, &gw, &id).await;
    assert_eq!(g["name"], "sg-one");
    assert_eq!(g["project_id"], 7);
    assert_eq!(g["region_id"], 76);
    assert!(g["created_at"].as_str().unwrap().ends_with("+0000"));
    let rules = g["security_group_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["port_range_min"], 443);
    assert_eq!(rules[0]["security_group_id"], id.as_str());
    let rule_id = rules[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        g["tags_v2"],
        json!([{"key": "owner", "value": "cf", "read_only": false}])
    );

    // Nothing changed: no task.
    let same = http
        .gcore(
            Method::PATCH,
            &gw.url(&format!("{BASE}/{id}")),
            &format!(r#"{{"name":"sg-one","rules":[{rule}]}}"#),
        )
        .await;
    assert_eq!(same.json(), json!({"tasks": []}));

    // Tags only: merge patch, applied at once, no task.
    let tags = http
        .gcore(
            Method::PATCH,
            &gw.url(&format!("{BASE}/{id}")),
            r#"{"tags":{"owner":null,"env":"prod"}}"#,
        )
        .await;
    assert_eq!(tags.json(), json!({"tasks": []}));
    assert_eq!(
        group(&http, &gw, &id).await["tags_v2"],
        json!([{"key": "env", "value": "prod", "read_only": false}])
    );

    // Rules replace the set; the kept rule keeps its id.
    let add = r#"{"direction":"egress","protocol":"udp","port_range_min":53,"port_range_max":53,"remote_ip_prefix":"10.0.0.0/8"}"#;
    let r = http
        .gcore(
            Method::PATCH,
            &gw.url(&format!("{BASE}/{id}")),
            &format!(r#"{{"rules":[{rule},{add}]}}"#),
        )
        .await;
    let task = r.json()["tasks"][0].as_str().unwrap().to_string();
    // While the task holds the group, other writes are refused with 409.
    let locked = http
        .gcore(Method::PATCH, &gw.url(&format!("{BASE}/{id}")), r#"{"name":"renamed"}"#)
        .await;
    assert_eq!(locked.status, StatusCode::CONFLICT);
    assert_eq!(error_class(&locked), "ConflictError");
    assert!(locked.json()["message"]
        .as_str()
        .unwrap()
        .contains("is already locked by another task"));
    let t = finish_task(&http, &gw, &task).await;
    assert_eq!(t["state"], "FINISHED");
    let g = group(&http, &gw, &id).await;
    let ids: Vec<&str> = g["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&rule_id.as_str()));

    // `rules: []` deletes every rule.
    let r = http
        .gcore(Method::PATCH, &gw.url(&format!("{BASE}/{id}")), r#"{"rules":[]}"#)
        .await;
    finish_task(&http, &gw, r.json()["tasks"][0].as_str().unwrap()).await;
    assert_eq!(group(&http, &gw, &id).await["security_group_rules"], json!([]));

    // Rule create and delete answer tasks too.
    let r = http
        .gcore(Method::POST, &gw.url(&format!("{BASE}/{id}/rules")), add)
        .await;
    let t = finish_task(&http, &gw, r.json()["tasks"][0].as_str().unwrap()).await;
    let new_rule = t["created_resources"]["security_group_rules"][0]
        .as_str()
        .unwrap()
        .to_string();
    let dup = http
        .gcore(Method::POST, &gw.url(&format!("{BASE}/{id}/rules")), add)
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let r = http
        .gcore(Method::DELETE, &gw.url(&format!("{BASE}/{id}/rules/{new_rule}")), "")
        .await;
    finish_task(&http, &gw, r.json()["tasks"][0].as_str().unwrap()).await;
    let r = http
        .gcore(Method::DELETE, &gw.url(&format!("{BASE}/{id}/rules/{new_rule}")), "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Delete is synchronous.
    let r = http
        .gcore(
            Method::DELETE,
            &gw.url(&format!("/cloud/v1/securitygroups/7/76/{id}")),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = http
        .gcore(Method::GET, &gw.url(&format!("/cloud/v1/securitygroups/7/76/{id}")), "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(error_class(&r), "NotFoundError");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcore_policy_errors() {
    let gw = start(quick_config()).await;
    let http = Http::default();
    let smtp = http
        .gcore(Method::POST, &gw.url(BASE), r#"{"name":"x","rules":[{"direction":"egress","protocol":"tcp","port_range_min":1,"port_range_max":65535}]}"#)
        .await;
    assert_eq!(smtp.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        smtp.json()["message"],
        "Opening egress port 25 for TCP or UDP traffic is prohibited. Please, contact support."
    );
    let icmp6 = http
        .gcore(
            Method::POST,
            &gw.url(BASE),
            r#"{"name":"x","rules":[{"direction":"ingress","protocol":"icmp","ethertype":"IPv6"}]}"#,
        )
        .await;
    assert_eq!(icmp6.status, StatusCode::BAD_REQUEST);
    assert!(icmp6.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("Protocol icmp is prohibited for ethertype IPv6"));
    let id = create(&http, &gw, r#"{"name":"named","rules":[]}"#).await;
    let bad_name = http
        .gcore(Method::PATCH, &gw.url(&format!("{BASE}/{id}")), r#"{"name":"a/b"}"#)
        .await;
    assert_eq!(bad_name.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_class(&bad_name), "ValidationError");
    assert!(bad_name.json()["request_id"].is_string());
    let unauth = http
        .send(Method::GET, &gw.url("/cloud/v1/securitygroups/7/76"), &[], "")
        .await;
    assert_eq!(unauth.status, StatusCode::UNAUTHORIZED);
    let bad_key = http
        .send(
            Method::GET,
            &gw.url("/cloud/v1/securitygroups/7/76"),
            &[("authorization", "APIKey nope")],
            "",
        )
        .await;
    assert_eq!(bad_key.status, StatusCode::UNAUTHORIZED);
    let r = http
        .gcore(
            Method::GET,
            &gw.url("/cloud/v1/tasks/11111111-2222-4333-8444-555555555555"),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = http.gcore(Method::PUT, &gw.url(&format!("{BASE}/{id}")), "{}").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_rules_when_omitted_and_lists() {
    let gw = start(quick_config()).await;
    let http = Http::default();
    let id = create(&http, &gw, r#"{"name":"defaults"}"#).await;
    let g = group(&http, &gw, &id).await;
    let rules = g["security_group_rules"].as_array().unwrap();
    assert!(rules.len() > 30, "Gcore's default egress template");
    assert!(rules.iter().all(|r| r["direction"] == "egress"));
    for n in ["b", "c", "d"] {
        create(&http, &gw, &format!(r#"{{"name":"{n}","rules":[]}}"#)).await;
    }
    let page = http
        .gcore(
            Method::GET,
            &gw.url("/cloud/v1/securitygroups/7/76?limit=2&offset=1"),
            "",
        )
        .await
        .json();
    assert_eq!(page["count"], 4);
    let names: Vec<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "c"]);
    let by_name = http
        .gcore(Method::GET, &gw.url("/cloud/v1/securitygroups/7/76?name=c"), "")
        .await
        .json();
    assert_eq!(by_name["count"], 1);
    let other_scope = http
        .gcore(Method::GET, &gw.url("/cloud/v1/securitygroups/7/77"), "")
        .await
        .json();
    assert_eq!(other_scope["count"], 0);
    let r = http
        .gcore(Method::GET, &gw.url("/cloud/v1/securitygroups/7/76?limit=0"), "")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_wait_answers_the_final_group() {
    let gw = start(quick_config()).await;
    let http = Http::default();
    let r = http
        .send(
            Method::POST,
            &gw.url(BASE),
            &[("authorization", GCORE_AUTH), ("prefer", "wait=10")],
            r#"{"name":"waited","rules":[]}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("preference-applied"), Some("wait=10"));
    assert_eq!(r.json()["name"], "waited");
}
