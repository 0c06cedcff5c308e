//! The real `sgbridge` binary: `serve` on an ephemeral loopback port with the
//! built-in defaults (the README's first command), and `check-config`.

use crate::support::*;
use http::{Method, StatusCode};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sgbridge serve");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines.next().expect("sgbridge exited before listening").unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served { child, base }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_defaults_answers_both_dialects() {
    let s = serve(&["--listen", "127.0.0.1:0"]);
    let http = Http::default();
    let url = |p: &str| format!("{}{p}", s.base);
    assert_eq!(
        http.send(Method::GET, &url("/healthz"), &[], "").await.status,
        StatusCode::OK
    );
    let ready = http.send(Method::GET, &url("/readyz"), &[], "").await;
    assert_eq!(ready.json()["backend"], "embedded");
    let created = http
        .cf(
            Method::POST,
            &url("/v2/security_groups"),
            r#"{"name":"web","rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443"}]}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert!(created.header("x-vcap-request-id").is_some());
    let list = http
        .gcore(Method::GET, &url("/cloud/v1/securitygroups/1/1?name=web"), "")
        .await
        .json();
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["security_group_rules"][0]["port_range_min"], 443);
    let metrics = http.send(Method::GET, &url("/metrics"), &[], "").await;
    let text = String::from_utf8_lossy(&metrics.body).to_string();
    assert!(
        text.contains("sgbridge_http_requests_total{dialect=\"cf\",route=\"/v2/security_groups\",method=\"POST\",status=\"201\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sgbridge_task_waits_total{outcome=\"finished\"}"),
        "{text}"
    );
}

#[test]
fn check_config_accepts_the_default_file_and_explains_bad_ones() {
    let bin = env!("CARGO_BIN_EXE_sgbridge");
    let ok = Command::new(bin)
        .args([
            "check-config",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/sgbridge.toml"),
        ])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let dir = std::env::temp_dir().join(format!("sgbridge-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (text, expect) in [
        ("[server]\nlisten = \"0.0.0.0:8080\"\n", "development credentials"),
        (
            "[server]\nlisten = \"0.0.0.0:8080\"\n[auth]\ncf_bearer_tokens = [\"a-long-own-token\"]\n",
            "set server.external_url",
        ),
        ("[backend]\nkind = \"gcore\"\n[backend.gcore]\nproject_id = 1\nregion_id = 2\napi_key_env = \"SGBRIDGE_UNSET_FOR_TEST\"\n", "SGBRIDGE_UNSET_FOR_TEST"),
        ("[server]\nlisten_port = 1\n", "unknown field"),
        ("not toml at all", "invalid config"),
        // Values `serve` cannot run with: refused, naming the key and the range.
        ("[backend.embedded]\ntask_ttl_s = 9223372036854775807\n", "backend.embedded.task_ttl_s = 9223372036854775807 is out of range"),
        ("[wait]\ndeadline_s = 9223372036854775807\n", "wait.deadline_s"),
        ("[server]\nrequest_timeout_s = 0\n", "server.request_timeout_s = 0 is out of range"),
        ("[server]\nmax_body_bytes = 0\n", "server.max_body_bytes"),
        ("[wait]\npoll_ms = 0\n", "wait.poll_ms"),
        ("[auth.uaa]\nurl = \"http://uaa.example.com\"\n", "loopback"),
        ("[[auth.cf_tokens]]\nname = \"ci\"\nsecret_env = \"SGBRIDGE_UNSET_TOKEN_VAR\"\n", "SGBRIDGE_UNSET_TOKEN_VAR"),
    ] {
        let path = dir.join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(bin).args(["check-config", "--config"]).arg(&path).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{err}");
    }
    let missing = Command::new(bin)
        .args(["check-config", "--config", "/nonexistent/sgbridge.toml"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
}

#[test]
fn serve_refuses_an_invalid_config() {
    let out = Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("development credentials"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_no_log_line_and_no_error_body() {
    let key = "s3cr3t-gcore-key-4242";
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let dir = std::env::temp_dir().join(format!("sgbridge-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gcore.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nshutdown_delay_s = 0\n[backend]\nkind = \"gcore\"\n[backend.gcore]\nbase_url = \"http://{dead_addr}\"\nproject_id = 1\nregion_id = 2\napi_key_env = \"SGBRIDGE_SECRET_TEST_KEY\"\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .env("SGBRIDGE_SECRET_TEST_KEY", key)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let base = loop {
        let line = rx.recv().expect("sgbridge exited before listening");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let http = Http::default();
    let wrong_token = "bearer not-a-real-token-777";
    let mut bodies = Vec::new();
    for (auth, path) in [
        (CF_AUTH, "/v2/security_groups"),
        (wrong_token, "/v2/security_groups"),
        (GCORE_AUTH, "/cloud/v1/securitygroups/1/2"),
    ] {
        let r = http
            .send(Method::GET, &format!("{base}{path}"), &[("authorization", auth)], "")
            .await;
        assert!(r.status.is_client_error() || r.status.is_server_error());
        bodies.push(String::from_utf8_lossy(&r.body).to_string());
    }
    // A clean exit writes every queued log line; then stderr ends.
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(stopped);
    let _ = child.wait();
    reader.join().unwrap();
    let logs: Vec<String> = rx.try_iter().collect();
    assert!(
        logs.iter().any(|l| l.contains("/cloud/v1/securitygroups")),
        "the access lines were written: {logs:#?}"
    );
    for text in logs.iter().chain(bodies.iter()) {
        assert!(!text.contains(key), "API key leaked: {text}");
        assert!(!text.contains("not-a-real-token-777"), "token leaked: {text}");
        assert!(!text.contains("dev-admin-token"), "token leaked: {text}");
    }
}

/// What `serve` did with a config: started (listening), or refused (its
/// message). It is stopped as soon as it listens.
fn serve_verdict(config: &std::path::Path, env: &[(&str, &str)]) -> Result<(), String> {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut said = String::new();
    for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
        if line.contains("sgbridge: listening on") {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(());
        }
        said.push_str(&line);
        said.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "serve ended without listening: {said}");
    Err(said)
}

/// `check-config` and `serve` agree (issue 26): every file one refuses the
/// other refuses, with the same reason; every file one takes, the other
/// starts with. (`check-config` reads files, never the network: a store
/// URL is checked up to its TLS files, and it says the connection was not
/// tried.)
#[test]
fn check_config_and_serve_agree_on_every_fixture() {
    let dir = std::env::temp_dir().join(format!("sgbridge-agree-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let audit = dir.join("audit.jsonl");
    let missing = dir.join("missing");
    let pg = "SGBRIDGE_AGREE_PG_URL";
    // (what, the file, its environment, refused: with what in the message)
    type Fixture<'a> = (&'a str, String, Vec<(&'a str, String)>, Option<&'a str>);
    let fixtures: Vec<Fixture> = vec![
        (
            "the shipped file",
            include_str!("../../config/sgbridge.toml").into(),
            vec![],
            None,
        ),
        (
            "audit to a file",
            format!("[audit]\ntarget = \"file\"\npath = \"{}\"\n", audit.display()),
            vec![],
            None,
        ),
        (
            "audit in a missing directory",
            format!(
                "[audit]\ntarget = \"file\"\npath = \"{}/audit.jsonl\"\n",
                missing.display()
            ),
            vec![],
            Some("does not exist"),
        ),
        (
            "a SQLite store in a missing directory",
            format!(
                "[store]\nkind = \"sqlite\"\npath = \"{}/state.db\"\n",
                missing.display()
            ),
            vec![],
            Some("does not exist"),
        ),
        (
            "a store URL whose root certificate is missing",
            format!("[store]\nkind = \"postgres\"\nurl_env = \"{pg}\"\n"),
            vec![(
                pg,
                format!(
                    "postgres://u:pw@db.invalid/x?sslmode=verify-full&sslrootcert={}/ca.pem",
                    missing.display()
                ),
            )],
            Some("sslrootcert"),
        ),
        (
            "a store URL with an unknown sslmode",
            format!("[store]\nkind = \"postgres\"\nurl_env = \"{pg}\"\n"),
            vec![(pg, "postgres://u:pw@db.invalid/x?sslmode=verify".into())],
            Some("sslmode=verify is not one of"),
        ),
        (
            "a TLS certificate that is not there",
            format!(
                "[server.tls]\ncert_file = \"{0}/tls.crt\"\nkey_file = \"{0}/tls.key\"\n",
                missing.display()
            ),
            vec![],
            Some("tls.crt"),
        ),
        (
            "a signing key that is not there",
            format!("[auth.login]\nsigning_key_file = \"{}/key.pem\"\n", missing.display()),
            vec![],
            Some("key.pem"),
        ),
    ];
    for (what, text, env, refused) in fixtures {
        let path = dir.join("sgbridge.toml");
        std::fs::write(&path, text).unwrap();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let checked = Command::new(env!("CARGO_BIN_EXE_sgbridge"))
            .args(["check-config", "--config"])
            .arg(&path)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let check_said = String::from_utf8_lossy(&checked.stderr).to_string();
        let served = serve_verdict(&path, &env);
        match refused {
            None => {
                assert!(checked.status.success(), "{what}: check-config refused: {check_said}");
                assert!(served.is_ok(), "{what}: serve refused: {served:?}");
            }
            Some(reason) => {
                assert!(!checked.status.success(), "{what}: check-config said ok");
                assert!(check_said.contains(reason), "{what}: check-config: {check_said}");
                let serve_said = served.expect_err(what);
                assert!(serve_said.contains(reason), "{what}: serve: {serve_said}");
                assert!(
                    !check_said.contains("pw@") && !serve_said.contains("pw@"),
                    "{what}: the URL leaked"
                );
            }
        }
    }
    // What needs the network is said, not tried.
    let path = dir.join("sgbridge.toml");
    std::fs::write(&path, format!("[store]\nkind = \"postgres\"\nurl_env = \"{pg}\"\n")).unwrap();
    let checked = Command::new(env!("CARGO_BIN_EXE_sgbridge"))
        .args(["check-config", "--config"])
        .arg(&path)
        .env(pg, "postgres://u:pw@db.invalid/x?sslmode=verify-full")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{said}");
    assert!(
        said.contains("not tried (needs the network): the PostgreSQL connection"),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
