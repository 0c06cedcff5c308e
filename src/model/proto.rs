//! IP protocols the model can name: the union of what CF and Gcore can say.

use super::ip::Family;

/// Protocols that carry ports (Neutron accepts port ranges for exactly these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortedProto {
    Tcp,
    Udp,
    Udplite,
    Sctp,
    Dccp,
}

/// Protocols with neither ports nor ICMP type/code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BareProto {
    Ah,
    Egp,
    Esp,
    Gre,
    Igmp,
    Ipencap,
    Ipip,
    Ipv6Encap,
    Ipv6Frag,
    Ipv6Nonxt,
    Ipv6Opts,
    Ipv6Route,
    Ospf,
    Pgm,
    Rsvp,
    Vrrp,
}

/// ICMP for IPv4 (`icmp`) or IPv6 (`icmpv6` in CF, `ipv6-icmp` in Gcore).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IcmpVersion {
    V4,
    V6,
}

/// Every named protocol, in Gcore's enum order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NamedProto {
    Ported(PortedProto),
    Icmp(IcmpVersion),
    Bare(BareProto),
}

impl NamedProto {
    /// Gcore's v2 protocol enum, alphabetical as Gcore lists it.
    pub const ALL: [NamedProto; 23] = {
        use BareProto as B;
        use NamedProto::{Bare, Icmp, Ported};
        use PortedProto as P;
        [
            Bare(B::Ah),
            Ported(P::Dccp),
            Bare(B::Egp),
            Bare(B::Esp),
            Bare(B::Gre),
            Icmp(IcmpVersion::V4),
            Bare(B::Igmp),
            Bare(B::Ipencap),
            Bare(B::Ipip),
            Bare(B::Ipv6Encap),
            Bare(B::Ipv6Frag),
            Icmp(IcmpVersion::V6),
            Bare(B::Ipv6Nonxt),
            Bare(B::Ipv6Opts),
            Bare(B::Ipv6Route),
            Bare(B::Ospf),
            Bare(B::Pgm),
            Bare(B::Rsvp),
            Ported(P::Sctp),
            Ported(P::Tcp),
            Ported(P::Udp),
            Ported(P::Udplite),
            Bare(B::Vrrp),
        ]
    };

    /// The Gcore (Neutron) name.
    pub fn gcore_name(self) -> &'static str {
        use BareProto as B;
        use PortedProto as P;
        match self {
            NamedProto::Ported(P::Tcp) => "tcp",
            NamedProto::Ported(P::Udp) => "udp",
            NamedProto::Ported(P::Udplite) => "udplite",
            NamedProto::Ported(P::Sctp) => "sctp",
            NamedProto::Ported(P::Dccp) => "dccp",
            NamedProto::Icmp(IcmpVersion::V4) => "icmp",
            NamedProto::Icmp(IcmpVersion::V6) => "ipv6-icmp",
            NamedProto::Bare(b) => match b {
                B::Ah => "ah",
                B::Egp => "egp",
                B::Esp => "esp",
                B::Gre => "gre",
                B::Igmp => "igmp",
                B::Ipencap => "ipencap",
                B::Ipip => "ipip",
                B::Ipv6Encap => "ipv6-encap",
                B::Ipv6Frag => "ipv6-frag",
                B::Ipv6Nonxt => "ipv6-nonxt",
                B::Ipv6Opts => "ipv6-opts",
                B::Ipv6Route => "ipv6-route",
                B::Ospf => "ospf",
                B::Pgm => "pgm",
                B::Rsvp => "rsvp",
                B::Vrrp => "vrrp",
            },
        }
    }

    pub fn from_gcore_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.gcore_name() == name)
    }

    /// The one address family this protocol works with, if it is tied to one:
    /// Gcore refuses `icmp` with IPv6 and the IPv6-only headers with IPv4.
    pub fn only_family(self) -> Option<Family> {
        match self {
            NamedProto::Icmp(IcmpVersion::V4) => Some(Family::V4),
            NamedProto::Icmp(IcmpVersion::V6) => Some(Family::V6),
            NamedProto::Bare(
                BareProto::Ipv6Frag | BareProto::Ipv6Nonxt | BareProto::Ipv6Opts | BareProto::Ipv6Route,
            ) => Some(Family::V6),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for p in NamedProto::ALL {
            assert!(seen.insert(p.gcore_name()));
            assert_eq!(NamedProto::from_gcore_name(p.gcore_name()), Some(p));
        }
        assert_eq!(NamedProto::from_gcore_name("any"), None);
    }
}
