//! Space bindings, running/staging defaults and jobs: CF-only state, changed
//! through the service layer like any other CF write.

use super::groups::{cf_rules, not_found_as, page_of_groups, resource, Shown};
use super::{directory, group_id, query};
use crate::dialect::cf::render::{self, timestamp};
use crate::dialect::cf::CfError;
use crate::mapping::CfChange;
use crate::model::{Lifecycle, Uuid};
use crate::server::cf::job::{decode, JobApi};
use crate::server::cf::warn;
use crate::server::http::{cf_json, empty, Ctx, Resp};
use crate::server::App;
use http::{Method, StatusCode};
use serde_json::{json, Value};

/// Which resource a bind answers with: the group (`/v2/security_groups/...`)
/// or the space (`/v2/spaces/...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Group,
    Space,
}

fn name(lifecycle: Lifecycle) -> &'static str {
    match lifecycle {
        Lifecycle::Running => "running",
        Lifecycle::Staging => "staging",
    }
}

pub async fn spaces_of(app: &App, ctx: &Ctx, guid: &str, lifecycle: Lifecycle) -> Result<Resp, CfError> {
    let id = group_id(guid)?;
    let paging = query::paging(ctx, &[])?;
    query::filters(ctx, &["name", "organization_guid", "developer_guid", "app_guid"])?;
    let group = app
        .service
        .get(&ctx.cx(), app.service.cf_scope(), &id)
        .await
        .map_err(|e| not_found_as(e, guid))?;
    let attrs = app.service.settings().mapping.cf_attrs(&group);
    let inline = directory::inline(ctx);
    let spaces: Vec<_> = attrs
        .spaces(lifecycle)
        .iter()
        .map(|s| directory::space_resource(app, s.as_str(), inline))
        .collect();
    let rel = match lifecycle {
        Lifecycle::Running => "spaces",
        Lifecycle::Staging => "staging_spaces",
    };
    let base = format!("/v2/security_groups/{guid}/{rel}");
    Ok(cf_json(StatusCode::OK, &query::page(ctx, &base, &paging, spaces)))
}

pub async fn bind(
    app: &App,
    ctx: &Ctx,
    guid: &str,
    space: &str,
    lifecycle: Lifecycle,
    side: Side,
) -> Result<Resp, CfError> {
    let add = ctx.method == Method::PUT;
    let id = group_id(guid)?;
    let space_id = directory::bindable(app, space).ok_or_else(|| CfError::InvalidRelation(space.to_string()))?;
    let change = CfChange {
        bind: vec![(lifecycle, space_id.clone(), add)],
        ..CfChange::default()
    };
    let written = app
        .service
        .cf_update(&ctx.cx(), &id, change)
        .await
        .map_err(|e| not_found_as(e, guid))?;
    Ok(match (add, side) {
        (false, _) => empty(StatusCode::NO_CONTENT),
        (true, Side::Group) => resource(app, StatusCode::CREATED, &written.group, Vec::new()),
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
    page_of_groups(
        app,
        ctx,
        &format!("/v2/spaces/{space}/{rel}"),
        |attrs| attrs.spaces(lifecycle).contains(&space_id),
        Shown::Resource,
    )
    .await
}

pub async fn defaults(app: &App, ctx: &Ctx, lifecycle: Lifecycle) -> Result<Resp, CfError> {
    let base = format!("/v2/config/{}_security_groups", name(lifecycle));
    page_of_groups(
        app,
        ctx,
        &base,
        |attrs| attrs.is_default(lifecycle),
        Shown::Default(name(lifecycle)),
    )
    .await
}

pub async fn set_default(app: &App, ctx: &Ctx, guid: &str, lifecycle: Lifecycle) -> Result<Resp, CfError> {
    let on = ctx.method == Method::PUT;
    let unknown = || match lifecycle {
        Lifecycle::Running => CfError::RunningDefaultInvalid(guid.to_string()),
        Lifecycle::Staging => CfError::StagingDefaultInvalid(guid.to_string()),
    };
    let id = Uuid::parse(guid).ok_or_else(unknown)?;
    let change = CfChange {
        defaults: vec![(lifecycle, on)],
        ..CfChange::default()
    };
    let written = app.service.cf_update(&ctx.cx(), &id, change).await.map_err(|e| {
        if e.is_not_found() {
            unknown()
        } else {
            e.into()
        }
    })?;
    if !on {
        return Ok(empty(StatusCode::NO_CONTENT));
    }
    let mut view = app.service.cf_view(&written.group);
    let rules = cf_rules(app, &mut view);
    let body = render::defaults_resource(&view.meta, &view.attrs, rules, name(lifecycle));
    Ok(warn(cf_json(StatusCode::OK, &body), &view.warnings))
}

/// A CC v2 job body.
pub fn job_body(guid: &str, created_at: &str, status: &str) -> Value {
    json!({
        "metadata": {"guid": guid, "created_at": created_at, "url": format!("/v2/jobs/{guid}")},
        "entity": {"guid": guid, "status": status},
    })
}

/// `GET /v2/jobs/:guid`: jobs are finished by the time they are answered
/// (the delete happened first), and any replica can decode one.
pub fn job(guid: &str) -> Result<Resp, CfError> {
    match decode(guid) {
        Some(job) if job.api == JobApi::V2 => Ok(cf_json(
            StatusCode::OK,
            &job_body(&job.guid, &timestamp(&job.created_at), "finished"),
        )),
        _ => Err(CfError::NotFound),
    }
}
