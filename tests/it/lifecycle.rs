//! The real binary's lifecycle (issue 11): SIGTERM drains — `/readyz` turns
//! 503, writes waiting on tasks longer than 30 s still get their full
//! answers, and what outlives the grace period is answered in its dialect;
//! a second SIGTERM ends at once; SIGHUP reloads the config file, and a
//! broken file changes nothing. Also: JSON access lines with every field,
//! `--version` and `healthcheck`.
//!
//! These run the binary over real sockets and signals, so they take real
//! time (the longest about 35 s); they run side by side.

use crate::support::*;
use http::{Method, StatusCode};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Proc {
    child: Child,
    base: String,
    admin: Option<String>,
    log: Arc<Mutex<Vec<String>>>,
    dir: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Proc {
    fn start(config: &str) -> Proc {
        Proc::start_with(config, &[])
    }

    /// With these variables set in the process's environment (only).
    fn start_with(config: &str, env: &[(&str, &str)]) -> Proc {
        let dir = std::env::temp_dir().join(format!("sgbridge-life-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sgbridge.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sgbridge"))
            .args(["serve", "--config"])
            .arg(&path)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sgbridge");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut admin = None;
        let base = loop {
            let line = lines.next().expect("sgbridge exited before listening").unwrap();
            if let Some(rest) = line.split("admin endpoints on ").nth(1) {
                admin = Some(rest.trim().to_string());
            }
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Proc {
            child,
            base,
            admin,
            log,
            dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    fn write_config(&self, text: &str) {
        std::fs::write(self.dir.join("sgbridge.toml"), text).unwrap();
    }

    fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (real time, bounded) until a log line contains `needle`.
    async fn log_line(&self, needle: &str) -> String {
        for _ in 0..200 {
            if let Some(l) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no log line with {needle:?} in:\n{}", self.lines().join("\n"));
    }

    /// Waits for the exit status (bounded).
    async fn exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "sgbridge did not exit in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn unique() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(1);
    h.finish()
}

/// Embedded tasks that run `task_ms`; JSON logs; no audit noise.
fn config(task_ms: u64, extra: &str) -> String {
    format!(
        "[log]\nformat = \"json\"\n[audit]\ntarget = \"off\"\n[backend.embedded]\ntask_delay_ms = {task_ms}\n\
         [wait]\ndeadline_s = 60\n[server]\nlisten = \"127.0.0.1:0\"\n{extra}"
    )
}

async fn waits_in_flight(http: &Http, url: &str, n: usize) {
    for _ in 0..200 {
        let text = String::from_utf8_lossy(&http.send(Method::GET, url, &[], "").await.body).to_string();
        if text.contains(&format!("sgbridge_task_waits_in_flight {n}\n")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{n} waits never started");
}

fn cf_create(url: String, name: &str) -> tokio::task::JoinHandle<Reply> {
    let body = format!(r#"{{"name":"{name}","rules":[]}}"#);
    tokio::spawn(async move { Http::default().cf(Method::POST, &url, &body).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_writes_waiting_past_30_s_finish_and_readyz_turns_503() {
    let mut p = Proc::start(&config(33_000, "shutdown_delay_s = 2\n"));
    let http = Http::default();
    let a = cf_create(p.url("/v2/security_groups"), "a");
    let b = cf_create(p.url("/v2/security_groups"), "b");
    waits_in_flight(&http, &p.url("/metrics"), 2).await;
    p.signal("TERM");
    // Logged once readiness has turned (the signal's own line comes first,
    // before the accept loop sees it: waiting on that one raced the flip).
    p.log_line("draining: /readyz answers 503").await;
    // Within the delay new connections are still taken: not ready.
    let ready = http.send(Method::GET, &p.url("/readyz"), &[], "").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["status"], "draining");
    for w in [a, b] {
        let r = w.await.unwrap();
        assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
        assert!(r.json()["metadata"]["guid"].is_string());
    }
    assert!(p.exit(Duration::from_secs(10)).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_outlives_the_grace_period_is_answered_in_its_dialect() {
    let mut p = Proc::start(&config(33_000, "shutdown_delay_s = 0\nshutdown_grace_s = 1\n"));
    let http = Http::default();
    let cf = cf_create(p.url("/v2/security_groups"), "late");
    let url = p.url("/cloud/v2/security_groups/1/1");
    let gcore = tokio::spawn(async move {
        Http::default()
            .send(
                Method::POST,
                &url,
                &[("authorization", GCORE_AUTH), ("prefer", "wait=50")],
                r#"{"name":"late-g","rules":[]}"#,
            )
            .await
    });
    waits_in_flight(&http, &p.url("/metrics"), 2).await;
    p.signal("TERM");
    let cf = cf.await.unwrap();
    assert_eq!(cf.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = cf.json();
    assert_eq!(body["error_code"], "CF-ServiceUnavailable");
    let text = body["description"].as_str().unwrap();
    assert!(
        text.contains("shutting down") && text.contains("still running on backend tasks"),
        "{text}"
    );
    let g = gcore.await.unwrap();
    assert_eq!(g.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(g.header("x-should-retry"), Some("false"));
    // Answered by the grace, outside the handler: the access lines still
    // name their callers (they were empty).
    for who in ["cf-token-1", "dev"] {
        let line = p.log_line(&format!(r#""principal":"{who}""#)).await;
        assert!(line.contains(r#""status":503"#), "{line}");
    }
    assert!(p.exit(Duration::from_secs(10)).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_ends_at_once() {
    let mut p = Proc::start(&config(33_000, "shutdown_delay_s = 0\n"));
    let http = Http::default();
    let pending = cf_create(p.url("/v2/security_groups"), "x");
    waits_in_flight(&http, &p.url("/metrics"), 1).await;
    p.signal("TERM");
    p.log_line("SIGTERM: draining").await;
    p.signal("TERM");
    let status = p.exit(Duration::from_secs(5)).await;
    assert!(!status.success(), "{status:?}");
    pending.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_while_writes_are_in_flight_and_a_broken_file_changes_nothing() {
    let with_token = |t: &str| config(1_500, &format!("[auth]\ncf_bearer_tokens = [\"{t}\"]\n"));
    let p = Proc::start(&with_token("token-a"));
    let http = Http::default();
    let url = p.url("/v2/security_groups");
    let list = |tok: String| {
        let url = url.clone();
        async move {
            Http::default()
                .send(Method::GET, &url, &[("authorization", &format!("bearer {tok}"))], "")
                .await
                .status
        }
    };
    let write = |tok: &'static str, name: &'static str| {
        let url = url.clone();
        tokio::spawn(async move {
            Http::default()
                .send(
                    Method::POST,
                    &url,
                    &[("authorization", &format!("bearer {tok}"))],
                    format!(r#"{{"name":"{name}"}}"#),
                )
                .await
        })
    };
    let before = write("token-a", "before-reload");
    waits_in_flight(&http, &p.url("/metrics"), 1).await;
    p.write_config(&with_token("token-b"));
    p.signal("HUP");
    p.log_line("config reloaded").await;
    assert_eq!(list("token-b".into()).await, StatusCode::OK);
    assert_eq!(list("token-a".into()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        before.await.unwrap().status,
        StatusCode::CREATED,
        "finished on the old config"
    );

    let during = write("token-b", "during-broken-reload");
    waits_in_flight(&http, &p.url("/metrics"), 1).await;
    p.write_config("[server\nlisten = ");
    p.signal("HUP");
    let line = p.log_line("config reload failed").await;
    let parsed: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(parsed["level"], "ERROR");
    assert_eq!(
        list("token-b".into()).await,
        StatusCode::OK,
        "the previous config still serves"
    );
    assert_eq!(during.await.unwrap().status, StatusCode::CREATED);
}

/// An access line, with every field the issue names.
fn access_line(line: &str) -> Value {
    let access: Value = serde_json::from_str(line).unwrap();
    assert_eq!(access["target"], "sgbridge::access");
    for key in [
        "request_id",
        "client",
        "principal",
        "dialect",
        "route",
        "method",
        "status",
        "bytes",
        "duration_ms",
        "backend_calls",
        "tasks",
        "cause",
    ] {
        assert!(access.get(key).is_some(), "{key} missing: {access}");
    }
    access
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_access_lines_of_a_create_and_an_update() {
    let p = Proc::start(&config(50, ""));
    let http = Http::default();
    let headers = |id: &'static str| [("authorization", CF_AUTH), ("x-request-id", id)];
    let created = http
        .send(
            Method::POST,
            &p.url("/v2/security_groups"),
            &headers("create-1"),
            r#"{"name":"logged"}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let guid = created.json()["metadata"]["guid"].as_str().unwrap().to_string();
    let path = p.url(&format!("/v2/security_groups/{guid}"));
    let updated = http
        .send(Method::PUT, &path, &headers("update-1"), r#"{"name":"logged-2"}"#)
        .await;
    assert_eq!(updated.status, StatusCode::CREATED);
    let create = access_line(&p.log_line("create-1").await);
    assert_eq!(create["status"], 201);
    assert_eq!(create["route"], "/v2/security_groups");
    assert!(
        !create["tasks"].as_str().unwrap().is_empty(),
        "the create waited on a task"
    );
    assert!(create["backend_calls"].as_u64().unwrap() >= 1);
    let update = access_line(&p.log_line("update-1").await);
    assert_eq!(update["route"], "/v2/security_groups/:guid");
    assert_eq!(update["principal"], create["principal"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_access_lines_carry_every_field_and_the_cause_of_a_5xx() {
    // A Gcore backend nobody listens on: every write is a 503.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let p = Proc::start_with(
        &config(
            50,
            &format!(
                "[backend]\nkind = \"gcore\"\n[backend.gcore]\nbase_url = \"{dead}\"\nproject_id = 1\nregion_id = 1\n\
                 api_key_env = \"SGBRIDGE_LIFE_KEY\"\nrequest_timeout_s = 2\n"
            ),
        ),
        &[("SGBRIDGE_LIFE_KEY", "k")],
    );
    let http = Http::default();
    let r = http
        .send(
            Method::POST,
            &p.url("/v2/security_groups"),
            &[("authorization", CF_AUTH), ("x-request-id", "req-from-the-caller-1")],
            r#"{"name":"x"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let line = p.log_line("req-from-the-caller-1").await;
    let access = access_line(&line);
    assert_eq!(access["request_id"], "req-from-the-caller-1", "the caller's id is kept");
    assert_eq!(access["route"], "/v2/security_groups");
    assert_eq!(access["status"], 503);
    assert!(access["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(access["backend_calls"].as_u64().unwrap() >= 1);
    assert!(access["cause"].as_str().unwrap().starts_with("backend: "), "{access}");
    assert!(!line.contains("\u{1b}["), "no colour codes outside a terminal");
    assert!(
        !line.contains("dev-admin-token") && !line.contains("\"k\""),
        "no secret in the line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_names_the_commit_and_healthcheck_asks_the_admin_port() {
    let out = Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.starts_with("sgbridge ") && text.contains("(commit "), "{text}");

    let p = Proc::start(&config(50, "admin_listen = \"127.0.0.1:0\"\n"));
    let admin = p.admin.clone().expect("an admin address");
    let addr = admin.trim_start_matches("http://");
    let ok = Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .args(["healthcheck", "--addr", addr])
        .status()
        .unwrap();
    assert!(ok.success());
    let api = p.base.trim_start_matches("http://");
    let on_api = Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .args(["healthcheck", "--addr", api])
        .output()
        .unwrap();
    assert!(!on_api.status.success(), "the API port no longer serves /healthz");
}

/// Points `link` at `target` in one step (a new link renamed over the old),
/// as the kubelet swaps `..data` in a mounted ConfigMap or Secret.
fn swap_link(target: &str, link: &std::path::Path) {
    let name = link.file_name().unwrap().to_string_lossy();
    let tmp = link.with_file_name(format!("{name}.swapping"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
}

/// Config changes without a signal (issue 26): the config file, laid out as
/// Kubernetes mounts a ConfigMap (`sgbridge.toml -> ..data/sgbridge.toml`,
/// `..data -> ..v1`, swapped), and a secret file it names are watched; a
/// change reloads as SIGHUP does, and a broken one is refused with the
/// running config kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_and_secret_file_changes_are_picked_up_without_a_signal() {
    let secrets = std::env::temp_dir().join(format!("sgbridge-watch-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&secrets).unwrap();
    let token = secrets.join("token");
    std::fs::write(&token, "first-token\n").unwrap();
    let text = |version: &str| {
        config(
            100,
            &format!(
                "watch_config_s = 1\n[cf]\napi_version = \"{version}\"\n[[auth.cf_tokens]]\nname = \"ci\"\nsecret_file = \"{}\"\n",
                token.display()
            ),
        )
    };
    let p = Proc::start(&text("2.293.0"));
    let http = Http::default();
    let api_version = || async {
        http.send(Method::GET, &p.url("/v2/info"), &[], "").await.json()["api_version"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(api_version().await, "2.293.0");

    // The ConfigMap layout, then an update the way the kubelet makes it.
    for (version, body) in [
        ("..v1", text("2.293.0")),
        ("..v2", text("2.300.0")),
        ("..v3", "not toml".into()),
    ] {
        std::fs::create_dir_all(p.dir.join(version)).unwrap();
        std::fs::write(p.dir.join(version).join("sgbridge.toml"), body).unwrap();
    }
    swap_link("..v1", &p.dir.join("..data"));
    swap_link("..data/sgbridge.toml", &p.dir.join("sgbridge.toml"));
    swap_link("..v2", &p.dir.join("..data"));
    let mut seen = String::new();
    for _ in 0..300 {
        seen = api_version().await;
        if seen == "2.300.0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, "2.300.0", "the swapped ConfigMap was not picked up");

    swap_link("..v3", &p.dir.join("..data"));
    let failed = p.log_line("config reload failed").await;
    assert!(failed.contains("a watched file changed"), "{failed}");
    assert_eq!(api_version().await, "2.300.0", "the running config is kept");
    swap_link("..v2", &p.dir.join("..data"));

    // The secret file: the old token stops working, the new one works.
    let list = |tok: &'static str| {
        let (http, url) = (&http, p.url("/v2/security_groups"));
        async move {
            http.send(Method::GET, &url, &[("authorization", &format!("bearer {tok}"))], "")
                .await
                .status
        }
    };
    assert_eq!(list("first-token").await, StatusCode::OK);
    std::fs::write(&token, "second-token\n").unwrap();
    let mut status = StatusCode::OK;
    for _ in 0..300 {
        status = list("second-token").await;
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, StatusCode::OK, "the new secret was not picked up");
    assert_eq!(list("first-token").await, StatusCode::UNAUTHORIZED);
    let _ = std::fs::remove_dir_all(&secrets);
}

/// Issue 28's promise for the two writers, with the real binary and pipes
/// nobody reads: requests never wait on stderr (access lines past the
/// queue are dropped and counted in `/metrics`), and audit records are
/// never dropped — queued while stdout is full, all there once somebody
/// reads (the writers' own tests in `server::audit` and
/// `server::log_writer` pin the queue bounds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_stderr_drops_counted_access_lines_and_a_blocked_stdout_loses_no_audit_record() {
    let dir = std::env::temp_dir().join(format!("sgbridge-writers-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sgbridge.toml");
    std::fs::write(
        &path,
        "[log]\nqueue_lines = 16\n[backend.embedded]\ntask_delay_ms = 0\n\
         [server]\nlisten = \"127.0.0.1:0\"\nshutdown_delay_s = 0\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .args(["serve", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sgbridge");
    // Read stderr up to the address, then never again.
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = stderr.next().expect("sgbridge exited before listening").unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let http = Http::default();
    // Each answer comes although stderr's pipe (64 KiB) is full: well over
    // that many bytes of access lines.
    let load = async {
        for i in 0..300 {
            let created = http
                .cf(
                    Method::POST,
                    &format!("{base}/v2/security_groups"),
                    &format!(r#"{{"name":"writers-{i}"}}"#),
                )
                .await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.json());
            for _ in 0..3 {
                assert_eq!(
                    http.send(Method::GET, &format!("{base}/v2/info"), &[], "").await.status,
                    StatusCode::OK
                );
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), load)
        .await
        .expect("requests waited on a blocked stderr");
    let metrics =
        String::from_utf8_lossy(&http.send(Method::GET, &format!("{base}/metrics"), &[], "").await.body).to_string();
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sgbridge_log_lines_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no dropped-lines counter in:\n{metrics}"));
    assert!(dropped > 0, "{dropped} access lines dropped");

    // The audit records (~300 × ~500 bytes, more than stdout's pipe holds)
    // are all there once somebody reads, after the exit began.
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let stdout = child.stdout.take().unwrap();
    let records = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .map(|l| serde_json::from_str::<Value>(&l).unwrap_or_else(|_| panic!("not a record: {l}")))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let status = child.wait().unwrap();
    drop(stderr);
    let created = records
        .iter()
        .filter(|r| r["method"] == "POST" && r["status"] == 201)
        .count();
    assert_eq!(created, 300, "every create's audit record was written");
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}
