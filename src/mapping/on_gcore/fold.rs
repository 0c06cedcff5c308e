//! Gcore atoms folded back into the rules a CF caller wrote: the port-25
//! narrowing shapes are undone first (split TCP/UDP halves rejoined, complete
//! "everything but port 25" templates collapsed into `all`), then the atoms
//! are compacted.

use super::narrow::{joined_any_template, rejoin, SMTP_PORT};
use crate::model::compact::{compact, compact_unique, unique};
use crate::model::{Atom, AtomDest, AtomProto, Direction, Family, Rule};
use ahash::{AHashMap, AHashSet};

/// Fold atoms into compact rules; with `carved`, undo port-25 narrowing.
pub fn fold(atoms: &[Atom], carved: bool) -> Vec<Rule> {
    if !carved {
        return compact(atoms);
    }
    let atoms = unique(atoms);
    let before = atoms.len();
    let folded = collapse_any_templates(rejoin_halves(atoms));
    // Each join makes one atom of several, which may equal an atom kept beside
    // it; with nothing joined the atoms are still unique.
    if folded.len() == before {
        compact_unique(&folded)
    } else {
        compact(&folded)
    }
}

/// Joins each pair of neighbouring halves, in place (a 16 MB group is ~300,000
/// atoms: no second copy of them).
fn rejoin_halves(mut atoms: Vec<Atom>) -> Vec<Atom> {
    // `atoms[..kept]` is the output so far; the rest is still to be read.
    let mut kept = 0;
    for next in 0..atoms.len() {
        if kept > 0 {
            if let Some(joined) = rejoin(&atoms[kept - 1], &atoms[next], SMTP_PORT) {
                atoms[kept - 1] = joined;
                continue;
            }
        }
        atoms.swap(kept, next);
        kept += 1;
    }
    atoms.truncate(kept);
    atoms
}

/// Replace each complete "everything but the carved port" set of egress atoms
/// to one destination by a single `Any` atom, placed where the set began.
fn collapse_any_templates(atoms: Vec<Atom>) -> Vec<Atom> {
    type Key<'a> = (&'a AtomDest, &'a Option<String>, bool);
    let [v4, v6]: [AHashSet<AtomProto>; 2] =
        [Family::V4, Family::V6].map(|f| joined_any_template(f).into_iter().collect());
    let template = |f: Family| match f {
        Family::V4 => &v4,
        Family::V6 => &v6,
    };
    let mut members: AHashMap<Key, (AHashSet<AtomProto>, Vec<usize>)> = AHashMap::new();
    for (i, a) in atoms.iter().enumerate() {
        if a.direction == Direction::Egress && template(a.dest.family()).contains(&a.proto) {
            let entry = members
                .entry((&a.dest, &a.description, a.log))
                .or_insert_with(|| (AHashSet::new(), Vec::new()));
            if entry.0.insert(a.proto) {
                entry.1.push(i);
            }
        }
    }
    let mut drop = vec![false; atoms.len()];
    let mut first = AHashSet::new();
    for ((dest, _, _), (protos, idx)) in &members {
        if protos.len() == template(dest.family()).len() {
            idx.iter().for_each(|&i| drop[i] = true);
            first.insert(idx[0]);
        }
    }
    drop_marked(atoms, &drop, &first)
}

/// `atoms` without those marked in `drop`, those in `first` becoming `Any`;
/// in place.
fn drop_marked(mut atoms: Vec<Atom>, drop: &[bool], first: &AHashSet<usize>) -> Vec<Atom> {
    if first.is_empty() {
        return atoms;
    }
    let mut i = 0;
    atoms.retain_mut(|a| {
        let keep = match (first.contains(&i), drop[i]) {
            (true, _) => {
                a.proto = AtomProto::Any;
                true
            }
            (false, dropped) => !dropped,
        };
        i += 1;
        keep
    });
    atoms
}

#[cfg(test)]
mod tests {
    use super::super::narrow::{carve, Carved};
    use super::*;
    use crate::model::{IpList, IpRange, PortRange, PortSet, PortedProto, Protocol, Target};

    fn rule(protocol: Protocol, a: &str, b: &str) -> Rule {
        Rule {
            direction: Direction::Egress,
            protocol,
            target: Target::Ips(
                IpList::new(vec![IpRange::new(a.parse().unwrap(), b.parse().unwrap()).unwrap()]).unwrap(),
            ),
            description: None,
            log: false,
        }
    }

    fn tcp(lo: u16, hi: u16) -> Protocol {
        Protocol::Ported(PortedProto::Tcp, PortSet::single(PortRange::new(lo, hi).unwrap()))
    }

    #[test]
    fn narrowing_is_undone() {
        for protocol in [Protocol::Any, tcp(1, 65535), tcp(20, 30)] {
            let r = rule(protocol, "0.0.0.0", "255.255.255.255");
            let carved: Vec<Atom> = r
                .atoms()
                .iter()
                .flat_map(|a| match carve(a, SMTP_PORT) {
                    Carved::Untouched => vec![a.clone()],
                    Carved::Replaced(v) => v,
                })
                .collect();
            assert_eq!(fold(&carved, true), vec![r]);
        }
    }

    #[test]
    fn incomplete_template_is_not_collapsed() {
        let r = rule(Protocol::Any, "10.0.0.0", "10.0.0.255");
        let Carved::Replaced(mut atoms) = carve(&r.atoms()[0], SMTP_PORT) else {
            panic!()
        };
        atoms.pop();
        assert!(fold(&atoms, true).iter().all(|r| r.protocol != Protocol::Any));
    }

    #[test]
    fn a_rejoined_atom_equal_to_another_is_folded_once() {
        let whole = rule(tcp(1, 65535), "10.0.0.1", "10.0.0.1");
        let Carved::Replaced(mut atoms) = carve(&whole.atoms()[0], SMTP_PORT) else {
            panic!()
        };
        // The two halves rejoin into an atom already in the list, apart.
        let between = rule(
            Protocol::Icmp(crate::model::IcmpVersion::V4, Default::default()),
            "10.0.0.1",
            "10.0.0.1",
        );
        atoms.extend(between.atoms());
        atoms.extend(whole.atoms());
        assert_eq!(fold(&atoms, true), vec![whole, between]);
    }
}
