//! The gateway as its own UAA (issue 23): the cf CLI's request sequences
//! for `cf login` (v6 and v8), `cf auth` (password and client credentials),
//! token refresh and `cf oauth-token`, replayed as the CLI sends them (read
//! from its source: `api/uaa/auth.go`, `api/uaa/refresh_token.go`); UAA's
//! error shapes; the lockout; revocation by a reload; forged tokens refused.
//! Real time, in process: a password check runs on the blocking pool, which
//! a paused clock would skip past.

use crate::support::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use sgbridge::config::{ClientEntry, Config, Redacted};
use sgbridge::server::live::Live;
use sgbridge::server::App;

const CF_CLIENT: &str = "Basic Y2Y6"; // cf:

fn form(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

async fn token(gw: &InProc, basic: Option<&str>, fields: &[(&str, &str)]) -> Reply {
    let mut headers = vec![
        ("content-type", "application/x-www-form-urlencoded"),
        ("accept", "application/json"),
    ];
    if let Some(b) = basic {
        headers.push(("authorization", b));
    }
    gw.send(Method::POST, "/oauth/token", &headers, &form(fields)).await
}

async fn password_login(gw: &InProc, user: &str, password: &str) -> Reply {
    // The CLI v6 sends an empty `scope`; v8 does not. Both are accepted.
    token(
        gw,
        Some(CF_CLIENT),
        &[
            ("grant_type", "password"),
            ("password", password),
            ("scope", ""),
            ("username", user),
        ],
    )
    .await
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON claims")
}

async fn with_bearer(gw: &InProc, method: Method, path: &str, token: &str, body: &str) -> Reply {
    gw.send(method, path, &[("authorization", &format!("bearer {token}"))], body)
        .await
}

fn gateway() -> InProc {
    InProc::from_config(quick_config())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cf_cli_v6_login_sequence_works_from_the_default_config() {
    let gw = gateway();
    let info = gw.send(Method::GET, "/v2/info", &[], "").await.json();
    let auth = info["authorization_endpoint"].as_str().unwrap().to_string();
    let login = gw.send(Method::GET, "/login", &[], "").await;
    assert_eq!(login.status, StatusCode::OK);
    let prompts = login.json()["prompts"].clone();
    assert_eq!(
        prompts,
        json!({"username": ["text", "Email"], "password": ["password", "Password"]})
    );
    assert_eq!(login.json()["links"]["uaa"], auth.as_str());

    let r = password_login(&gw, "admin", "admin").await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let t = r.json();
    assert_eq!(t["token_type"], "bearer");
    assert!(t["expires_in"].as_u64().unwrap() > 1000);
    assert!(t["scope"]
        .as_str()
        .unwrap()
        .split(' ')
        .any(|s| s == "cloud_controller.admin"));
    let access = t["access_token"].as_str().unwrap().to_string();
    let c = claims(&access);
    assert_eq!(c["jti"], t["jti"]);
    assert_eq!(c["iss"], format!("{auth}/oauth/token"));
    assert_eq!(
        (c["user_name"].as_str(), c["origin"].as_str()),
        (Some("admin"), Some("uaa"))
    );
    assert!(c["user_id"].is_string() && c["zid"] == "uaa" && c["cid"] == "cf");
    assert!(
        c.get("revocable").is_none(),
        "cf logout sends a revoke only for revocable tokens"
    );

    let created = with_bearer(
        &gw,
        Method::POST,
        "/v2/security_groups",
        &access,
        r#"{"name":"after-login"}"#,
    )
    .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&created.body)
    );

    // Token refresh (and `cf oauth-token`): the same refresh token comes back.
    let refresh = t["refresh_token"].as_str().unwrap();
    assert!(claims(refresh)["jti"].as_str().unwrap().ends_with("-r"));
    let again = token(
        &gw,
        Some(CF_CLIENT),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("scope", ""),
        ],
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", String::from_utf8_lossy(&again.body));
    assert_eq!(again.json()["refresh_token"], refresh);
    let fresh = again.json()["access_token"].as_str().unwrap().to_string();
    assert_ne!(fresh, access);
    let list = with_bearer(&gw, Method::GET, "/v2/security_groups", &fresh, "").await;
    assert_eq!(list.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cf_cli_v8_login_sequence_and_userinfo() {
    let gw = gateway();
    let root = gw.send(Method::GET, "/", &[], "").await.json();
    let login_href = root["links"]["login"]["href"].as_str().unwrap();
    assert_eq!(root["links"]["uaa"]["href"], login_href);
    // v8 sends --origin as a query parameter.
    let r = gw
        .send(
            Method::POST,
            "/oauth/token?login_hint=%7B%22origin%22%3A%22uaa%22%7D",
            &[
                ("authorization", CF_CLIENT),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            &form(&[("grant_type", "password"), ("username", "admin"), ("password", "admin")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    let v3 = with_bearer(&gw, Method::POST, "/v3/security_groups", &access, r#"{"name":"v8"}"#).await;
    assert_eq!(v3.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&v3.body));
    let me = with_bearer(&gw, Method::GET, "/userinfo", &access, "").await;
    assert_eq!(me.json()["user_name"], "admin");
    assert_eq!(me.json()["user_id"], claims(&access)["user_id"]);
    let keys = gw.send(Method::GET, "/token_keys", &[], "").await.json();
    assert_eq!(keys["keys"][0]["kid"], claims_header(&access)["kid"]);
    assert_eq!(keys["keys"][0]["alg"], "RS256");
}

fn claims_header(jwt: &str) -> Value {
    let head = jwt.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap()
}

fn with_pipeline_client(mut cfg: Config) -> Config {
    cfg.auth.clients = vec![ClientEntry {
        id: "pipeline".into(),
        secret: Some(Redacted("pipeline-secret".into())),
        secret_env: None,
        secret_file: None,
        scopes: vec!["cloud_controller.admin".into()],
        grant_types: vec!["client_credentials".into()],
    }];
    // Configured credentials replace the development ones: a user of our own.
    cfg.auth.users[0].name = "operator".into();
    cfg.auth.users[0].password_hash = sgbridge::crypto::password::hash("op-password").unwrap();
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cf_auth_with_client_credentials_and_uaas_error_shapes() {
    let gw = InProc::from_config(with_pipeline_client(quick_config()));
    // `cf auth --client-credentials`: id and secret in the form, no Basic header.
    let r = token(
        &gw,
        None,
        &[
            ("client_id", "pipeline"),
            ("client_secret", "pipeline-secret"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json().get("refresh_token").is_none());
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&access)["sub"], "pipeline");
    let list = with_bearer(&gw, Method::GET, "/v3/security_groups", &access, "").await;
    assert_eq!(list.status, StatusCode::OK);

    let err = |r: &Reply| {
        (
            r.status,
            r.json()["error"].clone(),
            r.json()["error_description"].clone(),
        )
    };
    let pipeline = format!("Basic {}", STANDARD.encode("pipeline:wrong"));
    let cases: Vec<(Reply, StatusCode, &str, &str)> = vec![
        (
            token(&gw, Some(CF_CLIENT), &[]).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing grant type",
        ),
        (
            token(&gw, Some(CF_CLIENT), &[("grant_type", "implicit_magic")]).await,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant type",
        ),
        (
            token(&gw, Some(&pipeline), &[("grant_type", "client_credentials")]).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Bad credentials",
        ),
        (
            token(&gw, Some(CF_CLIENT), &[("grant_type", "client_credentials")]).await,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Unauthorized grant type",
        ),
        (
            token(
                &gw,
                Some(CF_CLIENT),
                &[("grant_type", "password"), ("username", "operator")],
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "No password supplied",
        ),
        (
            password_login(&gw, "operator", "wrong").await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Bad credentials",
        ),
        (
            password_login(&gw, "nobody", "wrong").await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Bad credentials",
        ),
        (
            password_login(&gw, "admin", "admin").await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Bad credentials",
        ),
        (
            token(&gw, Some(CF_CLIENT), &[("grant_type", "refresh_token")]).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "refresh_token parameter not provided",
        ),
        (
            token(
                &gw,
                Some(CF_CLIENT),
                &[("grant_type", "refresh_token"), ("refresh_token", &access)],
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Invalid refresh token.",
        ),
    ];
    for (i, (r, status, error, description)) in cases.into_iter().enumerate() {
        assert_eq!(err(&r), (status, json!(error), json!(description)), "case {i}");
    }
    let unauthorized = password_login(&gw, "operator", "wrong").await;
    assert!(unauthorized
        .header("www-authenticate")
        .is_some_and(|h| h.contains(r#"error="unauthorized""#)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failed_logins_lock_the_account_for_the_period() {
    let mut cfg = quick_config();
    cfg.auth.login.lockout_period_s = 1;
    let gw = InProc::from_config(cfg);
    for _ in 0..5 {
        assert_eq!(
            password_login(&gw, "admin", "wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = password_login(&gw, "admin", "admin").await;
    assert_eq!(locked.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        locked.json()["error_description"],
        "Your account has been locked because of too many failed attempts to login."
    );
    let metrics = String::from_utf8_lossy(&gw.send(Method::GET, "/metrics", &[], "").await.body).to_string();
    assert!(
        metrics.contains(r#"sgbridge_logins_total{outcome="bad_credentials"} 5"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"sgbridge_logins_total{outcome="locked"} 1"#),
        "{metrics}"
    );
    // The period passes; the right password works again.
    let mut tries = 0;
    while password_login(&gw, "admin", "admin").await.status != StatusCode::OK {
        tries += 1;
        assert!(tries < 100, "still locked long after the lockout period");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_removed_or_disabled_by_a_reload_can_neither_refresh_nor_use_a_token() {
    let cfg = quick_config();
    let live = Live::new(App::new(cfg.clone()).unwrap(), None);
    let gw = InProc { app: live.app() };
    let t = password_login(&gw, "admin", "admin").await.json();
    let (access, refresh) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );

    let mut disabled = cfg.clone();
    disabled.auth.users[0].disabled = true;
    live.apply(disabled).unwrap();
    let gw = InProc { app: live.app() };
    let r = with_bearer(&gw, Method::GET, "/v2/security_groups", access, "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error_code"], "CF-InvalidAuthToken");
    let r = token(
        &gw,
        Some(CF_CLIENT),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "invalid_token");

    // Enabled again (the same key: a generated key outlives reloads).
    live.apply(cfg).unwrap();
    let gw = InProc { app: live.app() };
    assert_eq!(
        with_bearer(&gw, Method::GET, "/v2/security_groups", access, "")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_are_refused() {
    let gw = gateway();
    let t = password_login(&gw, "admin", "admin").await.json();
    let access = t["access_token"].as_str().unwrap();
    let [head, body, sig]: [&str; 3] = access.split('.').collect::<Vec<_>>().try_into().unwrap();
    let header = claims_header(access);
    let mut c = claims(access);
    c["scope"] = json!(["cloud_controller.admin"]);
    c["user_name"] = json!("someone-else");
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let none_header = json!({"alg": "none", "kid": header["kid"], "typ": "JWT"});
    // HS256 with the public key as the secret (key confusion).
    let n = gw.send(Method::GET, "/token_key", &[], "").await.json()["n"]
        .as_str()
        .unwrap()
        .to_string();
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: header["kid"].as_str().map(String::from),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &c,
        &jsonwebtoken::EncodingKey::from_secret(n.as_bytes()).unwrap(),
    )
    .unwrap();
    let forged = [
        format!("{}.{}.", enc(&none_header), enc(&c)),
        format!("{head}.{}.{sig}", enc(&c)),
        format!("{head}.{body}.{}", &sig[..sig.len() - 4]),
        hs,
    ];
    for (i, f) in forged.iter().enumerate() {
        let r = with_bearer(&gw, Method::GET, "/v2/security_groups", f, "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "forgery {i} accepted");
    }
    assert_eq!(
        with_bearer(&gw, Method::GET, "/v2/security_groups", access, "")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_one_signing_key_verify_each_others_tokens() {
    let dir = std::env::temp_dir().join(format!("sgbridge-login-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = key_file(&dir, "signing-key.pem");
    let mut cfg = quick_config();
    cfg.server.external_url = "https://sgbridge.example.com".into();
    cfg.auth.login.signing_key_file = Some(path);
    let (one, two) = (InProc::from_config(cfg.clone()), InProc::from_config(cfg));
    let t = password_login(&one, "admin", "admin").await.json();
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        with_bearer(&two, Method::GET, "/v2/security_groups", access, "")
            .await
            .status,
        StatusCode::OK
    );
    let refreshed = token(
        &two,
        Some(CF_CLIENT),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn without_login_the_gateway_says_it_issues_no_tokens() {
    let mut cfg = quick_config();
    cfg.auth.login.enabled = false;
    let gw = InProc::from_config(cfg);
    for path in ["/login", "/oauth/token"] {
        let r = gw.send(Method::GET, path, &[], "").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("issues no tokens"));
    }
}

/// Replicas on one PostgreSQL: the signing key one of them made is every
/// replica's (each verifies and refreshes the others' tokens), and failed
/// logins are counted across them (UAA's lockout holds whichever replica
/// a client reaches). A SQLite store keeps the key across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_store_share_the_key_and_the_lockout() {
    use sgbridge::config::{StoreConfig, StoreKind};
    let pg = crate::support::postgres::Postgres::start("login");
    let mut cfg = quick_config();
    cfg.env = cfg.env.with("SGBRIDGE_TEST_LOGIN_URL", &pg.url);
    cfg.server.external_url = "https://sgbridge.example.com".into();
    cfg.store = StoreConfig {
        kind: StoreKind::Postgres,
        url_env: "SGBRIDGE_TEST_LOGIN_URL".into(),
        ..StoreConfig::default()
    };
    let one = InProc {
        app: std::sync::Arc::new(App::open(cfg.clone()).await.unwrap()),
    };
    let two = InProc {
        app: std::sync::Arc::new(App::open(cfg).await.unwrap()),
    };
    let t = password_login(&one, "admin", "admin").await.json();
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        with_bearer(&two, Method::GET, "/v2/security_groups", access, "")
            .await
            .status,
        StatusCode::OK
    );
    let refresh = t["refresh_token"].as_str().unwrap();
    let r = token(
        &two,
        Some(CF_CLIENT),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    for gw in [&one, &two, &one, &two, &one] {
        assert_eq!(
            password_login(gw, "admin", "wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = password_login(&two, "admin", "admin").await;
    assert_eq!(
        locked.json()["error_description"],
        "Your account has been locked because of too many failed attempts to login."
    );

    let dir = std::env::temp_dir().join(format!("sgbridge-login-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = quick_config();
    cfg.store = StoreConfig {
        kind: StoreKind::Sqlite,
        path: Some(dir.join("state.db")),
        ..StoreConfig::default()
    };
    cfg.server.external_url = "https://sgbridge.example.com".into();
    let before = InProc {
        app: std::sync::Arc::new(App::open(cfg.clone()).await.unwrap()),
    };
    let t = password_login(&before, "admin", "admin").await.json();
    drop(before);
    let after = InProc {
        app: std::sync::Arc::new(App::open(cfg).await.unwrap()),
    };
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        with_bearer(&after, Method::GET, "/v2/security_groups", access, "")
            .await
            .status,
        StatusCode::OK
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn key_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    use rsa::pkcs8::EncodePrivateKey;
    let key = <rsa::PrivateKey as rsa::Generate>::generate();
    let path = dir.join(name);
    std::fs::write(&path, key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap().as_bytes()).unwrap();
    path
}

/// A reload onto a new signing key: tokens signed with the old one keep
/// working (and it stays in /token_keys) until they expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_keeps_verifying_its_tokens() {
    let dir = std::env::temp_dir().join(format!("sgbridge-login-rotate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = quick_config();
    cfg.auth.login.signing_key_file = Some(key_file(&dir, "a.pem"));
    let live = Live::new(App::new(cfg.clone()).unwrap(), None);
    let gw = InProc { app: live.app() };
    let old = password_login(&gw, "admin", "admin").await.json();
    let old_kid = claims_header(old["access_token"].as_str().unwrap())["kid"].clone();

    cfg.auth.login.signing_key_file = Some(key_file(&dir, "b.pem"));
    live.apply(cfg).unwrap();
    let gw = InProc { app: live.app() };
    let keys = gw.send(Method::GET, "/token_keys", &[], "").await.json();
    let kids: Vec<Value> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids.len(), 2, "{keys}");
    assert_eq!(kids[1], old_kid, "the old key is listed after the new one");
    let new = password_login(&gw, "admin", "admin").await.json();
    assert_eq!(claims_header(new["access_token"].as_str().unwrap())["kid"], kids[0]);
    for t in [&old, &new] {
        let access = t["access_token"].as_str().unwrap();
        assert_eq!(
            with_bearer(&gw, Method::GET, "/v2/security_groups", access, "")
                .await
                .status,
            StatusCode::OK
        );
    }
    let r = token(
        &gw,
        Some(CF_CLIENT),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", old["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "an old refresh token still refreshes");
    std::fs::remove_dir_all(&dir).unwrap();
}
