//! Baselines for the load script (`scripts/bench.sh`), built from the bench
//! code so they share its compiler, allocator, hyper and tokio versions.
//!
//! `stub`: fetch a URL once, then answer every request with exactly those
//! bytes, that status and that content type: a hyper 1 HTTP/1.1 server with
//! keep-alive and nothing else (no routing, no auth, no metrics). The
//! physical limit for serving the same bytes on the same core.
//!
//!     baseline stub --listen 127.0.0.1:0 --from http://127.0.0.1:18080/v2/security_groups/GUID \
//!         --header 'Authorization: bearer dev-admin-token'
//!     baseline stub --from URL --method PUT --data-file body.json --header 'K: V'
//!
//! `proxy`: a minimal pass-through reverse proxy: a pooled hyper-util legacy
//! client forwarding method, path and query, headers (hop-by-hop ones
//! dropped, Host rewritten) and the streamed body; the answer streams back.
//!
//!     baseline proxy --listen 127.0.0.1:0 --upstream http://127.0.0.1:18080
//!
//! Both print the bound address (`127.0.0.1:PORT`) as the first line of
//! stdout, then serve until killed. Tokio's worker count follows the CPU
//! affinity mask, so `taskset -c 1 baseline …` runs on one worker, as
//! `taskset -c 1 sgbridge serve` does.

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use http::uri::{Authority, Scheme};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The allocator the `sgbridge` binary uses (src/main.rs), so figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Baseline servers for scripts/bench.sh")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Fetch --from once, then answer every request with exactly its bytes.
    Stub {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// The URL whose answer is served (http:// only).
        #[arg(long)]
        from: String,
        /// A request header for the fetch, `Name: value` (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        /// The method of the fetch.
        #[arg(long, default_value = "GET")]
        method: String,
        /// A request body for the fetch.
        #[arg(long, conflicts_with = "data_file")]
        data: Option<String>,
        /// A file holding the request body for the fetch.
        #[arg(long)]
        data_file: Option<PathBuf>,
    },
    /// A minimal pass-through reverse proxy to --upstream.
    Proxy {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// `http://host:port`; the request's path and query are appended.
        #[arg(long)]
        upstream: String,
    },
}

/// The answer a stub repeats.
struct Canned {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

fn connector() -> HttpConnector {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    c
}

fn parse_header(h: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| format!("--header {h:?}: expected `Name: value`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| format!("--header {h:?}: {e}"))?;
    let value = HeaderValue::from_str(value.trim()).map_err(|e| format!("--header {h:?}: {e}"))?;
    Ok((name, value))
}

async fn fetch(from: &str, method: &str, headers: &[String], body: Bytes) -> Result<Canned, String> {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector());
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| format!("--method: {e}"))?;
    let mut req = Request::builder()
        .method(method)
        .uri(from)
        .body(Full::new(body))
        .map_err(|e| format!("--from {from}: {e}"))?;
    for h in headers {
        let (name, value) = parse_header(h)?;
        req.headers_mut().append(name, value);
    }
    let resp = client.request(req).await.map_err(|e| format!("fetching {from}: {e}"))?;
    let status = resp.status();
    let content_type = resp.headers().get(CONTENT_TYPE).cloned();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading {from}: {e}"))?
        .to_bytes();
    Ok(Canned {
        status,
        content_type,
        body,
    })
}

async fn bind(listen: SocketAddr) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    // The script reads this line; write and flush it before serving.
    let _ = writeln!(out, "{addr}");
    let _ = out.flush();
    Ok(listener)
}

async fn stub(listener: TcpListener, canned: Canned) -> Result<(), String> {
    let canned = Arc::new(canned);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        let canned = canned.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let canned = canned.clone();
                async move {
                    // Read the request body, as any server must.
                    let _ = req.into_body().collect().await;
                    let mut resp = Response::new(Full::new(canned.body.clone()));
                    *resp.status_mut() = canned.status;
                    if let Some(ct) = &canned.content_type {
                        resp.headers_mut().insert(CONTENT_TYPE, ct.clone());
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    for h in HOP_BY_HOP {
        headers.remove(h);
    }
}

fn bad_gateway(message: String) -> Response<ProxyBody> {
    let mut resp = Response::new(Full::new(Bytes::from(message)).map_err(|never| match never {}).boxed());
    *resp.status_mut() = StatusCode::BAD_GATEWAY;
    resp
}

async fn proxy(listener: TcpListener, upstream: &str) -> Result<(), String> {
    let uri: Uri = upstream.parse().map_err(|e| format!("--upstream {upstream}: {e}"))?;
    let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTP);
    if scheme != Scheme::HTTP {
        return Err(format!("--upstream {upstream}: http:// only"));
    }
    let authority: Authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("--upstream {upstream}: no host"))?;
    let host = HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?;
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new()).build(connector());
    let shared = Arc::new((client, authority, host));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |mut req: Request<Incoming>| {
                let shared = shared.clone();
                async move {
                    let (client, authority, host) = &*shared;
                    let pq = req.uri().path_and_query().cloned();
                    let target = Uri::builder()
                        .scheme(Scheme::HTTP)
                        .authority(authority.clone())
                        .path_and_query(pq.map(|p| p.to_string()).unwrap_or_else(|| "/".into()))
                        .build();
                    let target = match target {
                        Ok(t) => t,
                        Err(e) => return Ok::<_, Infallible>(bad_gateway(e.to_string())),
                    };
                    *req.uri_mut() = target;
                    strip_hop_by_hop(req.headers_mut());
                    req.headers_mut().insert(HOST, host.clone());
                    match client.request(req).await {
                        Ok(resp) => {
                            let (mut parts, body) = resp.into_parts();
                            strip_hop_by_hop(&mut parts.headers);
                            Ok(Response::from_parts(parts, body.boxed()))
                        }
                        Err(e) => Ok(bad_gateway(format!("upstream: {e}"))),
                    }
                }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn main_async(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Stub {
            listen,
            from,
            headers,
            method,
            data,
            data_file,
        } => {
            let body = match (data, data_file) {
                (Some(d), _) => Bytes::from(d),
                (None, Some(f)) => {
                    Bytes::from(std::fs::read(&f).map_err(|e| format!("--data-file {}: {e}", f.display()))?)
                }
                (None, None) => Bytes::new(),
            };
            let canned = fetch(&from, &method, &headers, body).await?;
            eprintln!(
                "baseline stub: {} {from}: {} bytes, status {}",
                method,
                canned.body.len(),
                canned.status.as_u16()
            );
            let listener = bind(listen).await?;
            stub(listener, canned).await
        }
        Cmd::Proxy { listen, upstream } => {
            let listener = bind(listen).await?;
            proxy(listener, &upstream).await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("baseline: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main_async(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baseline: {e}");
            ExitCode::FAILURE
        }
    }
}
