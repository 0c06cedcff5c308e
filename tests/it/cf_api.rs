//! The CF v2 front end over the embedded backend: CC's statuses, bodies and
//! error codes for the whole security-group family.

use crate::support::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};

async fn create(http: &Http, gw: &Gateway, name: &str, rules: &str) -> String {
    let r = http
        .cf(
            Method::POST,
            &gw.url("/v2/security_groups"),
            &format!(r#"{{"name":"{name}","rules":{rules}}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
    r.json()["metadata"]["guid"].as_str().unwrap().to_string()
}

fn assert_cf_error(r: &Reply, status: u16, code: u64, name: &str) -> Value {
    assert_eq!(r.status.as_u16(), status, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["error_code"], name, "{body}");
    assert_eq!(
        body.as_object().unwrap().len(),
        3,
        "exactly code, description, error_code"
    );
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_errors() {
    let gw = start(quick_config()).await;
    let http = Http::default();
    let r = http.send(Method::GET, &gw.url("/v2/security_groups"), &[], "").await;
    let body = assert_cf_error(&r, 401, 10002, "CF-NotAuthenticated");
    assert_eq!(body["description"], "Authentication error");
    let r = http
        .send(
            Method::GET,
            &gw.url("/v2/security_groups"),
            &[("authorization", "bearer wrong")],
            "",
        )
        .await;
    assert_cf_error(&r, 401, 1000, "CF-InvalidAuthToken");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("wrong"),
        "tokens never echo back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_guids() {
    let gw = start(quick_config()).await;
    let http = Http::default();
    let r = http.cf(Method::GET, &gw.url("/v2/apps"), "").await;
    let body = assert_cf_error(&r, 404, 10000, "CF-NotFound");
    assert_eq!(body["description"], "Unknown request");
    let r = http.cf(Method::PATCH, &gw.url("/v2/security_groups"), "{}").await;
    assert_cf_error(&r, 404, 10000, "CF-NotFound");
    let missing = "11111111-2222-4333-8444-555555555555";
    for (m, body) in [(Method::GET, ""), (Method::PUT, "{}"), (Method::DELETE, "")] {
        let r = http
            .cf(m, &gw.url(&format!("/v2/security_groups/{missing}")), body)
            .await;
        let b = assert_cf_error(&r, 404, 300002, "CF-SecurityGroupNotFound");
        assert_eq!(
            b["description"],
            format!("The security group could not be found: {missing}")
        );
    }
    let r = http
        .cf(Method::GET, &gw.url("/v2/security_groups/not-a-guid"), "")
        .await;
    assert_cf_error(&r, 404, 300002, "CF-SecurityGroupNotFound");
    let r = http
        .cf(
            Method::PUT,
            &gw.url(&format!("/v2/config/running_security_groups/{missing}")),
            r#""""#,
        )
        .await;
    assert_cf_error(&r, 400, 300004, "CF-SecurityGroupRunningDefaultInvalid");
    let r = http
        .cf(
            Method::DELETE,
            &gw.url(&format!("/v2/config/staging_security_groups/{missing}")),
            "",
        )
        .await;
    assert_cf_error(&r, 400, 300003, "CF-SecurityGroupStagingDefaultInvalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_rules_use_cc_wording_and_change_nothing() {
    let gw = start(quick_config()).await;
    let http = Http::default();
    let r = http
        .cf(
            Method::POST,
            &gw.url("/v2/security_groups"),
            r#"{"name":"x","rules":[{"protocol":"tcp"}]}"#,
        )
        .await;
    let body = assert_cf_error(&r, 400, 300001, "CF-SecurityGroupInvalid");
    assert_eq!(
        body["description"],
        "The security group is invalid: rules rule number 1 missing required field 'destination', rules rule number 1 missing required field 'ports'"
    );
    let list = http.cf(Method::GET, &gw.url("/v2/security_groups"), "").await.json();
    assert_eq!(list["total_results"], 0, "nothing half-applied");

    let guid = create(
        &http,
        &gw,
        "keep",
        r#"[{"protocol":"udp","destination":"10.0.0.0/8","ports":"53"}]"#,
    )
    .await;
    let r = http
        .cf(
            Method::PUT,
            &gw.url(&format!("/v2/security_groups/{guid}")),
            r#"{"rules":[{"protocol":"udp","destination":"10.0.0.0/8","ports":"0"}]}"#,
        )
        .await;
    assert_cf_error(&r, 400, 300001, "CF-SecurityGroupInvalid");
    let after = http
        .cf(Method::GET, &gw.url(&format!("/v2/security_groups/{guid}")), "")
        .await
        .json();
    assert_eq!(after["entity"]["rules"][0]["ports"], "53");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_unique() {
    let gw = start(quick_config()).await;
    let http = Http::default();
    create(&http, &gw, "dup", "[]").await;
    let r = http
        .cf(Method::POST, &gw.url("/v2/security_groups"), r#"{"name":"dup"}"#)
        .await;
    let body = assert_cf_error(&r, 400, 300005, "CF-SecurityGroupNameTaken");
    assert_eq!(body["description"], "The security group name is taken: dup");
    let other = create(&http, &gw, "other", "[]").await;
    let r = http
        .cf(
            Method::PUT,
            &gw.url(&format!("/v2/security_groups/{other}")),
            r#"{"name":"dup"}"#,
        )
        .await;
    assert_cf_error(&r, 400, 300005, "CF-SecurityGroupNameTaken");
    // Gcore's name pattern applies to renames on every backend.
    let r = http
        .cf(
            Method::PUT,
            &gw.url(&format!("/v2/security_groups/{other}")),
            r#"{"name":"a/b"}"#,
        )
        .await;
    let b = assert_cf_error(&r, 400, 300001, "CF-SecurityGroupInvalid");
    assert!(b["description"]
        .as_str()
        .unwrap()
        .contains("does not match expected pattern"));
    // Renaming to its own name is not a clash.
    let r = http
        .cf(
            Method::PUT,
            &gw.url(&format!("/v2/security_groups/{other}")),
            r#"{"name":"other"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_and_pages() {
    let gw = start(quick_config()).await;
    let http = Http::default();
    for n in ["a1", "a2", "b1", "b2", "c1"] {
        create(&http, &gw, n, "[]").await;
    }
    let page = http
        .cf(
            Method::GET,
            &gw.url("/v2/security_groups?results-per-page=2&page=2"),
            "",
        )
        .await
        .json();
    assert_eq!(
        (page["total_results"].clone(), page["total_pages"].clone()),
        (json!(5), json!(3))
    );
    let names: Vec<&str> = page["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["entity"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b1", "b2"]);
    assert_eq!(
        page["next_url"],
        "/v2/security_groups?order-direction=asc&page=3&results-per-page=2"
    );
    assert_eq!(
        page["prev_url"],
        "/v2/security_groups?order-direction=asc&page=1&results-per-page=2"
    );
    let ge = http
        .cf(Method::GET, &gw.url("/v2/security_groups?q=name%3E%3Db2"), "")
        .await
        .json();
    assert_eq!(ge["total_results"], 2);
    let inn = http
        .cf(Method::GET, &gw.url("/v2/security_groups?q=name%20IN%20a1,c1"), "")
        .await
        .json();
    assert_eq!(inn["total_results"], 2);
    let desc = http
        .cf(
            Method::GET,
            &gw.url("/v2/security_groups?order-direction=desc&results-per-page=1"),
            "",
        )
        .await
        .json();
    assert_eq!(desc["resources"][0]["entity"]["name"], "c1");
    let r = http
        .cf(Method::GET, &gw.url("/v2/security_groups?results-per-page=101"), "")
        .await;
    assert_cf_error(&r, 400, 10005, "CF-BadQueryParameter");
    let r = http
        .cf(Method::GET, &gw.url("/v2/security_groups?q=space_guid%3Ax"), "")
        .await;
    let b = assert_cf_error(&r, 400, 10005, "CF-BadQueryParameter");
    assert_eq!(b["description"], "The query parameter is invalid: space_guid");
    let r = http
        .cf(Method::GET, &gw.url("/v2/security_groups?order-by=name"), "")
        .await;
    assert_cf_error(&r, 500, 10012, "CF-OrderByParameterInvalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spaces_defaults_and_jobs() {
    let gw = start(quick_config()).await;
    let http = Http::default();
    let space = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
    let guid = create(&http, &gw, "bound", "[]").await;
    let r = http
        .cf(
            Method::PUT,
            &gw.url(&format!("/v2/security_groups/{guid}/spaces/{space}")),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["metadata"]["guid"], guid.as_str());
    let r = http
        .cf(
            Method::PUT,
            &gw.url(&format!("/v2/spaces/{space}/staging_security_groups/{guid}")),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["metadata"]["guid"], space, "the space side answers the space");
    let spaces = http
        .cf(Method::GET, &gw.url(&format!("/v2/security_groups/{guid}/spaces")), "")
        .await
        .json();
    assert_eq!(spaces["total_results"], 1);
    assert_eq!(spaces["resources"][0]["metadata"]["guid"], space);
    let of_space = http
        .cf(
            Method::GET,
            &gw.url(&format!("/v2/spaces/{space}/security_groups?q=name%3Abound")),
            "",
        )
        .await
        .json();
    assert_eq!(of_space["total_results"], 1);
    let staging = http
        .cf(
            Method::GET,
            &gw.url(&format!("/v2/security_groups/{guid}/staging_spaces")),
            "",
        )
        .await
        .json();
    assert_eq!(staging["total_results"], 1);
    let r = http
        .cf(
            Method::DELETE,
            &gw.url(&format!("/v2/security_groups/{guid}/spaces/{space}")),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let spaces = http
        .cf(Method::GET, &gw.url(&format!("/v2/security_groups/{guid}/spaces")), "")
        .await
        .json();
    assert_eq!(spaces["total_results"], 0);
    let r = http
        .cf(
            Method::PUT,
            &gw.url(&format!("/v2/security_groups/{guid}/spaces/not-a-guid")),
            "",
        )
        .await;
    assert_cf_error(&r, 400, 1002, "CF-InvalidRelation");

    // Staging default on and off.
    let r = http
        .cf(
            Method::PUT,
            &gw.url(&format!("/v2/config/staging_security_groups/{guid}")),
            r#""""#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["entity"]["staging_default"], true);
    let g = http
        .cf(Method::GET, &gw.url(&format!("/v2/security_groups/{guid}")), "")
        .await
        .json();
    assert_eq!(g["entity"]["staging_default"], true);
    let r = http
        .cf(
            Method::DELETE,
            &gw.url(&format!("/v2/config/staging_security_groups/{guid}")),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let d = http
        .cf(Method::GET, &gw.url("/v2/config/staging_security_groups"), "")
        .await
        .json();
    assert_eq!(d["total_results"], 0);

    // Delete without async answers 204; with async a job that reads finished.
    let r = http
        .cf(Method::DELETE, &gw.url(&format!("/v2/security_groups/{guid}")), "")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    let other = create(&http, &gw, "second", "[]").await;
    let r = http
        .cf(
            Method::DELETE,
            &gw.url(&format!("/v2/security_groups/{other}?async=true")),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let job = r.json();
    assert_eq!(job["entity"]["status"], "queued");
    let polled = http
        .cf(Method::GET, &gw.url(job["metadata"]["url"].as_str().unwrap()), "")
        .await
        .json();
    assert_eq!(polled["entity"]["status"], "finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port25_policy_and_foreign_rules() {
    let http = Http::default();
    let mut cfg = quick_config();
    cfg.gcore.port25 = sgbridge::config::Port25::Reject;
    let strict = start(cfg).await;
    let r = http
        .cf(
            Method::POST,
            &strict.url("/v2/security_groups"),
            r#"{"name":"smtp","rules":[{"protocol":"tcp","destination":"0.0.0.0/0","ports":"25"}]}"#,
        )
        .await;
    let b = assert_cf_error(&r, 400, 300001, "CF-SecurityGroupInvalid");
    assert!(b["description"].as_str().unwrap().contains("rules rule number 1"));

    // A Gcore-native ingress rule is shown as a warning to CF, and kept when CF replaces the rules.
    let gw = start(quick_config()).await;
    let guid = create(
        &http,
        &gw,
        "mixed",
        r#"[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443"}]"#,
    )
    .await;
    let t = http
        .gcore(
            Method::POST,
            &gw.url(&format!("/cloud/v2/security_groups/1/1/{guid}/rules")),
            r#"{"direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22,"remote_ip_prefix":"192.168.0.0/16"}"#,
        )
        .await
        .json();
    finish_task(&http, &gw, t["tasks"][0].as_str().unwrap()).await;
    let g = http
        .cf(Method::GET, &gw.url(&format!("/v2/security_groups/{guid}")), "")
        .await;
    assert!(g.header("x-cf-warnings").unwrap().contains("ingress"));
    assert_eq!(g.json()["entity"]["rules"].as_array().unwrap().len(), 1);
    let put = http
        .cf(
            Method::PUT,
            &gw.url(&format!("/v2/security_groups/{guid}")),
            r#"{"rules":[{"protocol":"udp","destination":"10.0.0.0/8","ports":"53"}]}"#,
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    let native = http
        .gcore(
            Method::GET,
            &gw.url(&format!("/cloud/v1/securitygroups/1/1/{guid}")),
            "",
        )
        .await
        .json();
    let dirs: Vec<&str> = native["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["direction"].as_str().unwrap())
        .collect();
    assert_eq!(
        dirs.iter().filter(|d| **d == "ingress").count(),
        1,
        "the ingress rule survived: {dirs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_beyond_the_gcore_cap_are_refused_naming_it() {
    let gw = start(quick_config()).await;
    let http = Http::default();
    let rules: Vec<String> = (0..300)
        .map(|i| {
            format!(
                r#"{{"protocol":"tcp","destination":"10.0.{}.{}","ports":"443"}}"#,
                i / 250,
                i % 250
            )
        })
        .collect();
    let r = http
        .cf(
            Method::POST,
            &gw.url("/v2/security_groups"),
            &format!(r#"{{"name":"big","rules":[{}]}}"#, rules.join(",")),
        )
        .await;
    let b = assert_cf_error(&r, 400, 300001, "CF-SecurityGroupInvalid");
    assert!(
        b["description"]
            .as_str()
            .unwrap()
            .contains("more than the 250 Gcore rules"),
        "{b}"
    );
    assert!(b["description"].as_str().unwrap().contains("rule number 251"), "{b}");
}

/// Every conformance vector through the real HTTP API, as POST and as PUT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_vectors_through_post_and_put() {
    let text = crate::support::vectors_text();
    let vectors: Vec<Value> = serde_json::from_str(&text).unwrap();
    let http = Http::default();
    let mut gateways = std::collections::HashMap::new();
    let mut failures = Vec::new();
    for (i, v) in vectors.iter().enumerate() {
        let flags = (
            v["config"]["enable_comma_delimited_destinations"].as_bool().unwrap(),
            v["config"]["enable_ipv6"].as_bool().unwrap(),
        );
        if let std::collections::hash_map::Entry::Vacant(slot) = gateways.entry(flags) {
            let mut cfg = quick_config();
            cfg.cf.enable_comma_delimited_destinations = flags.0;
            cfg.cf.enable_ipv6 = flags.1;
            cfg.gcore.max_rules = 100_000;
            let gw = start(cfg).await;
            let target = create(&http, &gw, "put-target", "[]").await;
            slot.insert((gw, target));
        }
        let (gw, target) = &gateways[&flags];
        let rules = v["rules"].to_string();
        let post = http
            .cf(
                Method::POST,
                &gw.url("/v2/security_groups"),
                &format!(r#"{{"name":"v{i}","rules":{rules}}}"#),
            )
            .await;
        let put = http
            .cf(
                Method::PUT,
                &gw.url(&format!("/v2/security_groups/{target}")),
                &format!(r#"{{"rules":{rules}}}"#),
            )
            .await;
        for (verb, r) in [("POST", post), ("PUT", put)] {
            let name = v["name"].as_str().unwrap();
            let valid = v["valid"].as_bool().unwrap();
            let ok = if valid {
                // Valid CF that Gcore cannot say (icmp to IPv6, ICMP code with any type) is a clear 400.
                r.status == StatusCode::CREATED
                    || (r.status == StatusCode::BAD_REQUEST
                        && r.json()["description"]
                            .as_str()
                            .unwrap()
                            .contains("cannot be expressed on Gcore"))
            } else {
                let body = r.json();
                let want = v["error_contains"].as_str();
                r.status == StatusCode::BAD_REQUEST
                    && want.is_none_or(|w| body["description"].as_str().unwrap().contains(w))
                    && (v["v2_status"] == 500
                        || v["v2_description"].is_null()
                        || body["description"] == v["v2_description"])
            };
            if !ok {
                failures.push(format!(
                    "{verb} {name}: {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body).chars().take(300).collect::<String>()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
