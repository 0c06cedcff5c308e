//! Gcore timestamps. Groups and rules use `2026-02-25T10:11:50+0000` (offset
//! without a colon); tasks use naive `2026-02-24T10:39:59` (UTC implied); docs
//! show RFC 3339 with `Z`. All three parse; each type writes Gcore's own form.

use crate::timefmt::write_utc;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Parse any timestamp form Gcore sends. The fixed layout is read by hand
/// (a group carries two timestamps per rule, and chrono's `parse_from_str`
/// re-reads its format string on every call); anything else falls back to
/// chrono's parsers.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_fixed(text) {
        return Some(t);
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// `YYYY-MM-DDTHH:MM:SS` followed by nothing, `Z` or `+0000`: the forms
/// Gcore writes (UTC).
fn parse_fixed(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let (head, tail) = (b.get(..19)?, b.get(19..)?);
    if !matches!(tail, b"" | b"Z" | b"+0000" | b"+00:00") {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        head.get(r)?.iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if seps.iter().any(|&(i, c)| head[i] != c) {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
    Some(date.and_time(time).and_utc())
}

macro_rules! gcore_time {
    ($name:ident, $suffix:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub struct $name(pub DateTime<Utc>);

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&write_utc(&self.0, $suffix))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<str>::deserialize(d)?;
                parse(&text)
                    .map($name)
                    .ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp: {text}")))
            }
        }
    };
}

gcore_time!(ResourceTime, "+0000", "A group or rule timestamp (`+0000` offset).");
gcore_time!(TaskTime, "", "A task timestamp (naive, UTC).");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_form_gcore_sends() {
        let a = parse("2026-02-25T10:11:50+0000").unwrap();
        let b = parse("2026-02-25T10:11:50").unwrap();
        let c = parse("2026-02-25T10:11:50Z").unwrap();
        let d = parse("2026-02-25T12:11:50.000+02:00").unwrap();
        assert!(a == b && b == c && c == d);
        assert!(parse("yesterday").is_none());
        assert!(parse("2026-02-30T10:11:50+0000").is_none());
        assert!(parse("2026-02-25T10:11:5x").is_none());
        assert_eq!(parse_fixed("2026-02-25T10:11:50+0000"), Some(a));
    }

    #[test]
    fn writes_gcore_forms() {
        let t = parse("2026-02-25T10:11:50Z").unwrap();
        assert_eq!(
            serde_json::to_string(&ResourceTime(t)).unwrap(),
            "\"2026-02-25T10:11:50+0000\""
        );
        assert_eq!(serde_json::to_string(&TaskTime(t)).unwrap(), "\"2026-02-25T10:11:50\"");
        let back: TaskTime = serde_json::from_str("\"2026-02-25T10:11:50+0000\"").unwrap();
        assert_eq!(back.0, t);
        let early = parse("0987-01-02T03:04:05Z").unwrap();
        assert_eq!(write_utc(&early, "Z"), "0987-01-02T03:04:05Z");
    }
}
