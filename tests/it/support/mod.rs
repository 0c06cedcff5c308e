//! Test support: start gateways in process on ephemeral loopback ports, talk
//! HTTP to them, and start emulators (the embedded backend with its fault
//! controls) to put behind them.

pub mod postgres;
pub mod process;
pub mod scripted;
pub mod uaa;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use sgbridge::config::Config;
use sgbridge::server::{serve, App};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;

pub const CF_AUTH: &str = "bearer dev-admin-token";
pub const GCORE_AUTH: &str = "APIKey dev-api-key";

/// A gateway running in this process; stops when dropped.
pub struct Gateway {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Gateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// The default config with quick tasks and polls, for tests.
pub fn quick_config() -> Config {
    let mut c = Config::default();
    c.backend.embedded.task_delay_ms = 50;
    c.wait.poll_ms = 20;
    c.wait.max_poll_ms = 100;
    c.wait.deadline_s = 10;
    // A stopped test gateway closes at once, and writes no audit lines
    // into the test output (tests that read them choose a file).
    c.server.shutdown_delay_s = 0;
    c.audit.target = sgbridge::config::AuditTarget::Off;
    c
}

pub async fn start(cfg: Config) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Arc::new(App::new(cfg).expect("valid test config"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, app, async {
        let _ = stopped.await;
    }));
    Gateway { addr, stop: Some(stop) }
}

/// A gateway with an API and an admin listener: (the live gateway, the
/// API's base URL, the admin listener's).
pub async fn start_live(cfg: Config) -> (Arc<sgbridge::server::live::Live>, String, String) {
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let urls = (
        format!("http://{}", api.local_addr().unwrap()),
        format!("http://{}", admin.local_addr().unwrap()),
    );
    let live = Arc::new(sgbridge::server::live::Live::new(App::new(cfg).unwrap(), None));
    tokio::spawn(sgbridge::server::listen::serve_live(
        live.clone(),
        api,
        Some(admin),
        std::future::pending(),
    ));
    (live, urls.0, urls.1)
}

/// A gateway on the embedded backend with its emulator controls on an admin
/// listener: the fault-injecting backend of chain tests.
pub struct Emulator {
    pub api: String,
    pub admin: String,
    pub http: Http,
    _live: Arc<sgbridge::server::live::Live>,
}

impl Emulator {
    pub async fn start(tune: impl FnOnce(&mut Config)) -> Emulator {
        let mut cfg = quick_config();
        cfg.server.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        tune(&mut cfg);
        let (live, api, admin) = start_live(cfg).await;
        Emulator {
            api,
            admin,
            http: Http::default(),
            _live: live,
        }
    }

    /// A call to the controls (`/_emulator/…`) as the development admin.
    pub async fn control(&self, method: Method, path: &str, body: &str) -> Reply {
        let url = format!("{}{path}", self.admin);
        self.http.cf(method, &url, body).await
    }

    /// Replaces the armed faults.
    pub async fn arm(&self, faults: Value) -> Reply {
        let body = serde_json::json!({ "faults": faults }).to_string();
        let r = self.control(Method::PUT, "/_emulator/faults", &body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
        r
    }

    /// How often each armed fault hit.
    pub async fn hits(&self) -> Vec<u64> {
        let r = self.control(Method::GET, "/_emulator/faults", "").await;
        let list = r.json()["faults"].as_array().cloned().unwrap_or_default();
        list.iter().map(|f| f["hits"].as_u64().unwrap_or(0)).collect()
    }
}

/// A gateway with backend = gcore pointed at `base` (key from the config's
/// own environment).
pub async fn start_gcore_backed(base: &str, mut cfg: Config) -> Gateway {
    cfg.env = cfg.env.with("SGBRIDGE_TEST_GCORE_KEY", "dev-api-key");
    cfg.backend.kind = sgbridge::config::BackendKind::Gcore;
    cfg.backend.gcore.base_url = base.to_string();
    cfg.backend.gcore.project_id = 1;
    cfg.backend.gcore.region_id = 76;
    cfg.backend.gcore.api_key_env = "SGBRIDGE_TEST_GCORE_KEY".into();
    cfg.backend.gcore.request_timeout_s = 5;
    start(cfg).await
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl Http {
    pub async fn send(&self, method: Method, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .client
            .request(req.body(Full::new(body.into())).unwrap())
            .await
            .expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Reply { status, headers, body }
    }

    pub async fn cf(&self, method: Method, url: &str, body: &str) -> Reply {
        self.send(
            method,
            url,
            &[("authorization", CF_AUTH), ("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    pub async fn gcore(&self, method: Method, url: &str, body: &str) -> Reply {
        self.send(
            method,
            url,
            &[("authorization", GCORE_AUTH), ("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }
}

/// `/readyz` at `url` once the background probe has answered (before its
/// first answer every gateway says "not ready yet"; at most 10 s).
pub async fn settled_readiness(http: &Http, url: &str) -> Reply {
    for _ in 0..500 {
        let r = http.send(Method::GET, url, &[], "").await;
        if !String::from_utf8_lossy(&r.body).contains("has not answered") {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{url}: the readiness probe never answered");
}

/// Poll a Gcore task on a gateway until it is no longer RUNNING.
pub async fn finish_task(http: &Http, gw: &Gateway, task: &str) -> Value {
    finish_task_at(http, &gw.url(""), task).await
}

/// Poll a Gcore task on the gateway at `base` until it is no longer RUNNING.
pub async fn finish_task_at(http: &Http, base: &str, task: &str) -> Value {
    for _ in 0..200 {
        let t = http
            .gcore(Method::GET, &format!("{base}/cloud/v1/tasks/{task}"), "")
            .await
            .json();
        if t["state"] != "RUNNING" && t["state"] != "NEW" {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("task {task} never finished");
}

/// A gateway called in process (no sockets): the whole tower stack, so tests
/// can run on tokio's paused clock.
pub struct InProc {
    pub app: Arc<App>,
}

impl InProc {
    pub fn new(cfg: Config, backend: Arc<dyn sgbridge::backend::Backend>) -> Self {
        let scope = sgbridge::model::Scope {
            project_id: cfg.cf.project_id,
            region_id: cfg.cf.region_id,
        };
        InProc {
            app: Arc::new(App::with_backend(cfg, backend, scope).expect("valid test config")),
        }
    }

    /// A gateway with the backend its config names.
    pub fn from_config(cfg: Config) -> Self {
        InProc {
            app: Arc::new(App::new(cfg).expect("valid test config")),
        }
    }

    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        let resp = sgbridge::server::call(&self.app, req).await;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Reply { status, headers, body }
    }

    pub async fn cf(&self, method: Method, path: &str, body: &str) -> Reply {
        self.send(method, path, &[("authorization", CF_AUTH)], body).await
    }

    pub async fn gcore(&self, method: Method, path: &str, body: &str) -> Reply {
        self.send(method, path, &[("authorization", GCORE_AUTH)], body).await
    }

    /// A request as if on the admin listener, as the development CF admin.
    pub async fn admin(&self, method: Method, path: &str, body: &str) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", CF_AUTH)
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        req.extensions_mut().insert(sgbridge::server::AdminPort);
        let resp = sgbridge::server::call(&self.app, req).await;
        let (status, headers) = (resp.status(), resp.headers().clone());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Reply { status, headers, body }
    }
}

/// A fresh directory under the system's temporary one (left for the OS).
pub fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sgbridge-{tag}-{}-{}", std::process::id(), fastrand::u64(..)));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// The repository's test data (`tests/data`, see its README for sources).
pub fn data_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// The CC rule-validation vectors, as JSON text.
pub fn vectors_text() -> String {
    std::fs::read_to_string(data_dir().join("cf-rule-vectors.json")).expect("read tests/data/cf-rule-vectors.json")
}
