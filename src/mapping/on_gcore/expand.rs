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

/// Expand rules; errors carry the 1-based rule number and Gcore's message.
pub fn expand(rules: &[Rule], policy: SmtpPolicy) -> Result<Expanded, Vec<(usize, String)>> {
    expand_within(rules, policy, usize::MAX).map_err(|e| match e {
        ExpandError::Rules(errs) => errs,
        ExpandError::TooMany { .. } => unreachable!("no atom count exceeds usize::MAX"),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// Rules Gcore cannot take: (1-based rule number, Gcore's message).
    Rules(Vec<(usize, String)>),
    /// More than `max` Gcore rules, found while expanding rule number `at`;
    /// expansion stops there, so a huge body costs no more than the cap.
    TooMany { max: usize, at: usize },
}

/// Why the expansion of one rule stopped early.
enum Stop {
    /// The rule cannot be a Gcore rule: Gcore's message.
    Failed(String),
    /// The atoms so far exceed the cap.
    TooMany,
}

/// [`expand`], giving up as soon as the result would exceed `max` rules.
pub fn expand_within(rules: &[Rule], policy: SmtpPolicy, max: usize) -> Result<Expanded, ExpandError> {
    let mut expander = Expander::new(policy, max, rules.len());
    for rule in rules {
        expander.push(rule)?;
    }
    expander.finish()
}

/// [`expand_within`] one rule at a time, for a caller that reads rules one
/// by one (a 16 MB body need not be held as a list of rules as well).
pub struct Expander {
    policy: SmtpPolicy,
    max: usize,
    out: Expanded,
    seen: Seen,
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
            seen: Seen::with_capacity(room),
            errors: Vec::new(),
            pushed: 0,
        }
    }

    /// Expands the next rule; `TooMany` as soon as the atoms exceed `max`
    /// (expansion stops there, so a huge body costs no more than the cap).
    pub fn push(&mut self, rule: &Rule) -> Result<(), ExpandError> {
        self.pushed += 1;
        let number = self.pushed;
        let (policy, max) = (self.policy, self.max);
        let (out, seen) = (&mut self.out, &mut self.seen);
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
                seen.push_new(&mut out.atoms, piece);
            }
            if out.atoms.len() > max {
                ControlFlow::Break(Stop::TooMany)
            } else {
                ControlFlow::Continue(())
            }
        });
        match flow {
            ControlFlow::Break(Stop::TooMany) => return Err(ExpandError::TooMany { max, at: number }),
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
    pub fn finish(self) -> Result<Expanded, ExpandError> {
        if self.errors.is_empty() {
            Ok(self.out)
        } else {
            Err(ExpandError::Rules(self.errors))
        }
    }
}

/// The atoms kept so far, by index: each atom is looked up once (300,000
/// times for a 16 MB body), so the set holds indices into the output rather
/// than copies, hashed with aHash.
struct Seen {
    table: hashbrown::HashTable<usize>,
    hasher: ahash::RandomState,
}

impl Seen {
    fn with_capacity(n: usize) -> Self {
        Seen {
            table: hashbrown::HashTable::with_capacity(n),
            hasher: ahash::RandomState::new(),
        }
    }

    /// Appends `atom` to `atoms` unless an equal one is there already.
    fn push_new(&mut self, atoms: &mut Vec<Atom>, atom: Atom) {
        let hash = self.hasher.hash_one(&atom);
        let hasher = &self.hasher;
        if self.table.find(hash, |&i| atoms[i] == atom).is_none() {
            self.table
                .insert_unique(hash, atoms.len(), |&i| hasher.hash_one(&atoms[i]));
            atoms.push(atom);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
