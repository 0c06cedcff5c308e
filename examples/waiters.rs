//! 10,000 waiters: what do many writes waiting on slow tasks cost?
//!
//! Runs the gateway in this process and a load client as a child process (so
//! the client's sockets and memory are not counted, and each process stays
//! within `ulimit -n`). Two modes:
//! - `embedded`: one gateway, embedded backend, tasks of `TASK_MS` (5000);
//!   completions are pushed to waiters, so there are no backend polls;
//! - `gcore`: gateway A (CF front end, backend = gcore → B) and gateway B
//!   (Gcore front end, embedded backend, tasks of `TASK_MS`), both here.
//!
//! First a baseline: a minimal hyper server (`waiters stub`, a child process)
//! holds `N` concurrent PUTs for `TASK_MS` each; its RSS growth is the floor
//! any hyper server pays, and the RSS rows give the ratio against it.
//!
//! Per mode: the child creates `N` groups (each create waits on a task too;
//! reported as "prepare"), then a baseline burst of `BASE_N` (10) concurrent
//! CF `PUT`s and the measured burst of `N` concurrent `PUT`s, each changing
//! its group's rules so each waits on one task. Meanwhile a sampler thread
//! reads this process's VmRSS and open fds, A's `sgbridge_task_waits_in_flight`,
//! B's requests on its task routes (backend polls) and, in gcore mode, the
//! A→B TCP connections in /proc/self/net/tcp; a probe thread sends
//! `GET /healthz` on its own keep-alive connection every 5 ms.
//!
//!     cargo run --release --example waiters
//!     N=500 MODE=embedded cargo run --release --example waiters
//!
//! Environment: `N` (10000), `BASE_N` (10), `TASK_MS` (5000), `MODE`
//! (`both`, `embedded`, `gcore`), `ADMIN` (1: gateway A serves `/healthz` on
//! `server.admin_listen`, its own thread, where the probe asks; 0: on the API port), `CLIENT_CPU` (run the load client under
//! `taskset -c CLIENT_CPU`; `scripts/bench.sh` also pins this process to the
//! other CPU). Needs `ulimit -n` ≥ N + 1024 (checked).
//! Targets (issue): RSS growth < 100 MB; /healthz p99 < 10 ms meanwhile;
//! backend polls/s with N waiters ≤ 2 × with 10; 0 errors; A→B connections
//! ≤ the configured pool (`backend.gcore.max_connections`).
// Real processes or the wall clock on purpose (a benchmark, a process-level test).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

#[path = "support/mod.rs"]
mod support;

use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sgbridge::server::metrics::Metrics;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The allocator the `sgbridge` binary uses (src/main.rs), so figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// ---------------------------------------------------------------- the client

/// `waiters client create ADDR N PREFIX FILE` (guids to FILE, one a line) or
/// `waiters client put ADDR FILE COUNT PORT`; prints one `RESULT k=v …` line.
fn client_main(args: &[String]) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let addr: SocketAddr = arg(1).parse().expect("ADDR");
    let requests: Vec<(String, String, String)> = match arg(0).as_str() {
        "create" => {
            let n: usize = arg(2).parse().expect("N");
            let prefix = arg(3);
            (0..n)
                .map(|i| {
                    let body = format!(
                        r#"{{"name":"{prefix}-{i}","rules":[{{"protocol":"tcp","destination":"{}","ports":"443"}}]}}"#,
                        ip(i)
                    );
                    ("POST".into(), "/v2/security_groups".into(), body)
                })
                .collect()
        }
        "put" => {
            let guids = std::fs::read_to_string(arg(2)).expect("guid file");
            let count: usize = arg(3).parse().expect("COUNT");
            let port: u16 = arg(4).parse().expect("PORT");
            guids
                .lines()
                .take(count)
                .enumerate()
                .map(|(i, g)| {
                    let body = format!(
                        r#"{{"rules":[{{"protocol":"tcp","destination":"{}","ports":"{port}"}}]}}"#,
                        ip(i)
                    );
                    ("PUT".into(), format!("/v2/security_groups/{g}"), body)
                })
                .collect()
        }
        other => panic!("unknown client mode {other:?}"),
    };
    let out_file = (arg(0) == "create").then(|| arg(4));
    runtime.block_on(async move {
        // Connects in flight at once (the listen backlog is finite).
        let gate = Arc::new(tokio::sync::Semaphore::new(256));
        let started = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for (i, (method, path, body)) in requests.into_iter().enumerate() {
            let gate = gate.clone();
            set.spawn(async move {
                let t = Instant::now();
                let r = tokio::time::timeout(Duration::from_secs(300), one(addr, &method, &path, &body, gate)).await;
                let r = r.unwrap_or_else(|_| Err("timed out".into()));
                (i, r, t.elapsed().as_secs_f64() * 1e3)
            });
        }
        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        let mut errors = 0usize;
        let mut first_error = String::new();
        let mut latencies = Vec::new();
        let mut guids: Vec<(usize, String)> = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (i, r, ms) = joined.expect("request task");
            latencies.push(ms);
            match r {
                Ok((status, body)) => {
                    *statuses.entry(status).or_default() += 1;
                    if !(200..300).contains(&status) {
                        errors += 1;
                        if first_error.is_empty() {
                            first_error = format!("{status} {}", String::from_utf8_lossy(&body).chars().take(200).collect::<String>());
                        }
                    } else if out_file.is_some() {
                        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                        if let Some(g) = v["metadata"]["guid"].as_str() {
                            guids.push((i, g.to_string()));
                        }
                    }
                }
                Err(e) => {
                    errors += 1;
                    if first_error.is_empty() {
                        first_error = e;
                    }
                }
            }
        }
        let elapsed = started.elapsed().as_secs_f64() * 1e3;
        if let Some(f) = out_file {
            guids.sort();
            let text: String = guids.iter().map(|(_, g)| format!("{g}\n")).collect();
            std::fs::write(f, text).expect("write guid file");
        }
        let lat = sorted(latencies);
        let statuses: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}:{n}")).collect();
        println!(
            "RESULT n={} errors={errors} p50_ms={:.1} max_ms={:.1} elapsed_ms={elapsed:.1} statuses={} first_error={:?}",
            lat.len(),
            quantile(&lat, 0.5),
            lat.last().copied().unwrap_or(f64::NAN),
            statuses.join(","),
            first_error
        );
    });
    ExitCode::SUCCESS
}

fn ip(i: usize) -> String {
    let [a, b, c, d] = (0x0a00_0000u32 + 2 * i as u32 + 1).to_be_bytes();
    format!("{a}.{b}.{c}.{d}")
}

/// One request on its own connection (`Connection: close`): status and body.
async fn one(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    gate: Arc<tokio::sync::Semaphore>,
) -> Result<(u16, Vec<u8>), String> {
    let permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {CF_AUTH}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
    drop(permit);
    let mut buf = Vec::with_capacity(2048);
    s.read_to_end(&mut buf).await.map_err(|e| format!("read: {e}"))?;
    let status = buf
        .get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad response: {:?}", String::from_utf8_lossy(&buf[..buf.len().min(80)])))?;
    let body = match buf.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => buf.split_off(p + 4),
        None => Vec::new(),
    };
    Ok((status, body))
}

/// The child's `RESULT` line, as key → value.
fn run_client(args: &[String]) -> BTreeMap<String, String> {
    let exe = std::env::current_exe().expect("current exe");
    // CLIENT_CPU: pin the load client (the script pins this process to the other CPU).
    let mut cmd = match std::env::var("CLIENT_CPU") {
        Ok(cpu) if !cpu.is_empty() => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu]).arg(exe);
            c
        }
        _ => Command::new(exe),
    };
    let out = cmd
        .arg("client")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .expect("spawn the load client");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("load client failed ({}): {text}", out.status));
    let mut kv = BTreeMap::new();
    let rest = &line["RESULT ".len()..];
    let (head, first_error) = rest.split_once(" first_error=").unwrap_or((rest, ""));
    for part in head.split_whitespace() {
        if let Some((k, v)) = part.split_once('=') {
            kv.insert(k.to_string(), v.to_string());
        }
    }
    kv.insert("first_error".into(), first_error.to_string());
    kv
}

// ------------------------------------------------------- probes and sampling

/// `GET /healthz` every 5 ms on one keep-alive connection, on its own thread
/// and runtime, until `stop`; latencies (ms) and errors.
fn probe(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Vec<f64>, usize)> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            let url: http::Uri = format!("http://{addr}/healthz").parse().expect("uri");
            let (mut lat, mut errors) = (Vec::new(), 0usize);
            while !stop.load(Ordering::Relaxed) {
                let req = Request::builder()
                    .method(Method::GET)
                    .uri(url.clone())
                    .body(Empty::new())
                    .expect("request");
                let t = Instant::now();
                let ok = match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
                    Ok(Ok(resp)) => resp.status() == 200 && resp.into_body().collect().await.is_ok(),
                    _ => false,
                };
                if ok {
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                } else {
                    errors += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (lat, errors)
        })
    })
}

#[derive(Default, Clone)]
struct Sample {
    t: f64,
    rss: u64,
    fds: usize,
    waits: f64,
    /// B's answers on `/cloud/v1/tasks` (the batched polls).
    b_lists: f64,
    /// B's answers on `/cloud/v1/tasks/:task_id` (reads of ended tasks).
    b_singles: f64,
    a_to_b_established: usize,
}

struct Samples {
    series: Vec<Sample>,
    /// A→B connections (by local port, any TCP state) first seen after the
    /// first sample: connections opened during the burst.
    a_to_b_opened: usize,
}

/// Every 100 ms until `stop`: RSS, fds, waits in flight, B's task requests,
/// A→B connections.
fn sampler(a: Arc<Metrics>, b: Option<(Arc<Metrics>, u16)>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Samples> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut series = Vec::new();
        let mut seen = HashSet::new();
        let mut before: Option<HashSet<u16>> = None;
        loop {
            let a_text = a.render();
            // /proc/net/tcp with tens of thousands of sockets is costly to
            // read: every 5th sample (and the first).
            let conns = match &b {
                Some((_, port)) if series.len() % 5 == 0 || stop.load(Ordering::Relaxed) => a_to_b(*port, &mut seen),
                _ => series.last().map(|x: &Sample| x.a_to_b_established).unwrap_or(0),
            };
            let ((b_lists, b_singles), a_to_b_established) = match &b {
                Some((m, _)) => (task_route_requests(&m.render()), conns),
                None => ((0.0, 0.0), 0),
            };
            series.push(Sample {
                t: start.elapsed().as_secs_f64(),
                rss: rss_bytes(),
                fds: std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
                waits: metric_sum(&a_text, "sgbridge_task_waits_in_flight", &[]),
                b_lists,
                b_singles,
                a_to_b_established,
            });
            if before.is_none() {
                before = Some(seen.clone());
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let before = before.unwrap_or_default();
        Samples {
            series,
            a_to_b_opened: seen.difference(&before).count(),
        }
    })
}

/// Established TCP connections whose remote port is `port` (A's connections
/// to B); every such local port seen goes into `seen`. Counted by distinct
/// local port: /proc/net/tcp read while sockets churn can list one twice.
fn a_to_b(port: u16, seen: &mut HashSet<u16>) -> usize {
    let Ok(text) = std::fs::read_to_string("/proc/self/net/tcp") else {
        return 0;
    };
    let mut established = HashSet::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().take(4).collect();
        if f.len() < 4 {
            continue;
        }
        let port_of = |s: &str| s.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
        if port_of(f[2]) == Some(port) {
            if let Some(local) = port_of(f[1]) {
                seen.insert(local);
                if f[3] == "01" {
                    established.insert(local);
                }
            }
        }
    }
    established.len()
}

// ------------------------------------------------------------------- bursts

struct Burst {
    ok: usize,
    errors: usize,
    first_error: String,
    statuses: String,
    p50_ms: f64,
    max_ms: f64,
    elapsed_s: f64,
    rss_before: u64,
    rss_peak: u64,
    fds_peak: usize,
    waits_peak: f64,
    /// B's task-list requests per second while waits were in flight.
    lists_per_s: f64,
    /// B's single-task requests per second, same window.
    singles_per_s: f64,
    /// A's task-list polls per wait (histogram sum / count).
    polls_per_wait: f64,
    /// A's task-list polls over the burst (histogram sum).
    polls_total: f64,
    health: Vec<f64>,
    health_errors: usize,
    conns_peak: usize,
    conns_opened: usize,
}

async fn burst(a: &Gateway, b: Option<&Gateway>, file: &str, count: usize, port: u16) -> Burst {
    let rss_before = rss_bytes();
    let a0 = a.scrape();
    let stop = Arc::new(AtomicBool::new(false));
    let health = probe(a.ops, stop.clone());
    let samples = sampler(
        a.metrics.clone(),
        b.map(|b| (b.metrics.clone(), b.addr.port())),
        stop.clone(),
    );
    let args: Vec<String> = vec![
        "put".into(),
        a.addr.to_string(),
        file.into(),
        count.to_string(),
        port.to_string(),
    ];
    let result = tokio::task::spawn_blocking(move || run_client(&args))
        .await
        .expect("client thread");
    stop.store(true, Ordering::Relaxed);
    let (health, health_errors) = health.join().expect("probe");
    let samples = samples.join().expect("sampler");
    let a1 = a.scrape();
    if std::env::var_os("DEBUG_METRICS").is_some() {
        if let Some(b) = b {
            for l in b
                .scrape()
                .lines()
                .filter(|l| l.contains("/cloud/v1/tasks") && l.contains("_total"))
            {
                eprintln!("B: {l}");
            }
        }
    }
    let num = |k: &str| result.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    let n = num("n") as usize;
    let errors = num("errors") as usize;
    let s = &samples.series;
    // Over the whole burst (sampled from just before the client starts to
    // just after it ends), so each task's final read counts in both bursts.
    let window = match (s.first(), s.last()) {
        (Some(f), Some(l)) if l.t > f.t => Some((f, l)),
        _ => None,
    };
    let rate = |v: fn(&Sample) -> f64| match window {
        Some((f, l)) => (v(l) - v(f)) / (l.t - f.t),
        None => f64::NAN,
    };
    let (lists_per_s, singles_per_s) = (rate(|x| x.b_lists), rate(|x| x.b_singles));
    let d = |name: &str| metric_sum(&a1, name, &[]) - metric_sum(&a0, name, &[]);
    let waits = d("sgbridge_task_polls_per_wait_count");
    Burst {
        ok: n.saturating_sub(errors),
        errors,
        first_error: result.get("first_error").cloned().unwrap_or_default(),
        statuses: result.get("statuses").cloned().unwrap_or_default(),
        p50_ms: num("p50_ms"),
        max_ms: num("max_ms"),
        elapsed_s: num("elapsed_ms") / 1e3,
        rss_before,
        rss_peak: s.iter().map(|x| x.rss).max().unwrap_or(0).max(rss_before),
        fds_peak: s.iter().map(|x| x.fds).max().unwrap_or(0),
        waits_peak: s.iter().map(|x| x.waits).fold(0.0, f64::max),
        lists_per_s,
        singles_per_s,
        polls_total: d("sgbridge_task_polls_per_wait_sum"),
        polls_per_wait: if waits > 0.0 {
            d("sgbridge_task_polls_per_wait_sum") / waits
        } else {
            f64::NAN
        },
        health: sorted(health),
        health_errors,
        conns_peak: s.iter().map(|x| x.a_to_b_established).max().unwrap_or(0),
        conns_opened: samples.a_to_b_opened,
    }
}

/// Idle `/healthz` latencies for `secs`.
async fn idle_health(addr: SocketAddr, secs: u64) -> (Vec<f64>, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let h = probe(addr, stop.clone());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let (lat, errors) = tokio::task::spawn_blocking(move || h.join().expect("probe"))
        .await
        .expect("join");
    (sorted(lat), errors)
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Embedded,
    Gcore,
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

fn hz(h: &[f64]) -> String {
    format!(
        "{:.2}/{:.2}/{:.2}",
        quantile(h, 0.5),
        quantile(h, 0.99),
        h.last().copied().unwrap_or(f64::NAN)
    )
}

async fn run_mode(mode: Mode, n: usize, base_n: usize, task_ms: u64, stub_growth_mb: f64) -> bool {
    let (a, b) = match mode {
        Mode::Embedded => (Gateway::start(with_admin(embedded(task_ms))).await, None),
        Mode::Gcore => {
            let b = Gateway::start(embedded(task_ms)).await;
            (Gateway::start(with_admin(through(&b.base))).await, Some(b))
        }
    };
    let pool = through("http://unused").backend.gcore.max_connections;
    let name = match mode {
        Mode::Embedded => "embedded backend",
        Mode::Gcore => "A (backend gcore) → B (embedded)",
    };
    println!("== waiters: {name}, tasks of {task_ms} ms, {n} waiters vs {base_n}");
    let file = std::env::temp_dir().join(format!("sgbridge-waiters-{}-{}.txt", std::process::id(), n));
    let file_s = file.display().to_string();
    let prep = {
        let args: Vec<String> = vec![
            "create".into(),
            a.addr.to_string(),
            n.to_string(),
            "waiter".into(),
            file_s.clone(),
        ];
        tokio::task::spawn_blocking(move || run_client(&args))
            .await
            .expect("client")
    };
    println!(
        "prepare: {} concurrent CF creates (each waits on a task) in {:.1} s: {} errors (statuses {}){}",
        n,
        prep.get("elapsed_ms")
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
            / 1e3,
        prep.get("errors").map(String::as_str).unwrap_or("?"),
        prep.get("statuses").map(String::as_str).unwrap_or("?"),
        match prep.get("first_error").map(String::as_str) {
            Some("") | Some("\"\"") | None => String::new(),
            Some(e) => format!(", first: {e}"),
        }
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle, idle_errors) = idle_health(a.ops, 2).await;
    let base = burst(&a, b.as_ref(), &file_s, base_n, 445).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let big = burst(&a, b.as_ref(), &file_s, n, 444).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_bytes();
    let _ = std::fs::remove_file(&file);

    let growth = |x: &Burst| mb(x.rss_peak.saturating_sub(x.rss_before));
    let p99 = quantile(&big.health, 0.99);
    let mut ok = true;
    let row = |label: &str, base: String, big: String, ratio: String, target: String| {
        println!("{label:<36} {base:>22} {big:>22} {ratio:>8}  {target}");
    };
    row(
        "figure",
        format!("{base_n} waiters (baseline)"),
        format!("{n} waiters"),
        "ratio".into(),
        "target".into(),
    );
    row(
        "peak waits in flight",
        format!("{:.0}", base.waits_peak),
        format!("{:.0}", big.waits_peak),
        String::new(),
        String::new(),
    );
    let errs_ok = big.errors == 0 && base.errors == 0;
    ok &= errs_ok;
    row(
        "answers 2xx / errors",
        format!("{} / {}", base.ok, base.errors),
        format!("{} / {}", big.ok, big.errors),
        String::new(),
        format!("0 errors: {}", verdict(errs_ok)),
    );
    if big.errors > 0 {
        println!("    statuses {}, first error: {}", big.statuses, big.first_error);
    }
    row(
        "PUT latency p50 / max (ms)",
        format!("{:.0} / {:.0}", base.p50_ms, base.max_ms),
        format!("{:.0} / {:.0}", big.p50_ms, big.max_ms),
        format!("{:.2}", big.p50_ms / base.p50_ms),
        String::new(),
    );
    row(
        "burst wall time (s)",
        format!("{:.1}", base.elapsed_s),
        format!("{:.1}", big.elapsed_s),
        String::new(),
        String::new(),
    );
    let rss_ok = growth(&big) < 100.0;
    ok &= rss_ok;
    row(
        "RSS growth, peak − before (MB)",
        format!("{:+.1}", growth(&base)),
        format!("{:+.1}", growth(&big)),
        format!("{:.2}", growth(&big) / stub_growth_mb),
        format!(
            "< 100 MB: {}; ratio: vs the stub's {stub_growth_mb:+.1}",
            verdict(rss_ok)
        ),
    );
    row(
        "RSS growth per waiter (KB)",
        String::new(),
        format!("{:.1}", growth(&big) * 1e3 / big.waits_peak.max(1.0)),
        String::new(),
        "at the peak's waits in flight".into(),
    );
    row(
        "RSS before / peak (MB)",
        format!("{:.1} / {:.1}", mb(base.rss_before), mb(base.rss_peak)),
        format!("{:.1} / {:.1}", mb(big.rss_before), mb(big.rss_peak)),
        String::new(),
        format!("after: {:.1} MB", mb(rss_after)),
    );
    match mode {
        Mode::Embedded => {
            let polls_ok = big.polls_total == 0.0;
            ok &= polls_ok;
            row(
                "backend polls/s (burst)",
                format!("{:.1}", base.polls_total / base.elapsed_s),
                format!("{:.1}", big.polls_total / big.elapsed_s),
                String::new(),
                format!("0 (completions pushed): {}", verdict(polls_ok)),
            );
        }
        Mode::Gcore => {
            let total = |x: &Burst| x.lists_per_s + x.singles_per_s;
            let polls_ok = total(&big) <= 2.0 * total(&base);
            ok &= polls_ok;
            row(
                "backend task requests/s (burst)",
                format!("{:.1}", total(&base)),
                format!("{:.1}", total(&big)),
                format!("{:.2}", total(&big) / total(&base)),
                format!("≤ 2× baseline: {}", verdict(polls_ok)),
            );
            row(
                "  of which task-list polls/s",
                format!("{:.1}", base.lists_per_s),
                format!("{:.1}", big.lists_per_s),
                format!("{:.2}", big.lists_per_s / base.lists_per_s),
                "GET /cloud/v1/tasks (pages of 1000)".into(),
            );
            row(
                "  of which single-task GETs/s",
                format!("{:.1}", base.singles_per_s),
                format!("{:.1}", big.singles_per_s),
                format!("{:.2}", big.singles_per_s / base.singles_per_s),
                "GET /cloud/v1/tasks/:task_id".into(),
            );
        }
    }
    row(
        "task-list polls per wait (A)",
        format!("{:.2}", base.polls_per_wait),
        format!("{:.2}", big.polls_per_wait),
        String::new(),
        String::new(),
    );
    let hz_ok = p99 < 10.0 && big.health_errors == 0;
    ok &= hz_ok;
    row(
        "/healthz p50/p99/max ms (base: idle)",
        format!("{} ({} err)", hz(&idle), idle_errors),
        format!("{} ({} err)", hz(&big.health), big.health_errors),
        format!("{:.1}", p99 / quantile(&idle, 0.99)),
        format!("p99 < 10 ms: {}", verdict(hz_ok)),
    );
    row(
        "/healthz samples",
        idle.len().to_string(),
        big.health.len().to_string(),
        String::new(),
        String::new(),
    );
    row(
        "peak open fds (this process)",
        base.fds_peak.to_string(),
        big.fds_peak.to_string(),
        String::new(),
        String::new(),
    );
    if mode == Mode::Gcore {
        let conns_ok = big.conns_peak <= pool;
        ok &= conns_ok;
        row(
            "A→B conns: peak established / opened",
            format!("{} / {}", base.conns_peak, base.conns_opened),
            format!("{} / {}", big.conns_peak, big.conns_opened),
            String::new(),
            format!("≤ pool {pool}: {}", verdict(conns_ok)),
        );
    }
    println!();
    a.stop().await;
    if let Some(b) = b {
        b.stop().await;
    }
    ok
}

/// Gateway A's admin endpoints on their own port (and thread), as the
/// deployment examples run it, unless `ADMIN=0`: `/healthz` is probed there.
fn with_admin(mut cfg: sgbridge::config::Config) -> sgbridge::config::Config {
    if std::env::var("ADMIN").map_or(true, |v| v != "0") {
        cfg.server.admin_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    cfg
}

// ------------------------------------------------------ the stub baseline

/// `waiters stub TASK_MS`: a minimal hyper HTTP/1.1 server that reads each
/// request's body, waits `TASK_MS`, and answers 200 with a small JSON body:
/// what holding a request open costs hyper and tokio alone. Prints its
/// address, then serves until killed. Same listener, runtime and allocator
/// as the gateway (it inherits this process's CPU pinning).
fn stub_main(args: &[String]) -> ExitCode {
    let task = Duration::from_millis(args.first().and_then(|a| a.parse().ok()).unwrap_or(5000));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let backlog = sgbridge::config::Config::default().server.listen_backlog;
        let listener = sgbridge::server::listen::bind(SocketAddr::from(([127, 0, 0, 1], 0)), backlog)
            .await
            .expect("bind");
        println!("{}", listener.local_addr().expect("addr"));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| async move {
                    let _ = req.into_body().collect().await;
                    tokio::time::sleep(task).await;
                    Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from_static(br#"{"stub":true}"#),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// The stub's RSS growth (MB) for `n` concurrent PUTs held `task_ms`: the
/// floor any hyper server pays, and the baseline of the gateway's figure.
async fn stub_baseline(n: usize, task_ms: u64) -> f64 {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args(["stub", &task_ms.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the stub");
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
    }
    let addr = line.trim().to_string();
    let file = std::env::temp_dir().join(format!("sgbridge-waiters-stub-{}.txt", std::process::id()));
    let paths: String = (0..n).map(|i| format!("stub-{i}\n")).collect();
    std::fs::write(&file, paths).expect("write the stub's paths");
    let pid = child.id();
    let before = rss_bytes_of(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let peak = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(rss_bytes_of(pid));
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        })
    };
    let args: Vec<String> = vec![
        "put".into(),
        addr,
        file.display().to_string(),
        n.to_string(),
        "443".into(),
    ];
    let result = tokio::task::spawn_blocking(move || run_client(&args))
        .await
        .expect("client thread");
    stop.store(true, Ordering::Relaxed);
    let peak = peak.join().expect("sampler").max(before);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&file);
    let growth = mb(peak - before);
    println!(
        "== stub baseline: a minimal hyper server holding each of {n} concurrent PUTs {task_ms} ms: \
         RSS {:.1} → {:.1} MB, growth {growth:+.1} MB ({:.1} KB a request); answers: {}",
        mb(before),
        mb(peak),
        growth * 1e3 / n as f64,
        result.get("statuses").map(String::as_str).unwrap_or("?"),
    );
    println!();
    growth
}

fn nofile_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("client") {
        return client_main(&args[2..]);
    }
    if args.get(1).map(String::as_str) == Some("stub") {
        return stub_main(&args[2..]);
    }
    let n = env_u64("N", 10_000) as usize;
    let base_n = env_u64("BASE_N", 10) as usize;
    let task_ms = env_u64("TASK_MS", 5000);
    let modes = match std::env::var("MODE").unwrap_or_else(|_| "both".into()).as_str() {
        "embedded" => vec![Mode::Embedded],
        "gcore" => vec![Mode::Gcore],
        _ => vec![Mode::Embedded, Mode::Gcore],
    };
    let need = n as u64 + 1024;
    match nofile_limit() {
        Some(l) if l >= need => println!("ulimit -n: {l} (need ≥ {need} per process): ok"),
        Some(l) => {
            println!(
                "ulimit -n: {l}, but {n} waiters need ≥ {need} open files per process (the gateway \
                 and the load client each hold one socket per waiter). Raise it (`ulimit -n 65536`, \
                 as root `ulimit -Hn` too) or lower N."
            );
            return ExitCode::FAILURE;
        }
        None => println!("ulimit -n: unknown (no /proc/self/limits); need ≥ {need}"),
    }
    if let Ok(s) = std::fs::read_to_string("/proc/sys/net/core/somaxconn") {
        println!(
            "net.core.somaxconn: {} (the load client opens at most 256 connections at once)",
            s.trim()
        );
    }
    println!(
        "in this process: the gateway(s) and the samplers; the load client is a child process \
         (its memory and sockets are not counted){}",
        match std::env::var("CLIENT_CPU") {
            Ok(cpu) if !cpu.is_empty() => format!(", pinned to CPU {cpu} (taskset)"),
            _ => String::new(),
        }
    );
    println!();
    // Before any thread starts: gateway A reads B's key from here.
    std::env::set_var(KEY_ENV, "dev-api-key");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stub = runtime.block_on(stub_baseline(n, task_ms));
    let mut all = true;
    for mode in modes {
        all &= runtime.block_on(run_mode(mode, n, base_n, task_ms, stub));
    }
    println!("every target met: {}", if all { "yes" } else { "no" });
    ExitCode::SUCCESS
}
