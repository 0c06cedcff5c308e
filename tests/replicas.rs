//! Three replicas sharing one PostgreSQL store (issue 14), in front of one
//! Gcore-semantics backend (a fourth sgbridge, embedded, as the Gcore API):
//! CF names stay unique across replicas, writes to one group from different
//! replicas lose nothing, and an Idempotency-Key answer is replayed by
//! another replica.
//!
//! The test starts a throwaway PostgreSQL of its own (`initdb` + `pg_ctl`
//! from the Debian package, which `.ci/run` installs; as root they run as
//! `nobody`). Without PostgreSQL binaries the test fails with a clear line.

mod support;

use http::{Method, StatusCode};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::process::Proc;
use support::*;

fn pg_bin(name: &str) -> PathBuf {
    let dirs = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("PostgreSQL's {name} is not installed (apt-get install postgresql; .ci/run does)"))
}

fn as_postgres_user(bin: &Path) -> Command {
    // initdb and postgres refuse to run as root.
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

struct Postgres {
    dir: PathBuf,
    url: String,
}

impl Postgres {
    fn start() -> Postgres {
        let dir = std::env::temp_dir().join(format!("sgbridge-pg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown").args(["-R", "nobody:nogroup"]).arg(&dir).status();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.join("data");
        let ok = as_postgres_user(&pg_bin("initdb"))
            .args(["--auth=trust", "-U", "postgres", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "initdb failed");
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            dir.display()
        );
        let ok = as_postgres_user(&pg_bin("pg_ctl"))
            .args(["-w", "-D"])
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(dir.join("log"))
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "pg_ctl start failed");
        Postgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres_user(&pg_bin("pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .stdout(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn serve(name: &str, config: &str, env: &[(&str, &str)]) -> Proc {
    let path = std::env::temp_dir().join(format!("sgbridge-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, config).unwrap();
    Proc::serve(&path, env)
}

const COMMON: &str =
    "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_delay_s = 0\n[audit]\ntarget = \"off\"\n[log]\nlevel = \"warn\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_names_groups_and_idempotency_keys() {
    let pg = Postgres::start();
    let backend = serve(
        "backend",
        &format!("{COMMON}[backend.embedded]\ntask_delay_ms = 20\n"),
        &[],
    );
    let replica = |i: usize| {
        let config = format!(
            "{COMMON}[store]\nkind = \"postgres\"\n[wait]\npoll_ms = 20\n[backend]\nkind = \"gcore\"\n[backend.gcore]\n\
             base_url = \"{}\"\nproject_id = 1\nregion_id = 1\napi_key_env = \"SGBRIDGE_REPLICA_KEY\"\n",
            backend.base
        );
        serve(
            &format!("replica-{i}"),
            &config,
            &[
                ("SGBRIDGE_STORE_URL", pg.url.as_str()),
                ("SGBRIDGE_REPLICA_KEY", "dev-api-key"),
            ],
        )
    };
    let replicas = [replica(0), replica(1), replica(2)];
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();

    // 30 concurrent CF creates of one name, round-robin: exactly one 201.
    let mut creates = Vec::new();
    for i in 0..30 {
        let url = format!("{}/v2/security_groups", bases[i % 3]);
        creates.push(tokio::spawn(async move {
            Http::default()
                .cf(Method::POST, &url, r#"{"name":"shared-name"}"#)
                .await
        }));
    }
    let mut created = 0;
    for c in creates {
        let r = c.await.unwrap();
        match r.status {
            StatusCode::CREATED => created += 1,
            _ => assert_eq!(r.json()["error_code"], "CF-SecurityGroupNameTaken", "{}", r.json()),
        }
    }
    assert_eq!(created, 1);
    let http = Http::default();
    let held = http
        .gcore(
            Method::GET,
            &format!("{}/cloud/v1/securitygroups/1/1?name=shared-name", backend.base),
            "",
        )
        .await
        .json();
    assert_eq!(held["count"], 1, "the backend holds one group");
    let guid = held["results"][0]["id"].as_str().unwrap().to_string();

    // CF PUTs and Gcore rule adds on that group through different replicas.
    let mut writes = Vec::new();
    for i in 0..12u16 {
        let base = bases[usize::from(i) % 3].clone();
        let guid = guid.clone();
        writes.push(tokio::spawn(async move {
            let http = Http::default();
            if i % 2 == 0 {
                http.cf(Method::PUT, &format!("{base}/v2/security_groups/{guid}"), r#"{"name":"shared-name"}"#)
                    .await
                    .status
            } else {
                let rule = format!(
                    r#"{{"direction":"egress","protocol":"tcp","port_range_min":{p},"port_range_max":{p},"remote_ip_prefix":"10.0.0.0/8"}}"#,
                    p = 2000 + i
                );
                http.send(
                    Method::POST,
                    &format!("{base}/cloud/v2/security_groups/1/1/{guid}/rules"),
                    &[("authorization", GCORE_AUTH), ("prefer", "wait=30")],
                    rule,
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
    let group = http
        .gcore(
            Method::GET,
            &format!("{}/cloud/v1/securitygroups/1/1/{guid}", backend.base),
            "",
        )
        .await
        .json();
    assert_eq!(
        group["security_group_rules"].as_array().unwrap().len(),
        6,
        "no rule lost: {group}"
    );

    // An Idempotency-Key answered by replica 0 is replayed by replica 2.
    let keyed = |base: &str| {
        let url = format!("{base}/v2/security_groups");
        async move {
            Http::default()
                .send(
                    Method::POST,
                    &url,
                    &[("authorization", CF_AUTH), ("idempotency-key", "once")],
                    r#"{"name":"keyed"}"#,
                )
                .await
        }
    };
    let first = keyed(&bases[0]).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = keyed(&bases[2]).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    drop(replicas);
    drop(pg);
}
