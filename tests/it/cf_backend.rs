//! A Cloud Controller as the backend, over loopback HTTP: gateway A has
//! `backend.kind = "cf"` and talks to gateway B, which serves CF v3 over
//! the embedded backend. Gcore callers of A get tasks the gateway runs
//! itself; CF v2 and v3 callers of A get CC's answers; what CF cannot hold
//! is a clear 400; CC's refusals keep their detail.

use crate::support::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use sgbridge::config::{BackendKind, Config};

const TOKEN_VAR: &str = "SGBRIDGE_TEST_CC_TOKEN";

/// B: a Cloud Controller stand-in (sgbridge's own v3 API, embedded backend).
async fn controller() -> Gateway {
    let mut c = quick_config();
    c.auth.cf_bearer_tokens = vec!["cc-admin-token".into(), "granted-token".into()];
    start(c).await
}

fn backed_by(cc: &Gateway) -> Config {
    let mut c = quick_config();
    c.env = c.env.with(TOKEN_VAR, "cc-admin-token");
    c.backend.kind = BackendKind::Cf;
    c.backend.cf.api_url = cc.url("");
    c.backend.cf.token_env = TOKEN_VAR.into();
    c.backend.cf.request_timeout_s = 5;
    c
}

async fn finished(gw: &InProc, task: &str) -> Value {
    for _ in 0..200 {
        let t = gw
            .gcore(Method::GET, &format!("/cloud/v1/tasks/{task}"), "")
            .await
            .json();
        if t["state"] != "RUNNING" && t["state"] != "NEW" {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("task {task} never ended");
}

async fn cc_group(http: &Http, cc: &Gateway, id: &str) -> Value {
    let r = http
        .send(
            Method::GET,
            &cc.url(&format!("/v3/security_groups/{id}")),
            &[("authorization", "bearer cc-admin-token")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

const EGRESS: &str = r#"{"direction":"egress","ethertype":"IPv4","protocol":"tcp","port_range_min":443,"port_range_max":443,"remote_ip_prefix":"10.0.0.0/8"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcore_writes_reach_the_cloud_controller_as_cf_rules() {
    let cc = controller().await;
    let gw = InProc::from_config(backed_by(&cc));
    let http = Http::default();
    let created = gw
        .gcore(
            Method::POST,
            "/cloud/v2/security_groups/1/1",
            &format!(r#"{{"name":"web","rules":[{EGRESS}]}}"#),
        )
        .await;
    assert_eq!(
        created.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let task = created.json()["tasks"][0].as_str().unwrap().to_string();
    let t = finished(&gw, &task).await;
    assert_eq!(t["state"], "FINISHED", "{t}");
    assert_eq!(t["task_type"], "create_security_group");
    let id = t["created_resources"]["security_groups"][0]
        .as_str()
        .unwrap()
        .to_string();
    let g = cc_group(&http, &cc, &id).await;
    assert_eq!(
        g["rules"],
        json!([{"protocol": "tcp", "destination": "10.0.0.0/8", "ports": "443"}])
    );

    // A PATCH with the full rule set: networks that are a range's minimal
    // cover fold into the range, single ports into a list.
    let patch = r#"{"rules":[
        {"direction":"egress","protocol":"udp","port_range_min":53,"port_range_max":53,"remote_ip_prefix":"10.0.0.1/32"},
        {"direction":"egress","protocol":"udp","port_range_min":5353,"port_range_max":5353,"remote_ip_prefix":"10.0.0.1/32"},
        {"direction":"egress","protocol":"udp","port_range_min":53,"port_range_max":53,"remote_ip_prefix":"10.0.0.2/31"},
        {"direction":"egress","protocol":"udp","port_range_min":5353,"port_range_max":5353,"remote_ip_prefix":"10.0.0.2/31"}]}"#;
    let r = gw
        .gcore(Method::PATCH, &format!("/cloud/v2/security_groups/1/1/{id}"), patch)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    let t = finished(&gw, r.json()["tasks"][0].as_str().unwrap()).await;
    assert_eq!(t["state"], "FINISHED", "{t}");
    let g = cc_group(&http, &cc, &id).await;
    assert_eq!(
        g["rules"],
        json!([{"protocol": "udp", "destination": "10.0.0.1-10.0.0.3", "ports": "53, 5353"}])
    );

    // The same through Prefer: wait answers the final group, in Gcore's shape.
    let r = gw
        .send(
            Method::PATCH,
            &format!("/cloud/v2/security_groups/1/1/{id}"),
            &[("authorization", GCORE_AUTH), ("prefer", "wait=30")],
            &format!(r#"{{"rules":[{EGRESS}]}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.json();
    assert_eq!(body["security_group_rules"][0]["port_range_min"], 443);
    // A Gcore rule add and delete go through the same path.
    let add = gw
        .send(
            Method::POST,
            &format!("/cloud/v2/security_groups/1/1/{id}/rules"),
            &[("authorization", GCORE_AUTH), ("prefer", "wait=30")],
            r#"{"direction":"egress","protocol":"icmp","remote_ip_prefix":"10.1.0.0/16"}"#,
        )
        .await;
    assert_eq!(add.status, StatusCode::OK, "{}", String::from_utf8_lossy(&add.body));
    let rules = add.json()["security_group_rules"].as_array().unwrap().clone();
    assert_eq!(rules.len(), 2);
    let icmp = rules.iter().find(|r| r["protocol"] == "icmp").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let del = gw
        .gcore(
            Method::DELETE,
            &format!("/cloud/v2/security_groups/1/1/{id}/rules/{icmp}"),
            "",
        )
        .await;
    let t = finished(&gw, del.json()["tasks"][0].as_str().unwrap()).await;
    assert_eq!(t["state"], "FINISHED");
    assert_eq!(cc_group(&http, &cc, &id).await["rules"].as_array().unwrap().len(), 1);
    // A listing through A reads CC.
    let list = gw
        .gcore(Method::GET, "/cloud/v1/securitygroups/1/1?name=web", "")
        .await
        .json();
    assert_eq!(list["count"], 1);
    let tasks = gw.gcore(Method::GET, "/cloud/v1/tasks?project_id=1", "").await.json();
    let kinds: Vec<&str> = tasks["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "create_security_group",
            "update_security_group",
            "delete_security_group_rule"
        ]
    );
    // Delete is synchronous, and waits on CC's job.
    let del = gw
        .gcore(Method::DELETE, &format!("/cloud/v1/securitygroups/1/1/{id}"), "")
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let gone = http
        .send(
            Method::GET,
            &cc.url(&format!("/v3/security_groups/{id}")),
            &[("authorization", "bearer cc-admin-token")],
            "",
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cf_cannot_hold_is_named_and_cc_refusals_keep_their_detail() {
    let cc = controller().await;
    let gw = InProc::from_config(backed_by(&cc));
    let ingress = r#"{"name":"x","rules":[{"direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22}],"tags":{"k":"v"}}"#;
    let r = gw.gcore(Method::POST, "/cloud/v2/security_groups/1/1", ingress).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let fields = r.json()["invalid_fields"].clone();
    assert!(
        fields.get("rules.0").is_some() && fields.get("tags").is_some(),
        "{fields}"
    );
    // CC caps names at 250 characters; Gcore takes 255.
    let long = "n".repeat(252);
    let r = gw
        .send(
            Method::POST,
            "/cloud/v2/security_groups/1/1",
            &[("authorization", GCORE_AUTH), ("prefer", "wait=30")],
            &format!(r#"{{"name":"{long}","rules":[]}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("Name is too long (maximum is 250 characters)"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // The Cloud Controller is one scope (cf.project_id/region_id = 1/1).
    let r = gw
        .gcore(
            Method::POST,
            "/cloud/v2/security_groups/1/76",
            r#"{"name":"elsewhere","rules":[]}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("region 76 is not served"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // revert_to_default has no meaning on CF.
    let g = gw
        .send(
            Method::POST,
            "/cloud/v2/security_groups/1/1",
            &[("authorization", GCORE_AUTH), ("prefer", "wait=30")],
            r#"{"name":"plain","rules":[]}"#,
        )
        .await
        .json();
    let r = gw
        .gcore(
            Method::POST,
            &format!("/cloud/v1/securitygroups/1/1/{}/revert", g["id"].as_str().unwrap()),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_controller_outage_is_a_503_before_and_a_failed_task_after() {
    let cc = controller().await;
    let gw = InProc::from_config(backed_by(&cc));
    drop(cc);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let r = gw.gcore(Method::GET, "/cloud/v1/securitygroups/1/1", "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let r = gw.cf(Method::GET, "/v2/security_groups", "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let r = gw
        .gcore(
            Method::POST,
            "/cloud/v2/security_groups/1/1",
            r#"{"name":"later","rules":[]}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "accepted: the gateway runs it");
    let t = finished(&gw, r.json()["tasks"][0].as_str().unwrap()).await;
    assert_eq!(t["state"], "ERROR");
    assert!(t["error"].as_str().unwrap().contains("unreachable"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cf_callers_through_a_cf_backend() {
    let cc = controller().await;
    let gw = InProc::from_config(backed_by(&cc));
    let http = Http::default();
    let v3 = gw
        .cf(
            Method::POST,
            "/v3/security_groups",
            r#"{"name":"web","rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443"}],"globally_enabled":{"running":true}}"#,
        )
        .await;
    assert_eq!(v3.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&v3.body));
    let id = v3.json()["guid"].as_str().unwrap().to_string();
    let r = gw
        .cf(
            Method::PATCH,
            &format!("/v3/security_groups/{id}"),
            r#"{"rules":[{"protocol":"all","destination":"0.0.0.0/0"}]}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.header("x-cf-warnings").is_none(),
        "no port-25 narrowing on a CF backend"
    );
    assert_eq!(
        r.json()["rules"],
        json!([{"protocol": "all", "destination": "0.0.0.0/0"}])
    );
    assert_eq!(
        cc_group(&http, &cc, &id).await["rules"],
        json!([{"protocol": "all", "destination": "0.0.0.0/0"}])
    );
    let space = "d0d0d0d0-1111-4222-8333-444444444444";
    let bind = gw
        .cf(
            Method::PUT,
            &format!("/v2/security_groups/{id}/staging_spaces/{space}"),
            "",
        )
        .await;
    assert_eq!(
        bind.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&bind.body)
    );
    assert_eq!(
        cc_group(&http, &cc, &id).await["relationships"]["staging_spaces"]["data"],
        json!([{"guid": space}])
    );
    let taken = gw.cf(Method::POST, "/v2/security_groups", r#"{"name":"web"}"#).await;
    assert_eq!(taken.json()["error_code"], "CF-SecurityGroupNameTaken");
    let del = gw.cf(Method::DELETE, &format!("/v3/security_groups/{id}"), "").await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uaa_client_grant_is_used_and_renewed_when_refused() {
    let cc = controller().await;
    let uaa = crate::support::uaa::start().await;
    {
        let mut s = uaa.state.lock().unwrap();
        s.client = ("sgbridge".into(), "client-secret".into());
        // The first token is refused by the Cloud Controller; the second works.
        s.grant_tokens = vec!["stale-token".into(), "granted-token".into()];
    }
    let mut c = backed_by(&cc);
    c.env = c.env.with("SGBRIDGE_TEST_CC_SECRET", "client-secret");
    c.backend.cf.token_env = String::new();
    c.backend.cf.uaa_url = uaa.url();
    c.backend.cf.client_id = "sgbridge".into();
    c.backend.cf.client_secret_env = "SGBRIDGE_TEST_CC_SECRET".into();
    let gw = InProc::from_config(c);
    let r = gw.cf(Method::GET, "/v3/security_groups", "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(uaa.state.lock().unwrap().grants, 2);
    let r = gw.cf(Method::GET, "/v3/security_groups", "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        uaa.state.lock().unwrap().grants,
        2,
        "the token is kept until it expires"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_drop_unsupported_what_cf_cannot_hold_is_dropped_with_a_warning() {
    let cc = controller().await;
    let mut cfg = backed_by(&cc);
    cfg.backend.cf.drop_unsupported = true;
    let gw = InProc::from_config(cfg);
    let http = Http::default();
    let body = format!(
        r#"{{"name":"lenient","tags":{{"k":"v"}},"rules":[{EGRESS},
        {{"direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22}}]}}"#
    );
    let r = gw
        .send(
            Method::POST,
            "/cloud/v2/security_groups/1/1",
            &[("authorization", GCORE_AUTH), ("prefer", "wait=30")],
            &body,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    let warnings = r.header("x-sgbridge-warnings").unwrap_or_default().to_string();
    assert!(
        warnings.contains("tags%20dropped") && warnings.contains("rules.1%20dropped"),
        "{warnings}"
    );
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        cc_group(&http, &cc, &id).await["rules"],
        json!([{"protocol": "tcp", "destination": "10.0.0.0/8", "ports": "443"}])
    );
}
