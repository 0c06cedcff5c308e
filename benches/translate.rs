//! Translation benchmarks: CF rules → model → Gcore JSON, and Gcore rules →
//! model → CF JSON, for 1, 100, 10,000 rules and the largest "1:1" set that
//! fits CC's 16,777,215-character `rules` limit, each beside its baseline:
//! typed `serde_json` parse + serialize of the same bytes (plain structs with
//! the same fields, no validation, no mapping).
//!
//!     cargo bench --bench translate                 # everything (a few minutes)
//!     cargo bench --bench translate -- cf_to_gcore  # one group (criterion filter)
//!
//! Groups (criterion ids `group/function/size`):
//! - `cf_to_gcore/{sgbridge,serde_typed,serde_typed_pretty}/{1,100,10000}`
//! - `gcore_to_cf/…` the same, reading the Gcore JSON of the same rules;
//! - `cf_to_gcore_16MB/…`, `gcore_to_cf_16MB/…`: the 16 MB set (10 flat samples);
//! - `stages_16MB/…`: where the time of the 16 MB translation goes (parse,
//!   map, render + serialize, each direction).
//!
//! `sgbridge` is `sgbridge::cli::translate::run`, the `sgbridge translate`
//! command: parse and validate as the input dialect's API does, map, render,
//! and write pretty JSON (as the command does). `serde_typed` writes compact
//! JSON (the stricter baseline, and the one the targets are checked against);
//! `serde_typed_pretty` writes pretty JSON like `sgbridge`.
//!
//! Every set is "1:1": `{"protocol":"tcp","destination":"10.a.b.c","ports":"443"}`
//! with distinct, non-adjacent destinations, so each CF rule is exactly one
//! Gcore rule and folds back to exactly one CF rule (checked before timing).
//!
//! Under `cargo test --all-targets` (no `--bench` argument) criterion runs
//! each routine once; the 16 MB groups are skipped there to keep tests fast.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use serde::{Deserialize, Serialize};
use sgbridge::cli::translate::{run, Dialect, Port25, TranslateArgs};
use sgbridge::dialect::cf::{self, CfFlags};
use sgbridge::dialect::gcore::{self, GcoreFlags};
use sgbridge::mapping::on_gcore::{self, Policy, SmtpPolicy};
use std::hint::black_box;
use std::time::Duration;

/// The allocator the `sgbridge` binary uses (src/main.rs), so figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CC's limit on the JSON of a group's rules, in characters.
const CC_RULES_LIMIT: usize = (1 << 24) - 1;

/// Baseline: a CF rule as plain typed serde sees it.
#[derive(Debug, Deserialize, Serialize)]
struct CfRule {
    protocol: String,
    destination: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ports: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    icmp_type: Option<i16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<i16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

/// Baseline: a Gcore rule as plain typed serde sees it.
#[derive(Debug, Deserialize, Serialize)]
struct GcoreRule {
    direction: String,
    ethertype: String,
    protocol: Option<String>,
    port_range_min: Option<u16>,
    port_range_max: Option<u16>,
    remote_ip_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remote_group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

fn args(from: Dialect, to: Dialect) -> TranslateArgs {
    TranslateArgs {
        from,
        to,
        comma_delimited_destinations: false,
        ipv6: false,
        port25: Port25::Narrow,
        with_tags: false,
    }
}

/// The `i`-th 1:1 rule: a single odd address in 10.0.0.0/8 (never adjacent
/// to another, so nothing joins into a range) and one port.
fn cf_rule(i: usize) -> String {
    let ip = 0x0a00_0000u32 + 2 * i as u32 + 1;
    let [a, b, c, d] = ip.to_be_bytes();
    format!(r#"{{"protocol":"tcp","destination":"{a}.{b}.{c}.{d}","ports":"443"}}"#)
}

/// `n` rules as a compact JSON array, or (`n == usize::MAX`) as many as fit
/// in CC's limit.
fn cf_set(n: usize) -> (usize, Vec<u8>) {
    let mut out = String::from("[");
    let mut count = 0;
    while count < n {
        let rule = cf_rule(count);
        let sep = usize::from(count > 0);
        if n == usize::MAX && out.len() + sep + rule.len() + 1 > CC_RULES_LIMIT {
            break;
        }
        if sep == 1 {
            out.push(',');
        }
        out.push_str(&rule);
        count += 1;
    }
    out.push(']');
    assert!(out.len() <= CC_RULES_LIMIT || n != usize::MAX);
    (count, out.into_bytes())
}

/// The Gcore JSON (compact) of a CF set, as `sgbridge translate` writes it.
fn gcore_set(cf_bytes: &[u8]) -> Vec<u8> {
    let out = run(&args(Dialect::Cf, Dialect::Gcore), cf_bytes).expect("CF set translates");
    let rules: Vec<GcoreRule> = serde_json::from_str(&out.stdout).expect("Gcore JSON");
    serde_json::to_vec(&rules).expect("serialises")
}

struct Case {
    label: String,
    rules: usize,
    cf: Vec<u8>,
    gcore: Vec<u8>,
}

fn case(n: usize) -> Case {
    let (rules, cf) = cf_set(n);
    let gcore = gcore_set(&cf);
    // 1:1 both ways, checked once outside the timings.
    let g: Vec<GcoreRule> = serde_json::from_slice(&gcore).unwrap();
    assert_eq!(g.len(), rules, "CF → Gcore is 1:1");
    let back = run(&args(Dialect::Gcore, Dialect::Cf), &gcore).expect("Gcore set translates");
    let c: Vec<CfRule> = serde_json::from_str(&back.stdout).unwrap();
    assert_eq!(c.len(), rules, "Gcore → CF is 1:1");
    let label = if n == usize::MAX {
        format!("16MB_{rules}")
    } else {
        rules.to_string()
    };
    Case {
        label,
        rules,
        cf,
        gcore,
    }
}

fn cf_baseline(bytes: &[u8], pretty: bool) -> Vec<u8> {
    let rules: Vec<CfRule> = serde_json::from_slice(bytes).unwrap();
    if pretty {
        serde_json::to_vec_pretty(&rules).unwrap()
    } else {
        serde_json::to_vec(&rules).unwrap()
    }
}

fn gcore_baseline(bytes: &[u8], pretty: bool) -> Vec<u8> {
    let rules: Vec<GcoreRule> = serde_json::from_slice(bytes).unwrap();
    if pretty {
        serde_json::to_vec_pretty(&rules).unwrap()
    } else {
        serde_json::to_vec(&rules).unwrap()
    }
}

/// Both directions over `cases`, one criterion group each (`cf_to_gcore{suffix}`,
/// `gcore_to_cf{suffix}`): `sgbridge` beside its two baselines, throughput in
/// input bytes.
fn directions(c: &mut Criterion, cases: &[Case], suffix: &str, large: bool) {
    type Translate = fn(&[u8]) -> usize;
    type Baseline = fn(&[u8], bool) -> Vec<u8>;
    type Input = fn(&Case) -> &[u8];
    let to_gcore: Translate = |b| run(&args(Dialect::Cf, Dialect::Gcore), b).unwrap().stdout.len();
    let to_cf: Translate = |b| run(&args(Dialect::Gcore, Dialect::Cf), b).unwrap().stdout.len();
    let dirs: [(&str, Translate, Baseline, Input); 2] = [
        ("cf_to_gcore", to_gcore, cf_baseline, |c| &c.cf),
        ("gcore_to_cf", to_cf, gcore_baseline, |c| &c.gcore),
    ];
    for (name, translate, baseline, input) in dirs {
        let mut g = c.benchmark_group(format!("{name}{suffix}"));
        if large {
            g.sample_size(10)
                .sampling_mode(SamplingMode::Flat)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(5));
        } else {
            g.warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3));
        }
        for case in cases {
            let bytes = input(case);
            g.throughput(Throughput::Bytes(bytes.len() as u64));
            g.bench_with_input(BenchmarkId::new("sgbridge", &case.label), bytes, |b, bytes| {
                b.iter(|| translate(black_box(bytes)))
            });
            g.bench_with_input(BenchmarkId::new("serde_typed", &case.label), bytes, |b, bytes| {
                b.iter(|| baseline(black_box(bytes), false))
            });
            g.bench_with_input(
                BenchmarkId::new("serde_typed_pretty", &case.label),
                bytes,
                |b, bytes| b.iter(|| baseline(black_box(bytes), true)),
            );
        }
        g.finish();
    }
}

/// The stages of [`run`] on the 16 MB set, each timed alone on the output of
/// the one before (prepared outside the timing).
fn stages(c: &mut Criterion, case: &Case) {
    let cf_flags = CfFlags::default();
    let policy = Policy {
        smtp: SmtpPolicy::Narrow,
        max_rules: usize::MAX,
    };
    let gcore_flags = GcoreFlags {
        smtp_blocked: true,
        max_rules: usize::MAX,
    };
    let model = cf::body::parse_rules(&case.cf, cf_flags).unwrap();
    let expanded = on_gcore::to_gcore(&model, policy, 0).unwrap();
    let atoms = gcore::body::parse_rule_list(&case.gcore, gcore_flags).unwrap();
    let folded = on_gcore::to_cf(&atoms, policy);
    assert_eq!(expanded.atoms.len(), case.rules);
    assert_eq!(atoms.len(), case.rules);

    let mut g = c.benchmark_group("stages_16MB");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let l = &case.label;
    g.bench_function(BenchmarkId::new("cf_parse_validate", l), |b| {
        b.iter(|| cf::body::parse_rules(black_box(&case.cf), cf_flags).unwrap())
    });
    g.bench_function(BenchmarkId::new("cf_to_atoms", l), |b| {
        b.iter(|| on_gcore::to_gcore(black_box(&model), policy, 0).unwrap())
    });
    g.bench_function(BenchmarkId::new("atoms_to_gcore_json", l), |b| {
        b.iter(|| {
            let mut out = String::with_capacity(case.cf.len() * 4);
            gcore::pretty::write_rules(black_box(&expanded.atoms), 0, &mut out);
            out
        })
    });
    g.bench_function(BenchmarkId::new("gcore_parse_validate", l), |b| {
        b.iter(|| gcore::body::parse_rule_list(black_box(&case.gcore), gcore_flags).unwrap())
    });
    g.bench_function(BenchmarkId::new("atoms_to_cf_fold", l), |b| {
        b.iter(|| on_gcore::to_cf(black_box(&atoms), policy))
    });
    g.bench_function(BenchmarkId::new("cf_render_json", l), |b| {
        b.iter(|| {
            let out = cf::render::rules(black_box(&folded), cf_flags).unwrap();
            serde_json::to_string_pretty(&out).unwrap()
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let small: Vec<Case> = [1, 100, 10_000].into_iter().map(case).collect();
    directions(c, &small, "", false);
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not.
    let benching = std::env::args().any(|a| a == "--bench");
    if benching {
        let large = [case(usize::MAX)];
        directions(c, &large, "_16MB", true);
        stages(c, &large[0]);
    }
}

criterion_group!(translate, benches);
criterion_main!(translate);
