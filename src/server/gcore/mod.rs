//! The Gcore front end: the v2 security-group writes, the v1 reads, delete,
//! copy, revert and (deprecated) rule replace, and tasks, with Gcore's bodies,
//! statuses and error bodies, over the service layer. Writes answer
//! `{"tasks": [...]}`; with `Prefer: wait=N` (RFC 7240) the gateway waits on
//! the tasks itself and answers the final group.

mod groups;
pub mod rescue;
pub(crate) mod tasks;

use crate::config::faults::Operation;
use crate::dialect::gcore::body::GcoreFlags;
use crate::dialect::gcore::GcoreError;
use crate::model::{GroupId, Scope, Uuid};
use crate::server::http::{Ctx, Resp};
use crate::server::route::RouteId;
use crate::server::App;
use crate::service::Waiting;
use http::Method;
use rescue::response;
use std::time::Duration;

pub async fn handle(app: &App, ctx: &Ctx) -> Resp {
    match route(app, ctx).await {
        Ok(r) => r,
        Err(e) => {
            crate::journal::refused(e.status(), &e.to_string());
            response(&e, &ctx.request_id)
        }
    }
}

async fn route(app: &App, ctx: &Ctx) -> Result<Resp, GcoreError> {
    use RouteId as R;
    let m = &ctx.method;
    let p = |i| ctx.route.param(i);
    match (ctx.route.id, m) {
        (R::GcoreCreate, &Method::POST) => groups::create(app, ctx, scope(ctx, p(0), p(1))?).await,
        (R::GcorePatch, &Method::PATCH) => groups::patch(app, ctx, scope(ctx, p(0), p(1))?, &group_id(p(2))?).await,
        (R::GcoreRules, &Method::POST) => groups::add_rule(app, ctx, scope(ctx, p(0), p(1))?, &group_id(p(2))?).await,
        (R::GcoreRule, &Method::DELETE) => {
            let rule = Uuid::parse(p(3)).ok_or_else(|| GcoreError::NotFound("Security group rule not found".into()))?;
            groups::delete_rule(app, ctx, scope(ctx, p(0), p(1))?, &group_id(p(2))?, &rule).await
        }
        (R::GcoreList, &Method::GET) => groups::list(app, ctx, scope(ctx, p(0), p(1))?).await,
        (R::GcoreGroup, &Method::GET) => groups::get(app, ctx, scope(ctx, p(0), p(1))?, &group_id(p(2))?).await,
        (R::GcoreGroup, &Method::DELETE) => groups::delete(app, ctx, scope(ctx, p(0), p(1))?, &group_id(p(2))?).await,
        (R::GcoreCopy, &Method::POST) => groups::copy(app, ctx, scope(ctx, p(0), p(1))?, &group_id(p(2))?).await,
        (R::GcoreRevert, &Method::POST) => groups::revert(app, ctx, scope(ctx, p(0), p(1))?, &group_id(p(2))?).await,
        (R::GcoreV1Rule, &Method::PUT) => {
            let rule = Uuid::parse(p(2)).ok_or_else(|| GcoreError::NotFound("Security group rule not found".into()))?;
            groups::replace_rule(app, ctx, scope(ctx, p(0), p(1))?, &rule).await
        }
        (R::GcoreTasks, &Method::GET) => tasks::list(app, ctx).await,
        (R::GcoreTask, &Method::GET) => tasks::get(app, ctx, p(0)).await,
        (R::GcoreTaskAck, &Method::POST) => tasks::acknowledge(app, ctx, p(0)).await,
        (R::GcoreTaskAckAll, &Method::POST) => tasks::acknowledge_all(app, ctx).await,
        (R::GcoreOther, _) => Err(GcoreError::NotFound("Not Found".into())),
        _ => Err(GcoreError::MethodNotAllowed),
    }
}

/// The Gcore SDK's name for a request (`None`: not a Gcore operation).
pub fn operation(route: RouteId, method: &Method) -> Option<Operation> {
    use Operation as O;
    use RouteId as R;
    Some(match (route, method) {
        (R::GcoreCreate, &Method::POST) => O::GroupsCreate,
        (R::GcorePatch, &Method::PATCH) => O::GroupsUpdate,
        (R::GcoreRules, &Method::POST) => O::RulesCreate,
        (R::GcoreRule, &Method::DELETE) => O::RulesDelete,
        (R::GcoreList, &Method::GET) => O::GroupsList,
        (R::GcoreGroup, &Method::GET) => O::GroupsGet,
        (R::GcoreGroup, &Method::DELETE) => O::GroupsDelete,
        (R::GcoreCopy, &Method::POST) => O::GroupsCopy,
        (R::GcoreRevert, &Method::POST) => O::GroupsRevert,
        (R::GcoreV1Rule, &Method::PUT) => O::RulesReplace,
        (R::GcoreTasks, &Method::GET) => O::TasksList,
        (R::GcoreTask, &Method::GET) => O::TasksGet,
        (R::GcoreTaskAck, &Method::POST) => O::TasksAcknowledgeOne,
        (R::GcoreTaskAckAll, &Method::POST) => O::TasksAcknowledgeAll,
        _ => return None,
    })
}

pub fn flags(app: &App) -> GcoreFlags {
    GcoreFlags {
        smtp_blocked: app.cfg.gcore.smtp_blocked,
        max_rules: app.cfg.gcore.max_rules,
    }
}

/// The project and region of a path; a key bound to other projects gets 403.
fn scope(ctx: &Ctx, p: &str, r: &str) -> Result<Scope, GcoreError> {
    let number = |field: &str, v: &str| {
        v.parse::<u64>()
            .map_err(|_| GcoreError::validation(format!("{field}: Not a valid integer.")))
    };
    let scope = Scope {
        project_id: number("project_id", p)?,
        region_id: number("region_id", r)?,
    };
    if !crate::server::authorize::gcore_project(&ctx.principal, scope.project_id) {
        return Err(forbidden(scope.project_id));
    }
    Ok(scope)
}

pub(crate) fn forbidden(project: u64) -> GcoreError {
    GcoreError::Forbidden(format!("this API key may not access project {project}"))
}

fn group_id(g: &str) -> Result<GroupId, GcoreError> {
    Uuid::parse(g).ok_or_else(|| GcoreError::NotFound("Security group not found".into()))
}

/// `Prefer: wait=N` (seconds), if the caller asked to wait.
fn waiting(ctx: &Ctx) -> Waiting {
    let seconds = ctx
        .headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .find_map(|p| {
            p.trim()
                .strip_prefix("wait=")
                .and_then(|n| n.trim().parse::<u64>().ok())
        });
    match seconds {
        // `wait=0`: the caller will not wait at all, so it gets the tasks
        // at once (it used to get a 504 for a write that went on to succeed).
        Some(0) | None => Waiting::No,
        Some(s) => Waiting::UpTo(Duration::from_secs(s)),
    }
}
