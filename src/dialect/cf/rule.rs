//! One CF v2 rule: CC's exact validation (dispatch on `protocol`, key checks,
//! then value checks in CC's order) producing a model [`Rule`].

use super::destination::{self, CfFlags};
use super::ports;
use crate::json::{Fields, Scalar};
use crate::model::{Direction, IcmpMatch, IcmpVersion, IpList, PortSet, PortedProto, Protocol, Rule, Target};
use std::fmt;

/// One CC rule error; `Display` gives CC's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    UnsupportedProtocol,
    Missing(&'static str),
    InvalidField(String),
    InvalidDestination,
    InvalidLog,
    InvalidDescription,
    InvalidPorts,
    InvalidType,
    InvalidCode,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::UnsupportedProtocol => f.write_str("contains an unsupported protocol"),
            RuleError::Missing(k) => write!(f, "missing required field '{k}'"),
            RuleError::InvalidField(k) => write!(f, "contains the invalid field '{k}'"),
            RuleError::InvalidDestination => f.write_str("contains invalid destination"),
            RuleError::InvalidLog => f.write_str("contains invalid log value"),
            RuleError::InvalidDescription => f.write_str("contains invalid description"),
            RuleError::InvalidPorts => f.write_str("contains invalid ports"),
            RuleError::InvalidType => f.write_str("contains invalid type"),
            RuleError::InvalidCode => f.write_str("contains invalid code"),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Transport(PortedProto),
    Icmp(IcmpVersion),
    All,
}

const BASE_REQUIRED: [&str; 2] = ["protocol", "destination"];
const OPTIONAL: [&str; 2] = ["log", "description"];

impl Kind {
    fn of(fields: &Fields) -> Option<Kind> {
        match fields.get("protocol").and_then(Scalar::as_str)? {
            "tcp" => Some(Kind::Transport(PortedProto::Tcp)),
            "udp" => Some(Kind::Transport(PortedProto::Udp)),
            "icmp" => Some(Kind::Icmp(IcmpVersion::V4)),
            "icmpv6" => Some(Kind::Icmp(IcmpVersion::V6)),
            "all" => Some(Kind::All),
            _ => None,
        }
    }

    fn extra_required(self) -> &'static [&'static str] {
        match self {
            Kind::Transport(_) => &["ports"],
            Kind::Icmp(_) => &["code", "type"],
            Kind::All => &[],
        }
    }
}

/// Validate one rule, reporting every error CC would report for it.
pub fn parse(fields: &Fields, flags: CfFlags) -> Result<Rule, Vec<RuleError>> {
    let Some(kind) = Kind::of(fields) else {
        return Err(vec![RuleError::UnsupportedProtocol]);
    };
    let key_errors = check_keys(fields, kind);
    if !key_errors.is_empty() {
        return Err(key_errors);
    }
    let (target, log, description) = base_values(fields, flags)?;
    let protocol = match kind {
        Kind::All => Protocol::Any,
        Kind::Transport(p) => {
            // CC raises (HTTP 500) on a non-string `ports`; a 400 says more.
            let ranges = fields
                .get("ports")
                .and_then(Scalar::as_str)
                .and_then(ports::parse)
                .and_then(PortSet::ranges);
            Protocol::Ported(p, ranges.ok_or_else(|| vec![RuleError::InvalidPorts])?)
        }
        Kind::Icmp(v) => {
            let ty = icmp_value(fields.get("type")).ok_or(RuleError::InvalidType);
            let code = icmp_value(fields.get("code")).ok_or(RuleError::InvalidCode);
            match (ty, code) {
                (Ok(ty), Ok(code)) => Protocol::Icmp(v, IcmpMatch { ty, code }),
                (ty, code) => return Err([ty.err(), code.err()].into_iter().flatten().collect()),
            }
        }
    };
    Ok(Rule {
        direction: Direction::Egress,
        protocol,
        target,
        description,
        log,
    })
}

/// Missing required keys (in CC's order), then unknown keys (in body order).
fn check_keys(fields: &Fields, kind: Kind) -> Vec<RuleError> {
    let required = || BASE_REQUIRED.iter().chain(kind.extra_required());
    let mut errs: Vec<RuleError> = required()
        .filter(|k| !fields.contains(k))
        .map(|k| RuleError::Missing(k))
        .collect();
    let allowed = |k: &str| required().any(|r| *r == k) || OPTIONAL.contains(&k);
    errs.extend(
        fields
            .keys()
            .filter(|k| !allowed(k))
            .map(|k| RuleError::InvalidField(k.to_string())),
    );
    errs
}

type BaseValues = (Target, bool, Option<String>);

/// Destination, then log, then description; all three are checked before failing.
fn base_values(fields: &Fields, flags: CfFlags) -> Result<BaseValues, Vec<RuleError>> {
    // CC raises (HTTP 500) on a non-string destination; a 400 says more.
    let dests = fields
        .get("destination")
        .and_then(Scalar::as_str)
        .and_then(|d| destination::parse(d, flags))
        .and_then(IpList::new)
        .ok_or(RuleError::InvalidDestination);
    let log = match fields.get("log") {
        None => Ok(false),
        Some(Scalar::Bool(b)) => Ok(*b),
        Some(_) => Err(RuleError::InvalidLog),
    };
    let description = match fields.get("description") {
        None => Ok(None),
        Some(Scalar::Str(s)) => Ok(Some(s.to_string())),
        Some(_) => Err(RuleError::InvalidDescription),
    };
    match (dests, log, description) {
        (Ok(d), Ok(l), Ok(desc)) => Ok((Target::Ips(d), l, desc)),
        (d, l, desc) => Err([d.err(), l.err(), desc.err()].into_iter().flatten().collect()),
    }
}

/// ICMP type/code: a JSON integer in -1..=255; -1 means every value.
fn icmp_value(value: Option<&Scalar>) -> Option<Option<u8>> {
    match value {
        Some(Scalar::Int(-1)) => Some(None),
        Some(Scalar::Int(n)) => u8::try_from(*n).ok().map(Some),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(json: &str) -> Vec<String> {
        let fields: Fields = serde_json::from_str(json).unwrap();
        match parse(&fields, CfFlags::default()) {
            Ok(_) => vec![],
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn key_errors_come_first_and_stop_value_checks() {
        assert_eq!(
            errs(r#"{"protocol":"all","foo":1,"destination":"bogus","bar":2}"#),
            ["contains the invalid field 'foo'", "contains the invalid field 'bar'"]
        );
        assert_eq!(
            errs(r#"{"protocol":"icmp","destination":"10.0.0.0/8"}"#),
            ["missing required field 'code'", "missing required field 'type'"]
        );
    }

    #[test]
    fn base_value_errors_are_all_reported_before_ports() {
        assert_eq!(
            errs(r#"{"protocol":"tcp","destination":"x","ports":"0","log":1,"description":2}"#),
            [
                "contains invalid destination",
                "contains invalid log value",
                "contains invalid description"
            ]
        );
        assert_eq!(
            errs(r#"{"protocol":"icmp","destination":"1.1.1.1","type":"a","code":300}"#),
            ["contains invalid type", "contains invalid code"]
        );
    }

    #[test]
    fn crash_inputs_are_plain_errors() {
        assert_eq!(
            errs(r#"{"protocol":"tcp","destination":42,"ports":"80"}"#),
            ["contains invalid destination"]
        );
        assert_eq!(
            errs(r#"{"protocol":"tcp","destination":null,"ports":"80"}"#),
            ["contains invalid destination"]
        );
        assert_eq!(
            errs(r#"{"protocol":"tcp","destination":"1.1.1.1","ports":80}"#),
            ["contains invalid ports"]
        );
        assert_eq!(
            errs(r#"{"protocol":"tcp","destination":"1.1.1.1","ports":null}"#),
            ["contains invalid ports"]
        );
    }

    #[test]
    fn valid_rule_becomes_model() {
        let fields: Fields =
            serde_json::from_str(r#"{"protocol":"icmp","destination":"10.0.0.0/8","type":-1,"code":3,"log":true}"#)
                .unwrap();
        let rule = parse(&fields, CfFlags::default()).unwrap();
        assert_eq!(
            rule.protocol,
            Protocol::Icmp(
                IcmpVersion::V4,
                IcmpMatch {
                    ty: None,
                    code: Some(3)
                }
            )
        );
        assert!(rule.log);
    }
}
