//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// The repository's test data (`tests/data`, see its README for sources).
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// The CC rule-validation vectors, as JSON text.
pub fn vectors_text() -> String {
    std::fs::read_to_string(data_dir().join("cf-rule-vectors.json")).expect("read tests/data/cf-rule-vectors.json")
}
