//! The listener over real loopback sockets: slow readers are cut off, slow
//! bodies and slow headers get 408, and HTTPS works with the configured
//! certificate (trusted by the outbound client through a CA file).

use crate::support::*;
use http::Method;
use sgbridge::config::Env;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn read_all(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(within, stream.read_to_end(&mut out)).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_gets_408() {
    let mut cfg = quick_config();
    cfg.server.body_timeout_s = 1;
    let gw = start(cfg).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(
        b"POST /v2/security_groups HTTP/1.1\r\nhost: x\r\nauthorization: bearer dev-admin-token\r\ncontent-length: 100\r\n\r\n{\"na",
    )
    .await
    .unwrap();
    let reply = String::from_utf8_lossy(&read_all(&mut s, Duration::from_secs(10)).await).to_string();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("CF-RequestTimeout"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_get_408() {
    let mut cfg = quick_config();
    cfg.server.header_timeout_s = 1;
    let gw = start(cfg).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
        .await
        .unwrap();
    let reply = String::from_utf8_lossy(&read_all(&mut s, Duration::from_secs(10)).await).to_string();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_cut_off() {
    let mut cfg = quick_config();
    cfg.server.write_timeout_s = 1;
    cfg.backend.embedded.task_delay_ms = 0;
    let gw = start(cfg).await;
    let http = Http::default();
    // Groups of 250 rules each: a list of them is several megabytes.
    let rules: Vec<String> = (0..250)
        .map(|i| {
            format!(
                r#"{{"direction":"ingress","protocol":"tcp","port_range_min":{p},"port_range_max":{p},"remote_ip_prefix":"10.{}.{}.0/24","description":"{}"}}"#,
                i / 250,
                i % 250,
                "x".repeat(200),
                p = 1000 + i
            )
        })
        .collect();
    for n in 0..70 {
        let body = format!(r#"{{"name":"big{n}","rules":[{}]}}"#, rules.join(","));
        let r = http
            .send(
                Method::POST,
                &gw.url("/cloud/v2/security_groups/1/1"),
                &[("authorization", GCORE_AUTH), ("prefer", "wait=10")],
                body,
            )
            .await;
        assert_eq!(r.status, http::StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    }
    let full = http
        .gcore(Method::GET, &gw.url("/cloud/v1/securitygroups/1/1?limit=1000"), "")
        .await
        .body
        .len();
    assert!(full > 8 << 20, "the list is {full} bytes");
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(gw.addr).await.unwrap();
    s.write_all(
        b"GET /cloud/v1/securitygroups/1/1?limit=1000 HTTP/1.1\r\nhost: x\r\nauthorization: APIKey dev-api-key\r\n\r\n",
    )
    .await
    .unwrap();
    // Read nothing for a while: the gateway gives up on us.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let got = read_all(&mut s, Duration::from_secs(10)).await.len();
    assert!(got < full, "the connection was cut off after {got} of {full} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_configured_certificate() {
    let dir = tempdir();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_file = dir.join("tls.crt");
    let key_file = dir.join("tls.key");
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let mut cfg = quick_config();
    cfg.server.tls = Some(sgbridge::config::TlsConfig {
        cert_file: cert_file.clone(),
        key_file,
    });
    let gw = start(cfg).await;
    let client = sgbridge::outbound::client(Some(&cert_file), 1, &Env::isolated()).unwrap();
    let url = format!("https://localhost:{}/healthz", gw.addr.port());
    let req = http::Request::get(url)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = client
        .request(req)
        .await
        .expect("TLS handshake with the configured certificate");
    assert_eq!(resp.status(), http::StatusCode::OK);
    // Without the CA file the certificate is refused: verification is never off.
    let strict = sgbridge::outbound::client(None, 1, &Env::isolated()).unwrap();
    let url = format!("https://localhost:{}/healthz", gw.addr.port());
    let req = http::Request::get(url)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert!(strict.request(req).await.is_err());
    // Plain HTTP on the TLS port gets nothing useful.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let reply = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(!String::from_utf8_lossy(&reply).contains("200 OK"));
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sgbridge-test-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The outbound pool never holds more connections than its cap, however many
/// requests arrive at once (hyper's pool alone opens one per waiting request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbound_pool_opens_at_most_its_cap() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (o, m) = (open.clone(), most.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let now = o.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            let o = o.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from_static(b"ok"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
                o.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    let client = sgbridge::outbound::client(None, 3, &Env::isolated()).unwrap();
    let uri: http::Uri = format!("http://{addr}/").parse().unwrap();
    let requests = (0..40).map(|_| {
        let req = http::Request::get(uri.clone())
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        client.request(req)
    });
    for answer in futures_util::future::join_all(requests).await {
        assert_eq!(answer.expect("every request is served").status(), 200);
    }
    let most = most.load(Ordering::SeqCst);
    assert!((1..=3).contains(&most), "{most} connections open at once");
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// A connection costs the gateway one file descriptor (a dup'd socket for
/// the 408 answer made it two: 10,000 connections ran out of 20,000). Client
/// and server share this process: 2 a connection, and the other tests of
/// this file open a few meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_holds_one_descriptor() {
    let gw = start(quick_config()).await;
    let before = open_fds();
    let mut open = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut reply = [0u8; 12];
        s.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"HTTP/1.1 200");
        open.push(s);
    }
    let grown = open_fds().saturating_sub(before);
    assert!(grown < 200 * 2 + 60, "{grown} descriptors for 200 connections");
}

/// What hyper refuses before the gateway sees it (a URI over 65,534 bytes,
/// over 100 header lines, bytes that are not HTTP) is answered with the
/// error body of the caller's dialect, not hyper's empty one (issue 22).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_hyper_refuses_are_answered_in_the_callers_dialect() {
    let gw = start(quick_config()).await;
    let guids = vec!["3fa85f64-5717-4562-b3fc-2c963f66afa6"; 1_800].join(",");
    let headers: String = (0..120).map(|i| format!("x-h{i}: v\r\n")).collect();
    let cases = [
        (
            format!("GET /v3/security_groups?guids={guids} HTTP/1.1\r\nhost: x\r\n\r\n"),
            "HTTP/1.1 414",
            r#""title":"CF-InvalidRequest""#,
        ),
        (
            format!("GET /cloud/v1/securitygroups/1/1 HTTP/1.1\r\nhost: x\r\n{headers}\r\n"),
            "HTTP/1.1 431",
            r#""exception_class":"#,
        ),
        (
            "GET /v2/security_groups HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n".to_string(),
            "HTTP/1.1 400",
            r#""error_code":"CF-InvalidRequest""#,
        ),
    ];
    for (request, status, body) in cases {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let reply = String::from_utf8_lossy(&read_all(&mut s, Duration::from_secs(10)).await).to_string();
        assert!(reply.starts_with(status), "{status}: {reply}");
        assert!(reply.contains(body), "{status}: {reply}");
        assert!(reply.contains("content-type: application/json"), "{reply}");
    }
}
