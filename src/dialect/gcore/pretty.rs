//! Gcore rule lists written by hand, byte for byte as serde_json's pretty
//! printer writes [`RuleSpec`](super::RuleSpec)s (a test holds the two
//! together): `sgbridge translate` writes ~275,000 rules for a 16 MB CF
//! body, and serde's per-field work (escaping each key, dispatching each
//! `Option`) was most of the time it took to write them.

use super::rule::{direction_name, ethertype_name, proto_fields};
use crate::model::{Atom, AtomDest, V4Text};
use ipnet::IpNet;
use std::fmt::Write as _;

/// Two spaces a level, as serde_json's `PrettyFormatter` indents.
const INDENT: &str = "  ";

/// The indents of the levels rules are written at, each in one piece.
const INDENTS: [&str; 4] = ["", "  ", "    ", "      "];

/// `atoms` as a pretty JSON array whose brackets sit at nesting `depth`
/// (0 for a document that is the array).
pub fn write_rules(atoms: &[Atom], depth: usize, out: &mut String) {
    if atoms.is_empty() {
        out.push_str("[]");
        return;
    }
    out.push('[');
    for (i, atom) in atoms.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        indent(out, depth + 1);
        write_rule(atom, depth + 1, out);
    }
    out.push('\n');
    indent(out, depth);
    out.push(']');
}

/// `{"rules": [...], "tags": {...}}`: rules with their group's tags, the
/// shape `sgbridge translate --with-tags` writes and reads.
pub fn write_rules_with_tags<'a>(atoms: &[Atom], tags: impl IntoIterator<Item = (&'a str, &'a str)>, out: &mut String) {
    let mut object = Object::open(out, 0);
    object.key("rules");
    write_rules(atoms, 1, object.out);
    object.key("tags");
    write_pairs(tags, 1, object.out);
    object.close();
}

/// String pairs (a group's tags) as a pretty JSON object at nesting `depth`.
fn write_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>, depth: usize, out: &mut String) {
    let mut object = Object::open(out, depth);
    for (key, value) in pairs {
        object.next();
        escaped(object.out, key);
        object.out.push_str(": ");
        escaped(object.out, value);
    }
    object.close();
}

fn write_rule(atom: &Atom, depth: usize, out: &mut String) {
    let (protocol, min, max) = proto_fields(atom.proto);
    let mut rule = Object::open(out, depth);
    rule.key("direction");
    quoted(rule.out, direction_name(atom.direction));
    rule.key("ethertype");
    quoted(rule.out, ethertype_name(atom.dest.family()));
    rule.key("protocol");
    match protocol {
        Some(p) => quoted(rule.out, p.gcore_name()),
        None => rule.out.push_str("null"),
    }
    rule.key("port_range_min");
    number(rule.out, min);
    rule.key("port_range_max");
    number(rule.out, max);
    rule.key("remote_ip_prefix");
    match &atom.dest {
        AtomDest::Net(IpNet::V4(n)) => quoted(rule.out, V4Text::net(*n).as_str()),
        // IPv6 text is hex digits, colons, dots and a slash: nothing to escape.
        AtomDest::Net(n) => {
            let _ = write!(rule.out, "\"{n}\"");
        }
        AtomDest::Any(_) | AtomDest::Group(..) => rule.out.push_str("null"),
    }
    if let AtomDest::Group(id, _) = &atom.dest {
        rule.key("remote_group_id");
        // A UUID's text has nothing to escape.
        quoted(rule.out, id.as_str());
    }
    if let Some(description) = &atom.description {
        rule.key("description");
        escaped(rule.out, description);
    }
    rule.close();
}

/// A pretty JSON object being written: `{`, then `"key": ` before each value.
struct Object<'a> {
    out: &'a mut String,
    depth: usize,
    empty: bool,
}

impl<'a> Object<'a> {
    fn open(out: &'a mut String, depth: usize) -> Self {
        out.push('{');
        Object {
            out,
            depth,
            empty: true,
        }
    }

    /// A key of ours (nothing to escape) and the `: ` after it.
    fn key(&mut self, key: &str) {
        self.next();
        quoted(self.out, key);
        self.out.push_str(": ");
    }

    /// The separator and indent before the next entry.
    fn next(&mut self) {
        self.out.push_str(if self.empty { "\n" } else { ",\n" });
        self.empty = false;
        indent(self.out, self.depth + 1);
    }

    fn close(self) {
        if !self.empty {
            self.out.push('\n');
            indent(self.out, self.depth);
        }
        self.out.push('}');
    }
}

fn indent(out: &mut String, depth: usize) {
    match INDENTS.get(depth) {
        Some(spaces) => out.push_str(spaces),
        None => (0..depth).for_each(|_| out.push_str(INDENT)),
    }
}

/// Text known to need no escaping (names this module chose).
fn quoted(out: &mut String, text: &str) {
    out.push('"');
    out.push_str(text);
    out.push('"');
}

/// Any text, escaped as serde_json escapes it.
fn escaped(out: &mut String, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        quoted(out, text);
    } else {
        // A `str` always serialises; the fallback keeps the JSON valid.
        out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "null".into()));
    }
}

fn number(out: &mut String, n: Option<u16>) {
    match n {
        Some(n) => out.push_str(itoa::Buffer::new().format(n)),
        None => out.push_str("null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::gcore::rule::to_spec;
    use crate::model::{
        AtomProto, Direction, Family, IcmpMatch, IcmpVersion, IpList, IpRange, PortRange, PortedProto, Protocol, Rule,
        Target,
    };
    use ipnet::Ipv4Net;
    use std::collections::BTreeMap;

    fn atoms() -> Vec<Atom> {
        let v4: Ipv4Net = "10.1.2.0/24".parse().unwrap();
        let base = Atom {
            direction: Direction::Egress,
            proto: AtomProto::Ported(PortedProto::Tcp, PortRange::new(80, 90)),
            dest: AtomDest::Net(IpNet::V4(v4)),
            description: None,
            log: false,
        };
        let group = crate::model::Uuid::parse("0a1b2c3d-0000-4000-8000-000000000001").unwrap();
        vec![
            base.clone(),
            Atom {
                direction: Direction::Ingress,
                proto: AtomProto::Any,
                dest: AtomDest::Any(Family::V6),
                description: Some("d \"q\" \\ \u{1} tab\t é ✓".into()),
                ..base.clone()
            },
            Atom {
                proto: AtomProto::Icmp(
                    IcmpVersion::V4,
                    IcmpMatch {
                        ty: Some(3),
                        code: None,
                    },
                ),
                dest: AtomDest::Group(group, Family::V4),
                description: Some("plain".into()),
                ..base.clone()
            },
            Atom {
                proto: AtomProto::Ported(PortedProto::Udp, None),
                dest: AtomDest::Net("2001:db8::/32".parse().unwrap()),
                ..base.clone()
            },
            Atom {
                dest: AtomDest::Net("0.0.0.0/0".parse().unwrap()),
                ..base
            },
        ]
    }

    #[test]
    fn a_rule_list_is_what_serde_writes() {
        let all = atoms();
        for n in [0, 1, all.len()] {
            let specs: Vec<_> = all[..n].iter().map(to_spec).collect();
            let mut ours = String::new();
            write_rules(&all[..n], 0, &mut ours);
            assert_eq!(ours, serde_json::to_string_pretty(&specs).unwrap(), "{n} rules");
        }
        // The expansion of real rules, through the model.
        let rule = Rule {
            direction: Direction::Egress,
            protocol: Protocol::Any,
            target: Target::Ips(IpList::one(IpRange::from_net("0.0.0.0/0".parse().unwrap()))),
            description: Some("all".into()),
            log: false,
        };
        let expanded = rule.atoms();
        let specs: Vec<_> = expanded.iter().map(to_spec).collect();
        let mut ours = String::new();
        write_rules(&expanded, 0, &mut ours);
        assert_eq!(ours, serde_json::to_string_pretty(&specs).unwrap());
    }

    #[test]
    fn nested_lists_and_pairs_are_what_serde_writes() {
        #[derive(serde::Serialize)]
        struct Wrapped {
            rules: Vec<crate::dialect::gcore::RuleSpec>,
            tags: BTreeMap<String, String>,
        }
        let all = atoms();
        let pairs = [("a\"b".to_string(), "c\n".to_string()), ("k".into(), "v".into())];
        for tags in [BTreeMap::new(), BTreeMap::from(pairs)] {
            for rules in [&all[..0], &all[..]] {
                let mut ours = String::new();
                write_rules_with_tags(rules, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), &mut ours);
                let serde = Wrapped {
                    rules: rules.iter().map(to_spec).collect(),
                    tags: tags.clone(),
                };
                assert_eq!(ours, serde_json::to_string_pretty(&serde).unwrap());
            }
        }
    }
}
