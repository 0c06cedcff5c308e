//! Carving one egress port out of rules, and recognising the carved shapes.
//!
//! Gcore refuses egress TCP/UDP rules that cover port 25. A CF rule that covers
//! it is narrowed around the port: `tcp 1-65535` becomes `1-24` and `26-65535`,
//! and `all` becomes one rule per protocol with TCP and UDP split the same way
//! (the shape of Gcore's own default egress template). `compact` undoes both
//! shapes so a CF caller reads back the rule it wrote.

use super::ip::Family;
use super::port::PortRange;
use super::proto::{NamedProto, PortedProto};
use super::rule::{Atom, AtomProto, Direction};

/// The port Gcore blocks for egress TCP and UDP.
pub const SMTP_PORT: u16 = 25;

/// What carving did to one atom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carved {
    /// The atom does not cover the port.
    Untouched,
    /// The atom was replaced by these (narrower) atoms; empty when nothing is left.
    Replaced(Vec<Atom>),
}

fn is_tcp_or_udp(p: PortedProto) -> bool {
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

/// The template after the split TCP/UDP halves are joined again.
pub(super) fn joined_any_template(family: Family) -> Vec<AtomProto> {
    any_template(family, SMTP_PORT)
        .into_iter()
        .filter_map(|p| match p {
            AtomProto::Ported(t, Some(r)) if is_tcp_or_udp(t) => {
                (r.lo() == 1).then(|| AtomProto::Ported(t, PortRange::new(1, u16::MAX)))
            }
            other => Some(other),
        })
        .collect()
}

/// Carve `port` out of an egress atom.
pub fn carve(atom: &Atom, port: u16) -> Carved {
    if atom.direction != Direction::Egress {
        return Carved::Untouched;
    }
    let with = |proto| Atom { proto, ..atom.clone() };
    match atom.proto {
        AtomProto::Any => Carved::Replaced(any_template(atom.dest.family(), port).into_iter().map(with).collect()),
        AtomProto::Ported(p, range) if is_tcp_or_udp(p) => {
            let range = range.unwrap_or(PortRange::new(0, u16::MAX).expect("0 <= 65535"));
            if !range.contains(port) {
                return Carved::Untouched;
            }
            let parts = range.without(port);
            Carved::Replaced(parts.into_iter().map(|r| with(AtomProto::Ported(p, Some(r)))).collect())
        }
        _ => Carved::Untouched,
    }
}

/// Joins `a` and `b` when they are the two halves `carve` made of one range.
pub(super) fn rejoin(a: &Atom, b: &Atom, port: u16) -> Option<Atom> {
    let (AtomProto::Ported(pa, Some(ra)), AtomProto::Ported(pb, Some(rb))) = (a.proto, b.proto) else {
        return None;
    };
    let halves = pa == pb
        && is_tcp_or_udp(pa)
        && a.direction == Direction::Egress
        && port > 0
        && ra.hi() == port - 1
        && u32::from(rb.lo()) == u32::from(port) + 1
        && a.dest == b.dest
        && a.description == b.description
        && a.log == b.log;
    halves.then(|| Atom {
        proto: AtomProto::Ported(pa, PortRange::new(ra.lo(), rb.hi())),
        ..a.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rule::AtomDest;

    fn egress(proto: AtomProto) -> Atom {
        Atom {
            direction: Direction::Egress,
            proto,
            dest: AtomDest::net("0.0.0.0/0".parse().unwrap()),
            description: None,
            log: false,
        }
    }

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
    fn carve_splits_and_drops() {
        let tcp = |lo, hi| egress(AtomProto::Ported(PortedProto::Tcp, PortRange::new(lo, hi)));
        assert_eq!(carve(&tcp(80, 90), 25), Carved::Untouched);
        assert_eq!(carve(&tcp(25, 25), 25), Carved::Replaced(vec![]));
        let Carved::Replaced(parts) = carve(&tcp(1, 65535), 25) else {
            panic!()
        };
        assert_eq!(parts, vec![tcp(1, 24), tcp(26, 65535)]);
        assert_eq!(rejoin(&parts[0], &parts[1], 25), Some(tcp(1, 65535)));
        let sctp = egress(AtomProto::Ported(PortedProto::Sctp, PortRange::new(1, 65535)));
        assert_eq!(carve(&sctp, 25), Carved::Untouched);
        let mut ingress = tcp(1, 65535);
        ingress.direction = Direction::Ingress;
        assert_eq!(carve(&ingress, 25), Carved::Untouched);
    }
}
