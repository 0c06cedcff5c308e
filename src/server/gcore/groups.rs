//! Gcore security groups: v2 writes, v1 reads, delete, copy, revert, and the
//! deprecated v1 rule replace.

use super::{flags, waiting};
use crate::dialect::gcore::body::{self, parse_copy};
use crate::dialect::gcore::error::GcoreError;
use crate::dialect::gcore::rule::ApiVersion;
use crate::dialect::gcore::wire::{group_out, rule_out, ListOut, Location, TaskIds};
use crate::model::{Group, GroupId, Scope, Uuid};
use crate::server::http::{empty, json, warnings_header, with_header, Ctx, Resp};
use crate::server::renders::{conditional, Rendered, View};
use crate::server::{offload, App};
use crate::service::{GcoreWritten, Waiting};
use http::StatusCode;
use std::sync::Arc;

fn location(scope: Scope) -> Location {
    Location {
        project_id: scope.project_id,
        region_id: scope.region_id,
    }
}

/// A group's Gcore body, rendered once per state of the group.
fn render(app: &App, group: &Group, scope: Scope) -> Arc<Rendered> {
    app.renders.get(View::Gcore, scope, group, || {
        let view = app.service.gcore_view(group);
        (group_out(&group.meta, &view, location(scope)), Vec::new())
    })
}

/// A group body with an `ETag` of its bytes; `If-None-Match` on it is a 304.
fn group_response(app: &App, ctx: &Ctx, group: &Group, scope: Scope) -> Resp {
    conditional(
        &render(app, group, scope),
        ctx.header("if-none-match"),
        "application/json",
    )
}

/// Answers a write: the task ids, or (the caller waited) the final group.
fn written(app: &App, ctx: &Ctx, scope: Scope, w: GcoreWritten) -> Resp {
    let resp = match w {
        GcoreWritten::Tasks(tasks) => {
            crate::journal::tasks(&tasks);
            json(
                StatusCode::OK,
                &TaskIds {
                    tasks: tasks.iter().map(ToString::to_string).collect(),
                },
            )
        }
        GcoreWritten::Group(group) => {
            let resp = json(StatusCode::OK, &render(app, &group, scope));
            match waiting(ctx) {
                Waiting::UpTo(d) => with_header(resp, "preference-applied", &format!("wait={}", d.as_secs())),
                Waiting::No => resp,
            }
        }
    };
    // What the gateway dropped on the way (backend.cf.drop_unsupported).
    warnings_header(resp, "x-sgbridge-warnings", &crate::journal::warnings())
}

pub async fn create(app: &App, ctx: &Ctx, scope: Scope) -> Result<Resp, GcoreError> {
    let (bytes, flags) = (ctx.body.clone(), flags(app));
    let req = offload::parse(bytes.len(), move || body::parse_create(&bytes, flags)).await?;
    let w = app.service.gcore_create(&ctx.cx(), scope, req, waiting(ctx)).await?;
    Ok(written(app, ctx, scope, w))
}

pub async fn patch(app: &App, ctx: &Ctx, scope: Scope, id: &GroupId) -> Result<Resp, GcoreError> {
    let (bytes, flags) = (ctx.body.clone(), flags(app));
    let req = offload::parse(bytes.len(), move || body::parse_patch(&bytes, flags)).await?;
    let w = app.service.gcore_patch(&ctx.cx(), scope, id, req, waiting(ctx)).await?;
    Ok(written(app, ctx, scope, w))
}

pub async fn add_rule(app: &App, ctx: &Ctx, scope: Scope, id: &GroupId) -> Result<Resp, GcoreError> {
    let atom = body::parse_rule(&ctx.body, ApiVersion::V2, flags(app))?;
    let w = app
        .service
        .gcore_add_rule(&ctx.cx(), scope, id, atom, waiting(ctx))
        .await?;
    Ok(written(app, ctx, scope, w))
}

pub async fn delete_rule(app: &App, ctx: &Ctx, scope: Scope, id: &GroupId, rule: &Uuid) -> Result<Resp, GcoreError> {
    let w = app
        .service
        .gcore_delete_rule(&ctx.cx(), scope, id, rule, waiting(ctx))
        .await?;
    Ok(written(app, ctx, scope, w))
}

pub async fn get(app: &App, ctx: &Ctx, scope: Scope, id: &GroupId) -> Result<Resp, GcoreError> {
    let group = app.service.get(&ctx.cx(), scope, id).await?;
    Ok(group_response(app, ctx, &group, scope))
}

pub async fn delete(app: &App, ctx: &Ctx, scope: Scope, id: &GroupId) -> Result<Resp, GcoreError> {
    app.service.gcore_delete(&ctx.cx(), scope, id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn copy(app: &App, ctx: &Ctx, scope: Scope, id: &GroupId) -> Result<Resp, GcoreError> {
    let name = parse_copy(&ctx.body)?;
    let group = app.service.gcore_copy(&ctx.cx(), scope, id, name).await?;
    Ok(json(StatusCode::OK, &render(app, &group, scope)))
}

pub async fn revert(app: &App, ctx: &Ctx, scope: Scope, id: &GroupId) -> Result<Resp, GcoreError> {
    let group = app.service.gcore_revert(&ctx.cx(), scope, id).await?;
    Ok(json(StatusCode::OK, &render(app, &group, scope)))
}

/// `PUT /cloud/v1/securitygrouprules/…`: Gcore deletes the rule and creates
/// the new one (a new id), in the group that holds it.
pub async fn replace_rule(app: &App, ctx: &Ctx, scope: Scope, rule: &Uuid) -> Result<Resp, GcoreError> {
    let atom = body::parse_rule(&ctx.body, ApiVersion::V1, flags(app))?;
    let (group, new) = app.service.gcore_replace_rule(&ctx.cx(), scope, rule, atom).await?;
    Ok(json(StatusCode::OK, &rule_out(group.id(), &new)))
}

pub async fn list(app: &App, ctx: &Ctx, scope: Scope) -> Result<Resp, GcoreError> {
    let number = |key: &str, default: usize, range: std::ops::RangeInclusive<usize>| -> Result<usize, GcoreError> {
        match ctx.param(key) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                GcoreError::validation(format!(
                    "{key}: Must be greater than or equal to {} and less than or equal to {}.",
                    range.start(),
                    range.end()
                ))
            }),
        }
    };
    let limit = number("limit", 10, 1..=1000)?;
    let offset = number("offset", 0, 0..=usize::MAX)?;
    let tag_keys: Vec<&str> = ctx.params("tag_key").collect();
    let tag_values: Vec<(String, String)> = match ctx.param("tag_key_value") {
        None => Vec::new(),
        Some(text) => serde_json::from_str::<std::collections::BTreeMap<String, String>>(text)
            .map_err(|_| GcoreError::validation("tag_key_value: must be a JSON object of strings."))?
            .into_iter()
            .collect(),
    };
    let groups = app.service.list(&ctx.cx(), scope, ctx.param("name")).await?;
    let matching: Vec<&Group> = groups
        .iter()
        .filter(|g| tag_keys.iter().all(|k| g.tags().iter().any(|t| t.key == *k)))
        .filter(|g| {
            tag_values
                .iter()
                .all(|(k, v)| g.tags().iter().any(|t| t.key == *k && t.value == *v))
        })
        .collect();
    let results = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|g| render(app, g, scope))
        .collect();
    Ok(json(
        StatusCode::OK,
        &ListOut {
            count: matching.len(),
            results,
        },
    ))
}
