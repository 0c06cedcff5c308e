//! Gcore's own rule facts: the egress port it blocks for TCP and UDP, and
//! the shape of its default rule template (every protocol egress, both
//! ethertypes, port 25 carved out of TCP and UDP, as observed).

use crate::model::{Atom, AtomDest, AtomProto, Direction, Family, NamedProto, PortRange, PortedProto};

/// The port Gcore blocks for egress TCP and UDP.
pub const SMTP_PORT: u16 = 25;

pub(crate) fn is_tcp_or_udp(p: PortedProto) -> bool {
    matches!(p, PortedProto::Tcp | PortedProto::Udp)
}

/// The protocols of "everything" for one family with `port` carved out of TCP and
/// UDP, in Gcore's enum order. Ports start at 1, as in Gcore's template.
pub fn any_template(family: Family, port: u16) -> Vec<AtomProto> {
    let mut out = Vec::new();
    for proto in NamedProto::ALL {
        if proto.only_family().is_some_and(|f| f != family) {
            continue;
        }
        match proto {
            NamedProto::Ported(p) if is_tcp_or_udp(p) => {
                let full = PortRange::new(1, u16::MAX).expect("1 <= 65535");
                out.extend(full.without(port).into_iter().map(|r| AtomProto::Ported(p, Some(r))));
            }
            other => out.push(AtomProto::whole(other)),
        }
    }
    out
}

/// Gcore's default rules when a create omits `rules`.
pub fn default_rules() -> Vec<Atom> {
    [Family::V4, Family::V6]
        .into_iter()
        .flat_map(|f| {
            any_template(f, SMTP_PORT).into_iter().map(move |proto| Atom {
                direction: Direction::Egress,
                proto,
                dest: AtomDest::Any(f),
                description: None,
                log: false,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_template_matches_gcore_default_shape() {
        // 21 protocols usable with IPv4, TCP and UDP split in two: 20 + 2 = ... count it.
        let v4 = any_template(Family::V4, SMTP_PORT);
        assert_eq!(
            v4.len(),
            20,
            "Gcore's observed template had 20 egress rules per ethertype"
        );
        assert!(v4.contains(&AtomProto::Ported(PortedProto::Tcp, PortRange::new(1, 24))));
        assert!(v4.contains(&AtomProto::Ported(PortedProto::Udp, PortRange::new(26, 65535))));
        assert!(!v4
            .iter()
            .any(|p| p.named() == Some(NamedProto::Icmp(crate::model::IcmpVersion::V6))));
        let v6 = any_template(Family::V6, SMTP_PORT);
        assert!(!v6
            .iter()
            .any(|p| p.named() == Some(NamedProto::Icmp(crate::model::IcmpVersion::V4))));
    }

    #[test]
    fn default_rules_cover_both_families() {
        assert_eq!(default_rules().len(), 20 + any_template(Family::V6, SMTP_PORT).len());
    }
}
