//! The soak (issue 26): a steady write load against a running gateway for a
//! long time, sampling its memory and its store's size, to see both reach a
//! plateau. `scripts/soak.sh` starts the gateway (SQLite or PostgreSQL
//! store) and runs this.
//!
//! `WORKERS` (8) each cycle, on their own groups: a CF create, three CF PUTs
//! changing its rules, a Gcore rule add, a CF delete (every group is deleted
//! again, so what stays is what the gateway keeps by itself: tasks, records,
//! caches). Every `SAMPLE_S` (30) it prints the gateway's RSS (`PID`) and the
//! store's size (`DB`: files whose sizes are summed, e.g. the SQLite file
//! and its WAL; or `DB_SQL`: a command printing bytes, e.g. psql asking
//! pg_database_size). After `DURATION_S` (1800) it prints whether each
//! reached a plateau: the last third's peak within 10 % of the middle
//! third's.
//!
//!     BASE=http://127.0.0.1:18080 PID=1234 DB=/tmp/s/state.db,/tmp/s/state.db-wal \
//!       cargo run --release --example soak

#[path = "support/mod.rs"]
mod support;

use http::Method;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{client, env_u64, guid, mb, rss_bytes_of, send, CF_AUTH};
use tokio::time::Instant;

const GCORE_AUTH: &str = "APIKey dev-api-key";

/// One worker's cycles until the deadline; counts answers and failures.
async fn worker(base: String, w: u64, until: Instant, done: Arc<AtomicU64>, failed: Arc<AtomicU64>) {
    let http = client();
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let ok = |status: u16| {
            done.fetch_add(1, Ordering::Relaxed);
            if !(200..300).contains(&status) {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            (200..300).contains(&status)
        };
        let body = format!(r#"{{"name":"soak-{w}-{n}","rules":[]}}"#);
        let (status, created) = send(
            &http,
            Method::POST,
            &format!("{base}/v2/security_groups"),
            CF_AUTH,
            body,
        )
        .await;
        if !ok(status) {
            continue;
        }
        let id = guid(&created);
        for port in [443, 8443, 9443] {
            let body = format!(r#"{{"rules":[{{"protocol":"tcp","destination":"10.{w}.0.0/16","ports":"{port}"}}]}}"#);
            let (status, _) = send(
                &http,
                Method::PUT,
                &format!("{base}/v2/security_groups/{id}"),
                CF_AUTH,
                body,
            )
            .await;
            ok(status);
        }
        let rule = r#"{"direction":"ingress","ethertype":"IPv4","protocol":"tcp","port_range_min":22,"port_range_max":22,"remote_ip_prefix":"10.0.0.0/8"}"#;
        let url = format!("{base}/cloud/v2/security_groups/1/1/{id}/rules");
        let (status, _) = send(&http, Method::POST, &url, GCORE_AUTH, rule.into()).await;
        ok(status);
        let url = format!("{base}/v2/security_groups/{id}");
        let (status, _) = send(&http, Method::DELETE, &url, CF_AUTH, String::new()).await;
        ok(status);
    }
}

fn db_bytes() -> u64 {
    if let Ok(files) = std::env::var("DB") {
        return files
            .split(',')
            .filter(|f| !f.is_empty())
            .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
            .sum();
    }
    let Ok(cmd) = std::env::var("DB_SQL") else { return 0 };
    std::process::Command::new("sh")
        .args(["-c", &cmd])
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

/// Whether the last third's peak is within 10 % of the middle third's.
fn plateau(samples: &[u64]) -> (bool, u64, u64) {
    let third = samples.len() / 3;
    let middle = samples[third..2 * third].iter().copied().max().unwrap_or(0);
    let last = samples[2 * third..].iter().copied().max().unwrap_or(0);
    (last as f64 <= middle as f64 * 1.10, middle, last)
}

#[tokio::main]
async fn main() {
    let base = std::env::var("BASE").unwrap_or_else(|_| "http://127.0.0.1:18080".into());
    let pid = env_u64("PID", 0) as u32;
    let (secs, every, workers) = (
        env_u64("DURATION_S", 1800),
        env_u64("SAMPLE_S", 30),
        env_u64("WORKERS", 8),
    );
    let until = Instant::now() + Duration::from_secs(secs);
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for w in 0..workers {
        tasks.push(tokio::spawn(worker(
            base.clone(),
            w,
            until,
            done.clone(),
            failed.clone(),
        )));
    }
    let started = Instant::now();
    let (mut rss, mut db) = (Vec::new(), Vec::new());
    println!("| minute | requests | failed | RSS MB | store MB |");
    println!("| --- | --- | --- | --- | --- |");
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(every)).await;
        rss.push(rss_bytes_of(pid));
        db.push(db_bytes());
        println!(
            "| {:.1} | {} | {} | {:.1} | {:.1} |",
            started.elapsed().as_secs_f64() / 60.0,
            done.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            mb(*rss.last().unwrap_or(&0)),
            mb(*db.last().unwrap_or(&0)),
        );
    }
    for t in tasks {
        let _ = t.await;
    }
    if rss.len() >= 3 {
        for (what, samples) in [("RSS", &rss), ("store", &db)] {
            let (flat, middle, last) = plateau(samples);
            println!(
                "{what}: middle third's peak {:.1} MB, last third's {:.1} MB ({:.2}x): {}",
                mb(middle),
                mb(last),
                last as f64 / middle.max(1) as f64,
                if flat { "a plateau" } else { "still growing" }
            );
        }
    }
}
