//! The durable stores (issue 14), with the real binary: the embedded backend
//! on `store.kind = "sqlite"` and on `"postgres"` keeps every acknowledged
//! group across a `kill -9` and a restart; a task that was RUNNING when the process died
//! ends in ERROR (never stays RUNNING) and applied nothing; Idempotency-Key
//! answers survive the restart too.
// Real processes or the wall clock on purpose (a benchmark, a process-level test).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use crate::support::process::Proc;
use crate::support::*;
use http::{Method, StatusCode};

use crate::support::postgres::Postgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_backend_on_sqlite_survives_kill_9() {
    let dir = std::env::temp_dir().join(format!("sgbridge-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("state.db");
    let store = format!("kind = \"sqlite\"\npath = \"{}\"", db.display());
    survives_kill_9(&dir, &store, &[]).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_backend_on_postgres_survives_kill_9() {
    let pg = Postgres::start("store");
    let dir = std::env::temp_dir().join(format!("sgbridge-store-pg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    survives_kill_9(
        &dir,
        "kind = \"postgres\"\nlock_lease_s = 2",
        &[("SGBRIDGE_STORE_URL", pg.url.as_str())],
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn survives_kill_9(dir: &std::path::Path, store: &str, env: &[(&str, &str)]) {
    let config = dir.join("sgbridge.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[audit]\ntarget = \"off\"\n[store]\n{store}\n\
             [backend.embedded]\ntask_delay_ms = 200\n"
        ),
    )
    .unwrap();
    let start = |config: &std::path::Path| Proc::serve(config, env);
    let http = Http::default();
    let mut p = start(&config);
    let url = |p: &Proc, path: &str| format!("{}{path}", p.base);
    let created = http
        .send(
            Method::POST,
            &url(&p, "/v2/security_groups"),
            &[("authorization", CF_AUTH), ("idempotency-key", "create-web")],
            r#"{"name":"web","rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443"}]}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let guid = created.json()["metadata"]["guid"].as_str().unwrap().to_string();
    let put = http
        .cf(
            Method::PUT,
            &url(&p, &format!("/v2/security_groups/{guid}")),
            r#"{"rules":[{"protocol":"udp","destination":"10.0.0.2","ports":"53"}]}"#,
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    // A Gcore create left running (its task takes 200 ms), then kill -9.
    let pending = http
        .gcore(
            Method::POST,
            &url(&p, "/cloud/v2/security_groups/1/1"),
            r#"{"name":"unfinished","rules":[]}"#,
        )
        .await;
    let task = pending.json()["tasks"][0].as_str().unwrap().to_string();
    p.child.kill().unwrap();
    p.child.wait().unwrap();

    let p = start(&config);
    let got = http
        .cf(Method::GET, &url(&p, &format!("/v2/security_groups/{guid}")), "")
        .await;
    assert_eq!(got.status, StatusCode::OK, "the acknowledged group is there");
    assert_eq!(
        got.json()["entity"]["rules"],
        serde_json::json!([{"protocol": "udp", "destination": "10.0.0.2", "ports": "53"}])
    );
    // Ended at once from SQLite (one process); on PostgreSQL (replicas
    // share it) once the dead process's lease lapses.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let t = loop {
        let t = http
            .gcore(Method::GET, &url(&p, &format!("/cloud/v1/tasks/{task}")), "")
            .await
            .json();
        if t["state"] != "RUNNING" || std::time::Instant::now() > until {
            break t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(t["state"], "ERROR", "{t}");
    assert!(t["error"].as_str().unwrap().contains("nothing was applied"), "{t}");
    let list = http
        .gcore(
            Method::GET,
            &url(&p, "/cloud/v1/securitygroups/1/1?name=unfinished"),
            "",
        )
        .await
        .json();
    assert_eq!(list["count"], 0, "the interrupted create applied nothing");
    // The idempotent create's answer outlived the process.
    let replay = http
        .send(
            Method::POST,
            &url(&p, "/v2/security_groups"),
            &[("authorization", CF_AUTH), ("idempotency-key", "create-web")],
            r#"{"name":"web","rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443"}]}"#,
        )
        .await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json()["metadata"]["guid"], guid.as_str());
    let all = http
        .cf(Method::GET, &url(&p, "/v2/security_groups?q=name:web"), "")
        .await
        .json();
    assert_eq!(all["total_results"], 1, "no second group");
    drop(p);
}

/// Idempotency records stay within their bounds in the durable stores too
/// (SQLite kept 1,000 rows with `max_keys = 100`): a caller past its quota
/// loses its own oldest answers, and past the total the biggest holder
/// gives way, never a caller holding less.
async fn records_stay_within_their_limits(stores: sgbridge::store::Stores) {
    use sgbridge::store::{Answer, Begin};
    use std::time::Duration;
    let r = stores.records;
    let (claim, day) = (Duration::from_secs(60), Duration::from_secs(86_400));
    let keep = |who: String, key: String| {
        let r = r.clone();
        async move {
            assert_eq!(
                r.begin(&who, &key, 7, claim).await.unwrap(),
                Begin::Fresh,
                "{who} {key}"
            );
            let answer = Answer {
                status: 201,
                headers: vec![("content-type".into(), b"application/json".to_vec())],
                body: vec![b'x'; 100],
            };
            r.finish(&who, &key, 7, answer, day).await.unwrap();
        }
    };
    let kept = |who: &'static str, key: String| {
        let r = r.clone();
        async move {
            match r.begin(who, &key, 7, claim).await.unwrap() {
                Begin::Done { answer, .. } => answer.status == 201,
                _ => {
                    r.abandon(who, &key).await.unwrap();
                    false
                }
            }
        }
    };
    keep("victim".into(), "v".into()).await;
    for i in 0..60 {
        keep("noisy".into(), format!("k{i}")).await;
    }
    assert!(kept("noisy", "k59".into()).await);
    assert!(
        !kept("noisy", "k39".into()).await,
        "past its quota of 20, its own oldest go"
    );
    for caller in 0..6 {
        for i in 0..20 {
            keep(format!("many-{caller}"), format!("m{i}")).await;
        }
    }
    assert!(kept("victim", "v".into()).await, "a caller holding less was pushed out");
}

fn limited() -> sgbridge::config::IdempotencyConfig {
    sgbridge::config::IdempotencyConfig {
        max_keys: 100,
        max_keys_per_caller: 20,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_records_are_bounded_on_sqlite_and_postgres() {
    use sgbridge::config::{Env, StoreConfig, StoreKind};
    use sgbridge::store::{NoStoreTelemetry, Stores};
    let dir = std::env::temp_dir().join(format!("sgbridge-records-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = StoreConfig {
        kind: StoreKind::Sqlite,
        path: Some(dir.join("state.db")),
        ..StoreConfig::default()
    };
    let stores = Stores::open(
        &sqlite,
        &Env::isolated(),
        &limited(),
        std::sync::Arc::new(NoStoreTelemetry),
    )
    .await
    .unwrap();
    records_stay_within_their_limits(stores).await;

    let pg = Postgres::start("records");
    let env = Env::isolated().with("SGBRIDGE_TEST_RECORDS_URL", &pg.url);
    let postgres = StoreConfig {
        kind: StoreKind::Postgres,
        url_env: "SGBRIDGE_TEST_RECORDS_URL".into(),
        ..StoreConfig::default()
    };
    let stores = Stores::open(&postgres, &env, &limited(), std::sync::Arc::new(NoStoreTelemetry))
        .await
        .unwrap();
    records_stay_within_their_limits(stores).await;
    let _ = std::fs::remove_dir_all(&dir);
}
