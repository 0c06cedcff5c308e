//! Load script: CF body parsing, Gcore expansion and compaction at growing
//! sizes, up to CC's 16 MB rules limit. Baseline, measured in the same run on
//! the same bytes: `serde_json::from_slice::<serde_json::Value>` (a plain
//! parse with no validation at all).
//!
//!     cargo run --release --example parse_bench

use sgbridge::dialect::cf::{self, CfFlags, Mode};
use sgbridge::mapping::on_gcore::{self, Policy, SmtpPolicy};
use std::time::{Duration, Instant};

fn body(rules: usize) -> Vec<u8> {
    let mut out = String::from(r#"{"name":"bench","rules":["#);
    for i in 0..rules {
        if i > 0 {
            out.push(',');
        }
        let (a, b) = ((i / 250) % 250, i % 250);
        out.push_str(&format!(
            r#"{{"protocol":"tcp","destination":"10.{a}.{b}.0-10.{a}.{b}.200","ports":"443, {}","description":"rule {i}","log":{}}}"#,
            1000 + i % 60000,
            i % 2 == 0
        ));
    }
    out.push_str("]}");
    out.into_bytes()
}

/// Best of `runs` timings of `f`.
fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        last = Some(v);
    }
    (best, last.expect("runs > 0"))
}

fn main() {
    println!(
        "{:>8} {:>9} {:>12} {:>12} {:>7} {:>12} {:>12} {:>10}",
        "rules", "MB", "Value ms", "sgbridge ms", "ratio", "ns/rule", "expand ms", "compact ms"
    );
    for rules in [1_000, 10_000, 100_000, 130_000] {
        let bytes = body(rules);
        let mb = bytes.len() as f64 / 1e6;
        let runs = if rules > 50_000 { 3 } else { 10 };
        let (base, _) = best(runs, || serde_json::from_slice::<serde_json::Value>(&bytes).unwrap());
        let (ours, parsed) = best(runs, || {
            cf::body::parse(&bytes, Mode::Create, CfFlags::default()).unwrap()
        });
        let model = parsed.rules.unwrap();
        let policy = Policy {
            smtp: SmtpPolicy::Narrow,
            max_rules: usize::MAX,
        };
        let (exp, expanded) = best(runs, || on_gcore::to_gcore(&model, policy, 0).unwrap());
        let (cmp, back) = best(runs, || on_gcore::to_cf(&expanded.atoms, policy));
        assert_eq!(back.len(), model.len());
        println!(
            "{rules:>8} {mb:>9.2} {:>12.1} {:>12.1} {:>7.2} {:>12.0} {:>12.1} {:>10.1}",
            base.as_secs_f64() * 1e3,
            ours.as_secs_f64() * 1e3,
            ours.as_secs_f64() / base.as_secs_f64(),
            ours.as_nanos() as f64 / rules as f64,
            exp.as_secs_f64() * 1e3,
            cmp.as_secs_f64() * 1e3,
        );
    }
}
