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
        let mut cover = self.cidr_iter();
        let first = cover.next()?;
        cover.next().is_none().then_some(first)
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
            return Shown(self.start).fmt(f);
        }
        match self.as_net() {
            Some(IpNet::V4(net)) => f.write_str(V4Text::net(net).as_str()),
            Some(net) => write!(f, "{net}"),
            None => write!(f, "{}-{}", Shown(self.start), Shown(self.end)),
        }
    }
}

/// An address through [`V4Text`] when it is IPv4.
struct Shown(IpAddr);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => f.write_str(V4Text::new(a, None).as_str()),
            v6 => write!(f, "{v6}"),
        }
    }
}

/// An IPv4 address, with an optional prefix length, as text written without
/// `core::fmt`: translating a 16 MB rule set writes ~300,000 of them, and
/// `Ipv4Addr`'s `Display` (four padded integer writes) was a fifth of the
/// time it took to write a Gcore rule.
pub struct V4Text {
    /// `255.255.255.255/32` is the longest text: 18 bytes.
    buf: [u8; 18],
    len: usize,
}

impl V4Text {
    pub fn new(addr: Ipv4Addr, prefix: Option<u8>) -> Self {
        let mut text = V4Text { buf: [0; 18], len: 0 };
        for (i, octet) in addr.octets().into_iter().enumerate() {
            if i > 0 {
                text.push(b'.');
            }
            text.push_decimal(octet);
        }
        if let Some(prefix) = prefix {
            text.push(b'/');
            text.push_decimal(prefix.min(32));
        }
        text
    }

    /// A network's text, `a.b.c.d/len`.
    pub fn net(net: Ipv4Net) -> Self {
        V4Text::new(net.addr(), Some(net.prefix_len()))
    }

    fn push(&mut self, byte: u8) {
        self.buf[self.len] = byte;
        self.len += 1;
    }

    fn push_decimal(&mut self, n: u8) {
        if n >= 100 {
            self.push(b'0' + n / 100);
        }
        if n >= 10 {
            self.push(b'0' + n / 10 % 10);
        }
        self.push(b'0' + n % 10);
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits, dots and a slash were written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
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
    fn v4_text_is_what_display_writes() {
        let octets = [0u8, 1, 9, 10, 42, 99, 100, 199, 200, 255];
        for a in octets {
            for b in octets {
                let addr = Ipv4Addr::new(a, b, b, a);
                assert_eq!(V4Text::new(addr, None).as_str(), addr.to_string());
                for len in [0u8, 8, 9, 10, 24, 32] {
                    assert_eq!(V4Text::new(addr, Some(len)).as_str(), format!("{addr}/{len}"));
                }
            }
        }
        let net: Ipv4Net = "10.20.0.0/16".parse().unwrap();
        assert_eq!(V4Text::net(net).as_str(), "10.20.0.0/16");
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
