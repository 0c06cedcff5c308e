//! What this binary is: its version and the commit it was built from.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("SGBRIDGE_COMMIT");

/// `0.1.0 (commit 0123456789ab)`.
pub fn long_version() -> String {
    format!("{VERSION} (commit {COMMIT})")
}
