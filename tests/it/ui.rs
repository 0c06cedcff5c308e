//! The page for people (issue 25): signed in with the `[auth.login]` users
//! through a form and a strict session cookie, refused without one, on the
//! admin listener only when there is one, ended by a reload that removes
//! its user; its pages show groups in both dialects, changes with their
//! actor and diff, and tasks. (The real browser drives it in
//! `tests/clients/test_ui.py`.)

use crate::support::*;
use http::{Method, StatusCode};
use sgbridge::server::live::Live;
use sgbridge::server::App;

const HOST: &str = "sgbridge.test";
const ORIGIN: &str = "http://sgbridge.test";

async fn sign_in(gw: &InProc, user: &str, password: &str, origin: Option<&str>) -> Reply {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("username", user), ("password", password)])
        .finish();
    let mut headers = vec![("host", HOST), ("content-type", "application/x-www-form-urlencoded")];
    if let Some(o) = origin {
        headers.push(("origin", o));
    }
    gw.send(Method::POST, "/ui/login", &headers, &body).await
}

/// The session cookie a sign-in set (`name=value`).
fn session(r: &Reply) -> String {
    let set = r.header("set-cookie").expect("a session cookie");
    set.split(';').next().unwrap().to_string()
}

async fn page(gw: &InProc, path: &str, cookie: &str) -> Reply {
    gw.send(Method::GET, path, &[("host", HOST), ("cookie", cookie)], "")
        .await
}

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_session_and_sign_in_sets_a_strict_cookie() {
    let gw = InProc::from_config(quick_config());
    for path in ["/ui/", "/ui/groups", "/ui/changes", "/ui/tasks", "/ui/groups/1/1/x"] {
        let r = gw.send(Method::GET, path, &[], "").await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.header("location"), Some("/ui/login"), "{path}");
    }
    let form = gw.send(Method::GET, "/ui/login", &[], "").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
    assert!(text(&form).contains(r#"<label for="password">"#));
    let css = gw.send(Method::GET, "/ui/assets/ui.css", &[], "").await;
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));

    assert_eq!(
        sign_in(&gw, "admin", "admin", None).await.status,
        StatusCode::FORBIDDEN,
        "no Origin"
    );
    let elsewhere = sign_in(&gw, "admin", "admin", Some("http://evil.test")).await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    let wrong = sign_in(&gw, "admin", "nope", Some(ORIGIN)).await;
    assert_eq!(wrong.status, StatusCode::OK, "the form again");
    assert!(text(&wrong).contains("Wrong user name or password"));
    assert!(wrong.header("set-cookie").is_none());

    let ok = sign_in(&gw, "admin", "admin", Some(ORIGIN)).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.header("location"), Some("/ui/"));
    let set = ok.header("set-cookie").unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/ui/"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    let cookie = session(&ok);
    let home = page(&gw, "/ui/", &cookie).await;
    assert_eq!(home.status, StatusCode::OK, "{}", text(&home));
    assert!(text(&home).contains("<h1>Overview</h1>") && text(&home).contains("embedded"));
    assert_eq!(home.header("cache-control"), Some("no-store"));

    let out = gw
        .send(
            Method::POST,
            "/ui/logout",
            &[("host", HOST), ("origin", ORIGIN), ("cookie", &cookie)],
            "",
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(
        page(&gw, "/ui/", &cookie).await.status,
        StatusCode::SEE_OTHER,
        "signed out"
    );

    let events = gw
        .cf(
            Method::GET,
            "/v3/audit_events?types=audit.user.login,audit.user.login_failed",
            "",
        )
        .await
        .json();
    let kinds: Vec<&str> = events["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["audit.user.login_failed", "audit.user.login"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_removes_the_user_ends_the_session() {
    let cfg = quick_config();
    let live = Live::new(App::new(cfg.clone()).unwrap(), None);
    let gw = InProc { app: live.app() };
    let cookie = session(&sign_in(&gw, "admin", "admin", Some(ORIGIN)).await);
    assert_eq!(page(&gw, "/ui/tasks", &cookie).await.status, StatusCode::OK);
    let mut without = cfg.clone();
    without.auth.users.clear();
    live.apply(without).unwrap();
    let gw = InProc { app: live.app() };
    assert_eq!(page(&gw, "/ui/tasks", &cookie).await.status, StatusCode::SEE_OTHER);
    // The user back: the ended session stays ended.
    live.apply(cfg).unwrap();
    let gw = InProc { app: live.app() };
    assert_eq!(page(&gw, "/ui/tasks", &cookie).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_lives_on_the_admin_listener_when_there_is_one() {
    let mut cfg = quick_config();
    cfg.server.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    let (_live, api, admin) = start_live(cfg).await;
    let http = Http::default();
    let on_api = http.send(Method::GET, &format!("{api}/ui/login"), &[], "").await;
    assert_eq!(on_api.status, StatusCode::NOT_FOUND);
    assert_eq!(on_api.json()["error_code"], "CF-NotFound");
    let on_admin = http.send(Method::GET, &format!("{admin}/ui/login"), &[], "").await;
    assert_eq!(on_admin.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_groups_in_both_dialects_changes_and_tasks() {
    let gw = InProc::from_config(quick_config());
    let web = r#"{"name":"web-frontend","rules":[{"protocol":"tcp","destination":"10.0.0.1-10.0.0.6","ports":"443"}]}"#;
    let created = gw.cf(Method::POST, "/v2/security_groups", web).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let guid = created.json()["metadata"]["guid"].as_str().unwrap().to_string();
    let cookie = session(&sign_in(&gw, "admin", "admin", Some(ORIGIN)).await);

    let found = page(&gw, "/ui/groups?q=FRONT", &cookie).await;
    assert!(
        text(&found).contains(&format!(r#"href="/ui/groups/1/1/{guid}""#)),
        "{}",
        text(&found)
    );
    let none = page(&gw, "/ui/groups?q=nothing-like-it", &cookie).await;
    assert!(text(&none).contains("No group matches"));
    let bad = page(&gw, "/ui/groups?project=x", &cookie).await;
    assert!(text(&bad).contains("project must be a number"));

    let group = text(&page(&gw, &format!("/ui/groups/1/1/{guid}"), &cookie).await);
    assert!(group.contains("destination 10.0.0.1-10.0.0.6"), "{group}");
    // 10.0.0.1-10.0.0.6 is covered by three CIDRs: .1/32, .2/31, .4/31 … .6/32.
    assert!(group.contains("remote_ip_prefix 10.0.0.2/31"), "{group}");
    assert!(group.contains("Gcore rules cover it"), "{group}");
    assert!(group.contains("audit.security_group.create"), "{group}");
    let missing = page(&gw, &format!("/ui/groups/1/2/{guid}"), &cookie).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let changes = text(&page(&gw, &format!("/ui/changes?group={guid}"), &cookie).await);
    assert!(
        changes.contains("cf-token-1") && changes.contains("+ destination 10.0.0.1-10.0.0.6"),
        "{changes}"
    );
    let by_other = text(&page(&gw, "/ui/changes?actor=somebody-else", &cookie).await);
    assert!(by_other.contains("0 changes match"), "{by_other}");
    let bad_time = text(&page(&gw, "/ui/changes?since=yesterday", &cookie).await);
    assert!(bad_time.contains("is not a time"), "{bad_time}");

    let task = gw
        .gcore(
            Method::POST,
            "/cloud/v2/security_groups/1/1",
            r#"{"name":"db","rules":[]}"#,
        )
        .await
        .json()["tasks"][0]
        .as_str()
        .unwrap()
        .to_string();
    let tasks = text(&page(&gw, "/ui/tasks", &cookie).await);
    assert!(tasks.contains(&task), "{tasks}");
    let refreshing = text(&page(&gw, "/ui/tasks?refresh=1", &cookie).await);
    assert!(refreshing.contains(r#"<meta http-equiv="refresh" content="10">"#));

    // The CF create waited on its task: its lateness is in the registry the
    // overview reads.
    let metrics = text(&gw.send(Method::GET, "/metrics", &[], "").await);
    assert!(
        metrics.contains("sgbridge_task_wait_lateness_seconds_count 1"),
        "{metrics}"
    );
    let overview = text(&page(&gw, "/ui/", &cookie).await);
    assert!(overview.contains("Lateness after task end"), "{overview}");
    assert!(
        group.contains("<dd>4 of 250</dd>"),
        "four Gcore rules of the cap: {group}"
    );
}
