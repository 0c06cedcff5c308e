//! `/v2/security_groups` and `/v2/security_groups/:guid`.

use super::view::{desired_tags, reserved_patch};
use super::{backend_error, fetch, group_id, query, wait_error, warn};
use crate::backend::wait::retry_conflicts;
use crate::backend::{GroupPatch, NewGroup};
use crate::dialect::cf::render::{self, timestamp};
use crate::dialect::cf::{self, CfError, Mode};
use crate::dialect::gcore::wire::TaskOut;
use crate::model::{Atom, CfAttrs, GroupId, SecurityGroup, Uuid};
use crate::server::http::{cf_json, empty, with_header, Ctx, Resp};
use crate::server::App;
use http::StatusCode;
use std::collections::BTreeSet;

pub async fn list(app: &App, ctx: &Ctx) -> Result<Resp, CfError> {
    page_of_groups(app, ctx, "/v2/security_groups", |_| true, render::group_resource).await
}

/// One page of the groups `keep` selects, narrowed by `q=name` filters and
/// rendered by `render`; what CF cannot show goes to `X-Cf-Warnings`.
pub async fn page_of_groups<T: serde::Serialize>(
    app: &App,
    ctx: &Ctx,
    base: &str,
    keep: impl Fn(&SecurityGroup) -> bool,
    render: impl Fn(&SecurityGroup, Vec<render::CfRule>) -> T,
) -> Result<Resp, CfError> {
    let filters = query::filters(ctx, &["name"])?;
    let paging = query::paging(ctx, &[])?;
    let exact = filters.iter().find_map(|(_, f)| f.exact());
    let groups = app
        .backend
        .list(app.cf_scope, exact)
        .await
        .map_err(|e| backend_error(e, ""))?;
    let mut warnings = Vec::new();
    let items: Vec<T> = groups
        .iter()
        .filter(|g| keep(g) && filters.iter().all(|(_, f)| f.matches(&g.name)))
        .map(|g| {
            let view = app.cf_view(g);
            warnings.extend(view.warnings);
            render(g, view.rules)
        })
        .collect();
    let page = query::page(ctx, base, &paging, items);
    Ok(warn(cf_json(StatusCode::OK, &page), &warnings))
}

pub async fn get(app: &App, guid: &str) -> Result<Resp, CfError> {
    let id = group_id(guid)?;
    let group = fetch(app, &id, guid).await?;
    Ok(resource(app, StatusCode::OK, &group, Vec::new()))
}

/// A group as a CF resource, with warnings for what CF cannot show.
pub fn resource(app: &App, status: StatusCode, group: &SecurityGroup, mut warnings: Vec<String>) -> Resp {
    let view = app.cf_view(group);
    warnings.extend(view.warnings);
    warn(cf_json(status, &render::group_resource(group, view.rules)), &warnings)
}

/// Run a write (retrying 409s) and wait for its tasks, all within one deadline.
pub async fn commit<F, Fut>(app: &App, guid: &str, write: F) -> Result<Vec<TaskOut>, CfError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::backend::Result<Vec<Uuid>>>,
{
    let schedule = app.schedule();
    let tasks = retry_conflicts(schedule, write)
        .await
        .map_err(|e| backend_error(e, guid))?;
    app.wait(&tasks, schedule).await.map_err(|e| wait_error(e, guid))
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

async fn name_taken(app: &App, name: &str, except: Option<&GroupId>) -> Result<bool, CfError> {
    let same = app
        .backend
        .list(app.cf_scope, Some(name))
        .await
        .map_err(|e| backend_error(e, ""))?;
    Ok(same.iter().any(|g| g.name == name && Some(&g.id) != except))
}

pub async fn create(app: &App, body: &[u8]) -> Result<Resp, CfError> {
    let body = cf::body::parse(body, Mode::Create, app.cf_flags())?;
    let name = body.name.unwrap_or_default();
    let rules = body.rules.unwrap_or_default();
    let attrs = CfAttrs {
        spaces: space_set(app, body.space_guids)?.unwrap_or_default(),
        staging_spaces: space_set(app, body.staging_space_guids)?.unwrap_or_default(),
        ..CfAttrs::default()
    };
    let (atoms, warnings) = app.plan_rules(&rules, &[])?;
    // One create at a time keeps names unique within this gateway.
    let _creating = app.create_lock.lock().await;
    if name_taken(app, &name, None).await? {
        return Err(CfError::NameTaken(name));
    }
    let new = NewGroup {
        name,
        description: None,
        tags: desired_tags(&attrs, &atoms),
        rules: Some(atoms),
    };
    let tasks = commit(app, "", || app.backend.create(app.cf_scope, new.clone())).await?;
    let id = tasks
        .iter()
        .filter_map(|t| t.created_resources.as_ref()?.get("security_groups")?.first())
        .find_map(|id| Uuid::parse(id))
        .ok_or_else(|| CfError::BackendRejected("The backend's create task named no security group".into()))?;
    let group = fetch(app, &id, id.as_str()).await?;
    let location = format!("/v2/security_groups/{id}");
    Ok(with_header(
        resource(app, StatusCode::CREATED, &group, warnings),
        "location",
        &location,
    ))
}

pub async fn update(app: &App, guid: &str, body: &[u8]) -> Result<Resp, CfError> {
    let id = group_id(guid)?;
    let body = cf::body::parse(body, Mode::Update, app.cf_flags())?;
    let _writing = app.lock_group(&id).await;
    let current = fetch(app, &id, guid).await?;
    let name = body.name.filter(|n| *n != current.name);
    if let Some(n) = &name {
        if name_taken(app, n, Some(&id)).await? {
            return Err(CfError::NameTaken(n.clone()));
        }
    }
    let (rules, warnings) = match &body.rules {
        None => (None, Vec::new()),
        Some(rules) => {
            let foreign = app.cf_view(&current).foreign;
            let (mut atoms, warnings) = app.plan_rules(rules, &foreign)?;
            atoms.extend(foreign);
            (Some(atoms), warnings)
        }
    };
    let mut attrs = current.cf_attrs();
    if let Some(s) = space_set(app, body.space_guids)? {
        attrs.spaces = s;
    }
    if let Some(s) = space_set(app, body.staging_space_guids)? {
        attrs.staging_spaces = s;
    }
    let logged: Vec<Atom> = rules.clone().unwrap_or_else(|| current.atoms());
    let patch = GroupPatch {
        name,
        description: None,
        tags: reserved_patch(&current.tags, desired_tags(&attrs, &logged)),
        rules,
    };
    commit(app, guid, || app.backend.update(app.cf_scope, &id, patch.clone())).await?;
    let group = fetch(app, &id, guid).await?;
    Ok(resource(app, StatusCode::CREATED, &group, warnings))
}

pub async fn delete(app: &App, ctx: &Ctx, guid: &str) -> Result<Resp, CfError> {
    let id = group_id(guid)?;
    let _writing = app.lock_group(&id).await;
    retry_conflicts(app.schedule(), || app.backend.delete(app.cf_scope, &id))
        .await
        .map_err(|e| backend_error(e, guid))?;
    if ctx.param("async") != Some("true") {
        return Ok(empty(StatusCode::NO_CONTENT));
    }
    // The delete is already done; the job exists for clients that poll one.
    let job = app.new_job(timestamp(&chrono::Utc::now()));
    Ok(cf_json(StatusCode::ACCEPTED, &job.queued()))
}
