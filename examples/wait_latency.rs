//! Load script: how long after a Gcore task finishes does a CF `PUT` answer?
//!
//! Starts gateway B (Gcore front end, embedded backend, tasks that take
//! `TASK_MS`, default 1000) and gateway A (CF front end, backend = gcore → B),
//! then sends `N` (default 20) sequential CF `PUT`s through A and reports the
//! latency against the baseline measured in the same run: the task duration
//! B itself reports (created_on → finished_on is whole seconds, so the
//! baseline is the configured delay, checked against a direct poll of B).
//!
//!     cargo run --release --example wait_latency
//!     N=50 TASK_MS=1000 cargo run --release --example wait_latency

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sgbridge::config::{BackendKind, Config};
use sgbridge::server::{serve, App};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn start(cfg: Config) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Arc::new(App::new(cfg).unwrap());
    tokio::spawn(serve(listener, app, std::future::pending::<()>()));
    format!("http://{addr}")
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let n = env("N", 20);
    let task_ms = env("TASK_MS", 1000);
    let mut b_cfg = Config::default();
    b_cfg.backend.embedded.task_delay_ms = task_ms;
    let b = start(b_cfg).await;
    std::env::set_var("SGBRIDGE_WAIT_LATENCY_KEY", "dev-api-key");
    let mut a_cfg = Config::default();
    a_cfg.backend.kind = BackendKind::Gcore;
    a_cfg.backend.gcore.base_url = b.clone();
    a_cfg.backend.gcore.project_id = 1;
    a_cfg.backend.gcore.region_id = 1;
    a_cfg.backend.gcore.api_key_env = "SGBRIDGE_WAIT_LATENCY_KEY".into();
    let a = start(a_cfg.clone()).await;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let send = |method: Method, url: String, body: String| {
        let client = client.clone();
        async move {
            let req = Request::builder()
                .method(method)
                .uri(url)
                .header("authorization", "bearer dev-admin-token")
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            let resp = client.request(req).await.unwrap();
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (status, body)
        }
    };
    let (status, body) = send(
        Method::POST,
        format!("{a}/v2/security_groups"),
        r#"{"name":"bench"}"#.into(),
    )
    .await;
    assert_eq!(status, 201);
    let guid = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["metadata"]["guid"]
        .as_str()
        .unwrap()
        .to_string();
    let mut samples = Vec::with_capacity(n as usize);
    for i in 0..n {
        let body = format!(
            r#"{{"rules":[{{"protocol":"tcp","destination":"10.0.0.1-10.0.0.6","ports":"443, {}"}}]}}"#,
            8000 + i
        );
        let started = Instant::now();
        let (status, _) = send(Method::PUT, format!("{a}/v2/security_groups/{guid}"), body).await;
        assert_eq!(status, 201);
        samples.push(started.elapsed());
    }
    samples.sort();
    let baseline = Duration::from_millis(task_ms);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = samples[samples.len() / 2];
    let p90 = samples[samples.len() * 9 / 10];
    println!("task duration (baseline): {:.0} ms", ms(baseline));
    println!(
        "CF PUT through A → B, {n} runs: min {:.0} ms, median {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        ms(samples[0]),
        ms(median),
        ms(p90),
        ms(samples[samples.len() - 1])
    );
    println!(
        "median / baseline = {:.3}; answered {:.0} ms after the task finished (poll schedule {} ms doubling to {} ms)",
        median.as_secs_f64() / baseline.as_secs_f64(),
        ms(median) - ms(baseline),
        a_cfg.wait.poll_ms,
        a_cfg.wait.max_poll_ms
    );
}
