//! Gcore groups on a Cloud Foundry-shaped (compact) backend.
//!
//! A Gcore caller sees each CF rule as its Gcore rules (one per destination
//! CIDR × port range, ids derived from the group and the rule, so they are
//! stable across reads and replicas). Its writes fold back into CF rules the
//! way the read path folds (contiguous CIDRs into a range, ports into a
//! list). What CF cannot hold (ingress rules, remote groups, protocols other
//! than tcp/udp/icmp/all, tags, descriptions) is refused naming the field,
//! unless the policy says to drop it; never dropped in silence (each drop is
//! a warning in the request's journal).

use super::{on_gcore, PlanError};
use crate::dialect::cf::render::expressible;
use crate::dialect::gcore::body::{GcoreCreate, GcorePatch};
use crate::model::{
    compact, Atom, AtomicContent, CompactContent, GroupMeta, GroupPatch, GroupRule, NewContent, NewGroup, PatchContent,
    TagPatch, Uuid,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Drop what CF cannot hold instead of refusing the write.
    pub drop_unsupported: bool,
}

/// A stable rule id for `atom` in `group`: the id a Gcore caller sees it under.
pub fn rule_id(group: &Uuid, atom: &Atom) -> Uuid {
    let fp = u64::from_str_radix(&on_gcore::tags::fingerprint(atom), 16).unwrap_or(0);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in group.as_str().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Uuid::from_random((u128::from(hash) << 64) | u128::from(fp))
}

/// A compact group as Gcore callers see it.
pub fn gcore_view(meta: &GroupMeta, content: &CompactContent) -> AtomicContent {
    let mut seen = std::collections::HashSet::new();
    let rules = content
        .rules
        .iter()
        .flat_map(|r| r.atoms())
        .map(|a| Atom { log: false, ..a })
        .filter(|a| seen.insert(a.clone()))
        .map(|atom| GroupRule {
            id: rule_id(&meta.id, &atom),
            atom,
            revision: 0,
            created_at: meta.created_at,
            updated_at: meta.updated_at,
        })
        .collect();
    AtomicContent {
        rules,
        tags: Vec::new(),
    }
}

/// Gcore atoms as CF rules, refusing (or, by policy, dropping) what CF
/// cannot hold; errors name the field as Gcore's validator would.
fn fold(atoms: &[Atom], policy: Policy, errors: &mut Vec<(String, String)>) -> Vec<crate::model::Rule> {
    let mut kept = Vec::with_capacity(atoms.len());
    for (i, atom) in atoms.iter().enumerate() {
        match expressible(&crate::model::Rule::from(atom)) {
            Ok(()) => kept.push(atom.clone()),
            Err(reason) if policy.drop_unsupported => crate::journal::warn(format!(
                "rules.{i} dropped: a Cloud Foundry security group cannot hold it: it {reason}"
            )),
            Err(reason) => errors.push((
                format!("rules.{i}"),
                format!("a Cloud Foundry security group cannot hold this rule: it {reason}"),
            )),
        }
    }
    compact(&kept)
}

fn unsupported_text(field: &str, present: bool, policy: Policy, errors: &mut Vec<(String, String)>) {
    if present && policy.drop_unsupported {
        crate::journal::warn(format!("{field} dropped: a Cloud Foundry security group has none"));
    } else if present {
        errors.push((
            field.to_string(),
            format!("a Cloud Foundry security group has no {field}"),
        ));
    }
}

fn finish<T>(value: T, errors: Vec<(String, String)>) -> Result<T, PlanError> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(PlanError::Unsupported(errors))
    }
}

/// A Gcore create on a compact backend. CF has no default rule template, so
/// an omitted `rules` creates a group without rules.
pub fn plan_create(req: &GcoreCreate, policy: Policy) -> Result<NewGroup, PlanError> {
    let mut errors = Vec::new();
    unsupported_text(
        "description",
        req.description.as_ref().is_some_and(|d| !d.is_empty()),
        policy,
        &mut errors,
    );
    unsupported_text("tags", !req.tags.is_empty(), policy, &mut errors);
    let rules = fold(req.rules.as_deref().unwrap_or_default(), policy, &mut errors);
    let group = NewGroup {
        name: req.name.clone(),
        description: None,
        content: NewContent::Compact {
            rules,
            attrs: Default::default(),
        },
    };
    finish(group, errors)
}

/// A Gcore PATCH on a compact group.
pub fn plan_patch(
    meta: &GroupMeta,
    content: &CompactContent,
    req: &GcorePatch,
    policy: Policy,
) -> Result<GroupPatch, PlanError> {
    let mut errors = Vec::new();
    unsupported_text(
        "description",
        req.description.as_ref().is_some_and(|d| !d.is_empty()),
        policy,
        &mut errors,
    );
    let sets_tags = matches!(&req.tags, TagPatch::Merge(m) if m.iter().any(|(_, v)| v.is_some()));
    unsupported_text("tags", sets_tags, policy, &mut errors);
    let rules = req
        .rules
        .as_ref()
        .map(|atoms| fold(atoms, policy, &mut errors))
        .filter(|r| *r != content.rules);
    let patch = GroupPatch {
        name: req.name.clone().filter(|n| *n != meta.name),
        description: None,
        content: PatchContent::Compact { rules, attrs: None },
    };
    finish(patch, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AtomDest, AtomProto, Direction, PortRange, PortedProto};

    fn atom(direction: Direction, net: &str, port: u16) -> Atom {
        Atom {
            direction,
            proto: AtomProto::Ported(PortedProto::Tcp, Some(PortRange::single(port))),
            dest: AtomDest::net(net.parse().unwrap()),
            description: None,
            log: false,
        }
    }

    fn create(rules: Vec<Atom>) -> GcoreCreate {
        GcoreCreate {
            name: "g".into(),
            description: None,
            rules: Some(rules),
            tags: vec![],
        }
    }

    #[test]
    fn egress_rules_fold_into_cf_rules() {
        let req = create(vec![
            atom(Direction::Egress, "10.0.0.0/32", 53),
            atom(Direction::Egress, "10.0.0.1/32", 53),
        ]);
        let g = plan_create(&req, Policy::default()).unwrap();
        let NewContent::Compact { rules, .. } = g.content else {
            panic!()
        };
        assert_eq!(rules.len(), 1, "two touching hosts become one range: {rules:?}");
    }

    #[test]
    fn what_cf_cannot_hold_is_named_or_dropped() {
        let mut req = create(vec![
            atom(Direction::Egress, "10.0.0.0/8", 53),
            atom(Direction::Ingress, "10.0.0.0/8", 22),
        ]);
        req.tags = vec![("k".into(), "v".into())];
        let Err(PlanError::Unsupported(errs)) = plan_create(&req, Policy::default()) else {
            panic!()
        };
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["tags", "rules.1"]);
        let g = plan_create(&req, Policy { drop_unsupported: true }).unwrap();
        let NewContent::Compact { rules, .. } = g.content else {
            panic!()
        };
        assert_eq!(rules.len(), 1);
    }

    #[test]
    fn rule_ids_are_stable() {
        let meta = GroupMeta {
            id: Uuid::from_random(7),
            name: "g".into(),
            description: String::new(),
            region: String::new(),
            revision: 1,
            created_at: chrono::DateTime::UNIX_EPOCH,
            updated_at: chrono::DateTime::UNIX_EPOCH,
        };
        let content = CompactContent {
            rules: vec![crate::model::Rule::from(&atom(Direction::Egress, "10.0.0.0/8", 53))],
            attrs: Default::default(),
        };
        let a = gcore_view(&meta, &content);
        let b = gcore_view(&meta, &content);
        assert_eq!(a, b);
        assert_eq!(a.rules.len(), 1);
    }
}
