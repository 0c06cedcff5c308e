//! Stamps the binary with the commit it was built from (`sgbridge
//! --version`, the `build_info` metric): `SGBRIDGE_COMMIT` when set (image
//! builds without `.git`), else `git rev-parse`, else "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SGBRIDGE_COMMIT");
    let commit = std::env::var("SGBRIDGE_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SGBRIDGE_COMMIT={}", commit.trim());
}

fn git_commit() -> Option<String> {
    // Rebuild when HEAD moves: HEAD itself, and the ref it points to. Only
    // files that exist are watched: cargo reruns a build script whose
    // watched file is missing on every build (a fresh clone may have no
    // packed-refs), which recompiled the whole crate each time.
    watch(".git/HEAD");
    watch(".git/packed-refs");
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(reference) = head.strip_prefix("ref: ") {
            watch(&format!(".git/{}", reference.trim()));
        }
    }
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
}

fn watch(path: &str) {
    if std::path::Path::new(path).exists() {
        println!("cargo:rerun-if-changed={path}");
    }
}
