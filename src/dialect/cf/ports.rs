//! CF `ports` strings, parsed exactly as CC's `TransportRuleValidator.validate_port`.

use crate::model::{PortRange, PortRanges};
use smallvec::smallvec;

/// The port ranges of a `ports` string, or `None` for "contains invalid ports".
/// A range (`N-M`) needs `N < M`; a list is comma-separated single ports, and
/// Ruby's `split(',')` drops trailing empty fields, so `"80,"` is valid.
pub fn parse(ports: &str) -> Option<PortRanges> {
    if ports
        .chars()
        .any(|c| !(c.is_ascii_digit() || is_ruby_space(c) || c == '-' || c == ','))
    {
        return None;
    }
    if let Some((left, right)) = ports.split_once('-') {
        let (lo, hi) = (number(left)?, number(right)?);
        if lo < hi && valid(lo) && valid(hi) {
            return PortRange::new(lo as u16, hi as u16).map(|r| smallvec![r]);
        }
        return None;
    }
    // Ruby's `split(',')` drops trailing empty fields: trailing commas go.
    let items = ports.trim_end_matches(',');
    if items.is_empty() {
        return None;
    }
    items
        .split(',')
        .map(|item| number(item).filter(|n| valid(*n)).map(|n| PortRange::single(n as u16)))
        .collect()
}

fn is_ruby_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// `\A\s*\d+\s*\z` → the number (saturating: only its range matters).
fn number(text: &str) -> Option<u32> {
    let digits = text.trim_matches(is_ruby_space);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 6 {
        return Some(u32::MAX);
    }
    Some(significant.parse().unwrap_or(0))
}

fn valid(port: u32) -> bool {
    (1..=65535).contains(&port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(s: &str) -> Option<Vec<String>> {
        parse(s).map(|v| v.iter().map(|r| r.to_string()).collect())
    }

    #[test]
    fn accepted() {
        assert_eq!(show("80").unwrap(), ["80"]);
        assert_eq!(show(" 8080 ").unwrap(), ["8080"]);
        assert_eq!(show(" 80 - 90 ").unwrap(), ["80-90"]);
        assert_eq!(show("1-65535").unwrap(), ["1-65535"]);
        assert_eq!(show("443,80,8080").unwrap(), ["443", "80", "8080"]);
        assert_eq!(show("8080, 8081").unwrap(), ["8080", "8081"]);
        assert_eq!(show("80,").unwrap(), ["80"]);
        assert_eq!(show("080").unwrap(), ["80"]);
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            "http",
            "+80",
            "8080 8081",
            "80,,443",
            ",80",
            "80-90,100",
            "6000-5000",
            "8080-8080",
            "0",
            "65536",
            "0-100",
            ",",
            "1-2-3",
            "99999999999999999999",
            "80-",
            "-80",
        ] {
            assert!(parse(bad).is_none(), "{bad:?} must be refused");
        }
    }
}
