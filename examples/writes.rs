//! CF writes per second against running gateways (issue 14's replica
//! benchmark): the load client of `scripts/bench-replicas.sh`, which starts
//! the gateways (1 or 3 replicas, memory or postgres store) and PostgreSQL.
//!
//! `CONCURRENCY` workers spread requests round-robin over `BASES`: first CF
//! creates (unique names) for `PHASE_S` seconds (10), then CF PUTs that change the rules
//! of the created groups as long. Prints one line per phase:
//! requests/s, p50 and p99 in ms, and non-2xx answers.
//!
//!     BASES=http://127.0.0.1:8080,http://127.0.0.1:8081 cargo run --release --example writes

#[path = "support/mod.rs"]
mod support;

use http::Method;
use std::sync::Arc;
use std::time::Duration;
use support::{client, env_u64, guid, quantile, send, sorted, CF_AUTH};
use tokio::time::Instant;

struct Phase {
    latencies_ms: Vec<f64>,
    errors: usize,
    took: Duration,
}

impl Phase {
    fn report(&self, name: &str) {
        let ok = self.latencies_ms.len();
        let s = sorted(self.latencies_ms.clone());
        println!(
            "{name}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {ok} ok, {} errors",
            ok as f64 / self.took.as_secs_f64(),
            quantile(&s, 0.5),
            quantile(&s, 0.99),
            self.errors
        );
    }
}

#[tokio::main]
async fn main() {
    let bases: Vec<String> = std::env::var("BASES")
        .expect("BASES: comma-separated gateway base URLs")
        .split(',')
        .map(str::to_string)
        .collect();
    let workers = env_u64("CONCURRENCY", 16) as usize;
    let seconds = Duration::from_secs(env_u64("PHASE_S", 10));
    let run = format!("{:x}", fastrand::u32(..));
    let bases = Arc::new(bases);

    // Creates: each worker keeps the guids it made, for the PUT phase.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (bases, run) = (bases.clone(), run.clone());
        tasks.push(tokio::spawn(async move {
            let http = client();
            let (mut lat, mut errors, mut guids) = (Vec::new(), 0, Vec::new());
            let mut n = 0usize;
            while started.elapsed() < seconds {
                let url = format!("{}/v2/security_groups", bases[(w + n) % bases.len()]);
                let body = format!(r#"{{"name":"bench-{run}-{w}-{n}"}}"#);
                let t = Instant::now();
                let (status, reply) = send(&http, Method::POST, &url, CF_AUTH, body).await;
                if status == 201 {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    guids.push(guid(&reply));
                } else {
                    errors += 1;
                }
                n += 1;
            }
            (lat, errors, guids)
        }));
    }
    let mut creates = Phase {
        latencies_ms: Vec::new(),
        errors: 0,
        took: Duration::ZERO,
    };
    let mut owned = Vec::new();
    for t in tasks {
        let (lat, errors, guids) = t.await.expect("worker");
        creates.latencies_ms.extend(lat);
        creates.errors += errors;
        owned.push(guids);
    }
    creates.took = started.elapsed();
    creates.report("create");

    // PUTs: each worker rewrites the rules of its own groups, in turn.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (w, guids) in owned.into_iter().enumerate() {
        let bases = bases.clone();
        tasks.push(tokio::spawn(async move {
            let http = client();
            let (mut lat, mut errors) = (Vec::new(), 0);
            let mut n = 0usize;
            while started.elapsed() < seconds && !guids.is_empty() {
                let g = &guids[n % guids.len()];
                let url = format!("{}/v2/security_groups/{g}", bases[(w + n) % bases.len()]);
                let body = format!(
                    r#"{{"rules":[{{"protocol":"tcp","destination":"10.0.0.0/8","ports":"{}"}}]}}"#,
                    1000 + n % 1000
                );
                let t = Instant::now();
                let (status, _) = send(&http, Method::PUT, &url, CF_AUTH, body).await;
                if status == 201 {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                } else {
                    errors += 1;
                }
                n += 1;
            }
            (lat, errors)
        }));
    }
    let mut puts = Phase {
        latencies_ms: Vec::new(),
        errors: 0,
        took: Duration::ZERO,
    };
    for t in tasks {
        let (lat, errors) = t.await.expect("worker");
        puts.latencies_ms.extend(lat);
        puts.errors += errors;
    }
    puts.took = started.elapsed();
    puts.report("put");
}
