//! How late does a CF `PUT` answer after its Gcore task finished?
//!
//! For each task length (0, 200, 1000, 2000, 5000 ms), starts gateway B
//! (Gcore front end, embedded backend whose tasks take that long) and gateway
//! A (CF front end, backend = gcore → B), both in this process, then sends `N`
//! sequential CF `PUT`s through A, each changing the rules (so each waits on
//! one task) and each after a random pause (uniform in 0..`JITTER_MS`), so
//! requests are not aligned to A's poll schedule. Lateness is the PUT's
//! latency minus the task length (it includes the PUT's own work before the
//! task starts and after it ends, so it over-states lateness slightly).
//! Polls per task: A's `sgbridge_task_polls_per_wait` (sum / count) and B's
//! `sgbridge_http_requests_total` on `/cloud/v1/tasks` and
//! `/cloud/v1/tasks/:task_id`, before and after, per PUT.
//!
//!     cargo run --release --example lateness
//!     N=3 TASKS=0,200 JITTER_MS=300 cargo run --release --example lateness
//!
//! Environment: `N` (20), `TASKS` (ms list), `JITTER_MS` (500), and A's
//! poll schedule `POLL_MS` / `MAX_POLL_MS` (the config defaults otherwise).
//! Target (issue): lateness after FINISHED ≤ 100 ms for every task length.
// Real processes or the wall clock on purpose (a benchmark, a process-level test).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

#[path = "support/mod.rs"]
mod support;

use http::Method;
use std::time::{Duration, Instant};
use support::*;

/// The allocator the `sgbridge` binary uses (src/main.rs), so figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TARGET_MS: f64 = 100.0;

struct Row {
    task_ms: u64,
    n: usize,
    put_p50: f64,
    late_p50: f64,
    late_p95: f64,
    late_max: f64,
    polls_per_wait: f64,
    b_lists: f64,
    b_singles: f64,
}

async fn measure(task_ms: u64, n: usize, jitter_ms: u64, poll: (Option<u64>, Option<u64>)) -> Row {
    let b = Gateway::start(embedded(task_ms)).await;
    let mut a_cfg = through(&b.base);
    if let Some(p) = poll.0 {
        a_cfg.wait.poll_ms = p;
    }
    if let Some(p) = poll.1 {
        a_cfg.wait.max_poll_ms = p;
    }
    let a = Gateway::start(a_cfg).await;
    let client = client();
    let (status, body) = send(
        &client,
        Method::POST,
        &format!("{}/v2/security_groups", a.base),
        CF_AUTH,
        r#"{"name":"lateness"}"#.into(),
    )
    .await;
    assert_eq!(status, 201, "create through A: {}", String::from_utf8_lossy(&body));
    let url = format!("{}/v2/security_groups/{}", a.base, guid(&body));
    let put = |i: usize| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let body = format!(
                r#"{{"rules":[{{"protocol":"tcp","destination":"10.0.0.1","ports":"{}"}}]}}"#,
                8000 + i
            );
            let started = Instant::now();
            let (status, body) = send(&client, Method::PUT, &url, CF_AUTH, body).await;
            assert_eq!(status, 201, "PUT through A: {}", String::from_utf8_lossy(&body));
            started.elapsed()
        }
    };
    // Warm up the connections (not measured).
    put(0).await;
    let (a0, b0) = (a.scrape(), b.scrape());
    let mut puts = Vec::with_capacity(n);
    for i in 1..=n {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..jitter_ms.max(1)))).await;
        puts.push(put(i).await.as_secs_f64() * 1e3);
    }
    let (a1, b1) = (a.scrape(), b.scrape());
    let delta = |name: &str| metric_sum(&a1, name, &[]) - metric_sum(&a0, name, &[]);
    let waits = delta("sgbridge_task_polls_per_wait_count");
    let polls = delta("sgbridge_task_polls_per_wait_sum");
    let ((l0, s0), (l1, s1)) = (task_route_requests(&b0), task_route_requests(&b1));
    let (b_lists, b_singles) = (l1 - l0, s1 - s0);
    a.stop().await;
    b.stop().await;
    let late = sorted(puts.iter().map(|p| p - task_ms as f64).collect());
    let puts = sorted(puts);
    Row {
        task_ms,
        n,
        put_p50: quantile(&puts, 0.5),
        late_p50: quantile(&late, 0.5),
        late_p95: quantile(&late, 0.95),
        late_max: *late.last().unwrap_or(&f64::NAN),
        polls_per_wait: if waits > 0.0 { polls / waits } else { f64::NAN },
        b_lists: b_lists / n as f64,
        b_singles: b_singles / n as f64,
    }
}

fn main() {
    let n = env_u64("N", 20).max(1) as usize;
    let jitter_ms = env_u64("JITTER_MS", 500);
    let tasks: Vec<u64> = std::env::var("TASKS")
        .ok()
        .map(|s| s.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![0, 200, 1000, 2000, 5000]);
    let poll = (
        std::env::var("POLL_MS").ok().and_then(|v| v.parse().ok()),
        std::env::var("MAX_POLL_MS").ok().and_then(|v| v.parse().ok()),
    );
    // Before any thread starts: gateway A reads B's key from here.
    std::env::set_var(KEY_ENV, "dev-api-key");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let defaults = sgbridge::config::Config::default();
    println!(
        "lateness: CF PUT through A (backend gcore) → B (embedded), {n} PUTs per task length, \
         jitter U(0, {jitter_ms}) ms before each; A polls every {} ms (±25 %), backing off to {} ms",
        poll.0.unwrap_or(defaults.wait.poll_ms),
        poll.1.unwrap_or(defaults.wait.max_poll_ms),
    );
    println!("lateness = PUT latency − task length (baseline: the task length); target ≤ {TARGET_MS:.0} ms");
    println!();
    println!(
        "{:>8} {:>4} {:>12} {:>9} {:>11} {:>11} {:>11} {:>10} {:>12} {:>7}",
        "task ms",
        "N",
        "PUT p50 ms",
        "PUT/task",
        "late p50",
        "late p95",
        "late max",
        "polls/wait",
        "B list+task",
        "target"
    );
    let mut all_ok = true;
    for task_ms in tasks {
        let r = runtime.block_on(measure(task_ms, n, jitter_ms, poll));
        let ratio = if r.task_ms > 0 {
            format!("{:.3}", r.put_p50 / r.task_ms as f64)
        } else {
            "-".into()
        };
        let ok = r.late_max <= TARGET_MS;
        all_ok &= ok;
        println!(
            "{:>8} {:>4} {:>12.1} {:>9} {:>11.1} {:>11.1} {:>11.1} {:>10.2} {:>12} {:>7}",
            r.task_ms,
            r.n,
            r.put_p50,
            ratio,
            r.late_p50,
            r.late_p95,
            r.late_max,
            r.polls_per_wait,
            format!("{:.2}+{:.2}", r.b_lists, r.b_singles),
            if ok { "ok" } else { "MISSED" }
        );
    }
    println!();
    println!(
        "polls/wait: A's task-list polls per waiting write; B list+task: requests B answered per PUT \
         on GET /cloud/v1/tasks (the polls) + GET /cloud/v1/tasks/:task_id (reads of ended tasks).\n\
         Every length within target (max lateness): {}",
        if all_ok { "yes" } else { "no" }
    );
}
