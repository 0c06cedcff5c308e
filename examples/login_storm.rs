//! A login storm beside a read load (issue 23): what 50 failed logins a
//! second (`POST /oauth/token`, wrong password, each for a new user name, so
//! every one pays a full argon2id check and none is cut short by the
//! lockout) do to the API's reads and to `/healthz`.
//!
//! One gateway in this process (default config, admin listener on its own
//! thread as the binary runs it, audit off); `CONC` clients loop on a CF
//! `GET` of one group; a sampler thread asks `/healthz` every 10 ms on a
//! fresh connection. Two phases of `DURATION_S` each, the same load: without
//! logins (the baseline), then with `RATE` failed logins a second. Ratios are
//! against the baseline of the same run.
//!
//!     cargo run --release --example login_storm
//!     DURATION_S=5 RATE=50 CONC=8 HASHES=1 cargo run --release --example login_storm
//!
//! `HASHES` sets `auth.login.max_concurrent_hashes` (the config's default otherwise).
//!
//! Targets (issue 23/28): API GET p99 during the storm ≤ 1.5× without it;
//! `/healthz` p99 < 10 ms.
// Real processes or the wall clock on purpose (a benchmark, a process-level test).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

#[path = "support/mod.rs"]
mod support;

use http::Method;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

/// The allocator the `sgbridge` binary uses (src/main.rs), so figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Phase {
    api_p50: f64,
    api_p99: f64,
    api_rps: f64,
    healthz_p99: f64,
    logins: u64,
    shed: u64,
    login_p50: f64,
}

async fn phase(gw: &Gateway, group: &str, storm_rate: u64, secs: u64, conc: u64) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("{}/v2/security_groups/{group}", gw.base);
    let mut readers = Vec::new();
    for _ in 0..conc {
        let (url, stop) = (url.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let http = client();
            let mut took = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let (status, _) = send(&http, Method::GET, &url, CF_AUTH, String::new()).await;
                assert_eq!(status, 200);
                took.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            took
        }));
    }
    let ops = gw.ops;
    let sampler_stop = stop.clone();
    let sampler = std::thread::spawn(move || {
        let mut took = Vec::new();
        while !sampler_stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let answer = get_blocking(ops, "/healthz").expect("healthz");
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            took.push(t.elapsed().as_secs_f64() * 1000.0);
            std::thread::sleep(Duration::from_millis(10));
        }
        took
    });
    let logins = Arc::new(AtomicU64::new(0));
    let shed = Arc::new(AtomicU64::new(0));
    let login_times = Arc::new(std::sync::Mutex::new(Vec::new()));
    let storm = (storm_rate > 0).then(|| {
        let (stop, logins, times, base) = (stop.clone(), logins.clone(), login_times.clone(), gw.base.clone());
        let shed = shed.clone();
        tokio::spawn(async move {
            let http = client();
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / storm_rate));
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                n += 1;
                let (http, logins, times, url) = (
                    http.clone(),
                    logins.clone(),
                    times.clone(),
                    format!("{base}/oauth/token"),
                );
                let shed = shed.clone();
                tokio::spawn(async move {
                    let body = format!("grant_type=password&username=storm-{n}&password=wrong");
                    let req = http::Request::post(&url)
                        .header("authorization", "Basic Y2Y6")
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                        .expect("request");
                    let t = Instant::now();
                    let resp = http.request(req).await.expect("login answered");
                    match resp.status().as_u16() {
                        401 => {
                            times.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0);
                            logins.fetch_add(1, Ordering::Relaxed);
                        }
                        503 => {
                            shed.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("a failed login answered {other}"),
                    }
                });
            }
        })
    });
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut api = Vec::new();
    for r in readers {
        api.extend(r.await.expect("reader"));
    }
    if let Some(s) = storm {
        let _ = s.await;
    }
    let healthz = sorted(sampler.join().expect("sampler"));
    let n = api.len();
    let api = sorted(api);
    let login_times = sorted(login_times.lock().unwrap().clone());
    Phase {
        api_p50: quantile(&api, 0.5),
        api_p99: quantile(&api, 0.99),
        api_rps: n as f64 / secs as f64,
        healthz_p99: quantile(&healthz, 0.99),
        logins: logins.load(Ordering::Relaxed),
        shed: shed.load(Ordering::Relaxed),
        login_p50: quantile(&login_times, 0.5),
    }
}

#[tokio::main]
async fn main() {
    let (secs, rate, conc) = (env("DURATION_S", 10), env("RATE", 50), env("CONC", 8));
    let mut cfg = quiet(sgbridge::config::Config::default());
    cfg.server.admin_listen = Some("127.0.0.1:0".parse().expect("address"));
    cfg.auth.login.max_concurrent_hashes = env("HASHES", cfg.auth.login.max_concurrent_hashes as u64) as usize;
    let gw = Gateway::start(cfg).await;
    let http = client();
    let (status, body) = send(
        &http,
        Method::POST,
        &format!("{}/v2/security_groups", gw.base),
        CF_AUTH,
        r#"{"name":"storm","rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443"}]}"#.into(),
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let group = guid(&body);
    // Warm up (connections, caches), then the two phases.
    let _ = phase(&gw, &group, 0, 1, conc).await;
    let quiet = phase(&gw, &group, 0, secs, conc).await;
    let storm = phase(&gw, &group, rate, secs, conc).await;
    println!("login storm: {conc} readers, {secs} s a phase, {rate} failed logins/s asked");
    println!("| phase | API GET req/s | API p50 ms | API p99 ms | /healthz p99 ms | failed logins answered 401 | shed (503) | login p50 ms |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (name, p) in [("no logins", &quiet), ("login storm", &storm)] {
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {} ({:.1}/s) | {} | {:.1} |",
            p.api_rps,
            p.api_p50,
            p.api_p99,
            p.healthz_p99,
            p.logins,
            p.logins as f64 / secs as f64,
            p.shed,
            p.login_p50
        );
    }
    println!(
        "API p99 during the storm: {:.2}x the baseline (target <= 1.5x); /healthz p99 {:.2} ms (target < 10 ms)",
        storm.api_p99 / quiet.api_p99,
        storm.healthz_p99
    );
    gw.stop().await;
}
