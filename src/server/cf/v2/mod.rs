//! The Cloud Foundry v2 front end: the whole security-group family of CC
//! routes with CC's bodies, codes and errors, over the service layer. Writes
//! answer once the backend's tasks have finished, with the final state.

pub(crate) mod directory;
mod groups;
mod info;
mod links;
pub mod query;

use super::rescue::response;
use crate::dialect::cf::{CfError, CfFlags};
use crate::model::{GroupId, Lifecycle, Uuid};
use crate::server::http::{Ctx, Resp};
use crate::server::route::RouteId;
use crate::server::App;
use http::Method;

pub async fn handle(app: &App, ctx: &Ctx) -> Resp {
    match route(app, ctx).await {
        Ok(r) => r,
        Err(e) => {
            crate::journal::refused(e.status(), &e.to_string());
            response(&e)
        }
    }
}

/// CC's two checks (the token gate, then the role), held in
/// [`crate::server::authorize`].
fn allowed(ctx: &Ctx) -> Result<(), CfError> {
    use crate::server::authorize::{cf_v2, CfRefusal};
    cf_v2(&ctx.principal.cf, &ctx.method).map_err(|r| match r {
        CfRefusal::InsufficientScope => CfError::InsufficientScope,
        CfRefusal::NotAuthorized => CfError::NotAuthorized,
    })
}

fn lifecycle(rel: &str) -> Lifecycle {
    if rel.starts_with("staging") {
        Lifecycle::Staging
    } else {
        Lifecycle::Running
    }
}

async fn route(app: &App, ctx: &Ctx) -> Result<Resp, CfError> {
    use RouteId as R;
    let m = &ctx.method;
    let p = |i| ctx.route.param(i);
    match (ctx.route.id, m) {
        (R::CfRoot, &Method::GET) => return Ok(info::root(app)),
        (R::CfInfo, &Method::GET) => return Ok(info::info(app)),
        (R::CfLogin, &Method::GET) => return info::login(app).ok_or(CfError::NotFound),
        (R::OauthToken | R::TokenKeys | R::TokenKey | R::UserInfo, _) => {
            return Ok(crate::server::auth::login::endpoint::serve(app.auth.login(), ctx).await)
        }
        _ => {}
    }
    allowed(ctx)?;
    match (ctx.route.id, m) {
        (R::CfGroups, &Method::GET) => groups::list(app, ctx).await,
        (R::CfGroups, &Method::POST) => groups::create(app, ctx).await,
        (R::CfGroup, &Method::GET) => groups::get(app, ctx, p(0)).await,
        (R::CfGroup, &Method::PUT) => groups::update(app, ctx, p(0)).await,
        (R::CfGroup, &Method::DELETE) => groups::delete(app, ctx, p(0)).await,
        (R::CfGroupSpaces, &Method::GET) => links::spaces_of(app, ctx, p(0), lifecycle(p(1))).await,
        (R::CfGroupSpace, &Method::PUT | &Method::DELETE) => {
            links::bind(app, ctx, p(0), p(2), lifecycle(p(1)), links::Side::Group).await
        }
        (R::CfDefaults, &Method::GET) => links::defaults(app, ctx, lifecycle(p(0))).await,
        (R::CfDefault, &Method::PUT | &Method::DELETE) => links::set_default(app, ctx, p(1), lifecycle(p(0))).await,
        (R::CfSpaceGroups, &Method::GET) => links::groups_of_space(app, ctx, p(0), lifecycle(p(1))).await,
        (R::CfSpaceGroup, &Method::PUT | &Method::DELETE) => {
            links::bind(app, ctx, p(2), p(0), lifecycle(p(1)), links::Side::Space).await
        }
        (R::CfJob, &Method::GET) => links::job(p(0)),
        (R::CfOrgs, &Method::GET) => directory::orgs(app, ctx),
        (R::CfOrg, &Method::GET) => directory::get_org(app, p(0)),
        (R::CfOrgSpaces, &Method::GET) => directory::spaces(app, ctx, Some(p(0))),
        (R::CfSpaces, &Method::GET) => directory::spaces(app, ctx, None),
        (R::CfSpace, &Method::GET) => directory::get_space(app, ctx, p(0)),
        _ => Err(CfError::NotFound),
    }
}

pub fn flags(app: &App) -> CfFlags {
    CfFlags {
        comma_delimited_destinations: app.cfg.cf.enable_comma_delimited_destinations,
        ipv6: app.cfg.cf.enable_ipv6,
    }
}

/// A guid from a path; an unknown shape is simply a group that does not exist.
fn group_id(guid: &str) -> Result<GroupId, CfError> {
    Uuid::parse(guid).ok_or_else(|| CfError::SecurityGroupNotFound(guid.to_string()))
}
