//! A Gcore-semantics group seen as a CF security group, and CF writes planned
//! as Gcore changes.
//!
//! CF manages the part of a group CF can say (egress rules to addresses with
//! tcp/udp/icmp/icmpv6/all). Rules outside it (ingress, remote groups, other
//! protocols) are "foreign": shown to CF callers only as an `X-Cf-Warnings`
//! line, and kept untouched when a CF caller replaces the rules.

use crate::dialect::cf::render::{self, CfRule};
use crate::dialect::cf::{CfError, CfFlags};
use crate::dialect::gcore::{expand_within, ExpandError, SmtpPolicy};
use crate::model::{cf_state, compact, Atom, CfAttrs, CompactOptions, Rule, SecurityGroup, Tag, TagPatch};
use crate::server::App;

pub struct CfView {
    pub rules: Vec<CfRule>,
    /// Atoms CF cannot say; preserved across CF rule replacements.
    pub foreign: Vec<Atom>,
    pub warnings: Vec<String>,
}

impl App {
    pub fn cf_flags(&self) -> CfFlags {
        CfFlags {
            comma_delimited_destinations: self.cfg.cf.enable_comma_delimited_destinations,
            ipv6: self.cfg.cf.enable_ipv6,
        }
    }

    pub fn smtp_policy(&self) -> SmtpPolicy {
        match self.cfg.gcore.port25 {
            crate::config::Port25::Narrow => SmtpPolicy::Narrow,
            crate::config::Port25::Reject => SmtpPolicy::Reject,
            crate::config::Port25::Allow => SmtpPolicy::Allow,
        }
    }

    fn compact_options(&self) -> CompactOptions {
        CompactOptions {
            carved_port: (self.smtp_policy() != SmtpPolicy::Allow).then_some(crate::model::narrow::SMTP_PORT),
        }
    }

    pub fn cf_view(&self, group: &SecurityGroup) -> CfView {
        let mut view = CfView {
            rules: Vec::new(),
            foreign: Vec::new(),
            warnings: Vec::new(),
        };
        for rule in compact(&group.atoms(), self.compact_options()) {
            match render::rules(std::slice::from_ref(&rule), self.cf_flags()) {
                Ok(mut r) => view.rules.append(&mut r),
                Err(errs) => {
                    let reason = errs.first().map(|(_, e)| e.to_string()).unwrap_or_default();
                    view.warnings.push(format!(
                        "security group {}: {} Gcore rule(s) not shown: the rule {reason}",
                        group.name,
                        rule.atoms().len()
                    ));
                    view.foreign
                        .extend(rule.atoms().into_iter().map(|a| Atom { log: false, ..a }));
                }
            }
        }
        view
    }

    /// CF rules as Gcore atoms, with narrowing warnings; the rule cap counts
    /// the foreign atoms that will be kept beside them.
    pub fn plan_rules(&self, rules: &[Rule], foreign: &[Atom]) -> Result<(Vec<Atom>, Vec<String>), CfError> {
        let max = self.cfg.gcore.max_rules.saturating_sub(foreign.len());
        let expanded = expand_within(rules, self.smtp_policy(), max).map_err(|e| match e {
            ExpandError::Rules(errs) => CfError::SecurityGroupInvalid(
                errs.iter()
                    .map(|(n, e)| format!("rules rule number {n} cannot be expressed on Gcore: {e}"))
                    .collect(),
            ),
            ExpandError::TooMany { at, .. } => CfError::SecurityGroupInvalid(vec![format!(
                "rules expand to more than the {} Gcore rules a Gcore security group holds (reached at rule number {at})",
                self.cfg.gcore.max_rules
            )]),
        })?;
        Ok((expanded.atoms, expanded.warnings))
    }
}

/// The merge patch that turns the reserved tags of `current` into `desired`;
/// tags outside the reserved prefix are never touched.
pub fn reserved_patch(current: &[Tag], desired: Vec<(String, String)>) -> TagPatch {
    let mut changes: Vec<(String, Option<String>)> = Vec::new();
    for t in current.iter().filter(|t| cf_state::is_reserved(&t.key) && !t.read_only) {
        if !desired.iter().any(|(k, _)| *k == t.key) {
            changes.push((t.key.clone(), None));
        }
    }
    for (k, v) in desired {
        if !current.iter().any(|t| t.key == k && t.value == v) {
            changes.push((k, Some(v)));
        }
    }
    if changes.is_empty() {
        TagPatch::Keep
    } else {
        TagPatch::Merge(changes)
    }
}

/// The reserved tags for a group's CF attributes and the log flags of its atoms.
pub fn desired_tags(attrs: &CfAttrs, atoms: &[Atom]) -> Vec<(String, String)> {
    cf_state::encode(attrs, atoms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag::writable(k, v)
    }

    #[test]
    fn reserved_patch_touches_only_reserved_keys() {
        let current = vec![
            tag("owner", "me"),
            tag("sgbridge.cf.running_default", "true"),
            tag("sgbridge.cf.log.1", "true"),
        ];
        let p = reserved_patch(
            &current,
            vec![
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
        assert_eq!(reserved_patch(&current[..1], vec![]), TagPatch::Keep);
    }
}
