//! `/v3/security_groups[/:guid]` and the space views
//! `/v3/spaces/:guid/{running,staging}_security_groups`.

use super::{group_id, object};
use crate::dialect::cf::v3::body::{parse_create, parse_update};
use crate::dialect::cf::v3::query::{self, ListQuery, OrderField};
use crate::dialect::cf::v3::wire::Page;
use crate::dialect::cf::v3::V3Error;
use crate::mapping::{CfChange, CfCreate};
use crate::model::{CfAttrs, Group, Lifecycle, Uuid};
use crate::server::cf::job::{new_job, JobApi};
use crate::server::cf::v2::directory::bindable;
use crate::server::http::{empty, json, raw, with_header, Ctx, Resp};
use crate::server::noops::Api;
use crate::server::renders::{conditional, Rendered, View};
use crate::server::{offload, App};
use http::StatusCode;
use std::sync::Arc;

fn not_found_group(e: crate::error::Error) -> V3Error {
    if e.is_not_found() {
        V3Error::ResourceNotFound("Security group")
    } else {
        e.into()
    }
}

/// The groups a list query selects, in its order.
fn select(app: &App, groups: Vec<Group>, q: &ListQuery, also: impl Fn(&CfAttrs) -> bool) -> Vec<Group> {
    let mapping = &app.service.settings().mapping;
    let any = |list: &Option<Vec<String>>, set: &std::collections::BTreeSet<Uuid>| {
        list.as_ref()
            .is_none_or(|l| l.iter().any(|g| Uuid::parse(g).is_some_and(|u| set.contains(&u))))
    };
    let mut out: Vec<Group> = groups
        .into_iter()
        .filter(|g| {
            let attrs = mapping.cf_attrs(g);
            also(&attrs)
                && q.guids
                    .as_ref()
                    .is_none_or(|l| l.iter().any(|x| x.eq_ignore_ascii_case(g.id().as_str())))
                && q.names.as_ref().is_none_or(|l| l.iter().any(|x| x == g.name()))
                && any(&q.running_space_guids, &attrs.spaces)
                && any(&q.staging_space_guids, &attrs.staging_spaces)
                && q.globally_enabled_running.is_none_or(|b| b == attrs.running_default)
                && q.globally_enabled_staging.is_none_or(|b| b == attrs.staging_default)
                && q.created_ats.as_ref().is_none_or(|f| f.matches(g.meta.created_at))
                && q.updated_ats.as_ref().is_none_or(|f| f.matches(g.meta.updated_at))
        })
        .collect();
    if let Some((field, desc)) = q.order {
        let by = |a: &Group, b: &Group| match field {
            OrderField::CreatedAt => a.meta.created_at.cmp(&b.meta.created_at),
            OrderField::UpdatedAt => a.meta.updated_at.cmp(&b.meta.updated_at),
            OrderField::Name => a.name().cmp(b.name()),
        };
        // Stable: groups with equal keys keep their creation order.
        out.sort_by(by);
        if desc {
            out.reverse();
        }
    }
    out
}

/// One page of `groups`, rendering only the groups on it.
fn page(app: &App, q: &ListQuery, path: &str, groups: Vec<Group>, only: Option<&Uuid>) -> Resp {
    let total = groups.len();
    let window = q.window(total);
    let resources = groups[window]
        .iter()
        .map(|g| match only {
            None => rendered(app, g),
            Some(_) => Rendered::new(&object(app, &app.service.cf_view(g), only), Vec::new()),
        })
        .collect();
    let base = format!("{}{path}", app.external_url());
    json(
        StatusCode::OK,
        &Page {
            pagination: q.pagination(&base, total),
            resources,
        },
    )
}

pub async fn list(app: &App, ctx: &Ctx) -> Result<Resp, V3Error> {
    let q = query::parse(&ctx.query, &query::GROUPS)?;
    let exact = q.names.as_ref().filter(|n| n.len() == 1).map(|n| n[0].as_str());
    let groups = app.service.list(&ctx.cx(), app.service.cf_scope(), exact).await?;
    let selected = select(app, groups, &q, |_| true);
    Ok(page(app, &q, "/v3/security_groups", selected, None))
}

pub async fn of_space(app: &App, ctx: &Ctx, space: &str, lifecycle: Lifecycle) -> Result<Resp, V3Error> {
    let q = query::parse(&ctx.query, &query::SPACE_GROUPS)?;
    let space_id = bindable(app, space).ok_or(V3Error::ResourceNotFound("Space"))?;
    let groups = app.service.list(&ctx.cx(), app.service.cf_scope(), None).await?;
    let selected = select(app, groups, &q, |a| {
        a.spaces(lifecycle).contains(&space_id) || a.is_default(lifecycle)
    });
    let rel = match lifecycle {
        Lifecycle::Running => "running_security_groups",
        Lifecycle::Staging => "staging_security_groups",
    };
    Ok(page(
        app,
        &q,
        &format!("/v3/spaces/{space}/{rel}"),
        selected,
        Some(&space_id),
    ))
}

pub async fn get(app: &App, ctx: &Ctx, guid: &str) -> Result<Resp, V3Error> {
    let id = group_id(guid)?;
    let group = app
        .service
        .get(&ctx.cx(), app.service.cf_scope(), &id)
        .await
        .map_err(not_found_group)?;
    Ok(conditional(
        &rendered(app, &group),
        ctx.header("if-none-match"),
        "application/json",
    ))
}

/// A group as a v3 object, rendered once per state of the group.
fn rendered(app: &App, group: &Group) -> Arc<Rendered> {
    app.renders.get(View::CfV3, app.service.cf_scope(), group, || {
        (object(app, &app.service.cf_view(group), None), Vec::new())
    })
}

/// Space guids that name no space the gateway knows, in request order.
fn unknown_spaces<'a>(app: &App, guids: impl IntoIterator<Item = &'a String>) -> Vec<&'a String> {
    guids.into_iter().filter(|g| bindable(app, g).is_none()).collect()
}

fn ruby_list(items: &[&String]) -> String {
    let quoted: Vec<String> = items.iter().map(|g| format!("{g:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

pub async fn create(app: &App, ctx: &Ctx) -> Result<Resp, V3Error> {
    let (bytes, flags) = (ctx.body.clone(), super::super::v2::flags(app));
    let body = offload::parse(bytes.len(), move || parse_create(&bytes, flags)).await?;
    let missing = unknown_spaces(app, body.running_spaces.iter().chain(&body.staging_spaces));
    if !missing.is_empty() {
        return Err(V3Error::Unprocessable(vec![format!(
            "Spaces with guids {} do not exist.",
            ruby_list(&missing)
        )]));
    }
    let set = |list: &[String]| list.iter().filter_map(|g| bindable(app, g)).collect();
    let req = CfCreate {
        name: body.name,
        rules: body.rules,
        attrs: CfAttrs {
            running_default: body.running,
            staging_default: body.staging,
            spaces: set(&body.running_spaces),
            staging_spaces: set(&body.staging_spaces),
        },
    };
    let written = app.service.cf_create(&ctx.cx(), req).await?;
    let view = app.service.cf_view(&written.group);
    let resp = json(StatusCode::CREATED, &object(app, &view, None));
    Ok(crate::server::cf::warn(resp, &written.warnings))
}

pub async fn update(app: &App, ctx: &Ctx, guid: &str) -> Result<Resp, V3Error> {
    let id = group_id(guid)?;
    if let Some((group, warnings)) = crate::server::cf::known_noop(app, ctx, Api::CfV3, &id).await {
        return Ok(updated(app, &group, &warnings));
    }
    let (bytes, flags) = (ctx.body.clone(), super::super::v2::flags(app));
    let body = offload::parse(bytes.len(), move || parse_update(&bytes, flags)).await?;
    let mut defaults = Vec::new();
    if let Some(on) = body.running {
        defaults.push((Lifecycle::Running, on));
    }
    if let Some(on) = body.staging {
        defaults.push((Lifecycle::Staging, on));
    }
    let change = CfChange {
        name: body.name,
        rules: body.rules,
        defaults,
        ..CfChange::default()
    };
    let written = app
        .service
        .cf_update(&ctx.cx(), &id, change)
        .await
        .map_err(not_found_group)?;
    crate::server::cf::remember_noop(app, ctx, Api::CfV3, &written);
    Ok(updated(app, &written.group, &written.warnings))
}

/// The answer to a `PATCH`: the group as it now is (rendered once per state).
fn updated(app: &App, group: &Group, warnings: &[String]) -> Resp {
    let resp = raw(StatusCode::OK, "application/json", rendered(app, group).bytes());
    crate::server::cf::warn(resp, warnings)
}

/// `DELETE`: done before answering; the job it names is finished when polled.
pub async fn delete(app: &App, ctx: &Ctx, guid: &str) -> Result<Resp, V3Error> {
    let id = group_id(guid)?;
    app.service.cf_delete(&ctx.cx(), &id).await.map_err(not_found_group)?;
    let job = new_job(JobApi::V3, chrono::Utc::now());
    let location = format!("{}/v3/jobs/{}", app.external_url(), job.guid);
    Ok(with_header(empty(StatusCode::ACCEPTED), "location", &location))
}
