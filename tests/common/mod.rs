//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// `../shared` beside the clone (CI puts it there); `SGBRIDGE_SHARED` overrides.
/// Missing shared data is a failure, not a skip: CI always has it.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("SGBRIDGE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    assert!(
        dir.is_dir(),
        "shared data not found at {} (set SGBRIDGE_SHARED)",
        dir.display()
    );
    dir
}
