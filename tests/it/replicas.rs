//! Replicas sharing one PostgreSQL store (issue 14), with the real binary,
//! in front of one Gcore-semantics backend (a further sgbridge, embedded, as
//! the Gcore API): CF names stay unique across replicas, writes to one group
//! from different replicas lose nothing, Idempotency-Key answers, CF jobs
//! and tasks are answered by any replica, a replica killed while it holds a
//! group gives the group up, and a store outage is a clear 503 that heals
//! without a restart.
//!
//! Each test starts a throwaway PostgreSQL of its own (`crate::support::postgres`).
//! These are process-level tests: real time, polled with short sleeps.
// Real processes or the wall clock on purpose (a benchmark, a process-level test).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use crate::support::postgres::Postgres;
use crate::support::process::Proc;
use crate::support::*;
use http::{Method, StatusCode};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

fn serve(name: &str, config: &str, env: &[(&str, &str)]) -> Proc {
    let path = std::env::temp_dir().join(format!("sgbridge-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, config).unwrap();
    Proc::serve(&path, env)
}

const COMMON: &str =
    "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_delay_s = 0\nreadiness_interval_s = 1\n[audit]\ntarget = \"off\"\n[log]\nlevel = \"warn\"\n";

/// Replicas (dropped first), the backend they share, and the store.
struct Cluster {
    replicas: Vec<Proc>,
    backend: Proc,
    pg: Postgres,
}

impl Cluster {
    /// `n` replicas on a postgres store in front of a gcore-semantics
    /// backend whose tasks take `task_delay_ms`; `store` adds `[store]` keys.
    fn start(name: &str, n: usize, task_delay_ms: u64, store: &str) -> Cluster {
        let pg = Postgres::start(name);
        let backend = serve(
            &format!("{name}-backend"),
            &format!("{COMMON}[backend.embedded]\ntask_delay_ms = {task_delay_ms}\n"),
            &[],
        );
        let replicas = (0..n)
            .map(|i| {
                let config = format!(
                    "{COMMON}[store]\nkind = \"postgres\"\n{store}\n[wait]\npoll_ms = 20\nmax_poll_ms = 100\n\
                     [backend]\nkind = \"gcore\"\n[backend.gcore]\nbase_url = \"{}\"\nproject_id = 1\nregion_id = 1\n\
                     api_key_env = \"SGBRIDGE_REPLICA_KEY\"\n",
                    backend.base
                );
                serve(
                    &format!("{name}-replica-{i}"),
                    &config,
                    &[
                        ("SGBRIDGE_STORE_URL", pg.url.as_str()),
                        ("SGBRIDGE_REPLICA_KEY", "dev-api-key"),
                    ],
                )
            })
            .collect();
        Cluster { replicas, backend, pg }
    }

    fn base(&self, i: usize) -> String {
        self.replicas[i % self.replicas.len()].base.clone()
    }

    /// The backend's groups of that name.
    async fn backend_groups(&self, name: &str) -> Vec<Value> {
        let list = Http::default()
            .gcore(
                Method::GET,
                &format!("{}/cloud/v1/securitygroups/1/1?name={name}", self.backend.base),
                "",
            )
            .await
            .json();
        list["results"].as_array().cloned().unwrap_or_default()
    }

    async fn backend_group(&self, id: &str) -> Value {
        Http::default()
            .gcore(
                Method::GET,
                &format!("{}/cloud/v1/securitygroups/1/1/{id}", self.backend.base),
                "",
            )
            .await
            .json()
    }
}

fn rule(port: u16) -> String {
    format!(
        r#"{{"direction":"egress","protocol":"tcp","port_range_min":{port},"port_range_max":{port},"remote_ip_prefix":"10.0.0.0/8"}}"#
    )
}

/// `n` writes at once on one group, spread over `bases`: every `cf_every`-th
/// a CF PUT renaming it to `name(i)` (its rules kept), the others Gcore rule
/// adds of port `first_port + i`; each must succeed. Answers the ports added.
async fn interleaved_writes(
    bases: &[String],
    guid: &str,
    n: u16,
    cf_every: u16,
    first_port: u16,
    name: impl Fn(u16) -> String,
) -> HashSet<u64> {
    let mut writes = Vec::new();
    for i in 0..n {
        let base = bases[usize::from(i) % bases.len()].clone();
        let (guid, body) = (guid.to_string(), format!(r#"{{"name":"{}"}}"#, name(i)));
        writes.push(tokio::spawn(async move {
            let http = Http::default();
            if i % cf_every == 0 {
                http.cf(Method::PUT, &format!("{base}/v2/security_groups/{guid}"), &body)
                    .await
                    .status
            } else {
                http.send(
                    Method::POST,
                    &format!("{base}/cloud/v2/security_groups/1/1/{guid}/rules"),
                    &[("authorization", GCORE_AUTH), ("prefer", "wait=60")],
                    rule(first_port + i),
                )
                .await
                .status
            }
        }));
    }
    for w in writes {
        let status = w.await.unwrap();
        assert!(status.is_success(), "{status}");
    }
    (0..n)
        .filter(|i| i % cf_every != 0)
        .map(|i| u64::from(first_port + i))
        .collect()
}

/// The ports of a Gcore group's rules.
fn ports(group: &Value) -> HashSet<u64> {
    group["security_group_rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["port_range_min"].as_u64())
        .collect()
}

/// GETs `url` (no credentials) until it answers `status` (at most 20 s).
async fn wait_for(url: &str, status: StatusCode, what: &str) {
    let http = Http::default();
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let r = http.send(Method::GET, url, &[], "").await;
        if r.status == status {
            return;
        }
        assert!(Instant::now() < until, "{what}: {url} still answers {}", r.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GETs `url` until `done` holds of the JSON body (at most 20 s).
async fn poll_until(url: &str, gcore: bool, done: impl Fn(&Value) -> bool) -> Value {
    let http = Http::default();
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let r = if gcore {
            http.gcore(Method::GET, url, "").await
        } else {
            http.cf(Method::GET, url, "").await
        };
        let body = r.json();
        if r.status == StatusCode::OK && done(&body) {
            return body;
        }
        assert!(Instant::now() < until, "{url} never got there: {} {body}", r.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_names_groups_jobs_tasks_and_idempotency_keys() {
    let c = Cluster::start("share", 3, 20, "");
    let http = Http::default();

    // 50 concurrent CF creates of one name, round-robin: exactly one 201.
    let mut creates = Vec::new();
    for i in 0..50 {
        let url = format!("{}/v2/security_groups", c.base(i));
        creates.push(tokio::spawn(async move {
            Http::default()
                .cf(Method::POST, &url, r#"{"name":"shared-name"}"#)
                .await
        }));
    }
    let mut created = 0;
    for t in creates {
        let r = t.await.unwrap();
        match r.status {
            StatusCode::CREATED => created += 1,
            _ => assert_eq!(r.json()["error_code"], "CF-SecurityGroupNameTaken", "{}", r.json()),
        }
    }
    assert_eq!(created, 1);
    let held = c.backend_groups("shared-name").await;
    assert_eq!(held.len(), 1, "the backend holds one group");
    let guid = held[0]["id"].as_str().unwrap().to_string();

    // CF PUTs and Gcore rule adds on that group, interleaved 100 times
    // through different replicas (a CF PUT without rules keeps them).
    let bases: Vec<String> = (0..3).map(|i| c.base(i)).collect();
    let expected = interleaved_writes(&bases, &guid, 100, 2, 2000, |_| "shared-name".into()).await;
    let ports = ports(&c.backend_group(&guid).await);
    assert_eq!(ports, expected, "no rule lost");

    // An Idempotency-Key answered by replica 0 is replayed by replica 2.
    let keyed = |base: String| async move {
        Http::default()
            .send(
                Method::POST,
                &format!("{base}/v2/security_groups"),
                &[("authorization", CF_AUTH), ("idempotency-key", "once")],
                r#"{"name":"keyed"}"#,
            )
            .await
    };
    let first = keyed(c.base(0)).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = keyed(c.base(2)).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);

    // An async delete's job, made by replica 1, polled on replica 2.
    let doomed = first.json()["metadata"]["guid"].as_str().unwrap().to_string();
    let deleted = http
        .cf(
            Method::DELETE,
            &format!("{}/v2/security_groups/{doomed}?async=true", c.base(1)),
            "",
        )
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{}", deleted.json());
    let job = deleted.json()["metadata"]["url"].as_str().unwrap().to_string();
    let done = poll_until(&format!("{}{job}", c.base(2)), false, |j| {
        j["entity"]["status"] == "finished"
    })
    .await;
    assert_eq!(done["entity"]["status"], "finished");
    assert!(c.backend_groups("keyed").await.is_empty(), "the delete happened");

    // A Gcore task accepted by replica 0, polled to FINISHED on replica 1.
    let accepted = http
        .gcore(
            Method::POST,
            &format!("{}/cloud/v2/security_groups/1/1", c.base(0)),
            r#"{"name":"by-task","rules":[]}"#,
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.json());
    let task = accepted.json()["tasks"][0].as_str().unwrap().to_string();
    poll_until(&format!("{}/cloud/v1/tasks/{task}", c.base(1)), true, |t| {
        t["state"] == "FINISHED"
    })
    .await;
    assert_eq!(c.backend_groups("by-task").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_while_it_holds_a_group_gives_it_up() {
    // Backend tasks take 1.5 s; a held group's lease lapses 2 s after its
    // holder stops renewing it.
    let mut c = Cluster::start("kill", 2, 1_500, "lock_lease_s = 2");
    let http = Http::default();
    let created = http
        .cf(
            Method::POST,
            &format!("{}/v2/security_groups", c.base(0)),
            r#"{"name":"held"}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let guid = created.json()["metadata"]["guid"].as_str().unwrap().to_string();

    // Replica 0 takes the group's write and waits on its backend task...
    let url0 = format!("{}/v2/security_groups/{guid}", c.base(0));
    let first = tokio::spawn(async move {
        Http::default()
            .cf(
                Method::PUT,
                &url0,
                r#"{"rules":[{"protocol":"tcp","destination":"10.1.0.0/16","ports":"443"}]}"#,
            )
            .await
    });
    poll_until(&format!("{}/cloud/v1/tasks?state=RUNNING", c.backend.base), true, |t| {
        t["count"].as_u64().unwrap_or(0) > 0
    })
    .await;
    // ...and dies holding it.
    c.replicas[0].child.kill().unwrap();
    c.replicas[0].child.wait().unwrap();
    let _ = first.await;

    let started = Instant::now();
    let second = http
        .cf(
            Method::PUT,
            &format!("{}/v2/security_groups/{guid}", c.base(1)),
            r#"{"rules":[{"protocol":"udp","destination":"10.2.0.0/16","ports":"53"}]}"#,
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.json());
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    // The group holds exactly the second write: the first either landed
    // whole and was replaced, or never landed; nothing half of either.
    let group = c.backend_group(&guid).await;
    let rules = group["security_group_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{group}");
    assert_eq!(rules[0]["protocol"], "udp");
    assert_eq!(rules[0]["remote_ip_prefix"], "10.2.0.0/16");
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_is_a_clear_503_and_heals_without_a_restart() {
    let c = Cluster::start("outage", 2, 20, "statement_timeout_ms = 1000");
    let bases: Vec<String> = (0..2).map(|i| c.base(i)).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Every answer as it comes (when, status), for the phases to wait on.
    let progress = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(Instant, StatusCode)>::new()));
    let mut workers = Vec::new();
    for w in 0..4usize {
        let bases = bases.clone();
        let (stop, progress) = (stop.clone(), progress.clone());
        workers.push(tokio::spawn(async move {
            let http = Http::default();
            let mut seen = Vec::new();
            let mut n = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("load-{w}-{n}");
                let at = Instant::now();
                let r = http
                    .cf(
                        Method::POST,
                        &format!("{}/v2/security_groups", bases[n % 2]),
                        &format!(r#"{{"name":"{name}"}}"#),
                    )
                    .await;
                progress.lock().unwrap().push((at, r.status));
                seen.push((name, at, r.status, r.header("retry-after").is_some(), r.json()));
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        }));
    }
    // Each phase lasts until what it is for has been seen (at most 30 s).
    let seen_at_least = |count: usize, status: StatusCode, since: Instant| {
        let progress = progress.clone();
        async move {
            let until = Instant::now() + Duration::from_secs(30);
            loop {
                let n = progress
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(at, s)| *s == status && *at > since)
                    .count();
                if n >= count {
                    return;
                }
                assert!(
                    Instant::now() < until,
                    "only {n} answers {status} since the phase began"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    seen_at_least(8, StatusCode::CREATED, Instant::now()).await;
    c.pg.down();
    let down_at = Instant::now();
    wait_for(
        &format!("{}/readyz", bases[0]),
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready while the store is down",
    )
    .await;
    seen_at_least(4, StatusCode::SERVICE_UNAVAILABLE, down_at).await;
    c.pg.up();
    let up_at = Instant::now();
    seen_at_least(8, StatusCode::CREATED, up_at).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = Vec::new();
    for w in workers {
        seen.extend(w.await.unwrap());
    }

    let mut answered: HashMap<String, StatusCode> = HashMap::new();
    let (mut refused, mut healed) = (0, 0);
    for (name, at, status, retry_after, body) in &seen {
        answered.insert(name.clone(), *status);
        match *status {
            StatusCode::CREATED => {
                if *at > up_at {
                    healed += 1;
                }
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(
                    *at > down_at - Duration::from_secs(1),
                    "a 503 before the outage: {body}"
                );
                assert!(retry_after, "503 without Retry-After: {body}");
                assert!(body["error_code"].as_str().is_some(), "a CF error body: {body}");
                let text = body.to_string();
                assert!(!text.contains("postgres://"), "the store URL leaked: {text}");
                refused += 1;
            }
            other => panic!("{name}: unexpected {other}: {body}"),
        }
    }
    eprintln!(
        "outage: {} creates, {refused} refused, {healed} after recovery",
        seen.len()
    );
    assert!(refused > 0, "no 503 while the store was down");
    assert!(healed > 0, "no create succeeded after the store came back");
    // Readiness comes from the background probe: its next round says so.
    wait_for(
        &format!("{}/readyz", bases[1]),
        StatusCode::OK,
        "ready again without a restart",
    )
    .await;

    // Every acknowledged create is in the backend once; a refused one is not.
    let mut held: HashMap<String, usize> = HashMap::new();
    for offset in (0..).step_by(1000) {
        let page = Http::default()
            .gcore(
                Method::GET,
                &format!(
                    "{}/cloud/v1/securitygroups/1/1?limit=1000&offset={offset}",
                    c.backend.base
                ),
                "",
            )
            .await
            .json();
        let groups = page["results"].as_array().unwrap();
        for g in groups {
            *held.entry(g["name"].as_str().unwrap().to_string()).or_default() += 1;
        }
        if groups.len() < 1000 {
            break;
        }
    }
    for (name, status) in &answered {
        let expected = usize::from(*status == StatusCode::CREATED);
        assert_eq!(
            held.get(name).copied().unwrap_or(0),
            expected,
            "{name} answered {status}"
        );
    }
    assert_eq!(
        held.values().sum::<usize>(),
        answered.values().filter(|s| **s == StatusCode::CREATED).count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_backend_scales_out_on_postgres() {
    let pg = Postgres::start("embedded");
    let config = format!(
        "{COMMON}[store]\nkind = \"postgres\"\nlock_lease_s = 2\n[wait]\npoll_ms = 20\n\
         [backend.embedded]\ntask_delay_ms = 20\n"
    );
    let env = [("SGBRIDGE_STORE_URL", pg.url.as_str())];
    let mut replicas: Vec<Proc> = (0..3).map(|i| serve(&format!("embedded-{i}"), &config, &env)).collect();
    let base = |i: usize| replicas[i % 3].base.clone();
    let http = Http::default();

    // Created on one replica, read, renamed and listed on the others.
    let created = http
        .cf(
            Method::POST,
            &format!("{}/v2/security_groups", base(0)),
            r#"{"name":"everywhere"}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let guid = created.json()["metadata"]["guid"].as_str().unwrap().to_string();
    let read = http
        .cf(Method::GET, &format!("{}/v2/security_groups/{guid}", base(1)), "")
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.json());
    let taken = http
        .cf(
            Method::POST,
            &format!("{}/v2/security_groups", base(2)),
            r#"{"name":"everywhere"}"#,
        )
        .await;
    assert_eq!(taken.json()["error_code"], "CF-SecurityGroupNameTaken");

    // Gcore rule adds and CF renames through every replica: nothing lost.
    let bases: Vec<String> = (0..3).map(base).collect();
    let expected = interleaved_writes(&bases, &guid, 30, 3, 3000, |i| format!("everywhere-{i}")).await;
    for i in 0..3 {
        let group = http
            .gcore(
                Method::GET,
                &format!("{}/cloud/v1/securitygroups/1/1/{guid}", base(i)),
                "",
            )
            .await
            .json();
        let ports = ports(&group);
        assert!(ports.is_superset(&expected), "replica {i} lost a rule: {group}");
    }

    // A Gcore task accepted by one replica is read on the others.
    let accepted = http
        .gcore(
            Method::POST,
            &format!("{}/cloud/v2/security_groups/1/1", base(0)),
            r#"{"name":"by-task","rules":[]}"#,
        )
        .await;
    let task = accepted.json()["tasks"][0].as_str().unwrap().to_string();
    for i in 1..3 {
        poll_until(&format!("{}/cloud/v1/tasks/{task}", base(i)), true, |t| {
            t["state"] == "FINISHED"
        })
        .await;
    }
    let listed = http
        .gcore(Method::GET, &format!("{}/cloud/v1/tasks?limit=1000", base(2)), "")
        .await
        .json();
    assert!(
        listed["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == task.as_str()),
        "another replica lists the task: {listed}"
    );

    // Deleted on one replica, gone on all.
    let gone = http
        .cf(Method::DELETE, &format!("{}/v2/security_groups/{guid}", base(1)), "")
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    for i in 0..3 {
        let r = http
            .cf(Method::GET, &format!("{}/v2/security_groups/{guid}", base(i)), "")
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "replica {i}");
    }

    // A replica killed while its task runs (tasks of 5 s there): another
    // replica ends the task in ERROR once the dead one's lease lapses, and
    // nothing of it was applied.
    let mut slow = serve(
        "embedded-slow",
        &config.replace("task_delay_ms = 20", "task_delay_ms = 5000"),
        &env,
    );
    let accepted = http
        .gcore(
            Method::POST,
            &format!("{}/cloud/v2/security_groups/1/1", slow.base),
            r#"{"name":"orphan","rules":[]}"#,
        )
        .await;
    let orphan = accepted.json()["tasks"][0].as_str().unwrap().to_string();
    slow.child.kill().unwrap();
    slow.child.wait().unwrap();
    let ended = poll_until(&format!("{}/cloud/v1/tasks/{orphan}", base(1)), true, |t| {
        t["state"] != "RUNNING"
    })
    .await;
    assert_eq!(ended["state"], "ERROR", "{ended}");
    assert!(
        ended["error"].as_str().unwrap().contains("nothing was applied"),
        "{ended}"
    );
    let list = http
        .gcore(
            Method::GET,
            &format!("{}/cloud/v1/securitygroups/1/1?name=orphan", base(2)),
            "",
        )
        .await
        .json();
    assert_eq!(list["count"], 0, "{list}");
    replicas[0].child.kill().unwrap();
    drop(replicas);
    drop(pg);
}

/// Tombstones are kept `store.tombstone_keep_s`, not forever: a replica
/// whose last look is older than the newest tombstone swept reads every
/// group again, so a delete it never saw still reaches it (issue 26: the
/// table kept a day of tombstones, and a replica idle longer kept serving
/// deleted groups).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_swept_tombstones_reads_every_group_again() {
    let pg = Postgres::start("tombstones");
    let config =
        format!("{COMMON}[store]\nkind = \"postgres\"\ntombstone_keep_s = 60\n[backend.embedded]\ntask_delay_ms = 0\n");
    let env = [("SGBRIDGE_STORE_URL", pg.url.as_str())];
    let replicas: Vec<Proc> = (0..2)
        .map(|i| serve(&format!("tombstones-{i}"), &config, &env))
        .collect();
    let http = Http::default();
    let url = |i: usize, guid: &str| format!("{}/v2/security_groups/{guid}", replicas[i].base);
    let mut guids = Vec::new();
    for name in ["kept", "doomed"] {
        let created = http
            .cf(
                Method::POST,
                &format!("{}/v2/security_groups", replicas[0].base),
                &format!(r#"{{"name":"{name}"}}"#),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
        guids.push(created.json()["metadata"]["guid"].as_str().unwrap().to_string());
    }
    let (kept, doomed) = (&guids[0], &guids[1]);
    assert_eq!(
        http.cf(Method::GET, &url(1, doomed), "").await.status,
        StatusCode::OK,
        "replica 1 has looked"
    );
    let deleted = http
        .cf(
            Method::DELETE,
            &format!("{}/v2/security_groups/{doomed}", replicas[0].base),
            "",
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    // The tombstone ages past its keep and one housekeeping pass sweeps it
    // before replica 1 looks again.
    pg.psql("UPDATE sgbridge_groups_gone SET gone_at = now() - interval '2 minutes'");
    let store_env = sgbridge::config::Env::isolated().with("SGBRIDGE_TEST_STORE_URL", &pg.url);
    let cfg = sgbridge::config::StoreConfig {
        kind: sgbridge::config::StoreKind::Postgres,
        url_env: "SGBRIDGE_TEST_STORE_URL".into(),
        tombstone_keep_s: 60,
        ..sgbridge::config::StoreConfig::default()
    };
    let housekeeper = sgbridge::store::Stores::open(
        &cfg,
        &store_env,
        &sgbridge::config::IdempotencyConfig::default(),
        std::sync::Arc::new(sgbridge::store::NoStoreTelemetry),
    )
    .await
    .unwrap();
    housekeeper.housekeep().await.unwrap();
    pg.psql(
        "DO $$ BEGIN
           IF (SELECT count(*) FROM sgbridge_groups_gone) <> 0 THEN RAISE 'a tombstone was kept'; END IF;
           IF NOT EXISTS (SELECT 1 FROM sgbridge_marks WHERE name = 'gone_horizon') THEN RAISE 'no horizon'; END IF;
         END $$",
    );

    assert_eq!(
        http.cf(Method::GET, &url(1, doomed), "").await.status,
        StatusCode::NOT_FOUND,
        "replica 1 saw the delete"
    );
    assert_eq!(http.cf(Method::GET, &url(1, kept), "").await.status, StatusCode::OK);
    let listed = http
        .cf(Method::GET, &format!("{}/v2/security_groups", replicas[1].base), "")
        .await
        .json();
    let names: Vec<&str> = listed["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["entity"]["name"].as_str())
        .collect();
    assert!(names.contains(&"kept") && !names.contains(&"doomed"), "{listed}");
    // Writes through the replica that read everything again still work.
    let renamed = http
        .cf(
            Method::PUT,
            &format!("{}/v2/security_groups/{kept}", replicas[1].base),
            r#"{"name":"kept-2"}"#,
        )
        .await;
    assert_eq!(renamed.status, StatusCode::CREATED, "{}", renamed.json());
    drop(replicas);
    drop(pg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_the_binary_is_refused_with_one_line() {
    let pg = Postgres::start("schema");
    let config = format!("{COMMON}[store]\nkind = \"postgres\"\n");
    let path = std::env::temp_dir().join(format!("sgbridge-schema-{}.toml", std::process::id()));
    std::fs::write(&path, &config).unwrap();
    // Migrates, serves, stops; then a newer sgbridge would have added a version.
    drop(serve(
        "schema-first",
        &config,
        &[("SGBRIDGE_STORE_URL", pg.url.as_str())],
    ));
    pg.psql("INSERT INTO sgbridge_schema (version) VALUES (99)");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("SGBRIDGE_STORE_URL", &pg.url)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].contains("schema is version 99, newer than this sgbridge knows"),
        "{stderr}"
    );
    assert!(!stderr.contains("postgres://"), "no URL: {stderr}");
}

/// A rolling update across a schema change (issue 26): after a newer
/// release has migrated the store with an expand (a version whose
/// `readable_by` this binary meets), this binary — the rollout's old
/// replicas — still starts and serves beside the replica that migrated;
/// after a change it would get wrong (`readable_by` above it) it refuses
/// with one line, and the running replicas are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_replicas_keep_serving_after_a_newer_release_expands_the_schema() {
    let pg = Postgres::start("rolling");
    let config = format!("{COMMON}[store]\nkind = \"postgres\"\n");
    let env = [("SGBRIDGE_STORE_URL", pg.url.as_str())];
    let migrated = serve("rolling-new", &config, &env);
    let known = sgbridge::store::postgres_schema_version();
    // What the next release's migration would do: an expand, readable by
    // this release's binaries.
    pg.psql(&format!(
        "CREATE TABLE sgbridge_next_release (x int);
         INSERT INTO sgbridge_schema (version, readable_by) VALUES ({}, {known})",
        known + 1
    ));
    let old = serve("rolling-old", &config, &env);
    let http = Http::default();
    let created = http
        .cf(
            Method::POST,
            &format!("{}/v2/security_groups", migrated.base),
            r#"{"name":"rolled","rules":[]}"#,
        )
        .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let found = poll_until(&format!("{}/v2/security_groups?q=name:rolled", old.base), false, |b| {
        b["total_results"] == 1
    })
    .await;
    assert_eq!(found["resources"][0]["entity"]["name"], "rolled");

    // A contract this binary would get wrong: refused, one line.
    pg.psql(&format!(
        "INSERT INTO sgbridge_schema (version, readable_by) VALUES ({0}, {0})",
        known + 2
    ));
    let path = std::env::temp_dir().join(format!("sgbridge-rolling-{}.toml", std::process::id()));
    std::fs::write(&path, &config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("SGBRIDGE_STORE_URL", &pg.url)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not readable by it"), "{stderr}");
    let still = http
        .cf(Method::GET, &format!("{}/v2/security_groups", old.base), "")
        .await;
    assert_eq!(still.status, StatusCode::OK, "the running replicas are untouched");
    let _ = std::fs::remove_file(&path);
}
