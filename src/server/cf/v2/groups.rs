//! `/v2/security_groups` and `/v2/security_groups/:guid`.

use super::{flags, group_id, query};
use crate::dialect::cf::render::{self, timestamp, CfRule};
use crate::dialect::cf::{self, CfError, Mode};
use crate::mapping::{CfChange, CfCreate, CfGroup};
use crate::model::{CfAttrs, Group, Uuid};
use crate::server::cf::job::{new_job, JobApi};
use crate::server::cf::warn;
use crate::server::http::{cf_json, empty, raw, with_header, Ctx, Resp, CF_JSON};
use crate::server::noops::Api;
use crate::server::renders::{Rendered, View};
use crate::server::{offload, App};
use http::StatusCode;
use std::collections::BTreeSet;
use std::sync::Arc;

pub async fn list(app: &App, ctx: &Ctx) -> Result<Resp, CfError> {
    page_of_groups(app, ctx, "/v2/security_groups", |_| true, Shown::Resource).await
}

/// How a page shows each group.
pub enum Shown {
    /// As `GET /v2/security_groups/:guid` does (rendered once per state).
    Resource,
    /// As the running/staging defaults lists do.
    Default(&'static str),
}

/// A group as a CF v2 resource: from the render cache.
fn rendered_resource(app: &App, group: &Group) -> Arc<Rendered> {
    app.renders.get(View::CfV2, app.service.cf_scope(), group, || {
        let mut view = app.service.cf_view(group);
        let rules = cf_rules(app, &mut view);
        (render::group_resource(&view.meta, &view.attrs, rules), view.warnings)
    })
}

/// The rules of a CF view as CF wire rules; what cannot be rendered is a warning.
pub fn cf_rules(app: &App, view: &mut CfGroup) -> Vec<CfRule> {
    match render::rules(&view.rules, flags(app)) {
        Ok(r) => r,
        Err(errs) => {
            let mut out = Vec::new();
            for (i, rule) in view.rules.iter().enumerate() {
                match render::rules(std::slice::from_ref(rule), flags(app)) {
                    Ok(mut r) => out.append(&mut r),
                    Err(_) => {
                        let reason = errs.iter().find(|(n, _)| *n == i + 1).map(|(_, e)| e.to_string());
                        view.warnings.push(format!(
                            "security group {}: a rule is not shown: the rule {}",
                            view.meta.name,
                            reason.unwrap_or_default()
                        ));
                    }
                }
            }
            out
        }
    }
}

/// One page of the groups `keep` selects (by their CF attributes), narrowed
/// by `q=name` filters and rendered by `render`; only the groups on the page
/// are folded, and only their warnings reach `X-Cf-Warnings`.
pub async fn page_of_groups(
    app: &App,
    ctx: &Ctx,
    base: &str,
    keep: impl Fn(&CfAttrs) -> bool,
    shown: Shown,
) -> Result<Resp, CfError> {
    let filters = query::filters(ctx, &["name"])?;
    let paging = query::paging(ctx, &[])?;
    let exact = filters.iter().find_map(|(_, f)| f.exact());
    let service = &app.service;
    let groups = service.list(&ctx.cx(), service.cf_scope(), exact).await?;
    let mapping = &service.settings().mapping;
    let selected: Vec<Group> = groups
        .into_iter()
        .filter(|g| keep(&mapping.cf_attrs(g)) && filters.iter().all(|(_, f)| f.matches(g.name())))
        .collect();
    let mut warnings = Vec::new();
    let page = query::page_map(ctx, base, &paging, selected, |g| {
        let r = match shown {
            Shown::Resource => rendered_resource(app, &g),
            Shown::Default(lifecycle) => {
                let mut view = service.cf_view(&g);
                let rules = cf_rules(app, &mut view);
                let value = render::defaults_resource(&view.meta, &view.attrs, rules, lifecycle);
                Rendered::new(&value, view.warnings)
            }
        };
        warnings.extend(r.warnings.iter().cloned());
        r
    });
    Ok(warn(cf_json(StatusCode::OK, &page), &warnings))
}

pub async fn get(app: &App, ctx: &Ctx, guid: &str) -> Result<Resp, CfError> {
    let id = group_id(guid)?;
    let group = app
        .service
        .get(&ctx.cx(), app.service.cf_scope(), &id)
        .await
        .map_err(|e| not_found_as(e, guid))?;
    Ok(resource(app, StatusCode::OK, &group, Vec::new()))
}

/// A not-found names the guid as the caller spelled it.
pub fn not_found_as(e: crate::error::Error, guid: &str) -> CfError {
    if e.is_not_found() {
        CfError::SecurityGroupNotFound(guid.to_string())
    } else {
        e.into()
    }
}

/// A group as a CF resource, with warnings for what CF cannot show.
pub fn resource(app: &App, status: StatusCode, group: &Group, mut warnings: Vec<String>) -> Resp {
    let r = rendered_resource(app, group);
    warnings.extend(r.warnings.iter().cloned());
    warn(raw(status, CF_JSON, r.bytes()), &warnings)
}

/// Space guids from a body, each one a space the gateway may bind (as the bind routes check).
fn space_set(app: &App, guids: Option<Vec<String>>) -> Result<Option<BTreeSet<Uuid>>, CfError> {
    guids
        .map(|list| {
            list.iter()
                .map(|g| super::directory::bindable(app, g).ok_or_else(|| CfError::InvalidRelation(g.clone())))
                .collect()
        })
        .transpose()
}

pub async fn create(app: &App, ctx: &Ctx) -> Result<Resp, CfError> {
    let (bytes, flags) = (ctx.body.clone(), flags(app));
    let body = offload::parse(bytes.len(), move || cf::body::parse(&bytes, Mode::Create, flags)).await?;
    let req = CfCreate {
        name: body.name.unwrap_or_default(),
        rules: body.rules.unwrap_or_default(),
        attrs: CfAttrs {
            spaces: space_set(app, body.space_guids)?.unwrap_or_default(),
            staging_spaces: space_set(app, body.staging_space_guids)?.unwrap_or_default(),
            ..CfAttrs::default()
        },
    };
    let written = app.service.cf_create(&ctx.cx(), req).await?;
    let location = format!("/v2/security_groups/{}", written.group.id());
    Ok(with_header(
        resource(app, StatusCode::CREATED, &written.group, written.warnings),
        "location",
        &location,
    ))
}

pub async fn update(app: &App, ctx: &Ctx, guid: &str) -> Result<Resp, CfError> {
    let id = group_id(guid)?;
    if let Some((group, warnings)) = crate::server::cf::known_noop(app, ctx, Api::CfV2, &id).await {
        return Ok(resource(app, StatusCode::CREATED, &group, warnings));
    }
    let (bytes, flags) = (ctx.body.clone(), flags(app));
    let body = offload::parse(bytes.len(), move || cf::body::parse(&bytes, Mode::Update, flags)).await?;
    let change = CfChange {
        name: body.name,
        rules: body.rules,
        spaces: space_set(app, body.space_guids)?,
        staging_spaces: space_set(app, body.staging_space_guids)?,
        ..CfChange::default()
    };
    let written = app
        .service
        .cf_update(&ctx.cx(), &id, change)
        .await
        .map_err(|e| not_found_as(e, guid))?;
    crate::server::cf::remember_noop(app, ctx, Api::CfV2, &written);
    Ok(resource(app, StatusCode::CREATED, &written.group, written.warnings))
}

pub async fn delete(app: &App, ctx: &Ctx, guid: &str) -> Result<Resp, CfError> {
    let id = group_id(guid)?;
    app.service
        .cf_delete(&ctx.cx(), &id)
        .await
        .map_err(|e| not_found_as(e, guid))?;
    if ctx.param("async") != Some("true") {
        return Ok(empty(StatusCode::NO_CONTENT));
    }
    // The delete is already done; the job exists for clients that poll one.
    let job = new_job(JobApi::V2, chrono::Utc::now());
    Ok(cf_json(
        StatusCode::ACCEPTED,
        &super::links::job_body(&job.guid, &timestamp(&job.created_at), "queued"),
    ))
}
