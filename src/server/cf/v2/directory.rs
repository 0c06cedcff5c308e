//! Orgs and spaces: the look-ups the cf CLI makes around security groups
//! (`bind-security-group`, `security-groups`, `security-group`), answered from
//! the directory in the config. sgbridge is not a Cloud Controller; a guid it
//! does not know gets CC's own not-found error.

use super::query;
use crate::config::{OrgEntry, SpaceEntry};
use crate::dialect::cf::render::{timestamp, Metadata, Resource};
use crate::dialect::cf::CfError;
use crate::model::Uuid;
use crate::server::http::{cf_json, Ctx, Resp};
use crate::server::App;
use http::StatusCode;
use serde_json::{json, Value};

fn metadata(app: &App, kind: &str, guid: &str) -> Metadata {
    let at = timestamp(&app.started);
    Metadata {
        guid: guid.to_string(),
        url: format!("/v2/{kind}/{guid}"),
        created_at: at.clone(),
        updated_at: at,
    }
}

fn org<'a>(app: &'a App, guid: &str) -> Option<&'a OrgEntry> {
    app.cfg.cf.orgs.iter().find(|o| o.guid.eq_ignore_ascii_case(guid))
}

fn space<'a>(app: &'a App, guid: &str) -> Option<&'a SpaceEntry> {
    app.cfg.cf.spaces.iter().find(|s| s.guid.eq_ignore_ascii_case(guid))
}

/// Whether `guid` may be bound: any UUID while the directory is empty, else a listed space.
pub fn bindable(app: &App, guid: &str) -> Option<Uuid> {
    let id = Uuid::parse(guid)?;
    (app.cfg.cf.spaces.is_empty() || space(app, guid).is_some()).then_some(id)
}

fn org_resource(app: &App, o: &OrgEntry) -> Resource<Value> {
    let m = metadata(app, "organizations", &o.guid);
    let base = m.url.clone();
    Resource {
        metadata: m,
        entity: json!({
            "name": o.name,
            "billing_enabled": false,
            "quota_definition_guid": null,
            "status": "active",
            "default_isolation_segment_guid": null,
            "spaces_url": format!("{base}/spaces"),
            "quota_definition_url": null,
        }),
    }
}

/// A space as CC renders it; `inline` adds `entity.organization` (what
/// `?inline-relations-depth=1` asks for and `cf security-group` reads).
pub fn space_resource(app: &App, guid: &str, inline: bool) -> Resource<Value> {
    let m = metadata(app, "spaces", guid);
    let base = m.url.clone();
    let known = space(app, guid);
    let org_guid = known.map(|s| s.org_guid.clone());
    let mut entity = json!({
        "name": known.map_or(guid, |s| s.name.as_str()),
        "organization_guid": org_guid,
        "space_quota_definition_guid": null,
        "isolation_segment_guid": null,
        "allow_ssh": true,
        "organization_url": org_guid.as_ref().map(|o| format!("/v2/organizations/{o}")),
        "developers_url": format!("{base}/developers"),
        "managers_url": format!("{base}/managers"),
        "auditors_url": format!("{base}/auditors"),
        "apps_url": format!("{base}/apps"),
        "routes_url": format!("{base}/routes"),
        "domains_url": format!("{base}/domains"),
        "service_instances_url": format!("{base}/service_instances"),
        "app_events_url": format!("{base}/app_events"),
        "events_url": format!("{base}/events"),
        "security_groups_url": format!("{base}/security_groups"),
        "staging_security_groups_url": format!("{base}/staging_security_groups"),
    });
    if inline {
        if let Some(o) = org_guid.as_deref().and_then(|g| org(app, g)) {
            entity["organization"] = serde_json::to_value(org_resource(app, o)).unwrap_or(Value::Null);
        }
    }
    Resource { metadata: m, entity }
}

/// Whether `?inline-relations-depth` asks for related resources inline.
pub fn inline(ctx: &Ctx) -> bool {
    ctx.param("inline-relations-depth")
        .and_then(|d| d.parse::<u32>().ok())
        .is_some_and(|d| d >= 1)
}

pub fn orgs(app: &App, ctx: &Ctx) -> Result<Resp, CfError> {
    let filters = query::filters(ctx, &["name"])?;
    let paging = query::paging(ctx, &["name"])?;
    let mut found: Vec<&OrgEntry> = app
        .cfg
        .cf
        .orgs
        .iter()
        .filter(|o| filters.iter().all(|(_, f)| f.matches(&o.name)))
        .collect();
    if paging.order_by().is_some() {
        found.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let items = found.into_iter().map(|o| org_resource(app, o)).collect();
    Ok(cf_json(
        StatusCode::OK,
        &query::page(ctx, "/v2/organizations", &paging, items),
    ))
}

pub fn get_org(app: &App, guid: &str) -> Result<Resp, CfError> {
    let o = org(app, guid).ok_or_else(|| CfError::OrganizationNotFound(guid.to_string()))?;
    Ok(cf_json(StatusCode::OK, &org_resource(app, o)))
}

/// `/v2/spaces` or, with `org`, `/v2/organizations/:guid/spaces`.
pub fn spaces(app: &App, ctx: &Ctx, org_guid: Option<&str>) -> Result<Resp, CfError> {
    if let Some(g) = org_guid {
        org(app, g).ok_or_else(|| CfError::OrganizationNotFound(g.to_string()))?;
    }
    let filters = query::filters(ctx, &["name", "organization_guid"])?;
    let paging = query::paging(ctx, &["name"])?;
    let mut found: Vec<&SpaceEntry> = app
        .cfg
        .cf
        .spaces
        .iter()
        .filter(|s| org_guid.is_none_or(|g| s.org_guid.eq_ignore_ascii_case(g)))
        .filter(|s| {
            filters.iter().all(|(k, f)| match k.as_str() {
                "name" => f.matches(&s.name),
                _ => f.matches(&s.org_guid),
            })
        })
        .collect();
    if paging.order_by().is_some() {
        found.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let items = found
        .into_iter()
        .map(|s| space_resource(app, &s.guid, inline(ctx)))
        .collect();
    let base = match org_guid {
        Some(g) => format!("/v2/organizations/{g}/spaces"),
        None => "/v2/spaces".to_string(),
    };
    Ok(cf_json(StatusCode::OK, &query::page(ctx, &base, &paging, items)))
}

pub fn get_space(app: &App, ctx: &Ctx, guid: &str) -> Result<Resp, CfError> {
    space(app, guid).ok_or_else(|| CfError::SpaceNotFound(guid.to_string()))?;
    Ok(cf_json(StatusCode::OK, &space_resource(app, guid, inline(ctx))))
}
