//! The Cloud Foundry v3 front end: `/v3/security_groups` and its family
//! (relationships, space views, jobs) with CC's v3 bodies, codes and
//! errors, over the same service layer as v2 — a group written through one
//! reads the same through the other; and the organizations and spaces of
//! the configured directory, which the cf CLI v7/v8 looks up around them.

mod audit_events;
mod directory;
mod groups;
mod links;
pub mod rescue;

use crate::dialect::cf::render::{self, timestamp, CfRule};
use crate::dialect::cf::v3::wire::{guids, GloballyEnabled, Link, Relationships, SecurityGroup, SelfLink, ToManyData};
use crate::dialect::cf::v3::V3Error;
use crate::mapping::CfGroup;
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
            rescue::response(&e)
        }
    }
}

/// v3's token gate and role ([`crate::server::authorize::cf_v3`]); a
/// refusal is always `CF-NotAuthorized`.
fn gate(ctx: &Ctx) -> Result<(), V3Error> {
    crate::server::authorize::cf_v3(&ctx.principal.cf, &ctx.method)
        .then_some(())
        .ok_or(V3Error::NotAuthorized)
}

fn lifecycle(rel: &str) -> Lifecycle {
    if rel.starts_with("staging") {
        Lifecycle::Staging
    } else {
        Lifecycle::Running
    }
}

async fn route(app: &App, ctx: &Ctx) -> Result<Resp, V3Error> {
    use RouteId as R;
    let m = &ctx.method;
    let p = |i| ctx.route.param(i);
    match (ctx.route.id, m) {
        (R::V3Root, &Method::GET) => return Ok(links::root(app)),
        // Their own gate: any reader may ask, and sees what it may.
        (R::V3AuditEvents, &Method::GET) => return audit_events::list(app, ctx).await,
        (R::V3AuditEvent, &Method::GET) => return audit_events::get(app, ctx, p(0)).await,
        _ => {}
    }
    gate(ctx)?;
    match (ctx.route.id, m) {
        (R::V3Groups, &Method::GET) => groups::list(app, ctx).await,
        (R::V3Groups, &Method::POST) => groups::create(app, ctx).await,
        (R::V3Group, &Method::GET) => groups::get(app, ctx, p(0)).await,
        (R::V3Group, &Method::PATCH) => groups::update(app, ctx, p(0)).await,
        (R::V3Group, &Method::DELETE) => groups::delete(app, ctx, p(0)).await,
        (R::V3GroupSpaces, &Method::POST) => links::bind(app, ctx, p(0), lifecycle(p(1))).await,
        (R::V3GroupSpace, &Method::DELETE) => links::unbind(app, ctx, p(0), p(2), lifecycle(p(1))).await,
        (R::V3SpaceGroups, &Method::GET) => groups::of_space(app, ctx, p(0), lifecycle(p(1))).await,
        (R::V3Job, &Method::GET) => links::job(app, p(0)),
        (R::V3Orgs, &Method::GET) => directory::orgs(app, ctx),
        (R::V3Org, &Method::GET) => directory::org(app, p(0)),
        (R::V3Spaces, &Method::GET) => directory::spaces(app, ctx),
        (R::V3Space, &Method::GET) => directory::space(app, ctx, p(0)),
        _ => Err(V3Error::NotFound),
    }
}

/// A guid from a path; an unknown shape is simply a group that does not exist.
fn group_id(guid: &str) -> Result<GroupId, V3Error> {
    Uuid::parse(guid).ok_or(V3Error::ResourceNotFound("Security group"))
}

/// The CF rules of a view, rendered (what cannot be is left out).
fn rules(app: &App, view: &CfGroup) -> Vec<CfRule> {
    let flags = super::v2::flags(app);
    view.rules
        .iter()
        .filter_map(|r| render::rules(std::slice::from_ref(r), flags).ok())
        .flatten()
        .collect()
}

/// A group as a v3 object; `only` limits the listed spaces to one (the
/// space views show just that space).
fn object(app: &App, view: &CfGroup, only: Option<&Uuid>) -> SecurityGroup<Vec<CfRule>> {
    let shown = |set: &std::collections::BTreeSet<Uuid>| -> ToManyData {
        ToManyData {
            data: guids(set.iter().filter(|s| only.is_none_or(|o| o == *s)).map(Uuid::as_str)),
        }
    };
    SecurityGroup {
        guid: view.meta.id.to_string(),
        created_at: timestamp(&view.meta.created_at),
        updated_at: timestamp(&view.meta.updated_at),
        name: view.meta.name.clone(),
        rules: rules(app, view),
        globally_enabled: GloballyEnabled {
            running: view.attrs.running_default,
            staging: view.attrs.staging_default,
        },
        relationships: Relationships {
            running_spaces: shown(&view.attrs.spaces),
            staging_spaces: shown(&view.attrs.staging_spaces),
        },
        links: SelfLink {
            this: Link {
                href: format!("{}/v3/security_groups/{}", app.external_url(), view.meta.id),
            },
        },
    }
}
