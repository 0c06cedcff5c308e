//! Safe as a shared service: UAA logins, scoped keys, bounded labels, text
//! and time, no reflected Host, no secret from a backend's echo.

mod support;

use http::{Method, StatusCode};
use serde_json::Value;
use sgbridge::config::{Config, GcoreKeyEntry, Redacted, UaaConfig};
use std::sync::Arc;
use support::scripted::Scripted;
use support::uaa::{self, Key};
use support::*;

fn uaa_config(u: &uaa::Uaa) -> Config {
    let mut c = quick_config();
    c.auth.uaa = Some(UaaConfig {
        url: u.url(),
        issuer: String::new(),
        audience: "cloud_controller".into(),
        leeway_s: 5,
        ca_file: None,
        refetch_s: 0,
    });
    c
}

fn gateway(cfg: Config) -> InProc {
    InProc::new(cfg, Arc::new(Scripted::new(std::time::Duration::from_millis(10))))
}

async fn with_token(gw: &InProc, method: Method, path: &str, token: &str, body: &str) -> Reply {
    gw.send(method, path, &[("authorization", &format!("bearer {token}"))], body)
        .await
}

fn error_code(r: &Reply) -> Value {
    r.json()["error_code"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uaa_tokens_are_verified_as_the_cloud_controller_does() {
    let u = uaa::start().await;
    u.serve_keys(&[&Key::first()]);
    let gw = gateway(uaa_config(&u));
    let key = Key::first();
    let admin = u.claims(&["cloud_controller.admin", "openid"]);

    let ok = with_token(&gw, Method::GET, "/v2/security_groups", &key.sign(&admin), "").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", String::from_utf8_lossy(&ok.body));
    let created = with_token(
        &gw,
        Method::POST,
        "/v2/security_groups",
        &key.sign(&admin),
        r#"{"name":"web"}"#,
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);

    let invalid = |mut claims: Value, edit: &dyn Fn(&mut Value)| {
        edit(&mut claims);
        claims
    };
    let now = chrono::Utc::now().timestamp();
    let cases: Vec<(&str, Value)> = vec![
        ("expired", invalid(admin.clone(), &|c| c["exp"] = (now - 3600).into())),
        (
            "not yet valid",
            invalid(admin.clone(), &|c| c["nbf"] = (now + 3600).into()),
        ),
        (
            "wrong issuer",
            invalid(admin.clone(), &|c| c["iss"] = "https://evil.example/oauth/token".into()),
        ),
        (
            "wrong audience",
            invalid(admin.clone(), &|c| c["aud"] = serde_json::json!(["openid"])),
        ),
        (
            "no audience",
            invalid(admin.clone(), &|c| {
                c.as_object_mut().unwrap().remove("aud").map(|_| ()).unwrap()
            }),
        ),
        (
            "a refresh token",
            invalid(admin.clone(), &|c| c["jti"] = "abc-r".into()),
        ),
        (
            "scope as a string",
            invalid(admin.clone(), &|c| c["scope"] = "cloud_controller.admin".into()),
        ),
        (
            "a float exp",
            invalid(admin.clone(), &|c| c["exp"] = ((now + 600) as f64 + 0.5).into()),
        ),
    ];
    for (what, claims) in cases {
        let r = with_token(&gw, Method::GET, "/v2/security_groups", &key.sign(&claims), "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(r.json()["code"], 1000, "{what}");
        assert_eq!(error_code(&r), "CF-InvalidAuthToken", "{what}");
    }
    let forged = Key::second().posing_as("key-1").sign(&admin);
    let r = with_token(&gw, Method::GET, "/v2/security_groups", &forged, "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "bad signature");
    let none = gw.send(Method::GET, "/v2/security_groups", &[], "").await;
    assert_eq!(
        (none.status, none.json()["code"].clone()),
        (StatusCode::UNAUTHORIZED, 10002.into())
    );
    let garbage = with_token(&gw, Method::GET, "/v2/security_groups", "not.a.jwt", "").await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_gate_reads_and_writes() {
    let u = uaa::start().await;
    u.serve_keys(&[&Key::first()]);
    let gw = gateway(uaa_config(&u));
    let key = Key::first();
    let sign = |scopes: &[&str]| key.sign(&u.claims(scopes));
    // A token with no Cloud Controller scope at all: CC's token gate.
    let r = with_token(&gw, Method::GET, "/v2/security_groups", &sign(&["openid"]), "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&r), "CF-InsufficientScope");
    let r = with_token(&gw, Method::GET, "/v3/security_groups", &sign(&["openid"]), "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["errors"][0]["title"], "CF-NotAuthorized");
    // Read-only scopes read, and may not write.
    for reader in ["cloud_controller.admin_read_only", "cloud_controller.global_auditor"] {
        let t = sign(&[reader, "cloud_controller.read"]);
        assert_eq!(
            with_token(&gw, Method::GET, "/v2/security_groups", &t, "").await.status,
            StatusCode::OK
        );
        let w = with_token(&gw, Method::POST, "/v2/security_groups", &t, r#"{"name":"x"}"#).await;
        assert_eq!(w.status, StatusCode::FORBIDDEN, "{reader} on a write");
    }
    // cloud_controller.write without admin: past the token gate, not the role.
    let t = sign(&["cloud_controller.read", "cloud_controller.write"]);
    let w = with_token(&gw, Method::POST, "/v2/security_groups", &t, r#"{"name":"x"}"#).await;
    assert_eq!(w.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&w), "CF-NotAuthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_fetched_again_for_unknown_kids_and_kept_while_the_uaa_is_down() {
    let u = uaa::start().await;
    u.serve_keys(&[&Key::first()]);
    let gw = gateway(uaa_config(&u));
    let admin = u.claims(&["cloud_controller.admin"]);
    let get = |token: String| {
        let gw = &gw;
        async move {
            with_token(gw, Method::GET, "/v2/security_groups", &token, "")
                .await
                .status
        }
    };
    assert_eq!(get(Key::first().sign(&admin)).await, StatusCode::OK);
    assert_eq!(u.fetches(), 1);
    // The UAA rotates: a token signed by a new key makes the gateway fetch again.
    u.serve_keys(&[&Key::first(), &Key::second()]);
    assert_eq!(get(Key::second().sign(&admin)).await, StatusCode::OK);
    assert_eq!(u.fetches(), 2);
    // A kid the UAA does not have: fetched again, then refused.
    assert_eq!(get(Key::third().sign(&admin)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(u.fetches(), 3);
    // The UAA goes down: cached keys keep verifying.
    u.set_down(true);
    assert_eq!(get(Key::first().sign(&admin)).await, StatusCode::OK);
    assert_eq!(get(Key::third().sign(&admin)).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_for_unknown_kids_are_rate_limited() {
    let u = uaa::start().await;
    u.serve_keys(&[&Key::first()]);
    let mut cfg = uaa_config(&u);
    cfg.auth.uaa.as_mut().unwrap().refetch_s = 3600;
    let gw = gateway(cfg);
    let admin = u.claims(&["cloud_controller.admin"]);
    for _ in 0..5 {
        let r = with_token(&gw, Method::GET, "/v2/security_groups", &Key::third().sign(&admin), "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(u.fetches(), 1, "one fetch, however many unknown kids arrive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uaa_that_cannot_be_reached_is_a_502_not_a_401() {
    let u = uaa::start().await;
    u.set_down(true);
    let gw = gateway(uaa_config(&u));
    let token = Key::first().sign(&u.claims(&["cloud_controller.admin"]));
    let r = with_token(&gw, Method::GET, "/v2/security_groups", &token, "").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(error_code(&r), "CF-UaaUnavailable");
    // Static tokens still work meanwhile.
    assert_eq!(
        gw.cf(Method::GET, "/v2/security_groups", "").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_announces_the_configured_uaa_and_never_the_host() {
    let u = uaa::start().await;
    let gw = gateway(uaa_config(&u));
    let info = gw
        .send(Method::GET, "/v2/info", &[("host", "evil.example")], "")
        .await
        .json();
    assert_eq!(info["authorization_endpoint"], u.url());
    assert_eq!(info["token_endpoint"], u.url());
    let login = gw.send(Method::GET, "/login", &[], "").await;
    assert_eq!(
        login.status,
        StatusCode::NOT_FOUND,
        "the UAA answers /login, not the gateway"
    );

    let mut cfg = quick_config();
    cfg.server.external_url = "https://sgbridge.example.com".into();
    let gw = gateway(cfg);
    for path in ["/v2/info", "/", "/login"] {
        let r = gw
            .send(
                Method::GET,
                path,
                &[("host", "evil.example"), ("x-forwarded-proto", "gopher")],
                "",
            )
            .await;
        let text = String::from_utf8_lossy(&r.body).to_string();
        assert!(
            !text.contains("evil.example") && !text.contains("gopher"),
            "{path}: {text}"
        );
        assert!(text.contains("https://sgbridge.example.com"), "{path}: {text}");
    }
}

#[tokio::test(start_paused = true)]
async fn made_up_methods_add_no_metric_series() {
    let gw = gateway(quick_config());
    for i in 0..3000 {
        let method = Method::from_bytes(format!("M{i}{}", "X".repeat(200)).as_bytes()).unwrap();
        let r = gw.send(method, "/v2/security_groups", &[], "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let metrics = gw.send(Method::GET, "/metrics", &[], "").await;
    let text = String::from_utf8_lossy(&metrics.body).to_string();
    assert!(text.len() < 20_000, "{} bytes of metrics", text.len());
    assert!(text.contains(r#"method="other",status="401""#), "{text}");
    assert!(!text.contains("XXXX"));
    let post = gw.send(Method::POST, "/metrics", &[], "").await;
    assert_eq!(
        post.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "ops endpoints answer GET and HEAD only"
    );
}

#[tokio::test(start_paused = true)]
async fn stored_text_is_capped_as_the_real_apis_cap_it() {
    let gw = gateway(quick_config());
    let description = "d".repeat(19 << 20);
    let r = gw
        .gcore(
            Method::POST,
            "/cloud/v2/security_groups/1/1",
            &format!(r#"{{"name":"big","description":"{description}"}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json()["invalid_fields"]["description"][0],
        "Longer than maximum length 255."
    );
    let long = "n".repeat(256);
    let r = gw
        .gcore(
            Method::POST,
            "/cloud/v2/security_groups/1/1",
            &format!(r#"{{"name":"{long}"}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = gw
        .cf(Method::POST, "/v2/security_groups", &format!(r#"{{"name":"{long}"}}"#))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["description"].as_str().unwrap().contains("name is too long"));
    let tags: Vec<String> = (0..101).map(|i| format!(r#""k{i}":"v""#)).collect();
    let r = gw
        .gcore(
            Method::POST,
            "/cloud/v2/security_groups/1/1",
            &format!(r#"{{"name":"tagged","tags":{{{}}}}}"#, tags.join(",")),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let rules: Vec<&str> = (0..251)
        .map(|_| r#"{"direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22}"#)
        .collect();
    let r = gw
        .gcore(
            Method::POST,
            "/cloud/v2/security_groups/1/1",
            &format!(r#"{{"name":"many","rules":[{}]}}"#, rules.join(",")),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

fn key(name: &str, secret: &str, projects: Vec<u64>, reserved_tags: bool) -> GcoreKeyEntry {
    GcoreKeyEntry {
        name: name.into(),
        secret: Some(Redacted(secret.into())),
        secret_env: None,
        secret_file: None,
        projects,
        reserved_tags,
    }
}

#[tokio::test(start_paused = true)]
async fn gcore_keys_are_scoped_to_projects_and_kept_off_cf_state() {
    let mut cfg = quick_config();
    cfg.auth.gcore_keys = vec![
        key("tenant", "tenant-key", vec![1, 7], false),
        key("bridge", "bridge-key", vec![], true),
    ];
    let gw = gateway(cfg);
    let as_tenant = [("authorization", "APIKey tenant-key")];
    let as_bridge = [("authorization", "APIKey bridge-key")];
    let r = gw
        .send(Method::GET, "/cloud/v1/securitygroups/8/1", &as_tenant, "")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "another project");
    assert_eq!(r.json()["exception_class"], "PermissionDeniedError");
    let r = gw
        .send(Method::GET, "/cloud/v1/securitygroups/7/1", &as_tenant, "")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = gw
        .send(Method::GET, "/cloud/v1/tasks?project_id=8", &as_tenant, "")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Reserved tags hold CF state: a running default applies to every app.
    let body = r#"{"name":"sneaky","tags":{"sgbridge.cf.running_default":"true"}}"#;
    let r = gw
        .send(Method::POST, "/cloud/v2/security_groups/7/1", &as_tenant, body)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = gw
        .send(Method::POST, "/cloud/v2/security_groups/7/1", &as_bridge, body)
        .await;
    assert_eq!(r.status, StatusCode::OK, "a key granted reserved tags may");

    let id = gw
        .cf(Method::POST, "/v2/security_groups", r#"{"name":"web"}"#)
        .await
        .json()["metadata"]["guid"]
        .as_str()
        .unwrap()
        .to_string();
    let set = gw
        .cf(Method::PUT, &format!("/v2/config/running_security_groups/{id}"), "")
        .await;
    assert_eq!(set.status, StatusCode::OK);
    let path = format!("/cloud/v2/security_groups/1/1/{id}");
    for body in [
        r#"{"tags":{"sgbridge.cf.space.11111111-2222-4333-8444-555555555555":"running"}}"#,
        r#"{"tags":{"sgbridge.cf.running_default":null}}"#,
        r#"{"tags":null}"#,
    ] {
        let r = gw.send(Method::PATCH, &path, &as_tenant, body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{body}");
    }
    let r = gw
        .send(Method::PATCH, &path, &as_tenant, r#"{"tags":{"owner":"me"}}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK, "other tags are the tenant's to change");
    let defaults = gw
        .cf(Method::GET, "/v2/config/running_security_groups", "")
        .await
        .json();
    assert_eq!(defaults["total_results"], 1, "CF state untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_error_pages_never_show_the_gateways_key() {
    let fake = fake_gcore::start().await;
    fake.script(|s| s.echo_headers = true);
    let gw = start_gcore_backed(&fake.url(), quick_config()).await;
    let http = Http::default();
    let r = http.cf(Method::GET, &gw.url("/v2/security_groups"), "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST.max(r.status));
    let text = String::from_utf8_lossy(&r.body).to_string();
    assert!(!text.contains("dev-api-key"), "{text}");
    let ready = http.send(Method::GET, &gw.url("/readyz"), &[], "").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let text = String::from_utf8_lossy(&ready.body).to_string();
    assert!(!text.contains("dev-api-key") && !text.contains("<html"), "{text}");
    assert!(text.len() < 1000);
}
