//! CF-only state carried in reserved Gcore tags, on the group itself: a CF
//! view of a Gcore backend needs no store beside it (the gateway's store
//! holds only what it keeps for itself: locks, idempotency, tasks).
//!
//! Every reserved key starts with [`RESERVED_PREFIX`]. Running/staging defaults
//! are one tag each, each bound space is one tag (`…space.<guid>` =
//! `running`, `staging` or `running,staging`), and each atom whose CF rule had
//! `log: true` is one tag keyed by a stable fingerprint of the atom, so the flag
//! survives any reordering of rules by the backend. Tags without the prefix are
//! the caller's and pass through untouched.

use crate::model::{Atom, AtomDest, AtomProto, CfAttrs, Direction, NamedProto, Tag, TagPatch, Uuid};
use std::collections::HashSet;
use std::fmt::Write;

pub const RESERVED_PREFIX: &str = "sgbridge.cf.";
const RUNNING: &str = "sgbridge.cf.running_default";
const STAGING: &str = "sgbridge.cf.staging_default";
const SPACE: &str = "sgbridge.cf.space.";
const LOG: &str = "sgbridge.cf.log.";
/// Marks a group with the create operation that made it, so a create whose
/// answer was lost can be recognised when it turns up.
pub const CREATE_MARKER: &str = "sgbridge.cf.create";

pub fn is_reserved(key: &str) -> bool {
    key.starts_with(RESERVED_PREFIX)
}

/// Whether a tag carries CF attributes of the group itself (defaults, space
/// bindings, the create marker), as opposed to rule `log` flags.
pub fn is_cf_attr(key: &str) -> bool {
    key == RUNNING || key == STAGING || key == CREATE_MARKER || key.starts_with(SPACE)
}

/// A stable 64-bit FNV-1a fingerprint of everything in an atom but `log`.
pub fn fingerprint(atom: &Atom) -> String {
    let mut text = String::with_capacity(64);
    let dir = match atom.direction {
        Direction::Ingress => "in",
        Direction::Egress => "out",
    };
    let _ = write!(text, "{dir}|");
    match atom.proto {
        AtomProto::Any => text.push_str("any"),
        AtomProto::Ported(p, r) => {
            let _ = write!(
                text,
                "{}:{:?}",
                NamedProto::Ported(p).gcore_name(),
                r.map(|r| (r.lo(), r.hi()))
            );
        }
        AtomProto::Icmp(v, m) => {
            let _ = write!(text, "{}:{:?}:{:?}", NamedProto::Icmp(v).gcore_name(), m.ty, m.code);
        }
        AtomProto::Bare(b) => text.push_str(NamedProto::Bare(b).gcore_name()),
    }
    match &atom.dest {
        AtomDest::Any(f) => {
            let _ = write!(text, "|any:{f:?}");
        }
        AtomDest::Net(n) => {
            let _ = write!(text, "|{n}");
        }
        AtomDest::Group(id, f) => {
            let _ = write!(text, "|group:{id}:{f:?}");
        }
    }
    if let Some(d) = &atom.description {
        let _ = write!(text, "|{}:{d}", d.len());
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The reserved tags that encode `attrs` and the `log` flags of `atoms`.
pub fn encode(attrs: &CfAttrs, atoms: &[Atom]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if attrs.running_default {
        out.push((RUNNING.to_string(), "true".to_string()));
    }
    if attrs.staging_default {
        out.push((STAGING.to_string(), "true".to_string()));
    }
    for space in attrs.spaces.union(&attrs.staging_spaces) {
        let value = match (attrs.spaces.contains(space), attrs.staging_spaces.contains(space)) {
            (true, true) => "running,staging",
            (true, false) => "running",
            _ => "staging",
        };
        out.push((format!("{SPACE}{space}"), value.to_string()));
    }
    let mut logged = HashSet::new();
    for atom in atoms.iter().filter(|a| a.log) {
        let fp = fingerprint(atom);
        if logged.insert(fp.clone()) {
            out.push((format!("{LOG}{fp}"), "true".to_string()));
        }
    }
    out
}

/// The CF attributes and logged-atom fingerprints found in `tags`.
pub fn decode(tags: &[Tag]) -> (CfAttrs, HashSet<String>) {
    let mut attrs = CfAttrs::default();
    let mut logged = HashSet::new();
    for tag in tags {
        let key = tag.key.as_str();
        if key == RUNNING {
            attrs.running_default = tag.value == "true";
        } else if key == STAGING {
            attrs.staging_default = tag.value == "true";
        } else if let Some(guid) = key.strip_prefix(SPACE).and_then(Uuid::parse) {
            for lifecycle in tag.value.split(',') {
                match lifecycle {
                    "running" => attrs.spaces.insert(guid.clone()),
                    "staging" => attrs.staging_spaces.insert(guid.clone()),
                    _ => false,
                };
            }
        } else if let Some(fp) = key.strip_prefix(LOG) {
            if tag.value == "true" {
                logged.insert(fp.to_string());
            }
        }
    }
    (attrs, logged)
}

/// Set `log` on every atom whose fingerprint was logged.
pub fn apply_log(atoms: &mut [Atom], logged: &HashSet<String>) {
    if logged.is_empty() {
        return;
    }
    for atom in atoms {
        atom.log = logged.contains(&fingerprint(atom));
    }
}

/// The merge patch that turns the reserved tags of `current` into `desired`;
/// tags outside the reserved prefix are never touched, and neither is the
/// create marker (it names the operation that made the group, for good).
pub fn reserved_patch(current: &[Tag], desired: &[(String, String)]) -> TagPatch {
    let mut changes: Vec<(String, Option<String>)> = Vec::new();
    for t in current
        .iter()
        .filter(|t| is_reserved(&t.key) && !t.read_only && t.key != CREATE_MARKER)
    {
        if !desired.iter().any(|(k, _)| *k == t.key) {
            changes.push((t.key.clone(), None));
        }
    }
    for (k, v) in desired {
        if !current.iter().any(|t| t.key == *k && t.value == *v) {
            changes.push((k.clone(), Some(v.clone())));
        }
    }
    if changes.is_empty() {
        TagPatch::Keep
    } else {
        TagPatch::Merge(changes)
    }
}

/// The create marker a group carries, if any.
pub fn create_marker(tags: &[Tag]) -> Option<&str> {
    tags.iter().find(|t| t.key == CREATE_MARKER).map(|t| t.value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PortRange, PortedProto};

    fn atom(log: bool) -> Atom {
        Atom {
            direction: Direction::Egress,
            proto: AtomProto::Ported(PortedProto::Tcp, PortRange::new(2048, 3000)),
            dest: AtomDest::net("0.0.0.0/0".parse().unwrap()),
            description: Some("x".into()),
            log,
        }
    }

    #[test]
    fn fingerprint_ignores_log_only() {
        assert_eq!(fingerprint(&atom(true)), fingerprint(&atom(false)));
        let mut other = atom(false);
        other.description = None;
        assert_ne!(fingerprint(&atom(false)), fingerprint(&other));
        // Pinned: a change here would lose every stored log flag.
        assert_eq!(fingerprint(&atom(false)).len(), 16);
    }

    #[test]
    fn encode_decode_round_trip() {
        let space = Uuid::parse("11111111-2222-4333-8444-555555555555").unwrap();
        let attrs = CfAttrs {
            running_default: true,
            staging_default: false,
            spaces: [space.clone()].into(),
            staging_spaces: [space].into(),
        };
        let tags: Vec<Tag> = encode(&attrs, &[atom(true), atom(false)])
            .into_iter()
            .map(|(key, value)| Tag::writable(key, value))
            .collect();
        assert!(tags
            .iter()
            .all(|t| is_reserved(&t.key) && !t.key.contains(' ') && t.key.len() <= 255));
        let (back, logged) = decode(&tags);
        assert_eq!(back, attrs);
        let mut atoms = vec![atom(false)];
        apply_log(&mut atoms, &logged);
        assert!(atoms[0].log);
    }

    #[test]
    fn reserved_patch_touches_only_reserved_keys() {
        let current = vec![
            Tag::writable("owner", "me"),
            Tag::writable("sgbridge.cf.running_default", "true"),
            Tag::writable("sgbridge.cf.log.1", "true"),
            Tag::writable(CREATE_MARKER, "op"),
        ];
        let p = reserved_patch(
            &current,
            &[
                ("sgbridge.cf.log.1".into(), "true".into()),
                ("sgbridge.cf.log.2".into(), "true".into()),
            ],
        );
        assert_eq!(
            p,
            TagPatch::Merge(vec![
                ("sgbridge.cf.running_default".into(), None),
                ("sgbridge.cf.log.2".into(), Some("true".into())),
            ])
        );
        assert_eq!(reserved_patch(&current[..1], &[]), TagPatch::Keep);
        assert_eq!(create_marker(&current), Some("op"));
    }
}
