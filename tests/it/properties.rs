//! Translator properties (proptest):
//! 1. a CF rule and its Gcore expansion allow exactly the same
//!    (protocol, address, port) set — checked against independent oracles
//!    that read the generated CF rule and the Gcore wire rules directly;
//! 2. CF → model → CF is stable (one canonicalisation, then a fixed point);
//! 3. Gcore → model → Gcore is lossless for full-form rules;
//! 4. the CIDR cover of a range is exact and minimal;
//! 5. CF → Gcore (narrowed around port 25, log flags in tags) → CF returns the
//!    canonical form of the rules CF users write.

use ipnet::IpNet;
use proptest::prelude::*;
use sgbridge::dialect::cf::{self, CfFlags};
use sgbridge::dialect::gcore::{self, GcoreFlags, RuleSpec};
use sgbridge::mapping::on_gcore::{self, Policy, SmtpPolicy};
use sgbridge::model::{IpRange, Tag};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const ALL_FLAGS: CfFlags = CfFlags {
    comma_delimited_destinations: true,
    ipv6: true,
};

#[derive(Debug, Clone)]
enum Dest {
    Single(IpAddr),
    Cidr(IpAddr, u8),
    Range(IpAddr, IpAddr),
}

impl Dest {
    fn text(&self) -> String {
        match self {
            Dest::Single(a) => a.to_string(),
            Dest::Cidr(a, l) => format!("{a}/{l}"),
            Dest::Range(a, b) => format!("{a}-{b}"),
        }
    }

    fn bounds(&self) -> (u128, u128, bool) {
        match self {
            Dest::Single(a) => (num(*a), num(*a), a.is_ipv4()),
            Dest::Cidr(a, l) => {
                let net = IpNet::new(*a, *l).unwrap();
                (num(net.network()), num(net.broadcast()), a.is_ipv4())
            }
            Dest::Range(a, b) => (num(*a), num(*b), a.is_ipv4()),
        }
    }

    fn contains(&self, addr: IpAddr) -> bool {
        let (lo, hi, v4) = self.bounds();
        v4 == addr.is_ipv4() && lo <= num(addr) && num(addr) <= hi
    }
}

fn num(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn addr(v4: bool, n: u128) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(n as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(n))
    }
}

fn dest(v4: bool) -> impl Strategy<Value = Dest> {
    let max: u128 = if v4 { u128::from(u32::MAX) } else { u128::MAX };
    let bits: u8 = if v4 { 32 } else { 128 };
    let base = any::<u128>();
    prop_oneof![
        base.prop_map(move |n| Dest::Single(addr(v4, n & max))),
        (base, 0..=bits).prop_map(move |(n, l)| Dest::Cidr(addr(v4, n & max), l)),
        (base, 0u32..40).prop_map(move |(n, span_bits)| {
            let a = n & max;
            let span = (1u128 << span_bits.min(u32::from(bits) - 1)) - 1;
            let b = a.saturating_add(span & (n >> 3)).min(max);
            Dest::Range(addr(v4, a), addr(v4, b))
        }),
    ]
}

#[derive(Debug, Clone)]
enum Ports {
    Range(u16, u16),
    List(Vec<u16>),
}

impl Ports {
    fn text(&self) -> String {
        match self {
            Ports::Range(a, b) => format!("{a}-{b}"),
            Ports::List(l) => l.iter().map(u16::to_string).collect::<Vec<_>>().join(", "),
        }
    }

    fn contains(&self, p: u16) -> bool {
        match self {
            Ports::Range(a, b) => *a <= p && p <= *b,
            Ports::List(l) => l.contains(&p),
        }
    }

    fn probes(&self) -> Vec<u16> {
        let mut out = vec![0, 1, 24, 25, 26, 65535];
        let mut edge = |p: u16| out.extend([p.saturating_sub(1), p, p.saturating_add(1)]);
        match self {
            Ports::Range(a, b) => {
                edge(*a);
                edge(*b);
            }
            Ports::List(l) => l.iter().for_each(|p| edge(*p)),
        }
        out
    }
}

/// Ports as CF users write them; `avoid_smtp_edges` keeps 25 out of lists and
/// range ends (narrowing can only be undone when a range spans it).
fn ports(avoid_smtp_edges: bool) -> impl Strategy<Value = Ports> {
    let ok = move |p: &u16| !avoid_smtp_edges || *p != 25;
    prop_oneof![
        (1u16..65535, 1u16..2000)
            .prop_map(|(a, span)| Ports::Range(a, a.saturating_add(span).max(a + 1)))
            .prop_filter("range ends away from 25", move |p| match p {
                Ports::Range(a, b) => ok(a) && ok(b),
                _ => true,
            }),
        proptest::collection::btree_set(prop_oneof![1u16..100, 1u16..=65535], 1..5)
            .prop_map(|s| Ports::List(s.into_iter().collect()))
            .prop_filter("no 25; no 24 right before 26", move |p| match p {
                Ports::List(l) => l.iter().all(ok) && !(avoid_smtp_edges && l.windows(2).any(|w| w == [24, 26])),
                _ => true,
            }),
    ]
}

#[derive(Debug, Clone)]
enum Proto {
    Tcp(Ports),
    Udp(Ports),
    /// v6 flag, type, code (-1 = any; a code only with a type, as Gcore needs).
    Icmp(bool, i16, i16),
    All,
}

#[derive(Debug, Clone)]
struct CfRuleGen {
    proto: Proto,
    dests: Vec<Dest>,
    log: bool,
    description: Option<String>,
}

impl CfRuleGen {
    fn json(&self) -> serde_json::Value {
        let dest: Vec<String> = self.dests.iter().map(Dest::text).collect();
        let mut v = serde_json::json!({"destination": dest.join(",")});
        match &self.proto {
            Proto::Tcp(p) => {
                v["protocol"] = "tcp".into();
                v["ports"] = p.text().into();
            }
            Proto::Udp(p) => {
                v["protocol"] = "udp".into();
                v["ports"] = p.text().into();
            }
            Proto::Icmp(v6, t, c) => {
                v["protocol"] = if *v6 { "icmpv6" } else { "icmp" }.into();
                v["type"] = (*t).into();
                v["code"] = (*c).into();
            }
            Proto::All => v["protocol"] = "all".into(),
        }
        if self.log {
            v["log"] = true.into();
        }
        if let Some(d) = &self.description {
            v["description"] = d.clone().into();
        }
        v
    }
}

fn icmp() -> impl Strategy<Value = (i16, i16)> {
    prop_oneof![
        Just((-1, -1)),
        (0i16..=255).prop_map(|t| (t, -1)),
        (0i16..=255, 0i16..=255)
    ]
}

fn cf_rule(avoid_smtp_edges: bool, max_dests: usize) -> impl Strategy<Value = CfRuleGen> {
    let family = any::<bool>();
    (
        family,
        0..4u8,
        ports(avoid_smtp_edges),
        icmp(),
        any::<bool>(),
        proptest::option::of("[a-z ]{0,12}"),
    )
        .prop_flat_map(move |(v4, kind, ports, (t, c), log, description)| {
            let proto = match kind {
                0 => Proto::Tcp(ports),
                1 => Proto::Udp(ports),
                2 => Proto::Icmp(!v4, t, c),
                _ => Proto::All,
            };
            proptest::collection::vec(dest(v4), 1..=max_dests).prop_map(move |dests| CfRuleGen {
                proto: proto.clone(),
                dests,
                log,
                description: description.clone(),
            })
        })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Tcp,
    Udp,
    Icmp4,
    Icmp6,
    Gre,
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    kind: Kind,
    addr: IpAddr,
    /// Port, or ICMP type.
    a: u16,
    /// ICMP code.
    b: u16,
}

fn cf_allows(rule: &CfRuleGen, p: &Probe) -> bool {
    if !rule.dests.iter().any(|d| d.contains(p.addr)) {
        return false;
    }
    let icmp_ok = |t: i16, c: i16| (t == -1 || t as u16 == p.a) && (c == -1 || c as u16 == p.b);
    match (&rule.proto, p.kind) {
        (Proto::All, _) => true,
        (Proto::Tcp(ports), Kind::Tcp) | (Proto::Udp(ports), Kind::Udp) => ports.contains(p.a),
        (Proto::Icmp(false, t, c), Kind::Icmp4) | (Proto::Icmp(true, t, c), Kind::Icmp6) => icmp_ok(*t, *c),
        _ => false,
    }
}

fn gcore_allows(spec: &RuleSpec, p: &Probe) -> bool {
    let family_ok = (spec.ethertype == "IPv4") == p.addr.is_ipv4();
    let addr_ok = match &spec.remote_ip_prefix {
        None => family_ok,
        Some(prefix) => prefix.parse::<IpNet>().unwrap().contains(&p.addr),
    };
    let range_ok =
        |v: u16, lo: Option<u16>, hi: Option<u16>| lo.is_none_or(|lo| lo <= v) && hi.is_none_or(|hi| v <= hi);
    let proto_ok = match (spec.protocol.as_deref(), p.kind) {
        (None, _) => true,
        (Some("tcp"), Kind::Tcp) | (Some("udp"), Kind::Udp) => range_ok(p.a, spec.port_range_min, spec.port_range_max),
        (Some("icmp"), Kind::Icmp4) | (Some("ipv6-icmp"), Kind::Icmp6) => {
            spec.port_range_min.is_none_or(|t| t == p.a) && spec.port_range_max.is_none_or(|c| c == p.b)
        }
        (Some("gre"), Kind::Gre) => true,
        _ => false,
    };
    spec.direction == "egress" && addr_ok && proto_ok
}

fn probes(rule: &CfRuleGen, extra: u128) -> Vec<Probe> {
    let mut addrs = Vec::new();
    for d in &rule.dests {
        let (lo, hi, v4) = d.bounds();
        let max = if v4 { u128::from(u32::MAX) } else { u128::MAX };
        for n in [
            lo,
            hi,
            lo.saturating_sub(1),
            hi.saturating_add(1).min(max),
            lo + (hi - lo) / 2,
            extra & max,
        ] {
            addrs.push(addr(v4, n));
        }
    }
    let values: Vec<u16> = match &rule.proto {
        Proto::Tcp(p) | Proto::Udp(p) => p.probes(),
        Proto::Icmp(_, t, c) => [*t, *c]
            .iter()
            .flat_map(|v| [v - 1, *v, v + 1])
            .filter_map(|v| u16::try_from(v).ok())
            .collect(),
        Proto::All => vec![0, 25, 80],
    };
    let mut out = Vec::new();
    for &addr in &addrs {
        for kind in [Kind::Tcp, Kind::Udp, Kind::Icmp4, Kind::Icmp6, Kind::Gre] {
            for &a in &values {
                for &b in &[0u16, 3, values[0]] {
                    out.push(Probe { kind, addr, a, b });
                }
            }
        }
    }
    out
}

fn parse_cf(rules: &[serde_json::Value], flags: CfFlags) -> Vec<sgbridge::model::Rule> {
    cf::body::parse_rules(&serde_json::to_vec(rules).unwrap(), flags).expect("generated CF rules are valid")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn cf_rule_and_gcore_expansion_allow_the_same_set(rule in cf_rule(false, 3), extra in any::<u128>()) {
        let model = parse_cf(&[rule.json()], ALL_FLAGS);
        let policy = Policy { smtp: SmtpPolicy::Allow, max_rules: usize::MAX };
        let atoms = on_gcore::to_gcore(&model, policy, 0).expect("expressible").atoms;
        let specs: Vec<RuleSpec> = atoms.iter().map(gcore::rule::to_spec).collect();
        for p in probes(&rule, extra) {
            let want = cf_allows(&rule, &p);
            let got = specs.iter().any(|s| gcore_allows(s, &p));
            prop_assert_eq!(want, got, "probe {:?}", p);
        }
    }

    #[test]
    fn cf_model_cf_is_stable(rules in proptest::collection::vec(cf_rule(false, 3), 1..5)) {
        let json: Vec<_> = rules.iter().map(CfRuleGen::json).collect();
        let first = parse_cf(&json, ALL_FLAGS);
        let text = cf::render::rules(&first, ALL_FLAGS).unwrap();
        let second = cf::body::parse_rules(&serde_json::to_vec(&text).unwrap(), ALL_FLAGS).unwrap();
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(cf::render::rules(&second, ALL_FLAGS).unwrap(), text);
    }

    #[test]
    fn gcore_model_gcore_is_lossless(specs in proptest::collection::vec(gcore_spec(), 1..6)) {
        let body = serde_json::to_vec(&specs).unwrap();
        let atoms = gcore::body::parse_rule_list(&body, GcoreFlags { smtp_blocked: false, max_rules: usize::MAX }).unwrap();
        let back: Vec<RuleSpec> = atoms.iter().map(gcore::rule::to_spec).collect();
        prop_assert_eq!(back, specs);
    }

    #[test]
    fn cidr_cover_is_exact_and_minimal(v4 in any::<bool>(), a in any::<u128>(), span in any::<u128>(), bits in 0u32..128) {
        let max = if v4 { u128::from(u32::MAX) } else { u128::MAX };
        let lo = a & max;
        let hi = lo.saturating_add(span & ((1u128 << bits.min(if v4 { 32 } else { 127 })) - 1)).min(max);
        let range = IpRange::new(addr(v4, lo), addr(v4, hi)).unwrap();
        let cover = range.cidrs();
        let mut next = lo;
        for (i, net) in cover.iter().enumerate() {
            prop_assert_eq!(num(net.network()), next, "contiguous, ascending, no gaps");
            prop_assert_eq!(net.network(), net.addr(), "aligned");
            let end = num(net.broadcast());
            if let Some(following) = cover.get(i + 1) {
                // Minimal: two neighbours of one size never form one aligned block.
                let merged = IpNet::new(net.addr(), net.prefix_len().saturating_sub(1)).unwrap().trunc();
                let buddies = net.prefix_len() == following.prefix_len() && merged.network() == net.network() && net.prefix_len() > 0;
                prop_assert!(!buddies, "{} and {} would merge", net, following);
            }
            next = end.wrapping_add(1);
        }
        prop_assert_eq!(num(cover.last().unwrap().broadcast()), hi, "covers exactly up to the end");
    }

    #[test]
    fn cf_gcore_cf_round_trip_returns_what_users_wrote(rules in proptest::collection::vec(cf_rule(true, 1), 1..6)) {
        let flags = CfFlags { comma_delimited_destinations: false, ipv6: true };
        // Distinct descriptions keep separately written rules apart, as in real groups.
        let json: Vec<_> = rules.iter().enumerate().map(|(i, r)| {
            let mut r = r.clone();
            r.description = Some(format!("rule {i}"));
            r.json()
        }).collect();
        let model = parse_cf(&json, flags);
        let canonical = cf::render::rules(&model, flags).unwrap();
        let policy = Policy { smtp: SmtpPolicy::Narrow, max_rules: usize::MAX };
        let expanded = match on_gcore::to_gcore(&model, policy, 0) {
            Ok(e) => e,
            Err(_) => return Ok(()), // e.g. a rule that only allows port 25: nothing to compare
        };
        // Through Gcore: the atoms lose `log`, which comes back from the tags.
        let tags: Vec<Tag> = on_gcore::cf_tags(&Default::default(), &expanded.atoms)
            .into_iter().map(|(key, value)| Tag { key, value, read_only: false }).collect();
        let mut atoms = expanded.atoms.clone();
        atoms.iter_mut().for_each(|a| a.log = false);
        let atoms = on_gcore::with_log(atoms, &tags);
        let back = on_gcore::to_cf(&atoms, policy);
        prop_assert_eq!(cf::render::rules(&back, flags).unwrap(), canonical);
    }
}

fn gcore_spec() -> impl Strategy<Value = RuleSpec> {
    use sgbridge::model::NamedProto;
    let protos: Vec<Option<NamedProto>> = std::iter::once(None)
        .chain(NamedProto::ALL.into_iter().map(Some))
        .collect();
    (
        any::<bool>(),
        any::<bool>(),
        proptest::sample::select(protos),
        any::<(u16, u16)>(),
        0u8..3,
        any::<u128>(),
        0u8..=128,
        proptest::option::of("[ -~]{0,40}"),
    )
        .prop_filter_map(
            "protocol fits the family",
            |(egress, v4, proto, (p1, p2), port_mode, a, len, description)| {
                let family_ok = proto
                    .and_then(|p| p.only_family())
                    .is_none_or(|f| (f == sgbridge::model::Family::V4) == v4);
                if !family_ok {
                    return None;
                }
                let (min, max) = match (proto, port_mode) {
                    (Some(NamedProto::Ported(_)), 1) => (Some(p1.min(p2)), Some(p1.max(p2))),
                    (Some(NamedProto::Icmp(_)), 1) => (Some(p1 % 256), None),
                    (Some(NamedProto::Icmp(_)), 2) => (Some(p1 % 256), Some(p2 % 256)),
                    _ => (None, None),
                };
                let prefix = match port_mode {
                    0 => None,
                    _ => {
                        let net = if v4 {
                            IpNet::new(addr(true, a & u128::from(u32::MAX)), len % 33).unwrap()
                        } else {
                            IpNet::new(addr(false, a), len).unwrap()
                        };
                        Some(net.trunc().to_string())
                    }
                };
                Some(RuleSpec {
                    direction: if egress { "egress" } else { "ingress" }.into(),
                    ethertype: if v4 { "IPv4" } else { "IPv6" }.into(),
                    protocol: proto.map(|p| p.gcore_name().to_string()),
                    port_range_min: min,
                    port_range_max: max,
                    remote_ip_prefix: prefix,
                    remote_group_id: None,
                    description,
                })
            },
        )
}
