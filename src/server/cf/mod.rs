//! The Cloud Foundry v2 front end: the whole security-group family of CC
//! routes, answered from a Gcore-semantics backend with CC's bodies, codes and
//! errors. Writes wait on the backend's tasks and answer the final state.

mod directory;
mod groups;
mod info;
mod links;
pub mod query;
pub mod view;

pub use links::Job;

use crate::backend::wait::WaitError;
use crate::backend::{BackendError, ErrorKind};
use crate::dialect::cf::CfError;
use crate::model::{GroupId, Uuid};
use crate::server::http::{cf_json, encode, with_header, Ctx, Resp};
use crate::server::{auth, App, RequestBody};
use http::{Method, StatusCode};

pub fn error(e: &CfError) -> Resp {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    cf_json(status, &e.body())
}

/// Warnings for the cf CLI: a comma-separated list of URL-encoded texts.
pub fn warn(resp: Resp, warnings: &[String]) -> Resp {
    if warnings.is_empty() {
        return resp;
    }
    let value: Vec<String> = warnings.iter().map(|w| encode(w)).collect();
    with_header(resp, "x-cf-warnings", &value.join(","))
}

pub async fn handle(app: &App, ctx: &Ctx, segs: &[&str], body: RequestBody) -> Resp {
    if ctx.method == Method::GET {
        match segs {
            [""] => return info::root(app, ctx),
            ["v2", "info"] => return info::info(app, ctx),
            ["login"] => {
                if let Some(r) = info::login(app, ctx) {
                    return r;
                }
            }
            _ => {}
        }
    }
    if let Err(e) = auth::cf(&ctx.headers, &app.cfg.auth.cf_bearer_tokens) {
        return error(&match e {
            auth::AuthError::Missing => CfError::NotAuthenticated,
            auth::AuthError::Invalid => CfError::InvalidAuthToken,
        });
    }
    match route(app, ctx, segs, body).await {
        Ok(r) => r,
        Err(e) => error(&e),
    }
}

async fn route(app: &App, ctx: &Ctx, segs: &[&str], body: RequestBody) -> Result<Resp, CfError> {
    use Method as M;
    let m = &ctx.method;
    match segs {
        ["v2", "security_groups"] if m == M::GET => groups::list(app, ctx).await,
        ["v2", "security_groups"] if m == M::POST => groups::create(app, &body.read(app).await?).await,
        ["v2", "security_groups", g] if m == M::GET => groups::get(app, g).await,
        ["v2", "security_groups", g] if m == M::PUT => groups::update(app, g, &body.read(app).await?).await,
        ["v2", "security_groups", g] if m == M::DELETE => groups::delete(app, ctx, g).await,
        ["v2", "security_groups", g, rel @ ("spaces" | "staging_spaces")] if m == M::GET => {
            links::spaces_of(app, ctx, g, links::Lifecycle::from_rel(rel)).await
        }
        ["v2", "security_groups", g, rel @ ("spaces" | "staging_spaces"), s] if m == M::PUT || m == M::DELETE => {
            links::bind(
                app,
                g,
                s,
                links::Lifecycle::from_rel(rel),
                m == M::PUT,
                links::Side::Group,
            )
            .await
        }
        ["v2", "config", kind @ ("running_security_groups" | "staging_security_groups")] if m == M::GET => {
            links::defaults(app, ctx, links::Lifecycle::from_rel(kind)).await
        }
        ["v2", "config", kind @ ("running_security_groups" | "staging_security_groups"), g]
            if m == M::PUT || m == M::DELETE =>
        {
            links::set_default(app, g, links::Lifecycle::from_rel(kind), m == M::PUT).await
        }
        ["v2", "spaces", s, rel @ ("security_groups" | "staging_security_groups")] if m == M::GET => {
            links::groups_of_space(app, ctx, s, links::Lifecycle::from_rel(rel)).await
        }
        ["v2", "spaces", s, rel @ ("security_groups" | "staging_security_groups"), g]
            if m == M::PUT || m == M::DELETE =>
        {
            links::bind(
                app,
                g,
                s,
                links::Lifecycle::from_rel(rel),
                m == M::PUT,
                links::Side::Space,
            )
            .await
        }
        ["v2", "jobs", j] if m == M::GET => links::job(app, j),
        ["v2", "organizations"] if m == M::GET => directory::orgs(app, ctx),
        ["v2", "organizations", o] if m == M::GET => directory::get_org(app, o),
        ["v2", "organizations", o, "spaces"] if m == M::GET => directory::spaces(app, ctx, Some(o)),
        ["v2", "spaces"] if m == M::GET => directory::spaces(app, ctx, None),
        ["v2", "spaces", s] if m == M::GET => directory::get_space(app, ctx, s),
        _ => Err(CfError::NotFound),
    }
}

/// A guid from a path; an unknown shape is simply a group that does not exist.
fn group_id(guid: &str) -> Result<GroupId, CfError> {
    Uuid::parse(guid).ok_or_else(|| CfError::SecurityGroupNotFound(guid.to_string()))
}

/// The CF group `id`; `guid` is the caller's spelling, for the not-found message.
async fn fetch(app: &App, id: &GroupId, guid: &str) -> Result<crate::model::SecurityGroup, CfError> {
    app.backend
        .get(app.cf_scope, id)
        .await
        .map_err(|e| backend_error(e, guid))
}

/// A backend failure as the CF caller sees it, with the backend's message.
fn backend_error(e: BackendError, guid: &str) -> CfError {
    match e.kind {
        ErrorKind::NotFound => CfError::SecurityGroupNotFound(guid.to_string()),
        ErrorKind::Invalid => {
            CfError::SecurityGroupInvalid(vec![format!("the backend refused the change: {}", e.message)])
        }
        ErrorKind::Conflict => CfError::BackendTimeout(format!(
            "The security group is still locked by another backend task at the deadline: {}",
            e.message
        )),
        ErrorKind::Unauthorized => {
            CfError::BackendRejected(format!("The backend refused the gateway's credentials: {}", e.message))
        }
        ErrorKind::Unavailable => CfError::BackendUnavailable(format!("The backend is unavailable: {}", e.message)),
        ErrorKind::Timeout => CfError::BackendTimeout(format!("The backend did not answer in time: {}", e.message)),
        ErrorKind::Upstream => CfError::BackendRejected(format!("The backend failed: {}", e.message)),
    }
}

fn wait_error(e: WaitError, guid: &str) -> CfError {
    match e {
        WaitError::TaskFailed { id, error } => {
            CfError::BackendRejected(format!("The backend task {id} failed: {error}"))
        }
        WaitError::Deadline { pending } => CfError::BackendTimeout(format!(
            "The backend tasks {} did not finish before the deadline; look them up at /cloud/v1/tasks/<id>",
            pending.join(", ")
        )),
        WaitError::Backend(e) => backend_error(e, guid),
    }
}
