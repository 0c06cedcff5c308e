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
            "[backend]\nkind = \"gcore\"\n[backend.gcore]\nbase_url = \"http://{dead_addr}\"\nproject_id = 1\nregion_id = 2\napi_key_env = \"SGBRIDGE_SECRET_TEST_KEY\"\n"
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
    std::thread::spawn(move || {
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
    let _ = child.kill();
    let _ = child.wait();
    let logs: Vec<String> = rx.try_iter().collect();
    assert!(!logs.is_empty());
    for text in logs.iter().chain(bodies.iter()) {
        assert!(!text.contains(key), "API key leaked: {text}");
        assert!(!text.contains("not-a-real-token-777"), "token leaked: {text}");
        assert!(!text.contains("dev-admin-token"), "token leaked: {text}");
    }
}
