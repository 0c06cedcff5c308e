//! CC's v3 rule validator (`app/messages/validators/security_group_rule_validator.rb`),
//! message for message and in its order: each message reads
//! `Rules[<0-based index>]: <text>`. A rule list that passes here is then
//! checked by the v2 model validator as well (CC saves through the same
//! model), so v3 accepts a rule only if both accept it.

use super::super::destination::{ip_of, CfFlags};
use super::super::ports;
use crate::json::{Element, ObjectList, Scalar};
use std::net::IpAddr;

const ALLOWED_KEYS: [&str; 7] = ["code", "description", "destination", "log", "ports", "protocol", "type"];
const MAX_DESTINATIONS: usize = 6000;

/// Ruby's `String#inspect` for a key: quoted, `"` and `\` escaped, control
/// characters as escapes.
fn ruby_inspect(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Ruby truthiness: only `nil` and `false` (and a missing key) are false.
fn truthy(v: Option<&Scalar>) -> bool {
    !matches!(v, None | Some(Scalar::Null) | Some(Scalar::Bool(false)))
}

struct Rule<'a> {
    index: usize,
    out: &'a mut Vec<String>,
}

impl Rule<'_> {
    fn add(&mut self, text: impl AsRef<str>) {
        self.out.push(format!("Rules[{}]: {}", self.index, text.as_ref()));
    }
}

/// The v3 messages for a `rules` value (empty when it passes).
pub fn messages(rules: &ObjectListOrNot, flags: CfFlags) -> Vec<String> {
    let mut out = Vec::new();
    let items = match rules {
        ObjectListOrNot::List(items) => items,
        ObjectListOrNot::NotAList => return vec!["Rules must be an array".to_string()],
    };
    let mut capped = crate::dialect::Capped::default();
    for (index, item) in items.iter().enumerate() {
        capped.trim(&mut out);
        let mut r = Rule { index, out: &mut out };
        let fields = match item {
            Element::Object(f) => f,
            Element::Other(_) => {
                r.add("must be an object");
                continue;
            }
        };
        let unknown: Vec<String> = fields
            .keys()
            .filter(|k| !ALLOWED_KEYS.contains(k))
            .map(ruby_inspect)
            .collect();
        if !unknown.is_empty() {
            r.add(format!("unknown field(s): [{}]", unknown.join(", ")));
        }
        let protocol = fields.get("protocol").and_then(Scalar::as_str);
        let protocol = protocol.filter(|p| matches!(*p, "tcp" | "udp" | "icmp" | "icmpv6" | "all"));
        if protocol.is_none() {
            r.add("protocol must be 'tcp', 'udp', 'icmp', 'icmpv6' or 'all'");
        }
        let raw_protocol = fields.get("protocol").and_then(Scalar::as_str).unwrap_or("");
        if let Some(dest) = destination_type(fields.get("destination"), flags, &mut r) {
            let parts: Vec<&str> = if dest.is_empty() {
                Vec::new()
            } else {
                dest.split(',').collect()
            };
            if parts.len() > MAX_DESTINATIONS {
                r.add(format!(
                    "maximum destinations per rule exceeded - must be under {MAX_DESTINATIONS}"
                ));
            }
            for part in parts {
                destination(part, raw_protocol, flags, &mut r);
            }
        }
        if truthy(fields.get("description")) && fields.get("description").and_then(Scalar::as_str).is_none() {
            r.add("description must be a string");
        }
        if truthy(fields.get("log")) && !matches!(fields.get("log"), Some(Scalar::Bool(_))) {
            r.add("log must be a boolean");
        }
        protocol_fields(protocol, fields, flags, &mut r);
    }
    capped.close(&mut out);
    out
}

/// A `rules` value as the v3 validator sees it.
pub enum ObjectListOrNot {
    List(Vec<Element>),
    NotAList,
}

impl From<ObjectList> for ObjectListOrNot {
    fn from(list: ObjectList) -> Self {
        match list {
            ObjectList::List(items) => ObjectListOrNot::List(items),
            ObjectList::Other(_) => ObjectListOrNot::NotAList,
        }
    }
}

fn generic(flags: CfFlags) -> &'static str {
    if flags.comma_delimited_destinations {
        "destination must contain valid CIDR(s), IP address(es), or IP address range(s)"
    } else {
        "destination must be a valid CIDR, IP address, or IP address range"
    }
}

/// The destination's type and shape; `Some` when its parts are to be checked.
fn destination_type<'a>(value: Option<&'a Scalar>, flags: CfFlags, r: &mut Rule) -> Option<&'a str> {
    let missing = if flags.comma_delimited_destinations {
        "nil destination; destination must be a comma-delimited list of valid CIDRs, IP addresses, or IP address ranges"
    } else {
        "destination must be a valid CIDR, IP address, or IP address range"
    };
    let text = match value {
        None | Some(Scalar::Null) => {
            r.add(missing);
            return None;
        }
        Some(Scalar::Str(s)) => s.as_str(),
        Some(_) => {
            r.add("destination must be a string");
            return None;
        }
    };
    if text
        .chars()
        .any(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'))
    {
        r.add("destination must not contain whitespace");
        return None;
    }
    if !flags.comma_delimited_destinations && text.contains(',') {
        r.add(missing);
        return None;
    }
    Some(text)
}

/// CC's `no_leading_zeros` for one endpoint: dotted octets may not start
/// with `0` (a `/prefix` after an octet is exempt).
fn no_leading_zeros(address: &str) -> bool {
    if !address.contains('.') {
        return true;
    }
    address.split('.').all(|octet| {
        if !(octet.starts_with('0') && octet.len() > 1) {
            return true;
        }
        match octet.split_once('/') {
            None => false,
            Some((head, _)) => !(head.len() > 1 && head.starts_with('0')),
        }
    })
}

fn family(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        4
    } else {
        6
    }
}

fn check_family(protocol: &str, ip: IpAddr, r: &mut Rule) {
    let allowed = match protocol {
        "icmp" => Some(4),
        "icmpv6" => Some(6),
        _ => None,
    };
    if allowed.is_some_and(|a| a != family(ip)) {
        r.add(format!(
            "for protocol \"{protocol}\" you cannot use IPv{} addresses",
            family(ip)
        ));
    }
}

fn destination(part: &str, protocol: &str, flags: CfFlags, r: &mut Rule) {
    if part.is_empty() {
        r.add("empty destination specified in comma-delimited list");
    }
    let mut list: Vec<&str> = part.split('-').collect();
    while list.last() == Some(&"") {
        list.pop();
    }
    let zeros_ok = list.iter().all(|a| no_leading_zeros(a));
    if !zeros_ok {
        r.add("destination octets cannot contain leading zeros");
    }
    match list.as_slice() {
        [single] => match ip_of(single, flags, true) {
            Some(ip) => check_family(protocol, ip, r),
            None if zeros_ok => r.add(generic(flags)),
            None => {}
        },
        [a, b] => {
            let ends = match (ip_of(a, flags, false), ip_of(b, flags, false)) {
                (Some(x), Some(y)) if family(x) == family(y) => Some((x, y)),
                _ => None,
            };
            let Some((start, end)) = ends else {
                r.add("destination IP address range is invalid");
                return;
            };
            if start > end {
                r.add(
                    "beginning of IP address range is numerically greater than the end of its range (range endpoints are inverted)",
                );
            }
            check_family(protocol, start.min(end), r);
        }
        _ => r.add(generic(flags)),
    }
}

/// CC's `validate_icmp_control_message`: an integer in -1..=255.
fn icmp_value(v: Option<&Scalar>) -> bool {
    matches!(v, Some(Scalar::Int(n)) if (-1..=255).contains(n))
}

fn protocol_fields(protocol: Option<&str>, fields: &crate::json::Fields, flags: CfFlags, r: &mut Rule) {
    match protocol {
        Some("tcp" | "udp") => {
            if !truthy(fields.get("ports")) {
                r.add("ports are required for protocols of type TCP and UDP");
            }
            let valid = fields
                .get("ports")
                .and_then(Scalar::as_str)
                .and_then(ports::parse)
                .is_some();
            if !valid {
                r.add(
                    "ports must be a valid single port, comma separated list of ports, or range or ports, formatted as a string",
                );
            }
        }
        Some(p @ ("icmp" | "icmpv6")) => {
            if p == "icmpv6" && !flags.ipv6 {
                r.add("icmpv6 cannot be used if enable_ipv6 is false");
            }
            for key in ["code", "type"] {
                if !truthy(fields.get(key)) {
                    r.add(format!("{key} is required for protocols of type ICMP"));
                }
                if !icmp_value(fields.get(key)) {
                    r.add(format!("{key} must be an integer between -1 and 255 (inclusive)"));
                }
            }
        }
        Some("all") if truthy(fields.get("ports")) => r.add("ports are not allowed for protocols of type all"),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(json: &str, flags: CfFlags) -> Vec<String> {
        let list: ObjectList = serde_json::from_str(json).unwrap();
        messages(&list.into(), flags)
    }

    const OFF: CfFlags = CfFlags {
        comma_delimited_destinations: false,
        ipv6: false,
    };

    #[test]
    fn cc_spec_messages() {
        assert_eq!(msgs(r#"{"a":1}"#, OFF), ["Rules must be an array"]);
        assert_eq!(msgs(r#"["x"]"#, OFF), ["Rules[0]: must be an object"]);
        assert_eq!(
            msgs(
                r#"[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443","foo":1,"bar":2}]"#,
                OFF
            ),
            [r#"Rules[0]: unknown field(s): ["foo", "bar"]"#]
        );
        assert_eq!(
            msgs(r#"[{"protocol":"tcp","destination":"10.0.0.1"}]"#, OFF),
            [
                "Rules[0]: ports are required for protocols of type TCP and UDP",
                "Rules[0]: ports must be a valid single port, comma separated list of ports, or range or ports, formatted as a string"
            ]
        );
        assert_eq!(
            msgs(r#"[{"protocol":"icmp","destination":"10.0.0.1","type":300}]"#, OFF),
            [
                "Rules[0]: code is required for protocols of type ICMP",
                "Rules[0]: code must be an integer between -1 and 255 (inclusive)",
                "Rules[0]: type must be an integer between -1 and 255 (inclusive)"
            ]
        );
        assert_eq!(
            msgs(r#"[{"protocol":"all","destination":"010.0.0.1"}]"#, OFF),
            ["Rules[0]: destination octets cannot contain leading zeros"]
        );
        assert_eq!(
            msgs(r#"[{"protocol":"all","destination":"10.0.0.2-10.0.0.1"}]"#, OFF),
            ["Rules[0]: beginning of IP address range is numerically greater than the end of its range (range endpoints are inverted)"]
        );
        assert_eq!(
            msgs(r#"[{"protocol":"all","destination":"10.0.0.1/8-10.0.0.2"}]"#, OFF),
            ["Rules[0]: destination IP address range is invalid"]
        );
        assert_eq!(
            msgs(r#"[{"protocol":"all","destination":"a,b"}]"#, OFF),
            ["Rules[0]: destination must be a valid CIDR, IP address, or IP address range"]
        );
        let on = CfFlags {
            comma_delimited_destinations: true,
            ipv6: true,
        };
        assert_eq!(
            msgs(
                r#"[{"protocol":"icmp","destination":"10.0.0.1,,::1","type":0,"code":0}]"#,
                on
            ),
            [
                "Rules[0]: empty destination specified in comma-delimited list",
                "Rules[0]: destination must contain valid CIDR(s), IP address(es), or IP address range(s)",
                "Rules[0]: for protocol \"icmp\" you cannot use IPv6 addresses"
            ]
        );
        assert_eq!(
            msgs(r#"[{"protocol":"all","destination":"","log":null}]"#, OFF),
            Vec::<String>::new()
        );
        assert_eq!(
            msgs(
                r#"[{"protocol":"all","destination":"1.1.1.1","ports":"80","log":0}]"#,
                OFF
            ),
            [
                "Rules[0]: log must be a boolean",
                "Rules[0]: ports are not allowed for protocols of type all"
            ]
        );
    }
}
