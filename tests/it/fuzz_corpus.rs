//! The fuzz targets' seed corpora (`fuzz/corpus/<target>/`), replayed through
//! the same entry points the fuzzers call (`sgbridge::fuzzing`), so `cargo
//! test` checks every seed (and every crash a fuzzer ever found, once saved
//! there) without a fuzzer.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
        seen += 1;
    }
    assert!(seen > 0, "{target}: no seeds");
}

#[test]
fn json() {
    replay("json", sgbridge::fuzzing::json);
}

#[test]
fn cf_destination() {
    replay("cf_destination", sgbridge::fuzzing::cf_destination);
}

#[test]
fn cf_ports() {
    replay("cf_ports", sgbridge::fuzzing::cf_ports);
}

#[test]
fn cf_rules() {
    replay("cf_rules", sgbridge::fuzzing::cf_rules);
}

#[test]
fn cf_body() {
    replay("cf_body", sgbridge::fuzzing::cf_body);
}

#[test]
fn gcore_body() {
    replay("gcore_body", sgbridge::fuzzing::gcore_body);
}

#[test]
fn query() {
    replay("query", sgbridge::fuzzing::query);
}

#[test]
fn idempotency() {
    replay("idempotency", sgbridge::fuzzing::idempotency);
}

#[test]
fn error_renderers() {
    replay("error_renderers", sgbridge::fuzzing::error_renderers);
}
