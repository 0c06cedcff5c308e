//! IP address ranges: the one destination shape both dialects reduce to.
//!
//! CF speaks single addresses, CIDRs and `a-b` ranges; Gcore speaks CIDRs. An
//! [`IpRange`] holds any of them as an inclusive interval of one address family,
//! and converts to the minimal exact CIDR cover (through `ipnet`) and back.

use ipnet::{IpNet, Ipv4Net, Ipv4Subnets, Ipv6Net, Ipv6Subnets};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The CIDR cover of an [`IpRange`], ascending.
pub enum Cidrs {
    V4(Ipv4Subnets),
    V6(Ipv6Subnets),
}

impl Iterator for Cidrs {
    type Item = IpNet;
    fn next(&mut self) -> Option<IpNet> {
        match self {
            Cidrs::V4(s) => s.next().map(IpNet::V4),
            Cidrs::V6(s) => s.next().map(IpNet::V6),
        }
    }
}

/// Address family, named as Gcore names ethertypes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The whole address space of this family as a network (`0.0.0.0/0`, `::/0`).
    pub fn everything(self) -> IpNet {
        match self {
            Family::V4 => IpNet::V4(Ipv4Net::default()),
            Family::V6 => IpNet::V6(Ipv6Net::default()),
        }
    }
}

/// An inclusive interval of addresses of one family, `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpRange {
    start: IpAddr,
    end: IpAddr,
}

impl IpRange {
    /// `None` when the families differ or `start > end`.
    pub fn new(start: IpAddr, end: IpAddr) -> Option<Self> {
        let ordered = match (start, end) {
            (IpAddr::V4(a), IpAddr::V4(b)) => a <= b,
            (IpAddr::V6(a), IpAddr::V6(b)) => a <= b,
            _ => false,
        };
        ordered.then_some(Self { start, end })
    }

    pub fn single(addr: IpAddr) -> Self {
        Self { start: addr, end: addr }
    }

    /// The addresses of a network; host bits in `net` are ignored, as CIDR
    /// matching ignores them.
    pub fn from_net(net: IpNet) -> Self {
        Self {
            start: net.network(),
            end: net.broadcast(),
        }
    }

    pub fn start(&self) -> IpAddr {
        self.start
    }

    pub fn end(&self) -> IpAddr {
        self.end
    }

    pub fn family(&self) -> Family {
        Family::of(self.start)
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        Family::of(addr) == self.family() && self.start <= addr && addr <= self.end
    }

    /// The minimal list of CIDRs whose union is exactly this range, ascending.
    pub fn cidrs(&self) -> Vec<IpNet> {
        self.cidr_iter().collect()
    }

    /// [`IpRange::cidrs`] without collecting them.
    pub fn cidr_iter(&self) -> Cidrs {
        match (self.start, self.end) {
            (IpAddr::V4(a), IpAddr::V4(b)) => Cidrs::V4(Ipv4Subnets::new(a, b, 0)),
            (IpAddr::V6(a), IpAddr::V6(b)) => Cidrs::V6(Ipv6Subnets::new(a, b, 0)),
            _ => unreachable!("IpRange holds one family by construction"),
        }
    }

    /// The range as one CIDR, when it is exactly one.
    pub fn as_net(&self) -> Option<IpNet> {
        let cover = self.cidrs();
        (cover.len() == 1).then(|| cover[0])
    }

    /// The address right after `end`, if any: used to find touching ranges.
    pub fn next_after_end(&self) -> Option<IpAddr> {
        match self.end {
            IpAddr::V4(a) => u32::from(a).checked_add(1).map(|n| IpAddr::V4(Ipv4Addr::from(n))),
            IpAddr::V6(a) => u128::from(a).checked_add(1).map(|n| IpAddr::V6(Ipv6Addr::from(n))),
        }
    }

    /// The union of two ranges of which `next` starts right after `self` ends.
    pub fn join(&self, next: &IpRange) -> Option<IpRange> {
        (self.next_after_end() == Some(next.start)).then_some(IpRange {
            start: self.start,
            end: next.end,
        })
    }
}

/// Canonical CF spelling: a single address, a CIDR when the range is exactly one
/// network, otherwise `start-end`.
impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            return write!(f, "{}", self.start);
        }
        match self.as_net() {
            Some(net) => write!(f, "{net}"),
            None => write!(f, "{}-{}", self.start, self.end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn new_rejects_inverted_and_mixed() {
        assert!(IpRange::new(ip("1.1.1.2"), ip("1.1.1.1")).is_none());
        assert!(IpRange::new(ip("1.1.1.1"), ip("::1")).is_none());
        assert!(IpRange::new(ip("1.1.1.1"), ip("1.1.1.1")).is_some());
    }

    #[test]
    fn cover_of_a_range_is_minimal_and_exact() {
        let r = IpRange::new(ip("1.1.1.1"), ip("1.1.1.6")).unwrap();
        let got: Vec<String> = r.cidrs().iter().map(|n| n.to_string()).collect();
        assert_eq!(got, ["1.1.1.1/32", "1.1.1.2/31", "1.1.1.4/31", "1.1.1.6/32"]);
    }

    #[test]
    fn display_prefers_the_compact_form() {
        assert_eq!(IpRange::single(ip("10.0.0.1")).to_string(), "10.0.0.1");
        let net: IpNet = "192.168.10.2/24".parse().unwrap();
        assert_eq!(IpRange::from_net(net).to_string(), "192.168.10.0/24");
        let r = IpRange::new(ip("1.1.1.1"), ip("2.2.2.2")).unwrap();
        assert_eq!(r.to_string(), "1.1.1.1-2.2.2.2");
        assert_eq!(IpRange::from_net(Family::V6.everything()).to_string(), "::/0");
    }

    #[test]
    fn join_needs_touching_ranges() {
        let a = IpRange::new(ip("10.0.0.0"), ip("10.0.0.255")).unwrap();
        let b = IpRange::new(ip("10.0.1.0"), ip("10.0.1.255")).unwrap();
        assert_eq!(a.join(&b).unwrap().to_string(), "10.0.0.0/23");
        assert!(b.join(&a).is_none());
        let top = IpRange::single(ip("255.255.255.255"));
        assert!(top.next_after_end().is_none());
    }
}
