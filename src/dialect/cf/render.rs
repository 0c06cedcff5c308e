//! Model values rendered as CF v2 wire values: rules, resources, pages.

use super::destination::CfFlags;
use crate::model::{
    CfAttrs, Direction, Family, GroupMeta, IcmpVersion, PortRange, PortSet, PortedProto, Protocol, Rule, Target,
};
use chrono::{DateTime, Utc};
use compact_str::{CompactString, ToCompactString};
use serde::{Deserialize, Serialize};
use smallvec::{smallvec, SmallVec};
use std::fmt;
use std::fmt::Write as _;

/// A CF v2 rule as CC stores and returns it; absent keys stay absent. Short
/// values (protocols, addresses, port lists) are kept inline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CfRule {
    pub protocol: CompactString,
    pub destination: CompactString,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<CompactString>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<i16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Why a model rule has no CF form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unexpressible {
    Ingress,
    RemoteGroup,
    Protocol(&'static str),
    PortZero,
}

impl fmt::Display for Unexpressible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unexpressible::Ingress => f.write_str("is an ingress rule; CF security groups hold egress rules only"),
            Unexpressible::RemoteGroup => f.write_str("targets a remote security group; CF rules need IP destinations"),
            Unexpressible::Protocol(p) => write!(f, "uses protocol '{p}', which CF cannot express"),
            Unexpressible::PortZero => f.write_str("allows only port 0, which CF cannot express"),
        }
    }
}

/// Render model rules as CF rules. One model rule may need several CF rules
/// (a port list mixed with ranges; several destinations without comma lists).
/// Errors name the 1-based model rule number.
pub fn rules(rules: &[Rule], flags: CfFlags) -> Result<Vec<CfRule>, Vec<(usize, Unexpressible)>> {
    let mut out = Vec::with_capacity(rules.len());
    let mut errors = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        if let Err(e) = rule(r, flags, &mut out) {
            errors.push((i + 1, e));
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Whether CF can hold `rule` at all: egress to addresses, with a protocol CF
/// names, and a port CF admits (CF ports start at 1).
pub fn expressible(rule: &Rule) -> Result<(), Unexpressible> {
    if rule.direction == Direction::Ingress {
        return Err(Unexpressible::Ingress);
    }
    if let Target::Group(..) = rule.target {
        return Err(Unexpressible::RemoteGroup);
    }
    match &rule.protocol {
        Protocol::Any | Protocol::Icmp(..) => Ok(()),
        Protocol::Ported(PortedProto::Tcp | PortedProto::Udp, PortSet::Any) => Ok(()),
        Protocol::Ported(PortedProto::Tcp | PortedProto::Udp, PortSet::Ranges(r)) => {
            if r.as_slice().iter().all(|r| r.hi() == 0) {
                Err(Unexpressible::PortZero)
            } else {
                Ok(())
            }
        }
        other => Err(Unexpressible::Protocol(other.named().map_or("any", |p| p.gcore_name()))),
    }
}

/// (protocol, ports, type, code) of one CF rule.
type Shape = (&'static str, Option<CompactString>, Option<i16>, Option<i16>);

/// The CF rules of one model rule, appended to `out` (nothing is appended
/// when it has no CF form). Values are `CompactString`s and lists `SmallVec`s
/// with room for one: the usual rule (one destination, one port list) renders
/// without a heap allocation but its description.
fn rule(rule: &Rule, flags: CfFlags, out: &mut Vec<CfRule>) -> Result<(), Unexpressible> {
    expressible(rule)?;
    let destinations: SmallVec<[CompactString; 1]> = match &rule.target {
        Target::Group(..) => return Err(Unexpressible::RemoteGroup),
        Target::Any(Family::V4) => smallvec![CompactString::const_new("0.0.0.0/0")],
        Target::Any(Family::V6) => smallvec![CompactString::const_new("::/0")],
        Target::Ips(list) if flags.comma_delimited_destinations => {
            let mut joined = CompactString::default();
            for (i, range) in list.as_slice().iter().enumerate() {
                let comma = if i == 0 { "" } else { "," };
                // Writing into a string cannot fail.
                let _ = write!(joined, "{comma}{range}");
            }
            smallvec![joined]
        }
        Target::Ips(list) => list.as_slice().iter().map(ToCompactString::to_compact_string).collect(),
    };
    // Protocol variants, each to be paired with every destination.
    let shapes: SmallVec<[Shape; 1]> = match &rule.protocol {
        Protocol::Any => smallvec![("all", None, None, None)],
        Protocol::Ported(p @ (PortedProto::Tcp | PortedProto::Udp), ports) => {
            let name = if *p == PortedProto::Tcp { "tcp" } else { "udp" };
            port_strings(ports)?
                .into_iter()
                .map(|s| (name, Some(s), None, None))
                .collect()
        }
        Protocol::Icmp(v, m) => {
            let name = if *v == IcmpVersion::V4 { "icmp" } else { "icmpv6" };
            let value = |x: Option<u8>| Some(x.map_or(-1, i16::from));
            smallvec![(name, None, value(m.ty), value(m.code))]
        }
        other => return Err(Unexpressible::Protocol(other.named().map_or("any", |p| p.gcore_name()))),
    };
    out.reserve(destinations.len() * shapes.len());
    for destination in &destinations {
        for (protocol, ports, icmp_type, code) in &shapes {
            out.push(CfRule {
                protocol: CompactString::const_new(protocol),
                destination: destination.clone(),
                ports: ports.clone(),
                icmp_type: *icmp_type,
                code: *code,
                log: rule.log.then_some(true),
                description: rule.description.clone(),
            });
        }
    }
    Ok(())
}

/// CF `ports` strings: single ports share one list (`"53, 5353"`, the spelling
/// of CC's own docs), each true range stands alone (CF cannot mix them).
fn port_strings(ports: &PortSet) -> Result<SmallVec<[CompactString; 1]>, Unexpressible> {
    let all = [PortRange::new(1, u16::MAX).expect("1 <= 65535")];
    let ranges = match ports {
        PortSet::Any => &all[..],
        PortSet::Ranges(r) => r.as_slice(),
    };
    let mut out: SmallVec<[CompactString; 1]> = SmallVec::new();
    let mut singles: Option<usize> = None;
    // CF ports start at 1: a range from 0 loses its 0, a lone 0 goes.
    for r in ranges.iter().filter_map(|r| PortRange::new(r.lo().max(1), r.hi())) {
        // Writing into a string cannot fail.
        match singles {
            Some(i) if r.is_single() => {
                let _ = write!(out[i], ", {r}");
            }
            None if r.is_single() => {
                singles = Some(out.len());
                out.push(r.to_compact_string());
            }
            _ => out.push(r.to_compact_string()),
        }
    }
    if out.is_empty() {
        return Err(Unexpressible::PortZero);
    }
    Ok(out)
}

/// CC timestamps: ISO-8601 UTC, second precision.
pub fn timestamp(t: &DateTime<Utc>) -> String {
    crate::timefmt::write_utc(t, "Z")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub guid: String,
    pub url: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource<E> {
    pub metadata: Metadata,
    pub entity: E,
}

/// The entity of `/v2/security_groups` resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupEntity {
    pub name: String,
    pub rules: Vec<CfRule>,
    pub running_default: bool,
    pub staging_default: bool,
    pub spaces_url: String,
    pub staging_spaces_url: String,
}

/// The reduced entity of `/v2/config/*_security_groups` resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefaultsEntity {
    pub name: String,
    pub rules: Vec<CfRule>,
    pub running_default: bool,
    pub staging_default: bool,
}

/// CC's paginated envelope; the urls are relative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub total_results: usize,
    pub total_pages: usize,
    pub prev_url: Option<String>,
    pub next_url: Option<String>,
    pub resources: Vec<T>,
}

fn metadata(group: &GroupMeta, url: String) -> Metadata {
    Metadata {
        guid: group.id.to_string(),
        url,
        created_at: timestamp(&group.created_at),
        updated_at: timestamp(&group.updated_at),
    }
}

/// A group as a `/v2/security_groups/:guid` resource; `rules` already rendered.
pub fn group_resource(group: &GroupMeta, attrs: &CfAttrs, rules: Vec<CfRule>) -> Resource<GroupEntity> {
    let base = format!("/v2/security_groups/{}", group.id);
    Resource {
        metadata: metadata(group, base.clone()),
        entity: GroupEntity {
            name: group.name.clone(),
            rules,
            running_default: attrs.running_default,
            staging_default: attrs.staging_default,
            spaces_url: format!("{base}/spaces"),
            staging_spaces_url: format!("{base}/staging_spaces"),
        },
    }
}

/// A group as a `/v2/config/{running,staging}_security_groups` resource.
pub fn defaults_resource(
    group: &GroupMeta,
    attrs: &CfAttrs,
    rules: Vec<CfRule>,
    lifecycle: &str,
) -> Resource<DefaultsEntity> {
    Resource {
        metadata: metadata(group, format!("/v2/config/{lifecycle}_security_groups/{}", group.id)),
        entity: DefaultsEntity {
            name: group.name.clone(),
            rules,
            running_default: attrs.running_default,
            staging_default: attrs.staging_default,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IcmpMatch, IpList, IpRange};

    fn egress(protocol: Protocol, target: Target) -> Rule {
        Rule {
            direction: Direction::Egress,
            protocol,
            target,
            description: None,
            log: false,
        }
    }

    fn ips(list: &[&str]) -> Target {
        let ranges: Vec<_> = list.iter().map(|s| IpRange::from_net(s.parse().unwrap())).collect();
        Target::Ips(IpList::new(ranges).unwrap())
    }

    #[test]
    fn mixed_ports_and_many_destinations_split() {
        let ports = PortSet::ranges(vec![
            PortRange::single(53),
            PortRange::new(1000, 2000).unwrap(),
            PortRange::single(5353),
        ])
        .unwrap();
        let r = egress(
            Protocol::Ported(PortedProto::Udp, ports),
            ips(&["10.0.0.0/8", "192.168.0.0/16"]),
        );
        let out = rules(std::slice::from_ref(&r), CfFlags::default()).unwrap();
        let got: Vec<(String, String)> = out
            .iter()
            .map(|r| (r.destination.to_string(), r.ports.as_ref().unwrap().to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("10.0.0.0/8".into(), "53, 5353".into()),
                ("10.0.0.0/8".into(), "1000-2000".into()),
                ("192.168.0.0/16".into(), "53, 5353".into()),
                ("192.168.0.0/16".into(), "1000-2000".into()),
            ]
        );
        let flags = CfFlags {
            comma_delimited_destinations: true,
            ipv6: false,
        };
        assert_eq!(rules(&[r], flags).unwrap()[0].destination, "10.0.0.0/8,192.168.0.0/16");
    }

    #[test]
    fn icmp_any_is_minus_one_and_errors_name_the_rule() {
        let r = egress(
            Protocol::Icmp(
                IcmpVersion::V4,
                IcmpMatch {
                    ty: Some(8),
                    code: None,
                },
            ),
            Target::Any(Family::V4),
        );
        let out = rules(&[r], CfFlags::default()).unwrap();
        assert_eq!(
            serde_json::to_value(&out[0]).unwrap(),
            serde_json::json!({"protocol":"icmp","destination":"0.0.0.0/0","type":8,"code":-1})
        );
        let mut ingress = egress(Protocol::Any, Target::Any(Family::V4));
        ingress.direction = Direction::Ingress;
        let gre = egress(Protocol::Bare(crate::model::BareProto::Gre), Target::Any(Family::V4));
        let errs = rules(
            &[egress(Protocol::Any, Target::Any(Family::V6)), ingress, gre],
            CfFlags::default(),
        )
        .unwrap_err();
        assert_eq!(
            errs,
            vec![(2, Unexpressible::Ingress), (3, Unexpressible::Protocol("gre"))]
        );
    }
}
