//! The Gcore front end: the v2 security-group writes, the v1 reads and
//! delete, and tasks, with Gcore's bodies, statuses and error bodies. Writes
//! answer `{"tasks": [...]}`; with `Prefer: wait=N` (RFC 7240) the gateway
//! waits on the tasks itself and answers the final group.

use crate::backend::wait::{Schedule, WaitError};
use crate::backend::{BackendError, ErrorKind, Scope};
use crate::dialect::gcore::body::{self, GcoreFlags};
use crate::dialect::gcore::rule::ApiVersion;
use crate::dialect::gcore::wire::{group_out, ListOut, Location, TaskIds, TaskOut};
use crate::dialect::gcore::GcoreError;
use crate::model::{GroupId, SecurityGroup, Uuid};
use crate::server::http::{empty, json, with_header, Ctx, Resp};
use crate::server::{auth, App, RequestBody};
use http::{Method, StatusCode};
use std::time::Duration;

pub fn error(e: &GcoreError, request_id: &str) -> Resp {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, &e.body(Some(request_id.to_string())))
}

pub async fn handle(app: &App, ctx: &Ctx, segs: &[&str], body: RequestBody) -> Resp {
    if let Err(e) = auth::gcore(&ctx.headers, &app.cfg.auth.gcore_api_keys) {
        let message = match e {
            auth::AuthError::Missing => "Authentication credentials were not provided.",
            auth::AuthError::Invalid => "Bad permanent token.",
        };
        return error(&GcoreError::Unauthorized(message.into()), &ctx.request_id);
    }
    match route(app, ctx, segs, body).await {
        Ok(r) => r,
        Err(e) => error(&e, &ctx.request_id),
    }
}

async fn route(app: &App, ctx: &Ctx, segs: &[&str], body: RequestBody) -> Result<Resp, GcoreError> {
    use Method as M;
    let m = &ctx.method;
    match segs {
        ["cloud", "v2", "security_groups", p, r] if m == M::POST => {
            let new = body::parse_create(&body.read(app).await?, flags(app))?;
            let scope = scope(p, r)?;
            let tasks = app.backend.create(scope, new).await.map_err(backend_error)?;
            written(app, ctx, scope, None, tasks).await
        }
        ["cloud", "v2", "security_groups", p, r, g] if m == M::PATCH => {
            let (scope, id) = (scope(p, r)?, group_id(g)?);
            let patch = body::parse_patch(&body.read(app).await?, flags(app))?;
            let tasks = app.backend.update(scope, &id, patch).await.map_err(backend_error)?;
            written(app, ctx, scope, Some(id), tasks).await
        }
        ["cloud", "v2", "security_groups", p, r, g, "rules"] if m == M::POST => {
            let (scope, id) = (scope(p, r)?, group_id(g)?);
            let rule = body::parse_rule(&body.read(app).await?, ApiVersion::V2, flags(app))?;
            let tasks = app.backend.add_rule(scope, &id, rule).await.map_err(backend_error)?;
            written(app, ctx, scope, Some(id), tasks).await
        }
        ["cloud", "v2", "security_groups", p, r, g, "rules", rule] if m == M::DELETE => {
            let (scope, id) = (scope(p, r)?, group_id(g)?);
            let rule = Uuid::parse(rule).ok_or_else(|| GcoreError::NotFound("Security group rule not found".into()))?;
            let tasks = app
                .backend
                .delete_rule(scope, &id, &rule)
                .await
                .map_err(backend_error)?;
            written(app, ctx, scope, Some(id), tasks).await
        }
        ["cloud", "v1", "securitygroups", p, r] if m == M::GET => list(app, ctx, scope(p, r)?).await,
        ["cloud", "v1", "securitygroups", p, r, g] if m == M::GET => {
            let (scope, id) = (scope(p, r)?, group_id(g)?);
            let group = app.backend.get(scope, &id).await.map_err(backend_error)?;
            Ok(json(StatusCode::OK, &group_out(&group, &location(scope, &group))))
        }
        ["cloud", "v1", "securitygroups", p, r, g] if m == M::DELETE => {
            let (scope, id) = (scope(p, r)?, group_id(g)?);
            app.backend.delete(scope, &id).await.map_err(backend_error)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        ["cloud", "v1", "tasks", t] if m == M::GET => {
            let id = Uuid::parse(t).ok_or_else(|| GcoreError::NotFound("Task not found".into()))?;
            let task: TaskOut = app.backend.task(&id).await.map_err(backend_error)?;
            Ok(json(StatusCode::OK, &task))
        }
        ["cloud", "v2", "security_groups", ..]
        | ["cloud", "v1", "securitygroups", ..]
        | ["cloud", "v1", "tasks", _] => Err(GcoreError::MethodNotAllowed),
        _ => Err(GcoreError::NotFound("Not Found".into())),
    }
}

fn flags(app: &App) -> GcoreFlags {
    GcoreFlags {
        smtp_blocked: app.cfg.gcore.smtp_blocked,
    }
}

fn scope(p: &str, r: &str) -> Result<Scope, GcoreError> {
    let number = |field: &str, v: &str| {
        v.parse::<u64>()
            .map_err(|_| GcoreError::validation(format!("{field}: Not a valid integer.")))
    };
    Ok(Scope {
        project_id: number("project_id", p)?,
        region_id: number("region_id", r)?,
    })
}

fn group_id(g: &str) -> Result<GroupId, GcoreError> {
    Uuid::parse(g).ok_or_else(|| GcoreError::NotFound("Security group not found".into()))
}

fn location(scope: Scope, group: &SecurityGroup) -> Location {
    Location {
        project_id: scope.project_id,
        region_id: scope.region_id,
        region: group.region.clone(),
    }
}

/// A backend failure in Gcore's terms, keeping the backend's message.
fn backend_error(e: BackendError) -> GcoreError {
    match e.kind {
        ErrorKind::Invalid => GcoreError::validation(e.message),
        ErrorKind::NotFound => GcoreError::NotFound(e.message),
        ErrorKind::Conflict => GcoreError::Conflict(e.message),
        ErrorKind::Unauthorized => {
            GcoreError::BadGateway(format!("the backend refused the gateway's credentials: {}", e.message))
        }
        ErrorKind::Unavailable => GcoreError::Unavailable(e.message),
        ErrorKind::Timeout => GcoreError::Timeout(e.message),
        ErrorKind::Upstream => GcoreError::BadGateway(e.message),
    }
}

/// `Prefer: wait=N` (seconds), if the caller asked to wait.
fn prefer_wait(ctx: &Ctx) -> Option<u64> {
    ctx.headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .find_map(|p| p.trim().strip_prefix("wait=").and_then(|n| n.trim().parse().ok()))
}

/// Answer a write: the task ids, or with `Prefer: wait`, the final group.
async fn written(
    app: &App,
    ctx: &Ctx,
    scope: Scope,
    id: Option<GroupId>,
    tasks: Vec<Uuid>,
) -> Result<Resp, GcoreError> {
    let Some(seconds) = prefer_wait(ctx) else {
        let ids = TaskIds {
            tasks: tasks.iter().map(ToString::to_string).collect(),
        };
        return Ok(json(StatusCode::OK, &ids));
    };
    let within = Duration::from_secs(seconds).min(app.cfg.wait.deadline());
    let schedule = Schedule::new(app.cfg.wait.first_poll(), app.cfg.wait.max_poll(), within);
    let done = app.wait(&tasks, schedule).await.map_err(|e| match e {
        WaitError::TaskFailed { error, .. } => GcoreError::validation(error),
        WaitError::Deadline { pending } => GcoreError::Timeout(format!("tasks still running: {}", pending.join(", "))),
        WaitError::Backend(e) => backend_error(e),
    })?;
    let id = id
        .or_else(|| {
            done.iter()
                .filter_map(|t| t.created_resources.as_ref()?.get("security_groups")?.first())
                .find_map(|s| Uuid::parse(s))
        })
        .ok_or_else(|| GcoreError::BadGateway("the create task named no security group".into()))?;
    let group = app.backend.get(scope, &id).await.map_err(backend_error)?;
    let resp = json(StatusCode::OK, &group_out(&group, &location(scope, &group)));
    Ok(with_header(resp, "preference-applied", &format!("wait={seconds}")))
}

async fn list(app: &App, ctx: &Ctx, scope: Scope) -> Result<Resp, GcoreError> {
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
    let groups = app
        .backend
        .list(scope, ctx.param("name"))
        .await
        .map_err(backend_error)?;
    let matching: Vec<&SecurityGroup> = groups
        .iter()
        .filter(|g| tag_keys.iter().all(|k| g.tags.iter().any(|t| t.key == *k)))
        .filter(|g| {
            tag_values
                .iter()
                .all(|(k, v)| g.tags.iter().any(|t| t.key == *k && t.value == *v))
        })
        .collect();
    let results = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|g| group_out(g, &location(scope, g)))
        .collect();
    Ok(json(
        StatusCode::OK,
        &ListOut {
            count: matching.len(),
            results,
        },
    ))
}
