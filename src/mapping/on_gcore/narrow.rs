//! Carving one egress port out of rules, and recognising the carved shapes.
//!
//! Gcore refuses egress TCP/UDP rules that cover port 25. A CF rule that covers
//! it is narrowed around the port: `tcp 1-65535` becomes `1-24` and `26-65535`,
//! and `all` becomes one rule per protocol with TCP and UDP split the same way
//! (the shape of Gcore's own default egress template). Folding undoes both
//! shapes (`super::fold`) so a CF caller reads back the rule it wrote.

use crate::model::{Atom, AtomProto, Direction, Family, PortRange};

use crate::dialect::gcore::template::is_tcp_or_udp;
pub use crate::dialect::gcore::template::{any_template, SMTP_PORT};

/// What carving did to one atom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carved {
    /// The atom does not cover the port.
    Untouched,
    /// The atom was replaced by these (narrower) atoms; empty when nothing is left.
    Replaced(Vec<Atom>),
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
    use crate::model::{AtomDest, PortedProto};

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
