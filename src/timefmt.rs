//! Timestamp writing shared by both dialects (CF: `…Z`; Gcore: `…+0000` and naive).

use chrono::{DateTime, Datelike, Timelike, Utc};
use std::fmt::Write;

/// `YYYY-MM-DDTHH:MM:SS` followed by `suffix`, written directly: the values
/// are always UTC, and chrono's `format` re-parses its pattern on every call
/// (a group body carries two timestamps per rule).
pub fn write_utc(t: &DateTime<Utc>, suffix: &str) -> String {
    let mut out = String::with_capacity(19 + suffix.len());
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{suffix}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    out
}

/// Now, as RFC 3339 UTC with milliseconds (log and audit records).
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Seconds since the epoch, by the wall clock: what stores compare across
/// processes and restarts (record expiries, failed logins, audit events).
pub fn unix_now() -> i64 {
    Utc::now().timestamp()
}
