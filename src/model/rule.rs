//! The rule type both dialects normalise into, and its atomic form.
//!
//! A [`Rule`] can say everything either dialect can (CF lists of destinations
//! and ports, Gcore directions, protocols and remote groups). An [`Atom`] is a
//! rule with one destination network and one port range: the shape of one
//! Gcore rule. [`Rule::atoms`] expands; `compact` folds atoms back.

use super::ids::GroupId;
use super::ip::{Family, IpRange};
use super::port::{PortRange, PortSet};
use super::proto::{BareProto, IcmpVersion, NamedProto, PortedProto};
use ipnet::IpNet;
use smallvec::{smallvec, SmallVec};
use std::ops::ControlFlow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    Ingress,
    Egress,
}

/// ICMP type and code; `None` means every value (CF's `-1`, Gcore's `null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IcmpMatch {
    pub ty: Option<u8>,
    pub code: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Every IP protocol (CF `all`, Gcore `null`).
    Any,
    Ported(PortedProto, PortSet),
    Icmp(IcmpVersion, IcmpMatch),
    Bare(BareProto),
}

impl Protocol {
    pub fn named(&self) -> Option<NamedProto> {
        match self {
            Protocol::Any => None,
            Protocol::Ported(p, _) => Some(NamedProto::Ported(*p)),
            Protocol::Icmp(v, _) => Some(NamedProto::Icmp(*v)),
            Protocol::Bare(b) => Some(NamedProto::Bare(*b)),
        }
    }
}

/// Address ranges, the first kept inline: most rules name one destination,
/// and a 16 MB body holds ~300,000 rules (one heap block fewer each).
pub type IpRanges = SmallVec<[IpRange; 1]>;

/// A non-empty list of address ranges, in the caller's order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpList(IpRanges);

impl IpList {
    pub fn new(ranges: impl Into<IpRanges>) -> Option<Self> {
        let ranges = ranges.into();
        (!ranges.is_empty()).then_some(Self(ranges))
    }

    pub fn one(range: IpRange) -> Self {
        Self(smallvec![range])
    }

    pub fn as_slice(&self) -> &[IpRange] {
        &self.0
    }
}

/// Where a rule lets traffic go (egress) or come from (ingress).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Every address of one family: Gcore's rule without a prefix or group.
    Any(Family),
    Ips(IpList),
    /// Members of another security group (Gcore `remote_group_id`).
    Group(GroupId, Family),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub direction: Direction,
    pub protocol: Protocol,
    pub target: Target,
    pub description: Option<String>,
    /// CF's `log` flag; Gcore rules have no such field.
    pub log: bool,
}

/// The destination of an atom: one network, everything, or a remote group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AtomDest {
    Any(Family),
    /// Always a normalised network (no host bits).
    Net(IpNet),
    Group(GroupId, Family),
}

impl AtomDest {
    pub fn net(net: IpNet) -> Self {
        AtomDest::Net(net.trunc())
    }

    pub fn family(&self) -> Family {
        match self {
            AtomDest::Any(f) | AtomDest::Group(_, f) => *f,
            AtomDest::Net(n) => Family::of(n.addr()),
        }
    }
}

/// The protocol of an atom: at most one port range (`None` is every port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AtomProto {
    Any,
    Ported(PortedProto, Option<PortRange>),
    Icmp(IcmpVersion, IcmpMatch),
    Bare(BareProto),
}

impl AtomProto {
    pub fn named(&self) -> Option<NamedProto> {
        match self {
            AtomProto::Any => None,
            AtomProto::Ported(p, _) => Some(NamedProto::Ported(*p)),
            AtomProto::Icmp(v, _) => Some(NamedProto::Icmp(*v)),
            AtomProto::Bare(b) => Some(NamedProto::Bare(*b)),
        }
    }

    /// The protocol with every port / every ICMP value.
    pub fn whole(proto: NamedProto) -> Self {
        match proto {
            NamedProto::Ported(p) => AtomProto::Ported(p, None),
            NamedProto::Icmp(v) => AtomProto::Icmp(v, IcmpMatch::default()),
            NamedProto::Bare(b) => AtomProto::Bare(b),
        }
    }
}

/// One rule with one destination and at most one port range: one Gcore rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Atom {
    pub direction: Direction,
    pub proto: AtomProto,
    pub dest: AtomDest,
    pub description: Option<String>,
    pub log: bool,
}

impl Rule {
    /// The atoms this rule allows, destination-major then port order:
    /// each address range becomes its minimal CIDR cover.
    pub fn atoms(&self) -> Vec<Atom> {
        let mut out = Vec::new();
        let _ = self.try_each_atom(|atom| {
            out.push(atom);
            ControlFlow::<()>::Continue(())
        });
        out
    }

    /// Hands the atoms of [`Rule::atoms`] to `f` one by one as they are made,
    /// until `f` breaks: a caller expanding many rules (a 16 MB body is
    /// ~300,000) keeps no list of each rule's atoms.
    pub fn try_each_atom<B>(&self, mut f: impl FnMut(Atom) -> ControlFlow<B>) -> ControlFlow<B> {
        match &self.target {
            Target::Any(family) => self.each_to(AtomDest::Any(*family), &mut f),
            Target::Group(id, family) => self.each_to(AtomDest::Group(id.clone(), *family), &mut f),
            Target::Ips(list) => {
                for range in list.as_slice() {
                    for net in range.cidr_iter() {
                        self.each_to(AtomDest::Net(net), &mut f)?;
                    }
                }
                ControlFlow::Continue(())
            }
        }
    }

    /// The atoms to one destination, in port order.
    fn each_to<B>(&self, dest: AtomDest, f: &mut impl FnMut(Atom) -> ControlFlow<B>) -> ControlFlow<B> {
        let atom = |proto| Atom {
            direction: self.direction,
            proto,
            dest: dest.clone(),
            description: self.description.clone(),
            log: self.log,
        };
        match &self.protocol {
            Protocol::Any => f(atom(AtomProto::Any)),
            Protocol::Ported(p, PortSet::Any) => f(atom(AtomProto::Ported(*p, None))),
            Protocol::Ported(p, PortSet::Ranges(ranges)) => {
                for r in ranges.as_slice() {
                    f(atom(AtomProto::Ported(*p, Some(*r))))?;
                }
                ControlFlow::Continue(())
            }
            Protocol::Icmp(v, m) => f(atom(AtomProto::Icmp(*v, *m))),
            Protocol::Bare(b) => f(atom(AtomProto::Bare(*b))),
        }
    }
}

impl From<&Atom> for Rule {
    fn from(atom: &Atom) -> Rule {
        let protocol = match atom.proto {
            AtomProto::Any => Protocol::Any,
            AtomProto::Ported(p, None) => Protocol::Ported(p, PortSet::Any),
            AtomProto::Ported(p, Some(r)) => Protocol::Ported(p, PortSet::single(r)),
            AtomProto::Icmp(v, m) => Protocol::Icmp(v, m),
            AtomProto::Bare(b) => Protocol::Bare(b),
        };
        let target = match &atom.dest {
            AtomDest::Any(f) => Target::Any(*f),
            AtomDest::Group(id, f) => Target::Group(id.clone(), *f),
            AtomDest::Net(n) => Target::Ips(IpList::one(IpRange::from_net(*n))),
        };
        Rule {
            direction: atom.direction,
            protocol,
            target,
            description: atom.description.clone(),
            log: atom.log,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoms_are_the_product_of_cidrs_and_port_ranges() {
        let range = IpRange::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()).unwrap();
        let rule = Rule {
            direction: Direction::Egress,
            protocol: Protocol::Ported(
                PortedProto::Tcp,
                PortSet::ranges(vec![PortRange::single(53), PortRange::single(5353)]).unwrap(),
            ),
            target: Target::Ips(IpList::new(vec![range]).unwrap()),
            description: None,
            log: false,
        };
        let atoms = rule.atoms();
        // 10.0.0.1/32 and 10.0.0.2/32 (not one /31: 10.0.0.0 is outside), times two ports.
        assert_eq!(atoms.len(), 4);
        assert_eq!(atoms[0].dest, AtomDest::Net("10.0.0.1/32".parse().unwrap()));
        assert_eq!(
            atoms[1].proto,
            AtomProto::Ported(PortedProto::Tcp, Some(PortRange::single(5353)))
        );
        assert_eq!(Rule::from(&atoms[0]).atoms(), vec![atoms[0].clone()]);
    }
}
