//! How each dialect's groups are stored on each backend shape, and read back.
//!
//! A backend stores groups either atomically (Gcore's shape) or compactly
//! (Cloud Foundry's shape; see [`crate::model::group`]). A CF caller on an
//! atomic backend goes through [`on_gcore`] (expansion, port-25 policy, rule
//! cap, CF state in reserved tags); a Gcore caller on a compact backend goes
//! through [`on_cf`] (folding into CF rules, refusing what CF cannot hold).
//! Each caller on its own shape passes through unchanged. The service layer
//! calls [`Mapping`]; nothing else knows which mapping applies.

pub mod on_cf;
pub mod on_gcore;

use crate::dialect::gcore::body::{GcoreCreate, GcorePatch};
use crate::model::{
    Atom, AtomicContent, CfAttrs, Content, Group, GroupMeta, GroupPatch, Lifecycle, NewContent, NewGroup, PatchContent,
    Rule, Shape, Uuid,
};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

/// A group as CF callers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct CfGroup {
    pub meta: GroupMeta,
    pub rules: Vec<Rule>,
    pub attrs: CfAttrs,
    /// Stored rules CF cannot say (atomic backends only); kept on replace.
    pub foreign: Vec<Atom>,
    /// What the CF caller is not shown, for `X-Cf-Warnings`.
    pub warnings: Vec<String>,
}

/// A CF create (v2 `POST` or v3 `POST`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CfCreate {
    pub name: String,
    pub rules: Vec<Rule>,
    pub attrs: CfAttrs,
}

/// A CF change to one group: any mix of a rename, a new rule set, new space
/// sets, defaults switched, spaces bound or unbound. Applied to the group as
/// it is when the write happens (a retried write re-applies it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CfChange {
    pub name: Option<String>,
    pub rules: Option<Vec<Rule>>,
    pub spaces: Option<BTreeSet<Uuid>>,
    pub staging_spaces: Option<BTreeSet<Uuid>>,
    pub defaults: Vec<(Lifecycle, bool)>,
    /// (lifecycle, space, bind?)
    pub bind: Vec<(Lifecycle, Uuid, bool)>,
}

impl CfChange {
    /// The attributes after this change.
    pub fn attrs(&self, current: &CfAttrs) -> CfAttrs {
        let mut out = current.clone();
        if let Some(s) = &self.spaces {
            out.spaces = s.clone();
        }
        if let Some(s) = &self.staging_spaces {
            out.staging_spaces = s.clone();
        }
        for (lifecycle, on) in &self.defaults {
            out.set_default(*lifecycle, *on);
        }
        for (lifecycle, space, bind) in &self.bind {
            let set = out.spaces_mut(*lifecycle);
            if *bind {
                set.insert(space.clone());
            } else {
                set.remove(space);
            }
        }
        out
    }
}

/// Why a change cannot be stored on the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// Rules the backend cannot hold: (1-based rule number, reason).
    Rules(Vec<(usize, String)>),
    /// More than `max` backend rules, reached at rule number `at`.
    TooMany { max: usize, at: usize },
    /// A field the backend's shape cannot hold (path, reason).
    Unsupported(Vec<(String, String)>),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Rules(errs) => {
                let parts: Vec<String> = errs.iter().map(|(n, e)| format!("rule number {n}: {e}")).collect();
                f.write_str(&parts.join(", "))
            }
            PlanError::TooMany { max, at } => write!(
                f,
                "the rules expand to more than the {max} rules a backend group holds (reached at rule number {at})"
            ),
            PlanError::Unsupported(fields) => {
                let parts: Vec<String> = fields.iter().map(|(p, e)| format!("{p}: {e}")).collect();
                f.write_str(&parts.join(", "))
            }
        }
    }
}

/// The mappings' settings; `Mapping` picks one per group by its shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mapping {
    pub gcore: on_gcore::Policy,
    pub cf: on_cf::Policy,
}

impl Mapping {
    /// Whether a tag key is one the mapping reserves for CF state (only a
    /// caller trusted with it may write it).
    pub fn reserves_tag(key: &str) -> bool {
        on_gcore::tags::is_reserved(key)
    }

    /// Whether a tag carries CF attributes of the group itself (defaults,
    /// space bindings, the create marker): what a copy must not take along.
    pub fn is_cf_attr(key: &str) -> bool {
        on_gcore::tags::is_cf_attr(key)
    }

    /// The marker a CF create under way left on a Gcore-shaped group.
    pub fn create_marker(group: &Group) -> Option<&str> {
        on_gcore::tags::create_marker(group.tags())
    }

    pub fn cf_view(&self, group: &Group) -> CfGroup {
        match &group.content {
            Content::Atomic(c) => on_gcore::cf_view(&group.meta, c, self.gcore),
            Content::Compact(c) => CfGroup {
                meta: group.meta.clone(),
                rules: c.rules.clone(),
                attrs: c.attrs.clone(),
                foreign: Vec::new(),
                warnings: Vec::new(),
            },
        }
    }

    /// Only the CF attributes of a group (cheaper than the whole view).
    pub fn cf_attrs(&self, group: &Group) -> CfAttrs {
        match &group.content {
            Content::Atomic(c) => on_gcore::tags::decode(&c.tags).0,
            Content::Compact(c) => c.attrs.clone(),
        }
    }

    /// The group as Gcore callers see it (one rule per atom, with ids).
    pub fn gcore_view<'a>(&self, group: &'a Group) -> Cow<'a, AtomicContent> {
        match &group.content {
            Content::Atomic(c) => Cow::Borrowed(c),
            Content::Compact(c) => Cow::Owned(on_cf::gcore_view(&group.meta, c)),
        }
    }

    pub fn plan_cf_create(
        &self,
        shape: Shape,
        req: &CfCreate,
        marker: &str,
    ) -> Result<(NewGroup, Vec<String>), PlanError> {
        let (content, warnings) = match shape {
            Shape::Atomic => on_gcore::plan_create(req, self.gcore, marker)?,
            Shape::Compact => (
                NewContent::Compact {
                    rules: req.rules.clone(),
                    attrs: req.attrs.clone(),
                },
                Vec::new(),
            ),
        };
        let group = NewGroup {
            name: req.name.clone(),
            description: None,
            content,
        };
        Ok((group, warnings))
    }

    /// The patch for a CF change to `current`; empty when nothing changes.
    pub fn plan_cf_update(&self, current: &Group, change: &CfChange) -> Result<(GroupPatch, Vec<String>), PlanError> {
        let name = change.name.clone().filter(|n| n != current.name());
        let (content, warnings) = match &current.content {
            Content::Atomic(c) => on_gcore::plan_update(c, change, self.gcore)?,
            Content::Compact(c) => {
                let attrs = change.attrs(&c.attrs);
                let rules = change.rules.clone().filter(|r| *r != c.rules);
                let content = PatchContent::Compact {
                    rules,
                    attrs: (attrs != c.attrs).then_some(attrs),
                };
                (content, Vec::new())
            }
        };
        let patch = GroupPatch {
            name,
            description: None,
            content,
        };
        Ok((patch, warnings))
    }

    pub fn plan_gcore_create(&self, shape: Shape, req: &GcoreCreate) -> Result<NewGroup, PlanError> {
        match shape {
            Shape::Atomic => Ok(NewGroup {
                name: req.name.clone(),
                description: req.description.clone(),
                content: NewContent::Atomic {
                    rules: req.rules.clone(),
                    tags: req.tags.clone(),
                },
            }),
            Shape::Compact => on_cf::plan_create(req, self.cf),
        }
    }

    pub fn plan_gcore_patch(&self, current: &Group, req: &GcorePatch) -> Result<GroupPatch, PlanError> {
        match &current.content {
            Content::Atomic(_) => Ok(GroupPatch {
                name: req.name.clone(),
                description: req.description.clone(),
                content: PatchContent::Atomic {
                    rules: req.rules.clone(),
                    tags: req.tags.clone(),
                },
            }),
            Content::Compact(c) => on_cf::plan_patch(&current.meta, c, req, self.cf),
        }
    }
}
