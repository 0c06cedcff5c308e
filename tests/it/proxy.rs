//! The Gcore backend through an HTTPS proxy (issue 11): with `HTTPS_PROXY`
//! set, the gateway's HTTPS calls go through an HTTP CONNECT tunnel, and
//! TLS is still verified end to end (against `backend.gcore.ca_file`).
//! Alone in its own test binary: it sets process-wide environment variables.

use crate::support::*;
use http::{Method, StatusCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A CONNECT proxy on loopback that counts the tunnels it opened.
async fn proxy() -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let tunnels = Arc::new(AtomicUsize::new(0));
    let targets = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (count, seen) = (tunnels.clone(), targets.clone());
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let (count, seen) = (count.clone(), seen.clone());
            tokio::spawn(async move {
                let mut client = BufReader::new(client);
                let mut line = String::new();
                client.read_line(&mut line).await.unwrap();
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                loop {
                    let mut header = String::new();
                    client.read_line(&mut header).await.unwrap();
                    if header == "\r\n" || header.is_empty() {
                        break;
                    }
                }
                assert!(line.starts_with("CONNECT "), "{line}");
                seen.lock().unwrap().push(target.clone());
                let mut upstream = TcpStream::connect(target.replace("localhost", "127.0.0.1"))
                    .await
                    .unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let mut client = client.into_inner();
                client
                    .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (url, tunnels, targets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcore_calls_go_through_the_https_proxy() {
    // B: a Gcore-semantics gateway serving HTTPS for "localhost".
    let dir = std::env::temp_dir().join(format!("sgbridge-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_file, key_file) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let mut b = quick_config();
    b.server.tls = Some(sgbridge::config::TlsConfig {
        cert_file: cert_file.clone(),
        key_file,
    });
    let b = start(b).await;

    // A: backend = gcore at https://localhost:<B>, through the proxy.
    let (proxy_url, tunnels, targets) = proxy().await;
    let mut a = quick_config();
    // The gateway's own environment (as the process's would be read): a
    // proxy for HTTPS, none excluded.
    a.env = sgbridge::config::Env::isolated()
        .with("HTTPS_PROXY", &proxy_url)
        .with("SGBRIDGE_PROXY_TEST_KEY", "dev-api-key");
    a.backend.kind = sgbridge::config::BackendKind::Gcore;
    a.backend.gcore.base_url = format!("https://localhost:{}", b.addr.port());
    a.backend.gcore.project_id = 1;
    a.backend.gcore.region_id = 1;
    a.backend.gcore.api_key_env = "SGBRIDGE_PROXY_TEST_KEY".into();
    a.backend.gcore.ca_file = Some(cert_file);
    let a = InProc::from_config(a);

    let created = a
        .cf(
            Method::POST,
            "/v2/security_groups",
            r#"{"name":"via-proxy","rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443"}]}"#,
        )
        .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    assert!(tunnels.load(Ordering::SeqCst) >= 1, "no tunnel was opened");
    assert!(
        targets
            .lock()
            .unwrap()
            .iter()
            .all(|t| *t == format!("localhost:{}", b.addr.port())),
        "{:?}",
        targets.lock().unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
