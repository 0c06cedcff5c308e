//! CF rule destinations, parsed exactly as the Cloud Controller's
//! `RuleValidator` does (CC `lib/cloud_controller/rule_validator.rb`).
//!
//! Quirks kept on purpose, because CC has them: `a-b` is split with Ruby's
//! `split('-')`, which drops trailing empty fields (so `1.1.1.1-` is the single
//! address); netmask prefixes (`10.0.0.0/255.0.0.0`) parse as Ruby `IPAddr`
//! parses them; leading zeros in IPv4 octets are refused (current CC).

use crate::model::{IpRange, IpRanges};
use ipnet::IpNet;
use smallvec::smallvec;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The CC feature flags that change which destinations are valid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CfFlags {
    /// `cc.security_groups.enable_comma_delimited_destinations`
    pub comma_delimited_destinations: bool,
    /// `cc.enable_ipv6`
    pub ipv6: bool,
}

/// The destinations of a rule, or `None` when CC says "contains invalid destination".
pub fn parse(destination: &str, flags: CfFlags) -> Option<IpRanges> {
    if destination.is_empty() || destination.chars().any(is_ruby_space) {
        return None;
    }
    if destination.contains(',') {
        if !flags.comma_delimited_destinations {
            return None;
        }
        return destination.split(',').map(|part| parse_one(part, flags)).collect();
    }
    parse_one(destination, flags).map(|r| smallvec![r])
}

/// One address as CC's `parse_ip` reads it: IPv4, or IPv6 when enabled;
/// with `prefix`, a CIDR (its network address is returned), else a plain
/// address only (a range endpoint).
pub fn ip_of(text: &str, flags: CfFlags, prefix: bool) -> Option<IpAddr> {
    if !prefix {
        if text.contains('/') {
            return None;
        }
        return match parse_v4(text) {
            Some(v4) => Some(IpAddr::V4(v4)),
            None if flags.ipv6 => parse_v6(text).map(IpAddr::V6),
            None => None,
        };
    }
    parse_net(text, flags).map(|n| n.network())
}

/// Ruby's `/\s/`: ASCII whitespace only.
fn is_ruby_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

fn parse_one(text: &str, flags: CfFlags) -> Option<IpRange> {
    // Ruby's `split('-')` drops trailing empty fields: trailing dashes go.
    let text = text.trim_end_matches('-');
    match text.split_once('-') {
        None => parse_net(text, flags).map(IpRange::from_net),
        Some((_, b)) if b.contains('-') => None,
        Some((a, b)) => {
            let (a, b) = match (parse_v4(a), parse_v4(b)) {
                (Some(a), Some(b)) => (IpAddr::V4(a), IpAddr::V4(b)),
                _ if flags.ipv6 => (IpAddr::V6(parse_v6(a)?), IpAddr::V6(parse_v6(b)?)),
                _ => return None,
            };
            IpRange::new(a, b)
        }
    }
}

fn parse_v4(text: &str) -> Option<Ipv4Addr> {
    // std refuses leading zeros and anything but four decimal octets, as IPAddr does.
    text.parse().ok()
}

fn parse_v6(text: &str) -> Option<Ipv6Addr> {
    text.parse().ok()
}

/// An address or CIDR; the prefix may be a length or a contiguous netmask.
fn parse_net(text: &str, flags: CfFlags) -> Option<IpNet> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    if let Some(v4) = parse_v4(addr) {
        let len = match prefix {
            None => 32,
            Some(p) => prefix_len(p, 32, |m| parse_v4(m).map(|m| u128::from(u32::from(m)) << 96))?,
        };
        return IpNet::new(IpAddr::V4(v4), len).ok();
    }
    if !flags.ipv6 {
        return None;
    }
    let v6 = parse_v6(addr)?;
    let len = match prefix {
        None => 128,
        Some(p) => prefix_len(p, 128, |m| parse_v6(m).map(u128::from))?,
    };
    IpNet::new(IpAddr::V6(v6), len).ok()
}

/// A prefix written as digits (`24`, even `024`) or as a netmask whose set bits
/// are contiguous; `mask` yields the mask left-aligned in 128 bits.
fn prefix_len(text: &str, max: u8, mask: impl Fn(&str) -> Option<u128>) -> Option<u8> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let trimmed = text.trim_start_matches('0');
        if trimmed.len() > 3 {
            return None;
        }
        let n: u16 = if trimmed.is_empty() { 0 } else { trimmed.parse().ok()? };
        return (n <= u16::from(max)).then_some(n as u8);
    }
    let bits = mask(text)?;
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0 && ones <= u32::from(max)).then_some(ones as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFF: CfFlags = CfFlags {
        comma_delimited_destinations: false,
        ipv6: false,
    };
    const ALL: CfFlags = CfFlags {
        comma_delimited_destinations: true,
        ipv6: true,
    };

    fn ok(s: &str, flags: CfFlags) -> Vec<String> {
        parse(s, flags)
            .unwrap_or_else(|| panic!("{s} should parse"))
            .iter()
            .map(|r| r.to_string())
            .collect()
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(ok("1.1.1.1", OFF), ["1.1.1.1"]);
        assert_eq!(ok("192.168.10.2/24", OFF), ["192.168.10.0/24"]);
        assert_eq!(ok("10.0.0.0/255.0.0.0", OFF), ["10.0.0.0/8"]);
        assert_eq!(ok("10.0.0.0/08", OFF), ["10.0.0.0/8"]);
        assert_eq!(ok("1.1.1.1-2.2.2.2", OFF), ["1.1.1.1-2.2.2.2"]);
        assert_eq!(ok("1.1.1.1-1.1.1.1", OFF), ["1.1.1.1"]);
        assert_eq!(ok("1.1.1.1-", OFF), ["1.1.1.1"], "Ruby split drops trailing empties");
        assert_eq!(ok("10.10.10.10,1.1.1.1-2.2.2.2,0.0.0.0/0", ALL).len(), 3);
        assert_eq!(ok("2001:db8:0000:0000::01", ALL), ["2001:db8::1"]);
        assert_eq!(ok("2001:db8::/ffff:ffff::", ALL), ["2001:db8::/32"]);
    }

    #[test]
    fn refused_forms() {
        for bad in [
            "",
            " 1.1.1.1",
            "0.0.0.0/0 ",
            "0.0.0.0 - 0.0.0.4",
            "1.1.1.1-2.2.2.2-3.3.3.3",
            "1.1.1.1-2.2.2.2/30",
            "192.168.10.2-192.168.105",
            "asdf",
            "0.0.0.0/33",
            "192.168.10.2/240",
            "999.999.999.999",
            "1.2",
            "010.0.0.53",
            "10.000.0.0/24",
            "2.2.2.2-1.1.1.1",
            "-1.1.1.1",
            "10.0.0.0/",
            "10.0.0.0/255.0.255.0",
            "10.0.0.0/0033",
        ] {
            assert!(parse(bad, ALL).is_none(), "{bad:?} must be refused");
        }
        assert!(parse("10.10.10.10,", OFF).is_none());
        assert!(parse("10.10.10.10,,11.11.11.11", ALL).is_none());
        assert!(parse("2001:db8::/32", OFF).is_none());
        assert!(parse("10.0.0.1-2001:db8::1", ALL).is_none());
        assert!(parse("::ffff:010.0.0.1", ALL).is_none());
    }
}
