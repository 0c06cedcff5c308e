//! Every Cloud Controller validation vector of `tests/data/
//! cf-rule-vectors.json` (copied from the shared design folder), through the
//! CF body parser: outcome, substring and exact description. Where CC answers 500 (it crashes on number/null
//! destinations or ports) sgbridge answers a 400 `CF-SecurityGroupInvalid`.

use serde::Deserialize;
use sgbridge::dialect::cf::{self, CfError, CfFlags, Mode};
use sgbridge::mapping::on_gcore::{self, Policy, SmtpPolicy};
use sgbridge::mapping::PlanError;
use std::collections::HashSet;

#[derive(Deserialize)]
struct Vector {
    name: String,
    rules: serde_json::Value,
    valid: bool,
    error_contains: Option<String>,
    config: Config,
    v2_status: u16,
    v2_error_code: Option<serde_json::Value>,
    v2_description: Option<String>,
}

#[derive(Deserialize)]
struct Config {
    enable_comma_delimited_destinations: bool,
    enable_ipv6: bool,
}

fn vectors() -> Vec<Vector> {
    serde_json::from_str(&crate::support::vectors_text()).expect("parse vectors")
}

fn flags(v: &Vector) -> CfFlags {
    CfFlags {
        comma_delimited_destinations: v.config.enable_comma_delimited_destinations,
        ipv6: v.config.enable_ipv6,
    }
}

fn body(v: &Vector) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"name": "conformance", "rules": v.rules})).unwrap()
}

#[test]
fn every_vector_matches_the_cloud_controller() {
    let vectors = vectors();
    assert!(
        vectors.len() >= 90,
        "expected the full vector file, got {}",
        vectors.len()
    );
    let mut failures = Vec::new();
    for v in &vectors {
        for mode in [Mode::Create, Mode::Update] {
            let result = cf::body::parse(&body(v), mode, flags(v));
            if let Err(problem) = check(v, result) {
                failures.push(format!("{} ({mode:?}): {problem}", v.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn check(v: &Vector, result: Result<cf::GroupBody, CfError>) -> Result<(), String> {
    match (v.valid, result) {
        (true, Ok(_)) => Ok(()),
        (true, Err(e)) => Err(format!("expected valid, got {e}")),
        (false, Ok(_)) => Err("expected an error, got valid".into()),
        (false, Err(e)) => {
            let body = e.body();
            if e.status() != 400 {
                return Err(format!("status {} (every invalid vector must be a 400)", e.status()));
            }
            if let Some(want) = &v.error_contains {
                if !body.description.contains(want.as_str()) {
                    return Err(format!("description {:?} lacks {want:?}", body.description));
                }
            }
            if v.v2_status == 500 {
                // CC crashes; we must answer a proper validation error instead.
                if body.error_code != "CF-SecurityGroupInvalid" {
                    return Err(format!("500 vector answered {}", body.error_code));
                }
                return Ok(());
            }
            if let Some(want) = &v.v2_description {
                if body.description != *want {
                    return Err(format!("description {:?} != {want:?}", body.description));
                }
            }
            if let Some(code) = v.v2_error_code.as_ref().and_then(|c| c.as_u64()) {
                if u64::from(body.code) != code {
                    return Err(format!("code {} != {code}", body.code));
                }
            }
            Ok(())
        }
    }
}

/// Valid vectors survive CF → Gcore → CF with the same meaning: the round
/// trip allows exactly the atoms the input allowed (text may differ only where
/// the input repeats itself, as the 6001-entry vector does).
#[test]
fn valid_vectors_round_trip_through_gcore() {
    let policy = Policy {
        smtp: SmtpPolicy::Narrow,
        max_rules: usize::MAX,
    };
    for v in vectors().iter().filter(|v| v.valid) {
        let rules = cf::body::parse(&body(v), Mode::Create, flags(v))
            .unwrap()
            .rules
            .unwrap_or_default();
        let expanded = match on_gcore::to_gcore(&rules, policy, 0) {
            Ok(e) => e,
            // Valid CF v2 that Gcore cannot say: icmp to an IPv6 destination, and
            // an ICMP code with "any" type (Neutron needs a type for a code).
            Err(PlanError::Rules(errs)) => {
                let known = |e: &str| {
                    e.contains("prohibited for ethertype") || e.contains("ICMP type (port-range-min) is missing")
                };
                assert!(errs.iter().all(|(_, e)| known(e)), "{}", v.name);
                continue;
            }
            Err(other) => panic!("{}: {other}", v.name),
        };
        let back = on_gcore::to_cf(&expanded.atoms, policy);
        let rendered = cf::render::rules(&back, flags(v)).unwrap();
        let reparsed = cf::body::parse_rules(&serde_json::to_vec(&rendered).unwrap(), flags(v)).unwrap();
        let want = atom_set(&rules);
        let got = atom_set(&reparsed);
        assert!(want == got, "{}: round trip changed the allowed set", v.name);
    }
}

fn atom_set(rules: &[sgbridge::model::Rule]) -> HashSet<sgbridge::model::Atom> {
    rules.iter().flat_map(|r| r.atoms()).collect()
}
