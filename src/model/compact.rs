//! Folding atoms (one network, one port range each) back into compact rules.
//!
//! The inverse of [`Rule::atoms`] for the forms people write: runs of
//! adjacent atoms that differ only in destination and port are factored into
//! one rule (destinations × ports), and touching networks that form a minimal
//! cover are joined into one address range. Linear in the input apart from
//! the bounded (≤ 256 networks) cover checks.

use super::ip::IpRange;
use super::port::{PortRange, PortSet};
use super::proto::{BareProto, IcmpVersion, PortedProto};
use super::rule::{Atom, AtomDest, AtomProto, Direction, IcmpMatch, IpList, Protocol, Rule, Target};
use ahash::{AHashMap, AHashSet};
use ipnet::IpNet;

// aHash throughout: a 16 MB group is ~300,000 atoms, each hashed a few times.

/// Compact atoms into rules that allow exactly what the atoms allow.
pub fn compact(atoms: &[Atom]) -> Vec<Rule> {
    compact_unique(&unique(atoms))
}

/// [`compact`] of atoms already without repeats (see [`unique`]).
pub fn compact_unique(atoms: &[Atom]) -> Vec<Rule> {
    factor(atoms)
}

/// The atoms without repeats, first occurrences in order.
pub fn unique(atoms: &[Atom]) -> Vec<Atom> {
    let mut seen = AHashSet::with_capacity(atoms.len());
    // Sized up front: `filter` hides the length, and growing by doubling
    // copies a 16 MB group's atoms several times.
    let mut out = Vec::with_capacity(atoms.len());
    out.extend(atoms.iter().filter(|a| seen.insert(*a)).cloned());
    out
}

/// What must be equal for two atoms to belong to one compact rule.
#[derive(PartialEq, Eq)]
enum ProtoShape {
    Any,
    Ported(PortedProto, bool),
    Icmp(IcmpVersion, IcmpMatch),
    Bare(BareProto),
}

#[derive(PartialEq, Eq)]
struct Shape<'a> {
    direction: Direction,
    proto: ProtoShape,
    /// `None` for networks (which merge), else the one non-network destination.
    fixed_dest: Option<&'a AtomDest>,
    description: &'a Option<String>,
    log: bool,
}

fn shape(a: &Atom) -> Shape<'_> {
    let proto = match a.proto {
        AtomProto::Any => ProtoShape::Any,
        AtomProto::Ported(p, r) => ProtoShape::Ported(p, r.is_none()),
        AtomProto::Icmp(v, m) => ProtoShape::Icmp(v, m),
        AtomProto::Bare(b) => ProtoShape::Bare(b),
    };
    Shape {
        direction: a.direction,
        proto,
        fixed_dest: (!matches!(a.dest, AtomDest::Net(_))).then_some(&a.dest),
        description: &a.description,
        log: a.log,
    }
}

fn factor(atoms: &[Atom]) -> Vec<Rule> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < atoms.len() {
        let head = shape(&atoms[start]);
        let mut end = start + 1;
        while end < atoms.len() && shape(&atoms[end]) == head {
            end += 1;
        }
        factor_block(&atoms[start..end], &mut out);
        start = end;
    }
    out
}

fn port_of(a: &Atom) -> Option<PortRange> {
    match a.proto {
        AtomProto::Ported(_, r) => r,
        _ => None,
    }
}

/// One block of atoms of equal shape: group ports per destination, then runs of
/// destinations with equal port lists become one rule each.
fn factor_block(block: &[Atom], out: &mut Vec<Rule>) {
    let head = &block[0];
    // At most one destination per atom; most atoms have a destination of their own.
    let mut dests: Vec<(&AtomDest, Ports)> = Vec::with_capacity(block.len());
    let mut index: AHashMap<&AtomDest, usize> = AHashMap::with_capacity(block.len());
    for a in block {
        // Atoms come destination-major: a repeat is usually the last one seen.
        let i = match dests.last() {
            Some((d, _)) if *d == &a.dest => dests.len() - 1,
            _ => *index.entry(&a.dest).or_insert_with(|| {
                dests.push((&a.dest, Ports::default()));
                dests.len() - 1
            }),
        };
        if let Some(r) = port_of(a) {
            dests[i].1.add(r);
        }
    }
    let mut run_start = 0;
    while run_start < dests.len() {
        let mut run_end = run_start + 1;
        while run_end < dests.len() && dests[run_end].1 == dests[run_start].1 {
            run_end += 1;
        }
        let run = &dests[run_start..run_end];
        let target = match run[0].0 {
            AtomDest::Any(f) => Target::Any(*f),
            AtomDest::Group(id, f) => Target::Group(id.clone(), *f),
            AtomDest::Net(_) => {
                let mut nets: Vec<IpNet> = Vec::with_capacity(run.len());
                nets.extend(run.iter().filter_map(|(d, _)| match d {
                    AtomDest::Net(n) => Some(*n),
                    _ => None,
                }));
                Target::Ips(IpList::new(join_nets(&nets)).expect("a run has at least one network"))
            }
        };
        out.push(Rule {
            direction: head.direction,
            protocol: protocol_of(head.proto, &run[0].1.to_vec()),
            target,
            description: head.description.clone(),
            log: head.log,
        });
        run_start = run_end;
    }
}

/// The port ranges of one destination in first-seen order, without repeats;
/// the first is kept inline (most destinations have one, and a 16 MB group has
/// ~300,000 destinations).
#[derive(Default, PartialEq, Eq)]
struct Ports {
    first: Option<PortRange>,
    rest: Vec<PortRange>,
}

impl Ports {
    fn add(&mut self, r: PortRange) {
        match self.first {
            None => self.first = Some(r),
            Some(f) if f == r || self.rest.contains(&r) => {}
            Some(_) => self.rest.push(r),
        }
    }

    fn to_vec(&self) -> Vec<PortRange> {
        self.first.iter().chain(&self.rest).copied().collect()
    }
}

fn protocol_of(proto: AtomProto, ports: &[PortRange]) -> Protocol {
    match proto {
        AtomProto::Any => Protocol::Any,
        AtomProto::Ported(p, _) => Protocol::Ported(p, PortSet::ranges(ports.to_vec()).unwrap_or(PortSet::Any)),
        AtomProto::Icmp(v, m) => Protocol::Icmp(v, m),
        AtomProto::Bare(b) => Protocol::Bare(b),
    }
}

/// Join touching networks into ranges, but only where the networks are exactly
/// the minimal cover of the joined range (as `IpRange::cidrs` would emit it):
/// so `10.0.0.0/9` and `10.128.0.0/9`, written as two, stay two.
fn join_nets(nets: &[IpNet]) -> Vec<IpRange> {
    let mut out = Vec::with_capacity(nets.len());
    let mut current: Option<(IpRange, usize)> = None;
    for net in nets {
        let next = IpRange::from_net(*net);
        current = match current {
            Some((range, count)) => match range.join(&next) {
                Some(joined) if joined.cidr_iter().count() == count + 1 => Some((joined, count + 1)),
                _ => {
                    out.push(range);
                    Some((next, 1))
                }
            },
            None => Some((next, 1)),
        };
    }
    out.extend(current.map(|(r, _)| r));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(a: &str, b: &str) -> IpRange {
        IpRange::new(a.parse().unwrap(), b.parse().unwrap()).unwrap()
    }

    fn rule(protocol: Protocol, dests: Vec<IpRange>) -> Rule {
        Rule {
            direction: Direction::Egress,
            protocol,
            target: Target::Ips(IpList::new(dests).unwrap()),
            description: None,
            log: false,
        }
    }

    fn tcp(ports: &[(u16, u16)]) -> Protocol {
        let ranges: Vec<_> = ports.iter().map(|(a, b)| PortRange::new(*a, *b).unwrap()).collect();
        Protocol::Ported(PortedProto::Tcp, PortSet::ranges(ranges).unwrap())
    }

    #[test]
    fn range_times_port_list_folds_back() {
        let r = rule(tcp(&[(53, 53), (5353, 5353)]), vec![range("1.1.1.1", "2.2.2.2")]);
        let atoms = r.atoms();
        assert!(atoms.len() > 2);
        assert_eq!(compact(&atoms), vec![r]);
    }

    #[test]
    fn separately_written_networks_stay_separate() {
        let a = rule(tcp(&[(443, 443)]), vec![range("10.0.0.0", "10.127.255.255")]);
        let b = rule(tcp(&[(443, 443)]), vec![range("10.128.0.0", "10.255.255.255")]);
        let atoms: Vec<Atom> = [a.atoms(), b.atoms()].concat();
        let back = compact(&atoms);
        assert_eq!(back.len(), 1, "one rule with two destinations");
        let Target::Ips(list) = &back[0].target else { panic!() };
        assert_eq!(list.as_slice().len(), 2);
    }
}
