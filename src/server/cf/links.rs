//! Space bindings, running/staging defaults and jobs: CF-only state, kept in
//! the group's reserved tags.

use super::groups::{commit, page_of_groups, resource};
use super::view::{desired_tags, reserved_patch};
use super::{backend_error, directory, fetch, group_id, query, warn};
use crate::backend::GroupPatch;
use crate::dialect::cf::render;
use crate::dialect::cf::CfError;
use crate::model::{CfAttrs, SecurityGroup, Uuid};
use crate::server::http::{cf_json, empty, Ctx, Resp};
use crate::server::App;
use http::StatusCode;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Running,
    Staging,
}

impl Lifecycle {
    pub fn from_rel(rel: &str) -> Self {
        if rel.starts_with("staging") {
            Lifecycle::Staging
        } else {
            Lifecycle::Running
        }
    }

    fn name(self) -> &'static str {
        match self {
            Lifecycle::Running => "running",
            Lifecycle::Staging => "staging",
        }
    }

    fn spaces(self, attrs: &mut CfAttrs) -> &mut std::collections::BTreeSet<Uuid> {
        match self {
            Lifecycle::Running => &mut attrs.spaces,
            Lifecycle::Staging => &mut attrs.staging_spaces,
        }
    }

    fn is_default(self, attrs: &CfAttrs) -> bool {
        match self {
            Lifecycle::Running => attrs.running_default,
            Lifecycle::Staging => attrs.staging_default,
        }
    }
}

/// Which resource a bind answers with: the group (`/v2/security_groups/...`)
/// or the space (`/v2/spaces/...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Group,
    Space,
}

async fn change_attrs(
    app: &App,
    guid: &str,
    group: &SecurityGroup,
    change: impl FnOnce(&mut CfAttrs),
) -> Result<SecurityGroup, CfError> {
    let mut attrs = group.cf_attrs();
    change(&mut attrs);
    let patch = GroupPatch {
        tags: reserved_patch(&group.tags, desired_tags(&attrs, &group.atoms())),
        ..GroupPatch::default()
    };
    if patch.tags != crate::model::TagPatch::Keep {
        commit(app, guid, || app.backend.update(app.cf_scope, &group.id, patch.clone())).await?;
    }
    fetch(app, &group.id, guid).await
}

pub async fn spaces_of(app: &App, ctx: &Ctx, guid: &str, lifecycle: Lifecycle) -> Result<Resp, CfError> {
    let id = group_id(guid)?;
    let paging = query::paging(ctx, &[])?;
    query::filters(ctx, &["name", "organization_guid", "developer_guid", "app_guid"])?;
    let group = fetch(app, &id, guid).await?;
    let mut attrs = group.cf_attrs();
    let inline = directory::inline(ctx);
    let spaces: Vec<_> = lifecycle
        .spaces(&mut attrs)
        .iter()
        .map(|s| directory::space_resource(app, s.as_str(), inline))
        .collect();
    let base = format!(
        "/v2/security_groups/{guid}/{}",
        if lifecycle == Lifecycle::Running {
            "spaces"
        } else {
            "staging_spaces"
        }
    );
    Ok(cf_json(StatusCode::OK, &query::page(ctx, &base, &paging, spaces)))
}

pub async fn bind(
    app: &App,
    guid: &str,
    space: &str,
    lifecycle: Lifecycle,
    add: bool,
    side: Side,
) -> Result<Resp, CfError> {
    let id = group_id(guid)?;
    let space_id = directory::bindable(app, space).ok_or_else(|| CfError::InvalidRelation(space.to_string()))?;
    let _writing = app.lock_group(&id).await;
    let group = fetch(app, &id, guid).await?;
    let group = change_attrs(app, guid, &group, |a| {
        let set = lifecycle.spaces(a);
        if add {
            set.insert(space_id.clone());
        } else {
            set.remove(&space_id);
        }
    })
    .await?;
    Ok(match (add, side) {
        (false, _) => empty(StatusCode::NO_CONTENT),
        (true, Side::Group) => resource(app, StatusCode::CREATED, &group, Vec::new()),
        (true, Side::Space) => cf_json(
            StatusCode::CREATED,
            &directory::space_resource(app, space_id.as_str(), false),
        ),
    })
}

pub async fn groups_of_space(app: &App, ctx: &Ctx, space: &str, lifecycle: Lifecycle) -> Result<Resp, CfError> {
    let space_id = Uuid::parse(space).ok_or_else(|| CfError::InvalidRelation(space.to_string()))?;
    let rel = match lifecycle {
        Lifecycle::Running => "security_groups",
        Lifecycle::Staging => "staging_security_groups",
    };
    let bound = |g: &SecurityGroup| lifecycle.spaces(&mut g.cf_attrs()).contains(&space_id);
    page_of_groups(
        app,
        ctx,
        &format!("/v2/spaces/{space}/{rel}"),
        bound,
        render::group_resource,
    )
    .await
}

pub async fn defaults(app: &App, ctx: &Ctx, lifecycle: Lifecycle) -> Result<Resp, CfError> {
    let base = format!("/v2/config/{}_security_groups", lifecycle.name());
    let is_default = |g: &SecurityGroup| lifecycle.is_default(&g.cf_attrs());
    let render = |g: &SecurityGroup, rules| render::defaults_resource(g, rules, lifecycle.name());
    page_of_groups(app, ctx, &base, is_default, render).await
}

pub async fn set_default(app: &App, guid: &str, lifecycle: Lifecycle, on: bool) -> Result<Resp, CfError> {
    let unknown = || match lifecycle {
        Lifecycle::Running => CfError::RunningDefaultInvalid(guid.to_string()),
        Lifecycle::Staging => CfError::StagingDefaultInvalid(guid.to_string()),
    };
    let id = Uuid::parse(guid).ok_or_else(unknown)?;
    let _writing = app.lock_group(&id).await;
    let group = match app.backend.get(app.cf_scope, &id).await {
        Ok(g) => g,
        Err(e) if e.kind == crate::backend::ErrorKind::NotFound => return Err(unknown()),
        Err(e) => return Err(backend_error(e, guid)),
    };
    let group = change_attrs(app, guid, &group, |a| match lifecycle {
        Lifecycle::Running => a.running_default = on,
        Lifecycle::Staging => a.staging_default = on,
    })
    .await?;
    if !on {
        return Ok(empty(StatusCode::NO_CONTENT));
    }
    let view = app.cf_view(&group);
    let body = render::defaults_resource(&group, view.rules, lifecycle.name());
    Ok(warn(cf_json(StatusCode::OK, &body), &view.warnings))
}

/// A CC job (`/v2/jobs/:guid`).
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    metadata: JobMetadata,
    entity: JobEntity,
}

#[derive(Debug, Clone, Serialize)]
struct JobMetadata {
    guid: String,
    created_at: String,
    url: String,
}

#[derive(Debug, Clone, Serialize)]
struct JobEntity {
    guid: String,
    status: &'static str,
}

impl Job {
    pub fn finished(guid: String, created_at: String) -> Job {
        Job {
            metadata: JobMetadata {
                url: format!("/v2/jobs/{guid}"),
                guid: guid.clone(),
                created_at,
            },
            entity: JobEntity {
                guid,
                status: "finished",
            },
        }
    }

    pub fn guid(&self) -> &str {
        &self.metadata.guid
    }

    /// The job as first answered: CC says "queued" until a poll sees it run.
    pub fn queued(&self) -> Job {
        let mut j = self.clone();
        j.entity.status = "queued";
        j
    }
}

pub fn job(app: &App, guid: &str) -> Result<Resp, CfError> {
    match app.jobs.get(guid) {
        Some(job) => Ok(cf_json(StatusCode::OK, &job)),
        None => Err(CfError::NotFound),
    }
}
