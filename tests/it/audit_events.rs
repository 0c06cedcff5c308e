//! Audit events (issue 25): every change of a security group, in either
//! dialect, and every login is an event in the store; `GET /v3/audit_events`
//! serves them with CC's shape, filters, order, paging, errors and
//! permissions, on memory, SQLite (across a restart) and PostgreSQL (written
//! by two replicas, read from either). And the promise about an audit write
//! that fails: refused before anything is sent, or left `pending` after.

use crate::support::postgres::Postgres;
use crate::support::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use sgbridge::config::{Config, StoreKind};
use sgbridge::store::audit::{AuditEvent, AuditLog, EventQuery, OrderBy, Party, Seconds};

const WEB: &str = r#"{"name":"web","rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443"}]}"#;

fn event(guid: &str, kind: &str, at: i64, target: &str) -> AuditEvent {
    AuditEvent {
        guid: guid.into(),
        kind: kind.into(),
        created_at: at,
        updated_at: at,
        actor: Party {
            guid: "u1".into(),
            kind: "user".into(),
            name: "alice".into(),
        },
        target: Party {
            guid: target.into(),
            kind: "security_group".into(),
            name: "web".into(),
        },
        space_guid: String::new(),
        organization_guid: String::new(),
        data: "{}".into(),
        request_id: String::new(),
    }
}

/// The behaviour every engine must share (the SQL engines run it too).
async fn behaves(log: &dyn AuditLog) {
    log.put(&event("a", "audit.security_group.create", 100, "g1"))
        .await
        .unwrap();
    log.put(&event("b", "audit.security_group.update", 100, "g1"))
        .await
        .unwrap();
    log.put(&event("c", "audit.security_group.delete", 200, "g2"))
        .await
        .unwrap();
    // A completed intent keeps its place and its creation time.
    let mut done = event("a", "audit.security_group.create", 300, "g1");
    done.data = r#"{"outcome":"applied"}"#.into();
    log.put(&done).await.unwrap();
    let a = log.get("a").await.unwrap().unwrap();
    assert_eq!(
        (a.created_at, a.updated_at, a.data.as_str()),
        (100, 300, r#"{"outcome":"applied"}"#)
    );
    let all = EventQuery {
        limit: 50,
        ..EventQuery::default()
    };
    let guids = |events: Vec<AuditEvent>| events.into_iter().map(|e| e.guid).collect::<Vec<_>>();
    let (total, page) = log.list(&all).await.unwrap();
    assert_eq!((total, guids(page)), (3, vec!["a".to_string(), "b".into(), "c".into()]));
    let by_update_desc = EventQuery {
        order: OrderBy::UpdatedAt,
        descending: true,
        ..all.clone()
    };
    assert_eq!(guids(log.list(&by_update_desc).await.unwrap().1), ["a", "c", "b"]);
    let not_g1 = EventQuery {
        target_guids_not: Some(vec!["g1".into()]),
        ..all.clone()
    };
    assert_eq!(guids(log.list(&not_g1).await.unwrap().1), ["c"]);
    let filtered = EventQuery {
        target_guids: Some(vec!["g1".into()]),
        types: Some(vec!["audit.security_group.update".into(), "x".into()]),
        ..all.clone()
    };
    assert_eq!(guids(log.list(&filtered).await.unwrap().1), ["b"]);
    let none = EventQuery {
        types: Some(vec![]),
        ..all.clone()
    };
    assert_eq!(log.list(&none).await.unwrap().0, 0);
    for (created, want) in [
        (Seconds::Gt(100), vec!["c"]),
        (Seconds::Gte(100), vec!["a", "b", "c"]),
        (Seconds::Lt(200), vec!["a", "b"]),
        (Seconds::Lte(200), vec!["a", "b", "c"]),
        (Seconds::AnyOf(vec![200, 7]), vec!["c"]),
    ] {
        let q = EventQuery {
            created: Some(created.clone()),
            ..all.clone()
        };
        assert_eq!(guids(log.list(&q).await.unwrap().1), want, "{created:?}");
    }
    let second_page = EventQuery {
        offset: 1,
        limit: 1,
        ..all.clone()
    };
    assert_eq!(
        log.list(&second_page).await.unwrap(),
        (3, vec![log.get("b").await.unwrap().unwrap()])
    );
    log.discard("b").await.unwrap();
    assert_eq!(log.get("b").await.unwrap(), None);
    assert_eq!(log.sweep(150, 100).await.unwrap(), 1);
    assert_eq!(guids(log.list(&all).await.unwrap().1), ["c"]);
    // The cap: the newest `keep` stay, whenever they were created.
    for (guid, at) in [("d", 400), ("e", 250), ("f", 500)] {
        log.put(&event(guid, "audit.security_group.update", at, "g3"))
            .await
            .unwrap();
    }
    assert_eq!(log.sweep(150, 2).await.unwrap(), 2);
    assert_eq!(guids(log.list(&all).await.unwrap().1), ["e", "f"]);
    assert_eq!(log.sweep(150, 2).await.unwrap(), 0);
}

fn sqlite_config(dir: &std::path::Path) -> Config {
    let mut cfg = quick_config();
    cfg.store.kind = StoreKind::Sqlite;
    cfg.store.path = Some(dir.join("state.db"));
    cfg
}

fn postgres_config(pg: &Postgres) -> Config {
    let mut cfg = quick_config();
    cfg.store.kind = StoreKind::Postgres;
    cfg.store.url_env = "SGBRIDGE_TEST_STORE_URL".into();
    cfg.env = sgbridge::config::Env::isolated().with("SGBRIDGE_TEST_STORE_URL", &pg.url);
    cfg
}

async fn gateway(cfg: Config) -> InProc {
    InProc {
        app: std::sync::Arc::new(sgbridge::server::App::open(cfg).await.expect("valid test config")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_keeps_events_alike() {
    behaves(&sgbridge::store::MemoryAudit::new(100)).await;
    let dir = scratch("audit-store");
    behaves(&*gateway(sqlite_config(&dir)).await.app.stores.audit).await;
    let pg = Postgres::start("audit_store");
    behaves(&*gateway(postgres_config(&pg)).await.app.stores.audit).await;
}

async fn events(gw: &InProc, query: &str) -> Value {
    let r = gw.cf(Method::GET, &format!("/v3/audit_events{query}"), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn types(page: &Value) -> Vec<String> {
    page["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

/// A CF create, a v3 update, a Gcore rule added, a refused write, a dry
/// run and a delete: four events, each with who, what and its diff in both
/// dialects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_in_either_dialect_are_events_with_both_diffs() {
    let gw = InProc::from_config(quick_config());
    let created = gw.cf(Method::POST, "/v2/security_groups", WEB).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let guid = created.json()["metadata"]["guid"].as_str().unwrap().to_string();
    let request_id = created.header("x-vcap-request-id").unwrap().to_string();
    let patch = r#"{"rules":[{"protocol":"udp","destination":"10.0.0.1","ports":"53"}]}"#;
    let updated = gw
        .cf(Method::PATCH, &format!("/v3/security_groups/{guid}"), patch)
        .await;
    assert!(
        updated.status.is_success(),
        "{}",
        String::from_utf8_lossy(&updated.body)
    );
    let rule = json!({"direction": "egress", "ethertype": "IPv4", "protocol": "tcp",
        "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "192.168.0.0/16"});
    // `Prefer: wait` answers once the rule's task has ended.
    let added = gw
        .send(
            Method::POST,
            &format!("/cloud/v2/security_groups/1/1/{guid}/rules"),
            &[("authorization", GCORE_AUTH), ("prefer", "wait=10")],
            &rule.to_string(),
        )
        .await;
    assert!(added.status.is_success(), "{}", String::from_utf8_lossy(&added.body));
    let refused = gw
        .cf(Method::PUT, &format!("/v2/security_groups/{guid}"), r#"{"rules":"no"}"#)
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let planned = gw
        .cf(Method::DELETE, &format!("/v2/security_groups/{guid}?dry_run=true"), "")
        .await;
    assert!(planned.status.is_success());
    let deleted = gw.cf(Method::DELETE, &format!("/v2/security_groups/{guid}"), "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    let page = events(&gw, "").await;
    assert_eq!(
        types(&page),
        [
            "audit.security_group.create",
            "audit.security_group.update",
            "audit.security_group.rule_create",
            "audit.security_group.delete"
        ]
    );
    let all = page["resources"].as_array().unwrap();
    for e in all {
        assert_eq!(e["target"]["guid"], guid.as_str(), "{e}");
        assert_eq!(e["target"]["type"], "security_group");
        assert_eq!(e["target"]["name"], "web");
        let (kind, name) = match e["data"]["dialect"].as_str() {
            Some("gcore") => ("gcore_api_key", "dev"),
            _ => ("user", "cf-token-1"),
        };
        assert_eq!(
            (e["actor"]["type"].as_str(), e["actor"]["name"].as_str()),
            (Some(kind), Some(name))
        );
        assert_eq!(e["space"], Value::Null);
        assert_eq!(e["organization"], Value::Null);
        assert_ne!(e["data"]["outcome"], "pending");
        let href = e["links"]["self"]["href"].as_str().unwrap();
        assert!(href.ends_with(&format!("/v3/audit_events/{}", e["guid"].as_str().unwrap())));
    }
    let create = &all[0];
    assert_eq!(create["data"]["request_id"], request_id.as_str());
    assert_eq!(create["data"]["dialect"], "cf");
    assert_eq!(create["data"]["outcome"], "applied");
    assert_eq!(
        create["data"]["cf"]["rules_added"],
        json!([{"protocol": "tcp", "destination": "10.0.0.0/8", "ports": "443"}])
    );
    assert_eq!(create["data"]["gcore"]["rules_added"][0]["port_range_min"], 443);
    let update = &all[1];
    assert_eq!(update["data"]["dialect"], "cf_v3");
    assert_eq!(update["data"]["cf"]["rules_removed"][0]["destination"], "10.0.0.0/8");
    assert_eq!(update["data"]["cf"]["rules_added"][0]["protocol"], "udp");
    let gcore = &all[2];
    assert_eq!(gcore["data"]["dialect"], "gcore");
    assert_eq!(
        gcore["data"]["gcore"]["rules_added"][0]["remote_ip_prefix"],
        "192.168.0.0/16"
    );
    assert_eq!(gcore["data"]["cf"]["rules_added"][0]["destination"], "192.168.0.0/16");
    // The event names the task the change ran on (the waited answer is the group).
    let tasks = gcore["data"]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task = gw
        .gcore(
            Method::GET,
            &format!("/cloud/v1/tasks/{}", tasks[0].as_str().unwrap()),
            "",
        )
        .await
        .json();
    assert_eq!(
        (task["state"].as_str(), task["task_type"].as_str()),
        (Some("FINISHED"), Some("create_security_group_rule")),
        "{task}"
    );
    assert_eq!(all[3]["data"]["cf"]["rules_removed"][0]["protocol"], "udp");

    let one = gw
        .cf(
            Method::GET,
            &format!("/v3/audit_events/{}", all[1]["guid"].as_str().unwrap()),
            "",
        )
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json(), all[1]);
}

async fn bad_query(gw: &InProc, query: &str) -> String {
    let r = gw.cf(Method::GET, &format!("/v3/audit_events?{query}"), "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
    let e = &r.json()["errors"][0];
    assert_eq!(e["title"], "CF-BadQueryParameter", "{query}");
    assert_eq!(e["code"], 10005);
    e["detail"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_order_paging_and_bad_queries_as_cc() {
    let gw = InProc::from_config(quick_config());
    let mut guids = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        let body = json!({"name": name}).to_string();
        let r = gw.cf(Method::POST, "/v2/security_groups", &body).await;
        guids.push(r.json()["metadata"]["guid"].as_str().unwrap().to_string());
    }
    let r = gw
        .cf(
            Method::PUT,
            &format!("/v2/security_groups/{}", guids[0]),
            r#"{"name":"alpha2"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
    let names = |page: &Value| -> Vec<String> {
        page["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["target"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&events(&gw, "").await), ["alpha", "beta", "gamma", "alpha2"]);
    let of_a = events(&gw, &format!("?target_guids={}", guids[0])).await;
    assert_eq!(
        types(&of_a),
        ["audit.security_group.create", "audit.security_group.update"]
    );
    let not_a = events(&gw, &format!("?target_guids[not]={},{}", guids[0], guids[1])).await;
    assert_eq!(names(&not_a), ["gamma"]);
    let updates = events(&gw, "?types=audit.security_group.update,audit.user.login").await;
    assert_eq!(updates["pagination"]["total_results"], 1);
    let first = events(&gw, "").await["resources"][0]["guid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        events(&gw, &format!("?guids={first}")).await["pagination"]["total_results"],
        1
    );

    let now = chrono::Utc::now();
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let later = stamp(now + chrono::Duration::seconds(5));
    let earlier = stamp(now - chrono::Duration::seconds(60));
    assert_eq!(
        events(&gw, &format!("?created_ats[gt]={later}")).await["pagination"]["total_results"],
        0
    );
    assert_eq!(
        events(&gw, &format!("?created_ats[lt]={later}")).await["pagination"]["total_results"],
        4
    );
    assert_eq!(
        events(&gw, &format!("?created_ats[gte]={earlier}")).await["pagination"]["total_results"],
        4
    );
    assert_eq!(
        events(&gw, &format!("?created_ats[lte]={earlier}")).await["pagination"]["total_results"],
        0
    );
    assert_eq!(
        events(&gw, &format!("?created_ats={earlier}")).await["pagination"]["total_results"],
        0
    );

    let newest_first = events(&gw, "?order_by=-created_at").await;
    let times: Vec<&str> = newest_first["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["created_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);

    let page = events(
        &gw,
        "?per_page=3&page=2&types=audit.security_group.create,audit.security_group.update",
    )
    .await;
    assert_eq!(names(&page), ["alpha2"]);
    let p = &page["pagination"];
    assert_eq!(
        (p["total_results"].as_u64(), p["total_pages"].as_u64()),
        (Some(4), Some(2))
    );
    let base = gw.app.external_url();
    assert_eq!(
        p["previous"]["href"],
        format!(
            "{base}/v3/audit_events?page=1&per_page=3&types=audit.security_group.create%2Caudit.security_group.update"
        )
    );
    assert_eq!(p["next"], Value::Null);
    assert_eq!(p["first"], p["previous"]);

    assert_eq!(
        bad_query(&gw, "names=x").await,
        "The query parameter is invalid: Unknown query parameter(s): 'names'. Valid parameters are: 'page', 'per_page', \
         'order_by', 'created_ats', 'updated_ats', 'guids', 'types', 'target_guids', 'space_guids', 'organization_guids'"
    );
    assert_eq!(
        bad_query(&gw, "per_page=5001").await,
        "The query parameter is invalid: Per page must be between 1 and 5000"
    );
    assert_eq!(
        bad_query(&gw, "page=0").await,
        "The query parameter is invalid: Page must be a positive integer"
    );
    assert_eq!(
        bad_query(&gw, "order_by=name").await,
        "The query parameter is invalid: Order by can only be: 'created_at', 'updated_at'"
    );
    assert_eq!(
        bad_query(&gw, "created_ats[gt]=2026-01-01").await,
        "The query parameter is invalid: Created ats has an invalid timestamp format. Timestamps should be formatted as 'YYYY-MM-DDThh:mm:ssZ'"
    );
    assert_eq!(
        bad_query(&gw, "created_ats[after]=2026-01-01T00:00:00Z").await,
        "The query parameter is invalid: Created ats Invalid relational operator: 'after'"
    );
    assert_eq!(
        bad_query(&gw, "target_guids[is]=x").await,
        "The query parameter is invalid: Target guids has an invalid operator"
    );
    let missing = gw.cf(Method::GET, "/v3/audit_events/no-such-event", "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["errors"][0]["detail"], "Event not found");
}

/// CC's permissions: global readers see every event; another reader an
/// empty list (sgbridge knows no space roles) and 404 for one; a token
/// without a read scope 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_sees_which_events() {
    let uaa = crate::support::uaa::start().await;
    let key = crate::support::uaa::Key::first();
    uaa.serve_keys(&[&key]);
    let mut cfg = quick_config();
    cfg.auth.uaa = Some(toml::from_str(&format!("url = \"{}\"", uaa.url())).unwrap());
    let gw = InProc::from_config(cfg);
    let admin = format!("bearer {}", key.sign(&uaa.claims(&["cloud_controller.admin"])));
    let created = gw
        .send(Method::POST, "/v2/security_groups", &[("authorization", &admin)], WEB)
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let listed = gw
        .send(Method::GET, "/v3/audit_events", &[("authorization", &admin)], "")
        .await
        .json();
    let one = listed["resources"][0]["guid"].as_str().unwrap().to_string();
    assert_eq!(listed["resources"][0]["actor"]["name"], "alice");
    for (scopes, status, seen) in [
        (&["cloud_controller.admin"][..], StatusCode::OK, 1),
        (&["cloud_controller.admin_read_only"][..], StatusCode::OK, 1),
        (&["cloud_controller.global_auditor"][..], StatusCode::OK, 1),
        (&["cloud_controller.read"][..], StatusCode::OK, 0),
        (&["openid"][..], StatusCode::FORBIDDEN, 0),
    ] {
        let auth = format!("bearer {}", key.sign(&uaa.claims(scopes)));
        let list = gw
            .send(Method::GET, "/v3/audit_events", &[("authorization", &auth)], "")
            .await;
        assert_eq!(list.status, status, "{scopes:?}");
        let show = gw
            .send(
                Method::GET,
                &format!("/v3/audit_events/{one}"),
                &[("authorization", &auth)],
                "",
            )
            .await;
        if status == StatusCode::FORBIDDEN {
            assert_eq!(list.json()["errors"][0]["title"], "CF-NotAuthorized");
            assert_eq!(show.status, StatusCode::FORBIDDEN);
            continue;
        }
        assert_eq!(list.json()["pagination"]["total_results"], seen, "{scopes:?}");
        let want = if seen == 1 {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(show.status, want, "{scopes:?}");
    }
    let none = gw.send(Method::GET, "/v3/audit_events", &[], "").await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_events() {
    let gw = InProc::from_config(quick_config());
    let login = |password: &'static str| {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", password),
            ])
            .finish();
        let gw = &gw;
        async move {
            let headers = [
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", "Basic Y2Y6"),
            ];
            gw.send(Method::POST, "/oauth/token", &headers, &body).await.status
        }
    };
    assert_eq!(login("wrong").await, StatusCode::UNAUTHORIZED);
    assert_eq!(login("admin").await, StatusCode::OK);
    let page = events(&gw, "?types=audit.user.login,audit.user.login_failed").await;
    assert_eq!(types(&page), ["audit.user.login_failed", "audit.user.login"]);
    let failed = &page["resources"][0];
    assert_eq!(failed["actor"]["name"], "admin");
    assert_eq!(failed["target"]["type"], "user");
    assert_eq!(failed["data"]["reason"], "bad_credentials");
    assert_eq!(failed["actor"]["guid"], page["resources"][1]["actor"]["guid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_events_across_a_restart() {
    let dir = scratch("audit-restart");
    {
        let gw = gateway(sqlite_config(&dir)).await;
        assert_eq!(
            gw.cf(Method::POST, "/v2/security_groups", WEB).await.status,
            StatusCode::CREATED
        );
    }
    let gw = gateway(sqlite_config(&dir)).await;
    let page = events(&gw, "").await;
    assert_eq!(types(&page), ["audit.security_group.create"]);
    assert_eq!(page["resources"][0]["data"]["outcome"], "applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgres_read_each_others_events() {
    let pg = Postgres::start("audit_replicas");
    let one = gateway(postgres_config(&pg)).await;
    let two = gateway(postgres_config(&pg)).await;
    assert_eq!(
        one.cf(Method::POST, "/v2/security_groups", WEB).await.status,
        StatusCode::CREATED
    );
    let other = r#"{"name":"db"}"#;
    assert_eq!(
        two.cf(Method::POST, "/v2/security_groups", other).await.status,
        StatusCode::CREATED
    );
    for gw in [&one, &two] {
        let page = events(gw, "?order_by=created_at").await;
        let mut names: Vec<&str> = page["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["target"]["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["db", "web"]);
    }
    // The embedded backend's commit marks the event in its transaction: a
    // completion refused by the database leaves it `applied`, not `pending`.
    pg.psql(
        "CREATE FUNCTION no_completions() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.data::jsonb ? 'status' THEN RAISE EXCEPTION 'no completions'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER no_completions BEFORE UPDATE ON sgbridge_audit_events
         FOR EACH ROW EXECUTE FUNCTION no_completions();",
    );
    let cache = r#"{"name":"cache"}"#;
    let made = one.cf(Method::POST, "/v2/security_groups", cache).await;
    assert_eq!(made.status, StatusCode::CREATED);
    let guid = made.json()["metadata"]["guid"].as_str().unwrap().to_string();
    let page = events(&two, &format!("?target_guids={guid}")).await;
    let data = &page["resources"][0]["data"];
    assert_eq!(
        (data["outcome"].as_str(), data["committed_with_change"].as_bool()),
        (Some("applied"), Some(true)),
        "{data}"
    );
}

/// The README's promise: an intent that cannot be stored refuses the
/// change before anything is sent; with the embedded backend on SQLite the
/// change's commit marks its event in the same transaction, so a completion
/// that cannot be stored (counted) still leaves it `applied`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_audit_write_refuses_the_change_or_the_commit_has_marked_it() {
    let dir = scratch("audit-fail");
    let gw = gateway(sqlite_config(&dir)).await;
    let db = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER no_intents BEFORE INSERT ON sgbridge_audit_events
         BEGIN SELECT RAISE(ABORT, 'audit table refuses writes'); END;",
    )
    .unwrap();
    let refused = gw.cf(Method::POST, "/v2/security_groups", WEB).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert!(String::from_utf8_lossy(&refused.body).contains("audit event could not be stored"));
    let listed = gw.cf(Method::GET, "/v2/security_groups?q=name:web", "").await.json();
    assert_eq!(listed["total_results"], 0, "nothing was created");

    db.execute_batch(
        "DROP TRIGGER no_intents;
         CREATE TRIGGER no_completions BEFORE UPDATE ON sgbridge_audit_events
         WHEN json_extract(NEW.data, '$.status') IS NOT NULL
         BEGIN SELECT RAISE(ABORT, 'audit table refuses completions'); END;",
    )
    .unwrap();
    let made = gw.cf(Method::POST, "/v2/security_groups", WEB).await;
    assert_eq!(made.status, StatusCode::CREATED);
    let guid = made.json()["metadata"]["guid"].as_str().unwrap().to_string();
    let page = events(&gw, &format!("?target_guids={guid}")).await;
    assert_eq!(types(&page), ["audit.security_group.create"]);
    let data = &page["resources"][0]["data"];
    assert_eq!(data["outcome"], "applied", "{data}");
    assert_eq!(data["committed_with_change"], true, "{data}");
    let metrics = gw.send(Method::GET, "/metrics", &[], "").await;
    let text = String::from_utf8_lossy(&metrics.body).to_string();
    assert!(text.contains("sgbridge_audit_write_failures_total 2"), "{text}");
}

/// Killed between the backend's answer and the audit event's completion: a
/// gateway process (SQLite store) in front of an emulator whose create task
/// takes two seconds, `kill -9` once the emulator has answered with the
/// task. The change happens, and after a restart its event is there,
/// `pending`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_mid_change_leaves_the_event_pending() {
    use crate::support::process::Proc;
    let emu = Emulator::start(|_| {}).await;
    let timing = r#"{"task_delay_ms": 10, "task_delays_ms": {"security_groups.create": 2000}}"#;
    assert_eq!(
        emu.control(Method::PUT, "/_emulator/timing", timing).await.status,
        StatusCode::OK
    );
    let dir = scratch("audit-kill");
    let config = dir.join("sgbridge.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[audit]\ntarget = \"off\"\n\
             [store]\nkind = \"sqlite\"\npath = \"{}\"\n\
             [backend]\nkind = \"gcore\"\n[backend.gcore]\nbase_url = \"{}\"\nproject_id = 1\nregion_id = 1\n\
             api_key_env = \"SGBRIDGE_TEST_GCORE_KEY\"\n",
            dir.join("state.db").display(),
            emu.api
        ),
    )
    .unwrap();
    let env = [("SGBRIDGE_TEST_GCORE_KEY", "dev-api-key")];
    let mut gateway = Proc::serve(&config, &env);
    let create = {
        let url = format!("{}/v2/security_groups", gateway.base);
        tokio::spawn(async move { Http::default().cf(Method::POST, &url, WEB).await })
    };
    let count = |path: &'static str| {
        let url = format!("{}{path}", emu.api);
        let http = &emu.http;
        async move {
            http.gcore(Method::GET, &url, "").await.json()["count"]
                .as_u64()
                .unwrap_or(0)
        }
    };
    let mut tries = 0;
    while count("/cloud/v1/tasks").await == 0 {
        tries += 1;
        assert!(tries < 500, "the emulator never received the create");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    gateway.child.kill().unwrap();
    gateway.child.wait().unwrap();
    let _ = create.await;
    let mut tries = 0;
    while count("/cloud/v1/securitygroups/1/1").await == 0 {
        tries += 1;
        assert!(tries < 500, "the change never happened");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let gateway = Proc::serve(&config, &env);
    let page = Http::default()
        .cf(Method::GET, &format!("{}/v3/audit_events", gateway.base), "")
        .await
        .json();
    assert_eq!(types(&page), ["audit.security_group.create"], "{page}");
    assert_eq!(page["resources"][0]["data"]["outcome"], "pending");
    assert_eq!(page["resources"][0]["actor"]["name"], "cf-token-1");
}
