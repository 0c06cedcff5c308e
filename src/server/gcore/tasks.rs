//! Gcore tasks: get, list with Gcore's filters and offset paging,
//! acknowledge one, acknowledge all.

use crate::dialect::gcore::error::GcoreError;
use crate::dialect::gcore::time;
use crate::dialect::gcore::wire::{task_kind, task_out, ListOut};
use crate::model::{Task, TaskQuery, TaskState, Uuid};
use crate::server::http::{empty, json, Ctx, Resp};
use crate::server::App;
use http::StatusCode;

fn task_id(text: &str) -> Result<Uuid, GcoreError> {
    Uuid::parse(text).ok_or_else(|| GcoreError::NotFound(format!("Task {text} not found")))
}

/// The task, if the caller's key may see its project; a task of another
/// project is "not found", as it is to Gcore's own keys (its existence is
/// not the caller's business).
async fn visible(app: &App, ctx: &Ctx, id: &str) -> Result<Task, GcoreError> {
    let task = app.service.task(&ctx.cx(), &task_id(id)?).await?;
    if !crate::server::authorize::gcore_project(&ctx.principal, task.scope.project_id) {
        return Err(GcoreError::NotFound(format!("Task {id} not found")));
    }
    Ok(task)
}

pub async fn get(app: &App, ctx: &Ctx, id: &str) -> Result<Resp, GcoreError> {
    let task = visible(app, ctx, id).await?;
    Ok(json(StatusCode::OK, &task_out(&task)))
}

pub async fn acknowledge(app: &App, ctx: &Ctx, id: &str) -> Result<Resp, GcoreError> {
    // Only the projects' owners may acknowledge: the task is read first
    // (the gateway's own key on a Gcore backend reaches the whole account).
    if ctx.principal.projects.is_some() {
        visible(app, ctx, id).await?;
    }
    let task = app.service.acknowledge(&ctx.cx(), &task_id(id)?).await?;
    Ok(json(StatusCode::OK, &task_out(&task)))
}

pub async fn acknowledge_all(app: &App, ctx: &Ctx) -> Result<Resp, GcoreError> {
    let number = |key: &str| -> Result<Option<u64>, GcoreError> {
        ctx.param(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| GcoreError::validation(format!("{key}: Not a valid integer.")))
            })
            .transpose()
    };
    let (project, region) = (number("project_id")?, number("region_id")?);
    // A key bound to projects acknowledges its own projects' tasks only:
    // without `project_id`, each of them in turn.
    let projects = match (&ctx.principal.projects, project) {
        (_, Some(p)) if !crate::server::authorize::gcore_project(&ctx.principal, p) => {
            return Err(super::forbidden(p));
        }
        (Some(allowed), None) => allowed.iter().copied().map(Some).collect(),
        (_, p) => vec![p],
    };
    for p in projects {
        app.service.acknowledge_all(&ctx.cx(), p, region).await?;
    }
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Gcore's `GET /cloud/v1/tasks` query, validated field by field.
pub fn parse_query(ctx: &Ctx) -> Result<TaskQuery, GcoreError> {
    let mut invalid = crate::dialect::gcore::error::InvalidFields::new();
    let mut add = |field: &str, message: String| invalid.entry(field.to_string()).or_default().push(message);
    let mut q = TaskQuery::default();
    for (key, list) in [("project_id", &mut q.project_ids), ("region_id", &mut q.region_ids)] {
        for v in ctx.params(key) {
            match v.parse::<u64>() {
                Ok(n) => list.push(n),
                Err(_) => add(key, "Not a valid integer.".into()),
            }
        }
    }
    for v in ctx.params("state") {
        match v {
            "NEW" => q.states.push(TaskState::New),
            "RUNNING" => q.states.push(TaskState::Running),
            "FINISHED" => q.states.push(TaskState::Finished),
            "ERROR" => q.states.push(TaskState::Error),
            _ => add("state", "Must be one of: ERROR, FINISHED, NEW, RUNNING.".into()),
        }
    }
    q.kind = ctx.param("task_type").map(task_kind);
    for (key, slot) in [("from_timestamp", &mut q.from), ("to_timestamp", &mut q.to)] {
        if let Some(v) = ctx.param(key) {
            match time::parse(v) {
                Some(t) => *slot = Some(t),
                None => add(key, "Not a valid datetime.".into()),
            }
        }
    }
    match ctx.param("is_acknowledged") {
        None => {}
        Some("true" | "True" | "1") => q.acknowledged = Some(true),
        Some("false" | "False" | "0") => q.acknowledged = Some(false),
        Some(_) => add("is_acknowledged", "Not a valid boolean.".into()),
    }
    match ctx.param("order_by").or_else(|| ctx.param("sorting")) {
        None | Some("asc") => {}
        Some("desc") => q.descending = true,
        Some(_) => add("order_by", "Must be one of: asc, desc.".into()),
    }
    match ctx.param("limit").map(|v| v.parse::<usize>()) {
        None => {}
        Some(Ok(n)) if (1..=1000).contains(&n) => q.limit = n,
        Some(_) => add(
            "limit",
            "Must be greater than or equal to 1 and less than or equal to 1000.".into(),
        ),
    }
    match ctx.param("offset").map(|v| v.parse::<usize>()) {
        None => {}
        Some(Ok(n)) => q.offset = n,
        Some(_) => add("offset", "Must be greater than or equal to 0.".into()),
    }
    if let Some(allowed) = &ctx.principal.projects {
        if q.project_ids.is_empty() {
            q.project_ids = allowed.clone();
        } else if let Some(p) = q.project_ids.iter().find(|p| !allowed.contains(p)) {
            return Err(super::forbidden(*p));
        }
    }
    if invalid.is_empty() {
        Ok(q)
    } else {
        Err(GcoreError::fields(invalid))
    }
}

pub async fn list(app: &App, ctx: &Ctx) -> Result<Resp, GcoreError> {
    let query = parse_query(ctx)?;
    let (count, tasks) = app.service.tasks(&ctx.cx(), &query).await?;
    Ok(json(
        StatusCode::OK,
        &ListOut {
            count,
            results: tasks.iter().map(task_out).collect(),
        },
    ))
}
