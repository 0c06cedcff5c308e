//! Load script: requests per second through the gateway on loopback, per
//! route, against `GET /healthz` measured in the same run as the baseline
//! (the cost of hyper + routing + metrics alone).
//!
//!     cargo run --release --example load
//!     CONNECTIONS=32 REQUESTS=20000 cargo run --release --example load

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sgbridge::config::Config;
use sgbridge::server::{serve, App};
use std::sync::Arc;
use std::time::Instant;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn call(client: &HttpClient, method: Method, url: &str, auth: &str, body: &str) -> u16 {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", auth)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    resp.into_body().collect().await.unwrap();
    status
}

/// `total` requests spread over `conns` concurrent keep-alive clients, cycling
/// through `bodies`; requests per second.
#[allow(clippy::too_many_arguments)]
async fn run(
    client: &HttpClient,
    conns: usize,
    total: usize,
    method: Method,
    url: String,
    auth: &'static str,
    bodies: Vec<String>,
    want: u16,
) -> f64 {
    let started = Instant::now();
    let per = total / conns;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (client, method, url, bodies) = (client.clone(), method.clone(), url.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let body = &bodies[(c + i) % bodies.len()];
                assert_eq!(
                    call(&client, method.clone(), &url, auth, body).await,
                    want,
                    "{method} {url}"
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (per * conns) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let conns = env("CONNECTIONS", 16);
    let total = env("REQUESTS", 10_000);
    let mut cfg = Config::default();
    cfg.backend.embedded.task_delay_ms = 0;
    cfg.wait.poll_ms = 1;
    cfg.wait.max_poll_ms = 5;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(
        listener,
        Arc::new(App::new(cfg).unwrap()),
        std::future::pending::<()>(),
    ));
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(conns)
        .build_http();
    const CF: &str = "bearer dev-admin-token";
    const GC: &str = "APIKey dev-api-key";

    let rules = r#"[{"protocol":"tcp","destination":"10.0.0.1-10.0.0.6","ports":"443, 80"},{"protocol":"all","destination":"0.0.0.0/0"}]"#;
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{base}/v2/security_groups"))
        .header("authorization", CF)
        .body(Full::new(Bytes::from(format!(r#"{{"name":"load","rules":{rules}}}"#))))
        .unwrap();
    let created = client
        .request(req)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    let guid = serde_json::from_slice::<serde_json::Value>(&created).unwrap()["metadata"]["guid"]
        .as_str()
        .unwrap()
        .to_string();

    let none = || vec![String::new()];
    let healthz = run(
        &client,
        conns,
        total,
        Method::GET,
        format!("{base}/healthz"),
        CF,
        none(),
        200,
    )
    .await;
    // Two rule sets, so every PUT changes the group: a real task and a real wait.
    let puts = vec![
        format!(r#"{{"rules":{rules}}}"#),
        r#"{"rules":[{"protocol":"udp","destination":"10.0.0.0/8","ports":"53"}]}"#.to_string(),
    ];
    type Route = (&'static str, Method, String, &'static str, Vec<String>, u16, usize);
    let routes: Vec<Route> = vec![
        (
            "CF GET group (28 Gcore rules folded back)",
            Method::GET,
            format!("{base}/v2/security_groups/{guid}"),
            CF,
            none(),
            200,
            total,
        ),
        (
            "CF list by name",
            Method::GET,
            format!("{base}/v2/security_groups?q=name%3Aload"),
            CF,
            none(),
            200,
            total,
        ),
        (
            "Gcore GET group (28 rules)",
            Method::GET,
            format!("{base}/cloud/v1/securitygroups/1/1/{guid}"),
            GC,
            none(),
            200,
            total,
        ),
        (
            "CF PUT, one group (writes serialised)",
            Method::PUT,
            format!("{base}/v2/security_groups/{guid}"),
            CF,
            puts,
            201,
            total / 20,
        ),
    ];
    println!("baseline GET /healthz: {healthz:.0} req/s ({conns} connections, {total} requests)");
    for (name, method, url, auth, body, want, n) in routes {
        let rps = run(&client, conns, n, method, url, auth, body, want).await;
        println!("{name:<45} {rps:>8.0} req/s   {:.3} of baseline", rps / healthz);
    }
}
