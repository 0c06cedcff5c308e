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
use serde_json::json;

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
    let (sqlite, postgres, _pg, dir) = sqlite_and_postgres("records").await;
    records_stay_within_their_limits(sqlite).await;
    records_stay_within_their_limits(postgres).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ended tasks leave the store when their registry lets them go (issue 26:
/// SQLite never swept, so a steady write load grew the file without end):
/// one rule, the registry's TTL, for every store.
async fn ended_tasks_are_forgotten_after_the_ttl(log: std::sync::Arc<dyn sgbridge::store::TaskLog>) {
    use sgbridge::model::{Created, Scope, TaskKind};
    use sgbridge::tasks::TaskRegistry;
    let ttl = std::time::Duration::from_millis(200);
    let registry = TaskRegistry::new(ttl).with_log(log.clone(), "gateway");
    let scope = Scope {
        project_id: 1,
        region_id: 1,
    };
    let old = registry.start(scope, TaskKind::CreateGroup, None);
    log.save_now("gateway", &[registry.get(&old).unwrap()]).await.unwrap();
    registry.finish(&old, Ok(Created::default()));
    let held = |log: std::sync::Arc<dyn sgbridge::store::TaskLog>, id: sgbridge::model::TaskId| async move {
        log.load("gateway", &id).await.unwrap().is_some()
    };
    for _ in 0..100 {
        if log
            .load("gateway", &old)
            .await
            .unwrap()
            .is_some_and(|t| t.state.is_terminal())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        held(log.clone(), old.clone()).await,
        "the ended task is kept within its TTL"
    );
    tokio::time::sleep(ttl * 2).await;
    // The next start sweeps the registry, which tells the store.
    let new = registry.start(scope, TaskKind::CreateGroup, None);
    log.save_now("gateway", &[registry.get(&new).unwrap()]).await.unwrap();
    for _ in 0..200 {
        if !held(log.clone(), old.clone()).await {
            assert!(held(log.clone(), new.clone()).await, "a running task stays");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the ended task is still in the store after its TTL");
}

/// A SQLite store in a directory of its own and a PostgreSQL one (the
/// server, the directory: dropped at the end).
async fn sqlite_and_postgres(
    name: &str,
) -> (
    sgbridge::store::Stores,
    sgbridge::store::Stores,
    Postgres,
    std::path::PathBuf,
) {
    use sgbridge::config::{Env, StoreConfig, StoreKind};
    use sgbridge::store::{NoStoreTelemetry, Stores};
    let dir = std::env::temp_dir().join(format!("sgbridge-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = StoreConfig {
        kind: StoreKind::Sqlite,
        path: Some(dir.join("state.db")),
        ..StoreConfig::default()
    };
    let telemetry = || std::sync::Arc::new(NoStoreTelemetry);
    let on_sqlite = Stores::open(&sqlite, &Env::isolated(), &limited(), telemetry())
        .await
        .unwrap();
    let pg = Postgres::start(name);
    let env = Env::isolated().with("SGBRIDGE_TEST_STORE_URL", &pg.url);
    let postgres = StoreConfig {
        kind: StoreKind::Postgres,
        url_env: "SGBRIDGE_TEST_STORE_URL".into(),
        ..StoreConfig::default()
    };
    let on_postgres = Stores::open(&postgres, &env, &limited(), telemetry()).await.unwrap();
    (on_sqlite, on_postgres, pg, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_tasks_leave_sqlite_and_postgres_after_the_ttl() {
    let (sqlite, postgres, _pg, dir) = sqlite_and_postgres("forget").await;
    ended_tasks_are_forgotten_after_the_ttl(sqlite.tasks.clone().unwrap()).await;
    ended_tasks_are_forgotten_after_the_ttl(postgres.tasks.clone().unwrap()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Failed logins of names tried once (a storm of made-up users) leave the
/// store once out of the lockout window, not only when the same name fails
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_of_names_tried_once_are_swept() {
    let (sqlite, postgres, _pg, dir) = sqlite_and_postgres("failures").await;
    for stores in [sqlite, postgres] {
        let log = stores.logins.clone().unwrap();
        for i in 0..100 {
            log.login_failed(&format!("made-up-{i}"), 1_000, 0).await.unwrap();
        }
        // Later failures, with the window now past the first ones: at least
        // one of any 64 sweeps every name.
        for i in 0..130 {
            log.login_failed(&format!("later-{i}"), 5_000, 4_000).await.unwrap();
        }
        for i in 0..100 {
            let left = log.login_failures(&format!("made-up-{i}"), 0).await.unwrap();
            assert!(left.is_empty(), "made-up-{i} still has {left:?}");
        }
        assert_eq!(log.login_failures("later-129", 0).await.unwrap(), [5_000]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A SQLite store made before the schema compatibility policy (no
/// `readable_by` column) opens, and gains the column.
#[tokio::test]
async fn a_sqlite_store_from_before_the_compatibility_policy_opens() {
    use sgbridge::config::{Env, StoreConfig, StoreKind};
    use sgbridge::store::{NoStoreTelemetry, Stores};
    let dir = std::env::temp_dir().join(format!("sgbridge-policy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = StoreConfig {
        kind: StoreKind::Sqlite,
        path: Some(dir.join("state.db")),
        ..StoreConfig::default()
    };
    let (env, limits) = (Env::isolated(), limited());
    let open = || Stores::open(&cfg, &env, &limits, std::sync::Arc::new(NoStoreTelemetry));
    drop(open().await.unwrap());
    let db = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    db.execute_batch("ALTER TABLE sgbridge_schema DROP COLUMN readable_by")
        .unwrap();
    drop(db);
    drop(open().await.unwrap());
    let db = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    let with_column: i64 = db
        .query_row(
            "SELECT count(*) FROM pragma_table_info('sgbridge_schema') WHERE name = 'readable_by'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(with_column, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `sgbridge store export` of the store `config` names (stdout), with `env`.
fn export_store(config: &std::path::Path, env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .args(["store", "export", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `sgbridge store import` of `dump` (stdin) into the store `config` names.
fn import_store(config: &std::path::Path, env: &[(&str, &str)], dump: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .args(["store", "import", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(dump.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{said}");
    said
}

/// An export's lines as a set, without the header and without each
/// record's expiry (an import sets it from the time left, to the second:
/// [`expiries`] compares those within a few seconds).
fn contents(dump: &str) -> std::collections::BTreeSet<String> {
    dump.lines()
        .skip(1)
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if let Some(at) = v.pointer_mut("/record/expires_at") {
                *at = json!(null);
            }
            v.to_string()
        })
        .collect()
}

/// Each record's expiry, by its key.
fn expiries(dump: &str) -> std::collections::BTreeMap<String, i64> {
    dump.lines()
        .skip(1)
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let r = v.get("record")?;
            Some((r["key"].as_str()?.to_string(), r["expires_at"].as_i64()?))
        })
        .collect()
}

/// Two exports hold the same, their records' expiries within 5 s.
fn same_store(a: &str, b: &str, what: &str) {
    assert_eq!(contents(a), contents(b), "{what}");
    let (ea, eb) = (expiries(a), expiries(b));
    assert_eq!(ea.keys().collect::<Vec<_>>(), eb.keys().collect::<Vec<_>>(), "{what}");
    for (k, at) in &ea {
        assert!((at - eb[k]).abs() <= 5, "{what}: {k} expires at {at} and {}", eb[k]);
    }
}

/// Export → import round trips (issue 26): an embedded backend's state on
/// SQLite (groups with rules and tags, their tasks, an idempotency answer)
/// and their audit events move to PostgreSQL and back unchanged, and a
/// gateway on the target serves the groups and replays the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_import_move_a_store_between_sqlite_and_postgres() {
    let dir = std::env::temp_dir().join(format!("sgbridge-dump-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pg = Postgres::start("dump");
    let sqlite = |name: &str| {
        let path = dir.join(format!("{name}.toml"));
        let store = dir.join(format!("{name}.db"));
        std::fs::write(
            &path,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[backend.embedded]\ntask_delay_ms = 10\n[store]\nkind = \"sqlite\"\npath = \"{}\"\n",
                store.display()
            ),
        )
        .unwrap();
        path
    };
    let (a, b) = (sqlite("a"), sqlite("b"));
    let on_pg = dir.join("pg.toml");
    std::fs::write(
        &on_pg,
        "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nkind = \"postgres\"\n",
    )
    .unwrap();
    let pg_env = [("SGBRIDGE_STORE_URL", pg.url.as_str())];

    // State on SQLite: a CF group, a Gcore group with a rule added, and an
    // answer kept for an Idempotency-Key.
    let http = Http::default();
    let key = [("authorization", CF_AUTH), ("idempotency-key", "moved-1")];
    let first = {
        let gw = Proc::serve(&a, &[]);
        let r = http
            .send(
                Method::POST,
                &format!("{}/v2/security_groups", gw.base),
                &key,
                r#"{"name":"web","rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443","log":true}]}"#,
            )
            .await;
        assert_eq!(
            r.status,
            http::StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        let g = http
            .send(
                Method::POST,
                &format!("{}/cloud/v2/security_groups/1/1", gw.base),
                &[("authorization", GCORE_AUTH), ("prefer", "wait=10")],
                r#"{"name":"db","rules":[{"direction":"ingress","protocol":"tcp","port_range_min":5432,"port_range_max":5432,"remote_ip_prefix":"10.0.0.0/8"}]}"#,
            )
            .await;
        assert!(g.status.is_success(), "{}", String::from_utf8_lossy(&g.body));
        r
    };
    let dump = export_store(&a, &[]);
    assert!(dump.starts_with(r#"{"sgbridge_store":2,"#), "{dump}");
    assert_eq!(dump.matches(r#"{"event":{"#).count(), 2, "{dump}");
    let said = import_store(&on_pg, &pg_env, &dump);
    assert!(
        said.contains("imported 2 groups") && said.contains("2 audit events"),
        "{said}"
    );
    let again = export_store(&on_pg, &pg_env);
    same_store(&again, &dump, "SQLite -> PostgreSQL");
    import_store(&b, &[], &again);
    same_store(&export_store(&b, &[]), &dump, "PostgreSQL -> SQLite");

    // A gateway on the target serves the groups and replays the answer.
    let gw = Proc::serve(&on_pg, &pg_env);
    let listed = http
        .cf(Method::GET, &format!("{}/v2/security_groups", gw.base), "")
        .await;
    assert_eq!(
        listed.json()["total_results"],
        2,
        "{}",
        String::from_utf8_lossy(&listed.body)
    );
    let replay = http
        .send(
            Method::POST,
            &format!("{}/v2/security_groups", gw.base),
            &key,
            r#"{"name":"web","rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443","log":true}]}"#,
        )
        .await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, first.body);

    // A newer format is refused with one line.
    let newer = dump.replacen(r#"{"sgbridge_store":2,"#, r#"{"sgbridge_store":3,"#, 1);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .args(["store", "import", "--config"])
        .arg(&b)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(newer.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("format version 3"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lock released is free at once for the next write on the same replica
/// (issue 26's soak: a CF PUT answered, then the caller's Gcore rule add met
/// "locked by another task" while the lease's release was still on its way
/// to PostgreSQL); another replica's lease is still respected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_lock_is_free_at_once_on_the_same_replica() {
    use sgbridge::coord::LockKey;
    use sgbridge::model::{Scope, Uuid};
    let (_sqlite, postgres, pg, dir) = sqlite_and_postgres("handoff").await;
    let scope = Scope {
        project_id: 1,
        region_id: 1,
    };
    let key = || LockKey::Group(scope, Uuid::from_random(42));
    for i in 0..50 {
        let held = postgres.coord.lock(key()).await.unwrap();
        drop(held);
        let again = postgres.coord.try_lock(key()).await.unwrap();
        assert!(again.is_some(), "round {i}: the lock just released was still taken");
    }
    // Another replica on the same database waits for a lease this one holds.
    let env = sgbridge::config::Env::isolated().with("SGBRIDGE_TEST_STORE_URL", &pg.url);
    let cfg = sgbridge::config::StoreConfig {
        kind: sgbridge::config::StoreKind::Postgres,
        url_env: "SGBRIDGE_TEST_STORE_URL".into(),
        ..sgbridge::config::StoreConfig::default()
    };
    let other = sgbridge::store::Stores::open(
        &cfg,
        &env,
        &limited(),
        std::sync::Arc::new(sgbridge::store::NoStoreTelemetry),
    )
    .await
    .unwrap();
    let held = postgres.coord.lock(key()).await.unwrap();
    assert!(
        other.coord.try_lock(key()).await.unwrap().is_none(),
        "another replica's lease holds"
    );
    drop(held);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Counts the store's transactions of group changes.
#[derive(Default)]
struct CountedCommits(std::sync::atomic::AtomicUsize);

impl sgbridge::store::StoreTelemetry for CountedCommits {
    fn store_call(&self, op: &'static str, ok: bool, _: std::time::Duration) {
        if op == "commit_groups" && ok {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    fn lock_wait(&self, _: std::time::Duration) {}
    fn pool(&self, _: usize, _: usize) {}
}

/// Issue 28: the embedded backend's changes on PostgreSQL are group
/// committed: changes saved at once share transactions (they were one
/// fsynced transaction each, serialised by an advisory lock), and every
/// one lands, in a prefix another replica reads in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_group_changes_share_transactions_and_each_lands() {
    use sgbridge::config::{Env, StoreConfig, StoreKind};
    use sgbridge::model::{AtomicContent, Content, Group, GroupMeta, Scope, Uuid};
    use sgbridge::store::{GroupChange, Stores};
    use std::sync::Arc;
    let pg = Postgres::start("group-commit");
    let env = Env::isolated().with("SGBRIDGE_TEST_STORE_URL", &pg.url);
    let cfg = StoreConfig {
        kind: StoreKind::Postgres,
        url_env: "SGBRIDGE_TEST_STORE_URL".into(),
        ..StoreConfig::default()
    };
    let counted = Arc::new(CountedCommits::default());
    let stores = Stores::open(&cfg, &env, &limited(), counted.clone()).await.unwrap();
    let log = stores.groups.clone().expect("postgres keeps groups");
    let scope = Scope {
        project_id: 1,
        region_id: 1,
    };
    let now = chrono::Utc::now();
    let group = |i: u64| Group {
        meta: GroupMeta {
            id: Uuid::from_random(1000 + u128::from(i)),
            name: format!("g{i}"),
            description: String::new(),
            region: "Luxembourg".into(),
            revision: 1,
            created_at: now,
            updated_at: now,
        },
        content: Content::Atomic(Arc::new(AtomicContent {
            rules: Vec::new(),
            tags: Vec::new(),
        })),
    };
    const N: u64 = 40;
    let saves = (0..N).map(|i| {
        let log = log.clone();
        let change = GroupChange::Put {
            scope,
            seq: i,
            group: group(i),
        };
        async move { log.commit(&[change], &[]).await }
    });
    for saved in futures_util::future::join_all(saves).await {
        saved.unwrap();
    }
    let transactions = counted.0.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        transactions < N as usize,
        "{N} changes saved at once took {transactions} transactions"
    );
    let seen = log.changes(0).await.unwrap();
    let mut names: Vec<String> = seen.put.iter().map(|(_, _, g)| g.meta.name.clone()).collect();
    names.sort();
    let mut want: Vec<String> = (0..N).map(|i| format!("g{i}")).collect();
    want.sort();
    assert_eq!(names, want);
    // Nothing is answered before it is saved: after the answers, a second
    // look from the cursor finds nothing new.
    assert!(log.changes(seen.cursor).await.unwrap().put.is_empty());
}
