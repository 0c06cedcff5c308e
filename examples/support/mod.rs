//! Shared by the `lateness` and `waiters` examples (included with `#[path]`;
//! a directory without `main.rs` is not an example of its own).
#![allow(dead_code)]

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sgbridge::config::{AuditTarget, BackendKind, Config};
use sgbridge::server::metrics::Metrics;
use sgbridge::server::{serve_live, App};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

pub const CF_AUTH: &str = "bearer dev-admin-token";
pub const GCORE_AUTH: &str = "APIKey dev-api-key";
/// The environment variable gateway A reads gateway B's API key from.
pub const KEY_ENV: &str = "SGBRIDGE_BENCH_GCORE_KEY";

/// A gateway served in this process.
pub struct Gateway {
    pub addr: SocketAddr,
    /// Where `/healthz` and `/metrics` are: the admin port when configured.
    pub ops: SocketAddr,
    pub base: String,
    pub metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Gateway {
    pub async fn start(cfg: Config) -> Gateway {
        // The binary's listener: its backlog is the config's.
        let listener = sgbridge::server::listen::bind(SocketAddr::from(([127, 0, 0, 1], 0)), cfg.server.listen_backlog)
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("bound");
        let admin = match cfg.server.admin_listen {
            Some(a) => Some(
                sgbridge::server::listen::bind(a, 1024)
                    .await
                    .expect("bind the admin port"),
            ),
            None => None,
        };
        let ops = admin.as_ref().map_or(addr, |l| l.local_addr().expect("bound"));
        let app = App::new(cfg).expect("gateway config");
        let metrics = app.metrics.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let live = Arc::new(sgbridge::server::live::Live::new(app, None));
        let task = tokio::spawn(serve_live(live, listener, admin, async move {
            let _ = rx.await;
        }));
        Gateway {
            addr,
            ops,
            base: format!("http://{addr}"),
            metrics,
            stop: Some(tx),
            task,
        }
    }

    /// Stop and drain (configs here have no shutdown delay).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }

    pub fn scrape(&self) -> String {
        self.metrics.render()
    }
}

/// Quiet in-process gateway defaults: no audit lines, no shutdown delay.
pub fn quiet(mut cfg: Config) -> Config {
    cfg.audit.target = AuditTarget::Off;
    cfg.server.shutdown_delay_s = 0;
    cfg.server.shutdown_grace_s = 1;
    cfg
}

/// Gateway B: Gcore front end over the embedded backend, tasks of `task_ms`.
pub fn embedded(task_ms: u64) -> Config {
    let mut cfg = quiet(Config::default());
    cfg.backend.embedded.task_delay_ms = task_ms;
    cfg
}

/// Gateway A: backend = gcore → `b` (needs [`KEY_ENV`] set before the runtime).
pub fn through(b: &str) -> Config {
    let mut cfg = quiet(Config::default());
    cfg.backend.kind = BackendKind::Gcore;
    cfg.backend.gcore.base_url = b.to_string();
    cfg.backend.gcore.project_id = 1;
    cfg.backend.gcore.region_id = 1;
    cfg.backend.gcore.api_key_env = KEY_ENV.into();
    cfg
}

/// Sum of the samples of `name` (the full series name, e.g.
/// `sgbridge_http_requests_total`) whose labels include every `k="v"` in `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (lbl, value) = if let Some(r) = rest.strip_prefix('{') {
                let end = r.find('}')?;
                (&r[..end], r[end + 1..].trim())
            } else if rest.starts_with(' ') {
                ("", rest.trim())
            } else {
                return None;
            };
            let ok = labels
                .iter()
                .all(|(k, v)| lbl.split(',').any(|p| p == format!("{k}=\"{v}\"")));
            ok.then(|| value.split_whitespace().next()?.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Requests B has answered on its task routes: the task list
/// (`/cloud/v1/tasks`, the batched polls) and single tasks
/// (`/cloud/v1/tasks/:task_id`, reads of tasks no longer pending).
pub fn task_route_requests(b_metrics: &str) -> (f64, f64) {
    let on = |route: &str| metric_sum(b_metrics, "sgbridge_http_requests_total", &[("route", route)]);
    (on("/cloud/v1/tasks"), on("/cloud/v1/tasks/:task_id"))
}

/// `q`-quantile (0..=1) of sorted values, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(c)
}

pub async fn send(client: &HttpClient, method: Method, url: &str, auth: &str, body: String) -> (u16, Bytes) {
    let mut req = Request::builder().method(method).uri(url).header("authorization", auth);
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(Full::new(Bytes::from(body))).expect("request");
    let resp = client.request(req).await.expect("request sent");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, body)
}

/// The `metadata.guid` of a CF v2 resource.
pub fn guid(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("JSON body");
    v["metadata"]["guid"].as_str().expect("metadata.guid").to_string()
}

/// A blocking `GET` on a fresh connection (for sampler threads).
pub fn get_blocking(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// This process's resident set, in bytes.
pub fn rss_bytes() -> u64 {
    status_kb("self", "VmRSS:") * 1024
}

/// Process `pid`'s resident set, in bytes.
pub fn rss_bytes_of(pid: u32) -> u64 {
    status_kb(&pid.to_string(), "VmRSS:") * 1024
}

/// This process's peak resident set, in bytes.
pub fn hwm_bytes() -> u64 {
    status_kb("self", "VmHWM:") * 1024
}

fn status_kb(process: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
