//! Safe as a shared service: UAA logins, scoped keys, bounded labels, text
//! and time, no reflected Host, no secret from a backend's echo.

use crate::support::scripted::Scripted;
use crate::support::uaa::{self, Key};
use crate::support::*;
use http::{Method, StatusCode};
use serde_json::Value;
use sgbridge::config::{Config, GcoreKeyEntry, Redacted, UaaConfig};
use std::sync::Arc;

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
    let mut cfg = uaa_config(&u);
    cfg.auth.cf_bearer_tokens = vec!["static-token".into()];
    let gw = gateway(cfg);
    let token = Key::first().sign(&u.claims(&["cloud_controller.admin"]));
    let r = with_token(&gw, Method::GET, "/v2/security_groups", &token, "").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(error_code(&r), "CF-UaaUnavailable");
    // Static tokens still work meanwhile.
    assert_eq!(
        with_token(&gw, Method::GET, "/v2/security_groups", "static-token", "")
            .await
            .status,
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
    // Configured credentials replace the development ones (both dialects).
    cfg.auth.cf_bearer_tokens = vec!["cf-admin".into()];
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

    let cf = [("authorization", "bearer cf-admin")];
    let id = gw
        .send(Method::POST, "/v2/security_groups", &cf, r#"{"name":"web"}"#)
        .await
        .json()["metadata"]["guid"]
        .as_str()
        .unwrap()
        .to_string();
    let set = gw
        .send(
            Method::PUT,
            &format!("/v2/config/running_security_groups/{id}"),
            &cf,
            "",
        )
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
        .send(Method::GET, "/v2/config/running_security_groups", &cf, "")
        .await
        .json();
    assert_eq!(defaults["total_results"], 1, "CF state untouched");
}

/// A backend that answers every request with an HTML error page echoing
/// the request's headers, credentials included (as some proxies do).
async fn echoing_backend() -> String {
    use http_body_util::Full;
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                let echoed: Vec<String> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
                    .collect();
                let page = format!("<html><body>Bad Gateway. You sent: {}</body></html>", echoed.join("; "));
                let mut r = http::Response::new(Full::new(bytes::Bytes::from(page)));
                *r.status_mut() = StatusCode::BAD_GATEWAY;
                Ok::<_, std::convert::Infallible>(r)
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc));
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_error_pages_never_show_the_gateways_key() {
    let gw = start_gcore_backed(&echoing_backend().await, quick_config()).await;
    let http = Http::default();
    let r = http.cf(Method::GET, &gw.url("/v2/security_groups"), "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST.max(r.status));
    let text = String::from_utf8_lossy(&r.body).to_string();
    assert!(!text.contains("dev-api-key"), "{text}");
    let ready = settled_readiness(&http, &gw.url("/readyz")).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let text = String::from_utf8_lossy(&ready.body).to_string();
    assert!(!text.contains("dev-api-key") && !text.contains("<html"), "{text}");
    assert!(text.len() < 1000);
}

// ---- Security round two (issue 22): each test failed before its fix. ----

fn claims_of(u: &uaa::Uaa, user_id: &str, origin: &str, scopes: &[&str]) -> Value {
    let mut c = u.claims(scopes);
    c["user_id"] = user_id.into();
    c["sub"] = user_id.into();
    c["origin"] = origin.into();
    c
}

/// Two UAA users named alice (origins `uaa` and `ldap`) are two callers:
/// the read-only one neither replays the admin's stored answer nor pre-claims
/// the admin's key with a refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_records_belong_to_the_credential_not_its_display_name() {
    let u = uaa::start().await;
    u.serve_keys(&[&Key::first()]);
    let gw = gateway(uaa_config(&u));
    let key = Key::first();
    let admin = key.sign(&claims_of(&u, "u-admin", "uaa", &["cloud_controller.admin"]));
    let reader = key.sign(&claims_of(
        &u,
        "u-reader",
        "ldap",
        &["cloud_controller.admin_read_only", "cloud_controller.read"],
    ));
    let send = |token: String, key: &'static str| {
        let gw = &gw;
        async move {
            gw.send(
                Method::POST,
                "/v2/security_groups",
                &[("authorization", &format!("bearer {token}")), ("idempotency-key", key)],
                r#"{"name":"secret-web"}"#,
            )
            .await
        }
    };
    let first = send(admin.clone(), "k1").await;
    assert_eq!(first.status, StatusCode::CREATED);
    let replay = send(reader.clone(), "k1").await;
    assert_eq!(
        replay.status,
        StatusCode::FORBIDDEN,
        "{}",
        String::from_utf8_lossy(&replay.body)
    );
    assert!(replay.header("idempotent-replayed").is_none());

    // A refusal is not kept: the admin's own request with that key runs.
    let refused = send(reader, "k2").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let r = gw
        .send(
            Method::POST,
            "/v2/security_groups",
            &[("authorization", &format!("bearer {admin}")), ("idempotency-key", "k2")],
            r#"{"name":"second"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.header("idempotent-replayed").is_none());
}

/// A key allowed nothing cannot fill the records (its refusals are not
/// kept), and a caller past its own quota pushes out only its own answers.
#[tokio::test(start_paused = true)]
async fn one_caller_cannot_evict_another_callers_idempotency_records() {
    let mut cfg = quick_config();
    cfg.idempotency.max_keys = 100;
    cfg.idempotency.max_keys_per_caller = 20;
    cfg.auth.gcore_keys = vec![
        key("victim", "victim-key", vec![1], false),
        key("nothing", "nothing-key", vec![99], false),
        key("noisy", "noisy-key", vec![7], false),
    ];
    let gw = InProc::from_config(cfg);
    let create = |who: &'static str, project: u64, key: String, name: String| {
        let gw = &gw;
        async move {
            let auth = format!("APIKey {who}");
            let path = format!("/cloud/v2/security_groups/{project}/1");
            let body = format!(r#"{{"name":"{name}"}}"#);
            gw.send(
                Method::POST,
                &path,
                &[("authorization", &auth), ("idempotency-key", &key)],
                &body,
            )
            .await
        }
    };
    let first = create("victim-key", 1, "v".into(), "victim".into()).await;
    assert_eq!(first.status, StatusCode::OK);
    for i in 0..300 {
        let r = create("nothing-key", 1, format!("n{i}"), format!("x{i}")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    for i in 0..60 {
        let r = create("noisy-key", 7, format!("z{i}"), format!("z{i}")).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let again = create("victim-key", 1, "v".into(), "victim".into()).await;
    assert_eq!(
        again.header("idempotent-replayed"),
        Some("true"),
        "the victim's record was evicted"
    );
    assert_eq!(again.body, first.body);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let list = gw
        .send(
            Method::GET,
            "/cloud/v1/securitygroups/1/1?name=victim",
            &[("authorization", "APIKey victim-key")],
            "",
        )
        .await;
    assert_eq!(list.json()["count"], 1, "created once");
}

/// An error answer lists a bounded number of messages, however many rules
/// are wrong (a 4 MB body of empty rules answered 155 MB).
#[tokio::test(start_paused = true)]
async fn error_answers_are_bounded_whatever_the_body_holds() {
    let gw = gateway(quick_config());
    let rules = vec!["{}"; 100_000].join(",");
    for (path, body) in [
        ("/v3/security_groups", format!(r#"{{"name":"x","rules":[{rules}]}}"#)),
        ("/v2/security_groups", format!(r#"{{"name":"x","rules":[{rules}]}}"#)),
    ] {
        let r = gw.cf(Method::POST, path, &body).await;
        assert!(r.status.is_client_error(), "{path}: {}", r.status);
        assert!(r.body.len() < 32 * 1024, "{path}: a {}-byte error answer", r.body.len());
        let text = String::from_utf8_lossy(&r.body);
        assert!(text.contains("more errors not listed"), "{path}: {text}");
    }
}

/// Tasks are scoped like groups: a key bound to project 7 neither reads nor
/// acknowledges project 1's tasks, and "acknowledge all" stays in its projects.
#[tokio::test(start_paused = true)]
async fn tasks_are_scoped_to_the_keys_projects() {
    let mut cfg = quick_config();
    cfg.auth.gcore_keys = vec![
        key("tenant", "tenant-key", vec![7], false),
        key("wide", "wide-key", vec![], true),
    ];
    let gw = InProc::from_config(cfg);
    let (tenant, wide) = (
        [("authorization", "APIKey tenant-key")],
        [("authorization", "APIKey wide-key")],
    );
    let r = gw
        .send(
            Method::POST,
            "/cloud/v2/security_groups/1/1",
            &wide,
            r#"{"name":"other"}"#,
        )
        .await;
    let task = r.json()["tasks"][0].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let path = format!("/cloud/v1/tasks/{task}");
    assert_eq!(
        gw.send(Method::GET, &path, &tenant, "").await.status,
        StatusCode::NOT_FOUND
    );
    let ack = format!("{path}/acknowledge");
    assert_eq!(
        gw.send(Method::POST, &ack, &tenant, "").await.status,
        StatusCode::NOT_FOUND
    );
    let all = gw
        .send(Method::POST, "/cloud/v1/tasks/acknowledge_all", &tenant, "")
        .await;
    assert_eq!(all.status, StatusCode::NO_CONTENT);
    let seen = gw.send(Method::GET, &path, &wide, "").await.json();
    assert_eq!(
        seen["acknowledged_at"],
        Value::Null,
        "another project's task was acknowledged"
    );
    assert_eq!(gw.send(Method::POST, &ack, &wide, "").await.status, StatusCode::OK);
}

/// A key without reserved tags may not delete, or revert to allow-all, a
/// group CF state makes live.
#[tokio::test(start_paused = true)]
async fn a_key_without_reserved_tags_cannot_delete_or_revert_a_live_cf_group() {
    let mut cfg = quick_config();
    cfg.auth.gcore_keys = vec![
        key("tenant", "tenant-key", vec![1], false),
        key("bridge", "bridge-key", vec![], true),
    ];
    cfg.auth.cf_bearer_tokens = vec!["cf-admin".into()];
    let gw = gateway(cfg);
    let cf = [("authorization", "bearer cf-admin")];
    let made = gw
        .send(Method::POST, "/v2/security_groups", &cf, r#"{"name":"everyone"}"#)
        .await;
    let id = made.json()["metadata"]["guid"].as_str().unwrap().to_string();
    let set = gw
        .send(
            Method::PUT,
            &format!("/v2/config/running_security_groups/{id}"),
            &cf,
            "",
        )
        .await;
    assert_eq!(set.status, StatusCode::OK);
    let tenant = [("authorization", "APIKey tenant-key")];
    let revert = format!("/cloud/v1/securitygroups/1/1/{id}/revert");
    let r = gw.send(Method::POST, &revert, &tenant, "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("running or staging default"));
    let delete = format!("/cloud/v1/securitygroups/1/1/{id}");
    assert_eq!(
        gw.send(Method::DELETE, &delete, &tenant, "").await.status,
        StatusCode::FORBIDDEN
    );
    let still = gw
        .send(Method::GET, "/v2/config/running_security_groups", &cf, "")
        .await;
    assert_eq!(still.json()["total_results"], 1);
    let bridge = [("authorization", "APIKey bridge-key")];
    assert_eq!(
        gw.send(Method::DELETE, &delete, &bridge, "").await.status,
        StatusCode::NO_CONTENT
    );
}

/// A dry run answers what the real request would: 404 for what does not
/// exist; a read ignores `dry_run`; `Prefer: wait=0` answers the tasks.
#[tokio::test(start_paused = true)]
async fn dry_runs_of_what_does_not_exist_are_404_and_wait_zero_does_not_wait() {
    let gw = InProc::from_config(quick_config());
    let missing = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    for (method, path) in [
        (
            Method::DELETE,
            format!("/cloud/v1/securitygroups/1/1/{missing}?dry_run=true"),
        ),
        (
            Method::POST,
            format!("/cloud/v1/tasks/{missing}/acknowledge?dry_run=true"),
        ),
    ] {
        let r = gw.gcore(method, &path, "").await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let r = gw
        .cf(
            Method::DELETE,
            &format!("/v2/security_groups/{missing}?dry_run=true"),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", String::from_utf8_lossy(&r.body));
    let list = gw.cf(Method::GET, "/v2/security_groups?dry_run=true", "").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.json()["resources"].is_array(), "a read answers as usual");

    let r = gw
        .send(
            Method::POST,
            "/cloud/v2/security_groups/1/1",
            &[("authorization", GCORE_AUTH), ("prefer", "wait=0")],
            r#"{"name":"no-wait"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["tasks"].is_array());
}
