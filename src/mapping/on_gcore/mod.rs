//! Cloud Foundry groups on a Gcore-shaped (atomic) backend: the one home of
//! the CF-on-Gcore mapping.
//!
//! - CF rules expand into one Gcore rule per destination CIDR × port range
//!   ([`expand`]), refused past the backend's rule cap;
//! - egress TCP/UDP port 25, which Gcore blocks, is narrowed around or refused
//!   by policy ([`narrow`]);
//! - CF-only state (defaults, space bindings, `log` flags) lives in reserved
//!   group tags ([`tags`]);
//! - reading folds the atoms back into the rules a CF caller wrote ([`fold`]);
//!   rules CF cannot say are "foreign": shown as warnings, kept on replace.
//!
//! `sgbridge translate`, the server and the property tests all go through
//! [`to_gcore`] and [`to_cf`].

pub mod expand;
pub mod fold;
pub mod narrow;
pub mod tags;

pub use expand::{ExpandError, Expanded, SmtpPolicy};

use super::{CfChange, CfCreate, CfGroup, PlanError};
use crate::dialect::cf::render::expressible;
use crate::model::{Atom, AtomicContent, GroupMeta, NewContent, PatchContent, Rule, Tag};
use std::collections::HashSet;

/// How CF rules are fitted to a Gcore-shaped backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub smtp: SmtpPolicy,
    /// Most rules one group holds (Gcore's PATCH takes at most 250).
    pub max_rules: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            smtp: SmtpPolicy::Narrow,
            max_rules: 250,
        }
    }
}

impl Policy {
    /// Whether stored atoms carry port-25 narrowing to undo on the way back.
    fn carved(&self) -> bool {
        self.smtp != SmtpPolicy::Allow
    }
}

/// CF rules as Gcore atoms (deduplicated, `log` kept on each atom), with
/// narrowing warnings; `kept` atoms already in the group count toward the cap.
pub fn to_gcore(rules: &[Rule], policy: Policy, kept: usize) -> Result<Expanded, PlanError> {
    let mut plan = ToGcore::new(policy, kept, rules.len());
    for rule in rules {
        plan.push(rule)?;
    }
    plan.finish()
}

/// [`to_gcore`] one rule at a time (`sgbridge translate` maps each rule of a
/// large body as it is read).
pub struct ToGcore {
    expander: expand::Expander,
    max_rules: usize,
}

impl ToGcore {
    /// `hint`: about how many rules will be pushed.
    pub fn new(policy: Policy, kept: usize, hint: usize) -> Self {
        let max = policy.max_rules.saturating_sub(kept);
        ToGcore {
            expander: expand::Expander::new(policy.smtp, max, hint),
            max_rules: policy.max_rules,
        }
    }

    /// Maps the next rule; an error here ends the plan (the cap is passed).
    pub fn push(&mut self, rule: &Rule) -> Result<(), PlanError> {
        let max_rules = self.max_rules;
        self.expander.push(rule).map_err(|e| plan_error(e, max_rules))
    }

    pub fn finish(self) -> Result<Expanded, PlanError> {
        let max_rules = self.max_rules;
        self.expander.finish().map_err(|e| plan_error(e, max_rules))
    }
}

fn plan_error(e: ExpandError, max_rules: usize) -> PlanError {
    match e {
        ExpandError::Rules(errs) => PlanError::Rules(errs),
        ExpandError::TooMany { at, .. } => PlanError::TooMany { max: max_rules, at },
    }
}

/// The CF rules that atoms (with their `log` flags) stand for.
pub fn to_cf(atoms: &[Atom], policy: Policy) -> Vec<Rule> {
    fold::fold(atoms, policy.carved())
}

/// The reserved tags that carry `log` flags and CF attributes.
pub fn cf_tags(attrs: &crate::model::CfAttrs, atoms: &[Atom]) -> Vec<(String, String)> {
    tags::encode(attrs, atoms)
}

/// The atoms of a stored group with their CF `log` flags restored from tags.
pub fn logged_atoms(content: &AtomicContent) -> Vec<Atom> {
    with_log(content.rules.iter().map(|r| r.atom.clone()).collect(), &content.tags)
}

/// `atoms` with the CF `log` flags that `tags` carry.
pub fn with_log(mut atoms: Vec<Atom>, tags: &[Tag]) -> Vec<Atom> {
    let (_, logged) = tags::decode(tags);
    tags::apply_log(&mut atoms, &logged);
    atoms
}

/// Atoms as a Gcore backend stores them: `log` is CF state and lives in tags.
fn stored(atoms: &[Atom]) -> Vec<Atom> {
    atoms
        .iter()
        .map(|a| Atom {
            log: false,
            ..a.clone()
        })
        .collect()
}

/// A stored group split into what CF can say and what it cannot.
struct Split {
    attrs: crate::model::CfAttrs,
    rules: Vec<Rule>,
    /// Atoms CF cannot say; kept across CF rule replacements.
    foreign: Vec<Atom>,
    /// (Gcore rules not shown, why) per foreign rule.
    unshown: Vec<(usize, String)>,
}

fn split(content: &AtomicContent, policy: Policy) -> Split {
    let (attrs, _) = tags::decode(&content.tags);
    let mut out = Split {
        attrs,
        rules: Vec::new(),
        foreign: Vec::new(),
        unshown: Vec::new(),
    };
    for rule in to_cf(&logged_atoms(content), policy) {
        match expressible(&rule) {
            Ok(()) => out.rules.push(rule),
            Err(reason) => {
                let atoms = rule.atoms();
                out.unshown.push((atoms.len(), reason.to_string()));
                out.foreign.extend(stored(&atoms));
            }
        }
    }
    out
}

/// A stored group as CF callers see it.
pub fn cf_view(meta: &GroupMeta, content: &AtomicContent, policy: Policy) -> CfGroup {
    let s = split(content, policy);
    let warnings = s
        .unshown
        .iter()
        .map(|(n, reason)| {
            format!(
                "security group {}: {n} Gcore rule(s) not shown: the rule {reason}",
                meta.name
            )
        })
        .collect();
    CfGroup {
        meta: meta.clone(),
        rules: s.rules,
        attrs: s.attrs,
        foreign: s.foreign,
        warnings,
    }
}

/// A CF create as Gcore content: expanded rules and the reserved tags,
/// marked with the create operation `marker`.
pub fn plan_create(req: &CfCreate, policy: Policy, marker: &str) -> Result<(NewContent, Vec<String>), PlanError> {
    let expanded = to_gcore(&req.rules, policy, 0)?;
    let mut tags = cf_tags(&req.attrs, &expanded.atoms);
    tags.push((tags::CREATE_MARKER.to_string(), marker.to_string()));
    let content = NewContent::Atomic {
        rules: Some(stored(&expanded.atoms)),
        tags,
    };
    Ok((content, expanded.warnings))
}

/// A CF change to a stored group as a Gcore patch. Foreign rules are kept
/// beside new CF rules; rules are sent only when the set changes, reserved
/// tags only where they differ.
pub fn plan_update(
    current: &AtomicContent,
    change: &CfChange,
    policy: Policy,
) -> Result<(PatchContent, Vec<String>), PlanError> {
    let view = split(current, policy);
    let (atoms, warnings) = match &change.rules {
        None => (logged_atoms(current), Vec::new()),
        Some(rules) => {
            let expanded = to_gcore(rules, policy, view.foreign.len())?;
            let mut atoms = expanded.atoms;
            atoms.extend(view.foreign.iter().cloned());
            (atoms, expanded.warnings)
        }
    };
    let attrs = change.attrs(&view.attrs);
    let tags = tags::reserved_patch(&current.tags, &cf_tags(&attrs, &atoms));
    let rules = change.rules.as_ref().map(|_| stored(&atoms)).filter(|new| {
        let now: HashSet<&Atom> = current.rules.iter().map(|r| &r.atom).collect();
        let next: HashSet<&Atom> = new.iter().collect();
        now != next
    });
    Ok((PatchContent::Atomic { rules, tags }, warnings))
}

/// Whether a Gcore caller's tag change touches CF state.
pub fn touches_reserved(patch_keys: &[&str]) -> bool {
    patch_keys.iter().any(|k| tags::is_reserved(k))
}

/// The reserved keys among `tags`.
pub fn reserved_keys(tags: &[Tag]) -> Vec<&str> {
    tags.iter()
        .filter(|t| tags::is_reserved(&t.key))
        .map(|t| t.key.as_str())
        .collect()
}
