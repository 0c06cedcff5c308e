//! Fill a running gateway with CF groups, fast (for the list-page benchmark
//! in `scripts/bench.sh`): `--groups` concurrent-ish CF `POST
//! /v2/security_groups`, each with `--rules` distinct 1:1 rules (rule `i`:
//! `10.i.(g mod 256).0/24`, port `1000 + i`, so nothing folds and each CF
//! rule is one Gcore rule).
//!
//!     populate --base http://127.0.0.1:18080 --groups 2000 --rules 200 --concurrency 32
// Real processes or the wall clock on purpose (a benchmark, a process-level test).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

#[path = "support/mod.rs"]
mod support;

use clap::Parser;
use http::Method;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use support::*;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    base: String,
    #[arg(long, default_value_t = 2000)]
    groups: usize,
    #[arg(long, default_value_t = 200)]
    rules: usize,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Group names are `{prefix}-{n}`.
    #[arg(long, default_value = "list")]
    prefix: String,
}

fn body(prefix: &str, g: usize, rules: usize) -> String {
    let rules: Vec<String> = (0..rules)
        .map(|i| {
            format!(
                r#"{{"protocol":"tcp","destination":"10.{}.{}.0/24","ports":"{}"}}"#,
                i % 256,
                g % 256,
                1000 + i
            )
        })
        .collect();
    format!(r#"{{"name":"{prefix}-{g}","rules":[{}]}}"#, rules.join(","))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let client = client();
        let next = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..args.concurrency.max(1) {
            let (client, next, failed) = (client.clone(), next.clone(), failed.clone());
            let (base, prefix, groups, rules) = (args.base.clone(), args.prefix.clone(), args.groups, args.rules);
            workers.push(tokio::spawn(async move {
                loop {
                    let g = next.fetch_add(1, Ordering::Relaxed);
                    if g >= groups {
                        break;
                    }
                    let url = format!("{base}/v2/security_groups");
                    let (status, resp) = send(&client, Method::POST, &url, CF_AUTH, body(&prefix, g, rules)).await;
                    if status != 201 && failed.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!(
                            "populate: group {g}: {status} {}",
                            String::from_utf8_lossy(&resp).chars().take(300).collect::<String>()
                        );
                    }
                }
            }));
        }
        for w in workers {
            w.await.expect("worker");
        }
        let failed = failed.load(Ordering::Relaxed);
        println!(
            "populate: {} groups × {} CF rules in {:.1} s, {failed} failed",
            args.groups,
            args.rules,
            started.elapsed().as_secs_f64()
        );
        if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}
