//! v3 space bindings (`…/relationships/{running,staging}_spaces`), jobs and
//! the `/v3` root document.

use super::group_id;
use crate::dialect::cf::render::timestamp;
use crate::dialect::cf::v3::body::parse_relationship;
use crate::dialect::cf::v3::wire::{guids, Job, JobLinks, Link, SelfLink, ToMany};
use crate::dialect::cf::v3::V3Error;
use crate::mapping::CfChange;
use crate::model::{Lifecycle, Uuid};
use crate::server::cf::job::{decode, JobApi};
use crate::server::cf::v2::directory::bindable;
use crate::server::http::{empty, json, Ctx, Resp};
use crate::server::App;
use http::StatusCode;

fn rel(lifecycle: Lifecycle) -> &'static str {
    match lifecycle {
        Lifecycle::Running => "running_spaces",
        Lifecycle::Staging => "staging_spaces",
    }
}

fn not_found_group(e: crate::error::Error) -> V3Error {
    if e.is_not_found() {
        V3Error::ResourceNotFound("Security group")
    } else {
        e.into()
    }
}

/// `POST …/relationships/…`: binds the spaces; answers every space bound in
/// that lifecycle. Spaces already bound are fine (CC ignores them).
pub async fn bind(app: &App, ctx: &Ctx, guid: &str, lifecycle: Lifecycle) -> Result<Resp, V3Error> {
    let id = group_id(guid)?;
    app.service
        .get(&ctx.cx(), app.service.cf_scope(), &id)
        .await
        .map_err(not_found_group)?;
    let requested = parse_relationship(&ctx.body)?;
    let missing: Vec<String> = requested
        .iter()
        .filter(|g| bindable(app, g).is_none())
        .map(|g| format!("{g:?}"))
        .collect();
    if !missing.is_empty() {
        return Err(V3Error::Unprocessable(vec![format!(
            "Spaces with guids [{}] do not exist, or you do not have access to them.",
            missing.join(", ")
        )]));
    }
    let change = CfChange {
        bind: requested
            .iter()
            .filter_map(|g| bindable(app, g))
            .map(|s| (lifecycle, s, true))
            .collect(),
        ..CfChange::default()
    };
    let written = app
        .service
        .cf_update(&ctx.cx(), &id, change)
        .await
        .map_err(not_found_group)?;
    let attrs = app.service.settings().mapping.cf_attrs(&written.group);
    let body = ToMany {
        data: guids(attrs.spaces(lifecycle).iter().map(Uuid::as_str)),
        links: SelfLink {
            this: Link {
                href: format!(
                    "{}/v3/security_groups/{}/relationships/{}",
                    app.external_url(),
                    id,
                    rel(lifecycle)
                ),
            },
        },
    };
    Ok(json(StatusCode::OK, &body))
}

/// `DELETE …/relationships/…/:space_guid`: the space must exist and be bound.
pub async fn unbind(app: &App, ctx: &Ctx, guid: &str, space: &str, lifecycle: Lifecycle) -> Result<Resp, V3Error> {
    let id = group_id(guid)?;
    let group = app
        .service
        .get(&ctx.cx(), app.service.cf_scope(), &id)
        .await
        .map_err(not_found_group)?;
    let unable = || {
        V3Error::Unprocessable(vec![format!(
            "Unable to unbind security group from space with guid '{space}'. Ensure the space is bound to this security group."
        )])
    };
    let space_id = bindable(app, space).ok_or_else(unable)?;
    let attrs = app.service.settings().mapping.cf_attrs(&group);
    if !attrs.spaces(lifecycle).contains(&space_id) {
        return Err(unable());
    }
    let change = CfChange {
        bind: vec![(lifecycle, space_id, false)],
        ..CfChange::default()
    };
    app.service
        .cf_update(&ctx.cx(), &id, change)
        .await
        .map_err(not_found_group)?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `GET /v3/jobs/:guid`: a delete's job, finished (the delete happened
/// before it was answered); any replica decodes it.
pub fn job(app: &App, guid: &str) -> Result<Resp, V3Error> {
    let job = decode(guid)
        .filter(|j| j.api == JobApi::V3)
        .ok_or(V3Error::ResourceNotFound("Job"))?;
    let at = timestamp(&job.created_at);
    let body = Job {
        guid: job.guid.clone(),
        created_at: at.clone(),
        updated_at: at,
        operation: "security_group.delete".into(),
        state: "COMPLETE".into(),
        errors: Vec::new(),
        warnings: Vec::new(),
        links: JobLinks {
            this: Link {
                href: format!("{}/v3/jobs/{}", app.external_url(), job.guid),
            },
            security_group: None,
        },
    };
    Ok(json(StatusCode::OK, &body))
}

/// `GET /v3`: the v3 root's links (the part a security-group client needs;
/// the cf CLI v7 builds its URLs from `organizations`, `security_groups` and
/// `spaces`).
pub fn root(app: &App) -> Resp {
    let base = app.external_url();
    json(
        StatusCode::OK,
        &serde_json::json!({"links": {
            "self": {"href": format!("{base}/v3")},
            "audit_events": {"href": format!("{base}/v3/audit_events")},
            "organizations": {"href": format!("{base}/v3/organizations")},
            "security_groups": {"href": format!("{base}/v3/security_groups")},
            "spaces": {"href": format!("{base}/v3/spaces")},
        }}),
    )
}
