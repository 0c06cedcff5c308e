//! CF rules expanded into Gcore rules: one atom per CIDR × port range, with
//! Gcore's constraints applied and port 25 handled by policy.

use super::narrow::{carve, Carved, SMTP_PORT};
use crate::dialect::gcore::rule::{check_atom, opens_smtp};
use crate::model::{Atom, Rule};
use std::ops::ControlFlow;

/// What to do with an egress TCP/UDP rule that covers port 25.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpPolicy {
    /// Carve the port out and say so in a warning (the default).
    #[default]
    Narrow,
    /// Refuse the rule.
    Reject,
    /// Send it as is (an account whose block support lifted).
    Allow,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expanded {
    /// Deduplicated atoms, in rule order, destination-major.
    pub atoms: Vec<Atom>,
    /// Human-readable notes on narrowed rules (CF: `X-Cf-Warnings`).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// Rules Gcore cannot take: (1-based rule number, Gcore's message).
    Rules(Vec<(usize, String)>),
    /// More than `max` Gcore rules, the first past `max` from rule number
    /// `at`; expansion stops by twice the cap, so a huge body costs no more.
    TooMany { max: usize, at: usize },
}

/// Why the expansion of one rule stopped early.
enum Stop {
    /// The rule cannot be a Gcore rule: Gcore's message.
    Failed(String),
    /// The atoms so far exceed the cap, first at this rule number.
    TooMany(usize),
}

/// Rules expanded one at a time, for a caller that may read them one by one
/// (a 16 MB body need not be held as a list of rules as well);
/// [`super::ToGcore`] is built on it.
pub struct Expander {
    policy: SmtpPolicy,
    max: usize,
    out: Expanded,
    /// One key per atom in `out.atoms`, for dropping repeats.
    keys: Keys,
    /// Rule numbers that could not be expanded, with Gcore's message.
    errors: Vec<(usize, String)>,
    /// Rules pushed so far.
    pushed: usize,
}

impl Expander {
    /// `hint`: about how many rules will be pushed (sizes the output).
    pub fn new(policy: SmtpPolicy, max: usize, hint: usize) -> Self {
        let room = hint.min(max.saturating_add(1));
        let mut out = Expanded::default();
        out.atoms.reserve(room);
        Expander {
            policy,
            max,
            out,
            keys: Keys::with_capacity(room),
            errors: Vec::new(),
            pushed: 0,
        }
    }

    /// Expands the next rule; `TooMany` once the atoms, repeats dropped,
    /// are found to exceed `max` (looked at past twice `max` and at the end,
    /// so a huge body costs no more than about twice the cap).
    pub fn push(&mut self, rule: &Rule) -> Result<(), ExpandError> {
        self.pushed += 1;
        let number = self.pushed;
        let (policy, max) = (self.policy, self.max);
        let (out, keys) = (&mut self.out, &mut self.keys);
        let mut narrowed = false;
        let mut kept = 0usize;
        let flow = rule.try_each_atom(|atom| {
            if let Err(e) = check_atom(&atom) {
                return ControlFlow::Break(Stop::Failed(e));
            }
            // The atom itself, or (narrowed) the pieces carved from it; an
            // empty `Vec` allocates nothing, so the usual atom costs no list.
            let (whole, pieces) = match (policy, opens_smtp(&atom)) {
                (SmtpPolicy::Reject, true) => {
                    return ControlFlow::Break(Stop::Failed(format!(
                        "covers egress TCP/UDP port {SMTP_PORT}, which Gcore blocks (set gcore.port25 = \"narrow\" to carve it out)"
                    )));
                }
                (SmtpPolicy::Narrow, true) => match carve(&atom, SMTP_PORT) {
                    Carved::Untouched => (Some(atom), Vec::new()),
                    Carved::Replaced(pieces) => {
                        narrowed = true;
                        (None, pieces)
                    }
                },
                _ => (Some(atom), Vec::new()),
            };
            for piece in whole.into_iter().chain(pieces) {
                kept += 1;
                keys.push(&piece, number);
                out.atoms.push(piece);
            }
            // Repeats are dropped in bulk; past twice the cap they are
            // dropped now, to see whether the cap is passed (so a huge body
            // costs at most about twice the cap).
            let past = match out.atoms.len() > max.saturating_mul(2) {
                true => keys.drop_repeats(&mut out.atoms, max),
                false => None,
            };
            past.map_or(ControlFlow::Continue(()), |at| ControlFlow::Break(Stop::TooMany(at)))
        });
        match flow {
            ControlFlow::Break(Stop::TooMany(at)) => return Err(ExpandError::TooMany { max, at }),
            ControlFlow::Break(Stop::Failed(e)) => self.errors.push((number, e)),
            ControlFlow::Continue(()) if narrowed && kept == 0 => out.warnings.push(format!(
                "rule number {number} allows only egress TCP/UDP port {SMTP_PORT}, which Gcore blocks; it was left out"
            )),
            ControlFlow::Continue(()) if narrowed => out.warnings.push(format!(
                "rule number {number} was narrowed to leave out egress TCP/UDP port {SMTP_PORT}, which Gcore blocks"
            )),
            ControlFlow::Continue(()) => {}
        }
        Ok(())
    }

    /// The atoms of every rule pushed, or the rules Gcore cannot take.
    pub fn finish(mut self) -> Result<Expanded, ExpandError> {
        if let Some(at) = self.keys.drop_repeats(&mut self.out.atoms, self.max) {
            Err(ExpandError::TooMany { max: self.max, at })
        } else if self.errors.is_empty() {
            Ok(self.out)
        } else {
            Err(ExpandError::Rules(self.errors))
        }
    }
}

/// A hash and a rule number for each atom, in the atoms' order.
///
/// Repeats are found by sorting the hashes, not by looking each atom up in a
/// hash table as it comes: a 16 MB body makes ~300,000 atoms, and a lookup
/// each into a table of that size missed the cache nearly every time (three
/// quarters of the expansion's time).
struct Keys {
    hasher: ahash::RandomState,
    /// `(hash, rule number)` of `atoms[i]`.
    keys: Vec<(u64, usize)>,
    /// How many leading atoms hold no repeats.
    unique: usize,
}

impl Keys {
    fn with_capacity(n: usize) -> Self {
        Keys {
            hasher: ahash::RandomState::new(),
            keys: Vec::with_capacity(n),
            unique: 0,
        }
    }

    fn push(&mut self, atom: &Atom, rule: usize) {
        self.keys.push((self.hasher.hash_one(atom), rule));
    }

    /// Drops every atom equal to one before it (the first stays, order is
    /// kept); then, if more than `max` remain, the number of the rule whose
    /// atom was the first past `max`.
    fn drop_repeats(&mut self, atoms: &mut Vec<Atom>, max: usize) -> Option<usize> {
        if self.unique < atoms.len() {
            let repeats = self.repeats(atoms);
            if !repeats.is_empty() {
                remove_at(atoms, &repeats);
                remove_at(&mut self.keys, &repeats);
            }
            self.unique = atoms.len();
        }
        self.keys.get(max).map(|&(_, rule)| rule)
    }

    /// The positions, ascending, of atoms equal to an earlier atom.
    fn repeats(&self, atoms: &[Atom]) -> Vec<usize> {
        let mut order: Vec<(u64, usize)> = self.keys.iter().enumerate().map(|(i, &(hash, _))| (hash, i)).collect();
        order.sort_unstable();
        let mut repeats = Vec::new();
        for run in order.chunk_by(|a, b| a.0 == b.0).filter(|run| run.len() > 1) {
            // In position order: an atom repeats if an earlier one in its run
            // (equal hash) is equal and not itself a repeat.
            let mut firsts: Vec<usize> = Vec::new();
            for &(_, i) in run {
                if firsts.iter().any(|&f| atoms[f] == atoms[i]) {
                    repeats.push(i);
                } else {
                    firsts.push(i);
                }
            }
        }
        repeats.sort_unstable();
        repeats
    }
}

/// Removes the items at `positions` (ascending) in one pass.
fn remove_at<T>(items: &mut Vec<T>, positions: &[usize]) {
    let mut next = positions.iter().peekable();
    let mut i = 0;
    items.retain(|_| {
        let repeat = next.next_if_eq(&&i).is_some();
        i += 1;
        !repeat
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every rule, without a cap; errors carry the rule number and message.
    fn expand(rules: &[Rule], policy: SmtpPolicy) -> Result<Expanded, Vec<(usize, String)>> {
        expand_within(rules, policy, usize::MAX).map_err(|e| match e {
            ExpandError::Rules(errs) => errs,
            ExpandError::TooMany { .. } => unreachable!("no atom count exceeds usize::MAX"),
        })
    }

    fn expand_within(rules: &[Rule], policy: SmtpPolicy, max: usize) -> Result<Expanded, ExpandError> {
        let mut expander = Expander::new(policy, max, rules.len());
        for rule in rules {
            expander.push(rule)?;
        }
        expander.finish()
    }
    use crate::model::{Direction, Family, IcmpMatch, IcmpVersion, IpList, IpRange, Protocol, Target};

    fn rule(protocol: Protocol, dest: &str) -> Rule {
        Rule {
            direction: Direction::Egress,
            protocol,
            target: Target::Ips(IpList::new(vec![IpRange::from_net(dest.parse().unwrap())]).unwrap()),
            description: None,
            log: false,
        }
    }

    #[test]
    fn all_is_narrowed_or_rejected() {
        let r = rule(Protocol::Any, "0.0.0.0/0");
        let e = expand(std::slice::from_ref(&r), SmtpPolicy::Narrow).unwrap();
        assert_eq!(e.atoms.len(), 20);
        assert_eq!(e.warnings.len(), 1);
        assert!(e.atoms.iter().all(|a| !opens_smtp(a)));
        let errs = expand(std::slice::from_ref(&r), SmtpPolicy::Reject).unwrap_err();
        assert_eq!(errs[0].0, 1);
        assert_eq!(expand(&[r], SmtpPolicy::Allow).unwrap().atoms.len(), 1);
    }

    #[test]
    fn expansion_stops_at_the_cap() {
        let many: Vec<Rule> = (0..1000)
            .map(|i| Rule {
                description: Some(format!("rule {i}")),
                ..rule(Protocol::Any, "0.0.0.0/0")
            })
            .collect();
        assert_eq!(
            expand_within(&many, SmtpPolicy::Narrow, 20),
            Err(ExpandError::TooMany { max: 20, at: 2 })
        );
        assert_eq!(
            expand_within(&many[..1], SmtpPolicy::Narrow, 20).unwrap().atoms.len(),
            20
        );
        let other = rule(
            Protocol::Ported(crate::model::PortedProto::Tcp, crate::model::PortSet::Any),
            "10.0.0.0/8",
        );
        assert_eq!(
            expand_within(&[many[0].clone(), other], SmtpPolicy::Allow, 1),
            Err(ExpandError::TooMany { max: 1, at: 2 })
        );
    }

    #[test]
    fn gcore_constraints_name_the_rule() {
        let ok = rule(Protocol::Icmp(IcmpVersion::V4, IcmpMatch::default()), "10.0.0.0/8");
        let bad = rule(Protocol::Icmp(IcmpVersion::V4, IcmpMatch::default()), "2001:db8::/32");
        let errs = expand(&[ok, bad], SmtpPolicy::Narrow).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, 2);
        assert!(errs[0].1.contains("ipv6-icmp"));
        let _ = Family::V4;
    }

    /// Repeats anywhere in the list are dropped, the first of each kept in
    /// place, as a plain "seen before?" scan does.
    #[test]
    fn repeats_are_dropped_keeping_the_first_in_order() {
        let ported = |dest: &str, ports: &[(u16, u16)]| Rule {
            protocol: Protocol::Ported(
                crate::model::PortedProto::Tcp,
                crate::model::PortSet::Ranges(
                    crate::model::port::NonEmptyRanges::new(
                        ports
                            .iter()
                            .map(|&(lo, hi)| crate::model::PortRange::new(lo, hi).unwrap())
                            .collect::<Vec<_>>(),
                    )
                    .unwrap(),
                ),
            ),
            ..rule(Protocol::Any, dest)
        };
        let mut rules = Vec::new();
        for i in 0..400u32 {
            let dest = format!("10.0.{}.0/24", (i * 7) % 37);
            rules.push(ported(&dest, &[(80, 80), (443 + (i % 3) as u16, 443 + (i % 3) as u16)]));
            if i % 5 == 0 {
                rules.push(rule(Protocol::Any, &format!("10.{}.0.0/16", i % 4)));
            }
        }
        let mut naive: Vec<Atom> = Vec::new();
        for atom in rules.iter().flat_map(Rule::atoms) {
            if !naive.contains(&atom) {
                naive.push(atom);
            }
        }
        assert!(naive.len() < rules.len(), "the set has repeats");
        assert_eq!(expand(&rules, SmtpPolicy::Allow).unwrap().atoms, naive);
    }

    /// The cap counts atoms without repeats, and names the rule whose atom
    /// was the first past it, whenever that is found out.
    #[test]
    fn the_cap_names_the_rule_that_passed_it() {
        let a = rule(Protocol::Any, "10.0.0.0/8");
        let b = rule(Protocol::Any, "11.0.0.0/8");
        let c = rule(Protocol::Any, "12.0.0.0/8");
        let d = rule(Protocol::Any, "13.0.0.0/8");
        let set = [
            a.clone(),
            a.clone(),
            b.clone(),
            a.clone(),
            c.clone(),
            b.clone(),
            d.clone(),
            c.clone(),
        ];
        assert_eq!(
            expand_within(&set, SmtpPolicy::Allow, 3),
            Err(ExpandError::TooMany { max: 3, at: 7 })
        );
        assert_eq!(expand_within(&set, SmtpPolicy::Allow, 4).unwrap().atoms.len(), 4);
        // Found at the end (never past twice the cap) or on the way.
        assert_eq!(
            expand_within(&[a.clone(), b.clone(), c.clone()], SmtpPolicy::Allow, 2),
            Err(ExpandError::TooMany { max: 2, at: 3 })
        );
        let many: Vec<Rule> = std::iter::repeat_n([a, b], 10_000).flatten().chain([c, d]).collect();
        assert_eq!(
            expand_within(&many, SmtpPolicy::Allow, 3),
            Err(ExpandError::TooMany { max: 3, at: 20_002 })
        );
    }
}
