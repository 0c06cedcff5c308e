//! Gcore security-group rules: the wire shape, field-by-field validation into
//! model atoms (marshmallow-style messages, Neutron's cross-field checks), and
//! Gcore's policy checks (egress port 25, ICMP/ethertype pairing).

use super::error::InvalidFields;
use super::template::SMTP_PORT;
use crate::json::{Fields, Scalar};
use crate::model::{
    Atom, AtomDest, AtomProto, Direction, Family, IcmpMatch, IcmpVersion, NamedProto, PortRange, PortedProto, Uuid,
};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Gcore's cap on a rule description, in characters.
pub const MAX_DESCRIPTION: usize = 255;

/// A rule as sent in v2 create/PATCH bodies and `POST …/rules`: every field
/// explicit, so Gcore's content matching is unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSpec {
    pub direction: String,
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_range_min: Option<u16>,
    pub port_range_max: Option<u16>,
    pub remote_ip_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Which spelling of "every protocol" an endpoint takes: v2 says `null`,
/// the deprecated v1 endpoints also take `"any"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    V2,
}

const RULE_KEYS: [&str; 8] = [
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "description",
];

const MISSING: &str = "Missing data for required field.";
const NOT_NULL: &str = "Field may not be null.";
const NOT_STRING: &str = "Not a valid string.";
const NOT_INTEGER: &str = "Not a valid integer.";

/// Where a rule sits, for error paths: the body itself, or `rules.N` of a
/// list (spelled out only when there is an error to name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulePath {
    Body,
    Index(usize),
}

impl RulePath {
    /// The path of one of the rule's fields.
    pub fn field(self, field: &str) -> String {
        match self {
            RulePath::Body => field.to_string(),
            RulePath::Index(i) => format!("rules.{i}.{field}"),
        }
    }

    /// The rule's own path (`rule` for a body).
    pub fn label(self) -> String {
        match self {
            RulePath::Body => "rule".to_string(),
            RulePath::Index(i) => format!("rules.{i}"),
        }
    }
}

/// Collects per-field messages under a rule's path.
struct Collector<'a> {
    path: RulePath,
    errors: &'a mut InvalidFields,
}

impl Collector<'_> {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .entry(self.path.field(field))
            .or_default()
            .push(message.into());
    }
}

/// Parse one rule object. Field errors go to `errors` under `path`; a rule
/// whose fields are well-typed but inconsistent yields `Err(message)`.
pub fn parse(
    fields: &Fields,
    path: RulePath,
    api: ApiVersion,
    errors: &mut InvalidFields,
) -> Option<Result<Atom, String>> {
    let mut c = Collector { path, errors };
    for key in fields.keys().filter(|k| !RULE_KEYS.contains(k)) {
        c.add(key, "Unknown field.");
    }
    let direction = match fields.get("direction") {
        None => {
            c.add("direction", MISSING);
            None
        }
        Some(Scalar::Str(s)) if s == "egress" => Some(Direction::Egress),
        Some(Scalar::Str(s)) if s == "ingress" => Some(Direction::Ingress),
        Some(Scalar::Null) => {
            c.add("direction", NOT_NULL);
            None
        }
        Some(_) => {
            c.add("direction", "Must be one of: egress, ingress.");
            None
        }
    };
    let ethertype = match fields.get("ethertype") {
        None | Some(Scalar::Null) => Some(None),
        Some(Scalar::Str(s)) if s == "IPv4" => Some(Some(Family::V4)),
        Some(Scalar::Str(s)) if s == "IPv6" => Some(Some(Family::V6)),
        Some(_) => {
            c.add("ethertype", "Must be one of: IPv4, IPv6.");
            None
        }
    };
    let protocol = match fields.get("protocol") {
        None | Some(Scalar::Null) => Some(None),
        Some(Scalar::Str(s)) if api == ApiVersion::V1 && s == "any" => Some(None),
        Some(Scalar::Str(s)) => match NamedProto::from_gcore_name(s) {
            Some(p) => Some(Some(p)),
            None => {
                let names: Vec<&str> = NamedProto::ALL.iter().map(|p| p.gcore_name()).collect();
                c.add("protocol", format!("Must be one of: {}.", names.join(", ")));
                None
            }
        },
        Some(_) => {
            c.add("protocol", NOT_STRING);
            None
        }
    };
    let port_min = port(fields.get("port_range_min"), "port_range_min", &mut c);
    let port_max = port(fields.get("port_range_max"), "port_range_max", &mut c);
    let prefix_net = match fields.get("remote_ip_prefix") {
        None | Some(Scalar::Null) => Some(None),
        Some(Scalar::Str(s)) => match parse_prefix(s) {
            Some(net) => Some(Some(net)),
            None => {
                c.add(
                    "remote_ip_prefix",
                    format!("'{s}' does not appear to be an IPv4 or IPv6 network."),
                );
                None
            }
        },
        Some(_) => {
            c.add("remote_ip_prefix", NOT_STRING);
            None
        }
    };
    let group = match fields.get("remote_group_id") {
        None | Some(Scalar::Null) => Some(None),
        Some(Scalar::Str(s)) => match Uuid::parse(s) {
            Some(id) => Some(Some(id)),
            None => {
                c.add("remote_group_id", "Not a valid UUID.");
                None
            }
        },
        Some(_) => {
            c.add("remote_group_id", NOT_STRING);
            None
        }
    };
    let description = match fields.get("description") {
        None | Some(Scalar::Null) => Some(None),
        Some(Scalar::Str(s)) if s.chars().count() > MAX_DESCRIPTION => {
            c.add("description", format!("Longer than maximum length {MAX_DESCRIPTION}."));
            None
        }
        Some(Scalar::Str(s)) => Some(Some(s.to_string())),
        Some(_) => {
            c.add("description", NOT_STRING);
            None
        }
    };
    let parts = Parts {
        direction: direction?,
        ethertype: ethertype?,
        protocol: protocol?,
        port_min: port_min?,
        port_max: port_max?,
        prefix: prefix_net?,
        group: group?,
        description: description?,
    };
    Some(parts.into_atom())
}

fn port(value: Option<&Scalar>, field: &str, c: &mut Collector) -> Option<Option<u16>> {
    match value {
        None | Some(Scalar::Null) => Some(None),
        Some(Scalar::Int(n)) => match u16::try_from(*n) {
            Ok(p) => Some(Some(p)),
            Err(_) => {
                c.add(
                    field,
                    "Must be greater than or equal to 0 and less than or equal to 65535.",
                );
                None
            }
        },
        Some(Scalar::BigInt) => {
            c.add(
                field,
                "Must be greater than or equal to 0 and less than or equal to 65535.",
            );
            None
        }
        Some(_) => {
            c.add(field, NOT_INTEGER);
            None
        }
    }
}

/// A CIDR or a bare address (taken as a host network).
fn parse_prefix(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// A rule as Gcore returns it inside a group, into an atom (for backends that
/// read Gcore). `"any"` (v1's spelling) means every protocol.
pub fn atom_from_out(out: &super::wire::RuleOut) -> Result<Atom, String> {
    let direction = match out.direction.as_str() {
        "egress" => Direction::Egress,
        "ingress" => Direction::Ingress,
        other => return Err(format!("unknown direction {other:?}")),
    };
    let ethertype = match out.ethertype.as_deref() {
        None => None,
        Some("IPv4") => Some(Family::V4),
        Some("IPv6") => Some(Family::V6),
        Some(other) => return Err(format!("unknown ethertype {other:?}")),
    };
    let protocol = match out.protocol.as_deref() {
        None | Some("any") => None,
        Some(name) => Some(NamedProto::from_gcore_name(name).ok_or_else(|| format!("unknown protocol {name:?}"))?),
    };
    let prefix = match out.remote_ip_prefix.as_deref() {
        None => None,
        Some(p) => Some(parse_prefix(p).ok_or_else(|| format!("invalid remote_ip_prefix {p:?}"))?),
    };
    let group = match out.remote_group_id.as_deref() {
        None => None,
        Some(g) => Some(Uuid::parse(g).ok_or_else(|| format!("invalid remote_group_id {g:?}"))?),
    };
    Parts {
        direction,
        ethertype,
        protocol,
        port_min: out.port_range_min,
        port_max: out.port_range_max,
        prefix,
        group,
        description: out.description.clone(),
    }
    .into_atom()
}

struct Parts {
    direction: Direction,
    ethertype: Option<Family>,
    protocol: Option<NamedProto>,
    port_min: Option<u16>,
    port_max: Option<u16>,
    prefix: Option<IpNet>,
    group: Option<Uuid>,
    description: Option<String>,
}

impl Parts {
    /// Neutron's cross-field rules.
    fn into_atom(self) -> Result<Atom, String> {
        let dest = match (self.prefix, self.group) {
            (Some(_), Some(_)) => return Err("Only remote_ip_prefix or remote_group_id may be provided.".into()),
            (Some(net), None) => {
                let family = Family::of(net.addr());
                if let Some(e) = self.ethertype.filter(|e| *e != family) {
                    return Err(format!(
                        "Conflicting value ethertype {} for CIDR {net}",
                        ethertype_name(e)
                    ));
                }
                AtomDest::net(net)
            }
            (None, Some(id)) => AtomDest::Group(id, self.ethertype.unwrap_or(Family::V4)),
            (None, None) => AtomDest::Any(self.ethertype.unwrap_or(Family::V4)),
        };
        let proto = match self.protocol {
            None => {
                no_ports("any", self.port_min, self.port_max)?;
                AtomProto::Any
            }
            Some(NamedProto::Ported(p)) => AtomProto::Ported(p, port_range(p, self.port_min, self.port_max)?),
            Some(NamedProto::Icmp(v)) => AtomProto::Icmp(v, icmp_match(self.port_min, self.port_max)?),
            Some(NamedProto::Bare(b)) => {
                no_ports(NamedProto::Bare(b).gcore_name(), self.port_min, self.port_max)?;
                AtomProto::Bare(b)
            }
        };
        Ok(Atom {
            direction: self.direction,
            proto,
            dest,
            description: self.description,
            log: false,
        })
    }
}

fn no_ports(name: &str, min: Option<u16>, max: Option<u16>) -> Result<(), String> {
    match (min, max) {
        (None, None) => Ok(()),
        _ => Err(format!(
            "Invalid protocol {name} for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP protocols."
        )),
    }
}

fn port_range(p: PortedProto, min: Option<u16>, max: Option<u16>) -> Result<Option<PortRange>, String> {
    match (min, max) {
        (None, None) => Ok(None),
        (Some(lo), Some(hi)) => PortRange::new(lo, hi).map(Some).ok_or_else(|| {
            format!(
                "For {} protocols, port_range_min must be <= port_range_max",
                NamedProto::Ported(p).gcore_name().to_uppercase()
            )
        }),
        _ => Err("port_range_min and port_range_max must both be set or both be null.".into()),
    }
}

/// Neutron's ICMP convention: `port_range_min` is the type, `max` the code.
fn icmp_match(min: Option<u16>, max: Option<u16>) -> Result<IcmpMatch, String> {
    let byte = |field: &str, v: u16| {
        u8::try_from(v).map_err(|_| format!("Invalid value for ICMP field ({field}): {v}. It must be 0 to 255."))
    };
    match (min, max) {
        (None, Some(code)) => Err(format!(
            "ICMP code (port-range-max) {code} is provided but ICMP type (port-range-min) is missing."
        )),
        (ty, code) => Ok(IcmpMatch {
            ty: ty.map(|t| byte("type", t)).transpose()?,
            code: code.map(|c| byte("code", c)).transpose()?,
        }),
    }
}

pub fn ethertype_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

/// Gcore's checks that do not depend on the account: protocol/ethertype pairing
/// and the description cap. `Err` carries Gcore's message.
pub fn check_atom(atom: &Atom) -> Result<(), String> {
    let family = atom.dest.family();
    if let Some(p) = atom.proto.named() {
        if p.only_family().is_some_and(|f| f != family) {
            return Err(match p {
                NamedProto::Icmp(IcmpVersion::V4) => {
                    "Protocol icmp is prohibited for ethertype IPv6. You should specify ipv6-icmp for ethertype: IPv6"
                        .to_string()
                }
                other => format!(
                    "Protocol {} is prohibited for ethertype {}.",
                    other.gcore_name(),
                    ethertype_name(family)
                ),
            });
        }
    }
    if let AtomProto::Icmp(
        _,
        IcmpMatch {
            ty: None,
            code: Some(code),
        },
    ) = atom.proto
    {
        return Err(format!(
            "ICMP code (port-range-max) {code} is provided but ICMP type (port-range-min) is missing."
        ));
    }
    if atom
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        return Err(format!("description: Longer than maximum length {MAX_DESCRIPTION}."));
    }
    Ok(())
}

/// Whether Gcore's egress block on TCP/UDP port 25 refuses this atom.
pub fn opens_smtp(atom: &Atom) -> bool {
    if atom.direction != Direction::Egress {
        return false;
    }
    match atom.proto {
        AtomProto::Any => true,
        AtomProto::Ported(PortedProto::Tcp | PortedProto::Udp, None) => true,
        AtomProto::Ported(PortedProto::Tcp | PortedProto::Udp, Some(r)) => r.contains(SMTP_PORT),
        _ => false,
    }
}

/// Gcore's message for [`opens_smtp`].
pub const SMTP_BLOCKED: &str = "Opening egress port 25 for TCP or UDP traffic is prohibited. Please, contact support.";

/// The wire form of an atom.
pub fn to_spec(atom: &Atom) -> RuleSpec {
    let (protocol, min, max) = proto_fields(atom.proto);
    let (prefix, group) = match &atom.dest {
        AtomDest::Any(_) => (None, None),
        AtomDest::Net(n) => (Some(n.to_string()), None),
        AtomDest::Group(id, _) => (None, Some(id.to_string())),
    };
    RuleSpec {
        direction: direction_name(atom.direction).to_string(),
        ethertype: ethertype_name(atom.dest.family()).to_string(),
        protocol: protocol.map(|p| p.gcore_name().to_string()),
        port_range_min: min,
        port_range_max: max,
        remote_ip_prefix: prefix,
        remote_group_id: group,
        description: atom.description.clone(),
    }
}

/// Gcore's protocol name and port (or ICMP type and code) fields of an atom.
pub(super) fn proto_fields(proto: AtomProto) -> (Option<NamedProto>, Option<u16>, Option<u16>) {
    match proto {
        AtomProto::Any => (None, None, None),
        AtomProto::Ported(p, r) => (Some(NamedProto::Ported(p)), r.map(|r| r.lo()), r.map(|r| r.hi())),
        AtomProto::Icmp(v, m) => (Some(NamedProto::Icmp(v)), m.ty.map(u16::from), m.code.map(u16::from)),
        AtomProto::Bare(b) => (Some(NamedProto::Bare(b)), None, None),
    }
}

pub(super) fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Egress => "egress",
        Direction::Ingress => "ingress",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(json: &str) -> Result<Atom, String> {
        let fields: Fields = serde_json::from_str(json).unwrap();
        let mut errors = InvalidFields::new();
        match parse(&fields, RulePath::Index(0), ApiVersion::V2, &mut errors) {
            Some(r) => r,
            None => Err(format!("{errors:?}")),
        }
    }

    #[test]
    fn field_errors_are_named() {
        let e = parse_one(r#"{"protocol":"any","port_range_min":"80","x":1}"#).unwrap_err();
        assert!(e.contains("rules.0.direction"), "{e}");
        assert!(e.contains("rules.0.protocol"), "{e}");
        assert!(e.contains("rules.0.port_range_min"), "{e}");
        assert!(e.contains("rules.0.x"), "{e}");
    }

    #[test]
    fn neutron_cross_field_rules() {
        let cases = [
            (
                r#"{"direction":"egress","protocol":"tcp","port_range_min":80}"#,
                "both be set",
            ),
            (
                r#"{"direction":"egress","protocol":"tcp","port_range_min":90,"port_range_max":80}"#,
                "port_range_min must be <=",
            ),
            (
                r#"{"direction":"egress","protocol":"gre","port_range_min":1,"port_range_max":2}"#,
                "Invalid protocol gre",
            ),
            (
                r#"{"direction":"egress","protocol":"icmp","port_range_max":0}"#,
                "ICMP type (port-range-min) is missing",
            ),
            (
                r#"{"direction":"egress","protocol":"icmp","port_range_min":256}"#,
                "It must be 0 to 255",
            ),
            (
                r#"{"direction":"egress","ethertype":"IPv6","remote_ip_prefix":"10.0.0.0/8"}"#,
                "Conflicting value ethertype IPv6",
            ),
        ];
        for (json, want) in cases {
            let e = parse_one(json).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
    }

    #[test]
    fn policy_checks() {
        let icmp6 = parse_one(r#"{"direction":"ingress","protocol":"icmp","ethertype":"IPv6"}"#).unwrap();
        assert!(check_atom(&icmp6)
            .unwrap_err()
            .starts_with("Protocol icmp is prohibited for ethertype IPv6"));
        let smtp =
            parse_one(r#"{"direction":"egress","protocol":"tcp","port_range_min":1,"port_range_max":65535}"#).unwrap();
        assert!(opens_smtp(&smtp));
        let any = parse_one(r#"{"direction":"egress"}"#).unwrap();
        assert!(opens_smtp(&any));
        let ingress = parse_one(r#"{"direction":"ingress","protocol":"tcp"}"#).unwrap();
        assert!(!opens_smtp(&ingress));
    }

    #[test]
    fn spec_round_trip_is_lossless() {
        let json = r#"{"direction":"egress","ethertype":"IPv4","protocol":"icmp","port_range_min":8,"port_range_max":0,"remote_ip_prefix":"10.0.0.0/8","description":"ping"}"#;
        let atom = parse_one(json).unwrap();
        let spec = to_spec(&atom);
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            serde_json::from_str::<serde_json::Value>(json).unwrap()
        );
    }
}
