//! The chained end-to-end test: a CF client → sgbridge A (backend = gcore)
//! → sgbridge B (Gcore front end, embedded backend), all over real HTTP on
//! loopback. The CF answers must be CF resources; the state read from B must
//! be the expected Gcore expansion.

use crate::support::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};

/// B's rules, as comparable `(protocol, min, max, prefix)` tuples.
async fn gcore_rules(http: &Http, b: &Gateway, id: &str) -> Vec<(Value, Value, Value, Value)> {
    let g = http
        .gcore(Method::GET, &b.url(&format!("/cloud/v1/securitygroups/1/76/{id}")), "")
        .await;
    assert_eq!(g.status, StatusCode::OK);
    let g = g.json();
    let mut rules: Vec<_> = g["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["direction"], "egress");
            (
                r["protocol"].clone(),
                r["port_range_min"].clone(),
                r["port_range_max"].clone(),
                r["remote_ip_prefix"].clone(),
            )
        })
        .collect();
    rules.sort_by_key(|r| format!("{r:?}"));
    rules
}

fn expected(protocol: &str, prefixes: &[&str], ports: &[u16]) -> Vec<(Value, Value, Value, Value)> {
    let mut out = Vec::new();
    for p in prefixes {
        for port in ports {
            out.push((json!(protocol), json!(port), json!(port), json!(p)));
        }
    }
    out.sort_by_key(|r| format!("{r:?}"));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cf_through_gcore_backend_to_embedded() {
    let b = start(quick_config()).await;
    let a = start_gcore_backed(&format!("http://{}", b.addr), quick_config()).await;
    let http = Http::default();

    // Create.
    let create = http
        .cf(
            Method::POST,
            &a.url("/v2/security_groups"),
            r#"{"name":"chain-web","rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443","description":"https"}]}"#,
        )
        .await;
    assert_eq!(
        create.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&create.body)
    );
    let created = create.json();
    let guid = created["metadata"]["guid"].as_str().unwrap().to_string();
    assert_eq!(
        create.header("location"),
        Some(format!("/v2/security_groups/{guid}").as_str())
    );
    assert_eq!(created["metadata"]["url"], format!("/v2/security_groups/{guid}"));
    assert_eq!(
        created["entity"],
        json!({
            "name": "chain-web",
            "rules": [{"protocol": "tcp", "destination": "10.0.0.0/8", "ports": "443", "description": "https"}],
            "running_default": false,
            "staging_default": false,
            "spaces_url": format!("/v2/security_groups/{guid}/spaces"),
            "staging_spaces_url": format!("/v2/security_groups/{guid}/staging_spaces"),
        })
    );
    assert_eq!(
        gcore_rules(&http, &b, &guid).await,
        expected("tcp", &["10.0.0.0/8"], &[443])
    );

    // List by name, and get.
    let list = http
        .cf(Method::GET, &a.url("/v2/security_groups?q=name%3Achain-web"), "")
        .await
        .json();
    assert_eq!(list["total_results"], 1);
    assert_eq!(list["resources"][0]["metadata"]["guid"], guid.as_str());
    let none = http
        .cf(Method::GET, &a.url("/v2/security_groups?q=name%3Aother"), "")
        .await
        .json();
    assert_eq!(none["total_results"], 0);
    let got = http
        .cf(Method::GET, &a.url(&format!("/v2/security_groups/{guid}")), "")
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json()["entity"], created["entity"]);

    // Update with an IP range and a port list (the way `cf update-security-group` sends it).
    let put = http
        .cf(
            Method::PUT,
            &a.url(&format!("/v2/security_groups/{guid}")),
            r#"{"rules":[{"protocol":"tcp","destination":"10.0.0.1-10.0.0.6","ports":"443, 80","log":true}]}"#,
        )
        .await;
    assert_eq!(
        put.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&put.body)
    );
    assert_eq!(
        put.json()["entity"]["rules"],
        json!([{"protocol": "tcp", "destination": "10.0.0.1-10.0.0.6", "ports": "443, 80", "log": true}])
    );
    assert_eq!(
        gcore_rules(&http, &b, &guid).await,
        expected(
            "tcp",
            &["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"],
            &[443, 80]
        )
    );

    // Set as running default: CF-only state, kept in B's tags.
    let set = http
        .cf(
            Method::PUT,
            &a.url(&format!("/v2/config/running_security_groups/{guid}")),
            r#""""#,
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", String::from_utf8_lossy(&set.body));
    let set = set.json();
    assert_eq!(
        set["metadata"]["url"],
        format!("/v2/config/running_security_groups/{guid}")
    );
    assert_eq!(set["entity"]["running_default"], true);
    assert!(set["entity"].get("spaces_url").is_none(), "reduced entity");
    let defaults = http
        .cf(Method::GET, &a.url("/v2/config/running_security_groups"), "")
        .await
        .json();
    assert_eq!(defaults["total_results"], 1);
    let b_group = http
        .gcore(
            Method::GET,
            &b.url(&format!("/cloud/v1/securitygroups/1/76/{guid}")),
            "",
        )
        .await
        .json();
    let keys: Vec<&str> = b_group["tags_v2"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"sgbridge.cf.running_default"), "{keys:?}");
    assert_eq!(
        keys.iter().filter(|k| k.starts_with("sgbridge.cf.log.")).count(),
        8,
        "one log tag per Gcore rule"
    );

    // Delete, the way the v6 CLI does it (async=true → a job it polls).
    let del = http
        .cf(
            Method::DELETE,
            &a.url(&format!("/v2/security_groups/{guid}?async=true")),
            "",
        )
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    let job_url = del.json()["metadata"]["url"].as_str().unwrap().to_string();
    let job = http.cf(Method::GET, &a.url(&job_url), "").await.json();
    assert_eq!(job["entity"]["status"], "finished");
    let gone = http
        .gcore(
            Method::GET,
            &b.url(&format!("/cloud/v1/securitygroups/1/76/{guid}")),
            "",
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let gone = http
        .cf(Method::GET, &a.url(&format!("/v2/security_groups/{guid}")), "")
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.json()["error_code"], "CF-SecurityGroupNotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcore_state_written_by_cf_reads_back_through_the_gcore_front_end() {
    let b = start(quick_config()).await;
    let a = start_gcore_backed(&format!("http://{}", b.addr), quick_config()).await;
    let http = Http::default();
    let r = http
        .cf(
            Method::POST,
            &a.url("/v2/security_groups"),
            r#"{"name":"all-out","rules":[{"protocol":"all","destination":"0.0.0.0/0"}]}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // The narrowing is reported to the cf CLI, and undone on the way back.
    assert!(r.header("x-cf-warnings").unwrap().contains("port%2025"));
    assert_eq!(
        r.json()["entity"]["rules"],
        json!([{"protocol": "all", "destination": "0.0.0.0/0"}])
    );
    let guid = r.json()["metadata"]["guid"].as_str().unwrap().to_string();
    let rules = gcore_rules(&http, &b, &guid).await;
    assert_eq!(rules.len(), 20);
    assert!(rules.contains(&(json!("tcp"), json!(1), json!(24), json!("0.0.0.0/0"))));
    assert!(rules.contains(&(json!("tcp"), json!(26), json!(65535), json!("0.0.0.0/0"))));
}
