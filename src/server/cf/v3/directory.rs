//! `/v3/organizations[/:guid]` and `/v3/spaces[/:guid]`, answered from the
//! directory in the config (`cf.orgs`, `cf.spaces`). sgbridge is not a Cloud
//! Controller: these are the look-ups the cf CLI v7/v8 makes around security
//! groups (`bind-`/`unbind-security-group` resolve org and space names;
//! `security-group(s)` names the bound spaces and their orgs with
//! `GET /v3/spaces?guids=…&include=organization`).
//!
//! Who sees what: the v3 gate applies as on every v3 route, so a caller who
//! may read globally (admin, admin read-only, global auditor) sees every
//! configured org and space, and anyone else gets `CF-NotAuthorized`. A real
//! CC lists any reader the orgs and spaces it holds roles in; sgbridge knows
//! no roles, and an empty or a full list for such a reader would be a guess.
//!
//! Every entry was created (and last updated) when the gateway started. With
//! equal timestamps CC orders by guid, and so does this; without `order_by`
//! a list keeps the config's order (CC's id order). With an empty directory
//! any space guid may be bound, but no org or space is listed.

use crate::config::{OrgEntry, SpaceEntry};
use crate::dialect::cf::render::timestamp;
use crate::dialect::cf::v3::directory::{
    Included, Metadata, OrgRelationships, Organization, Space, SpaceLinks, SpacePage, SpaceRelationships, ToOne,
};
use crate::dialect::cf::v3::query::{self, ListQuery, OrderField};
use crate::dialect::cf::v3::wire::{Guid, Link, Page, SelfLink};
use crate::dialect::cf::v3::V3Error;
use crate::model::Uuid;
use crate::server::http::{json, Ctx, Resp};
use crate::server::App;
use http::StatusCode;

/// A directory entry, as lists filter and order it.
trait Entry {
    fn guid(&self) -> &str;
    fn name(&self) -> &str;
}

impl Entry for OrgEntry {
    fn guid(&self) -> &str {
        &self.guid
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Entry for SpaceEntry {
    fn guid(&self) -> &str {
        &self.guid
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// A guid as the gateway writes it everywhere (lower case, as the security
/// groups' relationships show it), so the CLI's look-up tables match.
fn canonical(guid: &str) -> String {
    Uuid::parse(guid).map_or_else(|| guid.to_string(), |u| u.as_str().to_string())
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn find<'a, T: Entry>(entries: &'a [T], guid: &str) -> Option<&'a T> {
    entries.iter().find(|e| same(e.guid(), guid))
}

fn link(app: &App, path: &str) -> Link {
    Link {
        href: format!("{}{path}", app.external_url()),
    }
}

fn org_object(app: &App, o: &OrgEntry) -> Organization {
    let guid = canonical(&o.guid);
    let at = timestamp(&app.started);
    Organization {
        links: SelfLink {
            this: link(app, &format!("/v3/organizations/{guid}")),
        },
        guid,
        created_at: at.clone(),
        updated_at: at,
        name: o.name.clone(),
        suspended: false,
        relationships: OrgRelationships {
            quota: ToOne { data: None },
        },
        metadata: Metadata::default(),
    }
}

fn space_object(app: &App, s: &SpaceEntry) -> Space {
    let guid = canonical(&s.guid);
    let org = canonical(&s.org_guid);
    let at = timestamp(&app.started);
    Space {
        links: SpaceLinks {
            this: link(app, &format!("/v3/spaces/{guid}")),
            organization: link(app, &format!("/v3/organizations/{org}")),
        },
        guid,
        created_at: at.clone(),
        updated_at: at,
        name: s.name.clone(),
        suspended: false,
        relationships: SpaceRelationships {
            organization: ToOne {
                data: Some(Guid { guid: org }),
            },
            quota: ToOne { data: None },
        },
        metadata: Metadata::default(),
        included: None,
    }
}

/// The orgs of `spaces`, each once, in CC's order (created_at, then guid).
fn included(app: &App, spaces: &[&SpaceEntry]) -> Included {
    let mut orgs: Vec<&OrgEntry> = app
        .cfg
        .cf
        .orgs
        .iter()
        .filter(|o| spaces.iter().any(|s| same(&s.org_guid, &o.guid)))
        .collect();
    orgs.sort_by_key(|o| canonical(&o.guid));
    Included {
        organizations: orgs.into_iter().map(|o| org_object(app, o)).collect(),
    }
}

/// The entries a list query selects (with `also`), in its order.
fn select<'a, T: Entry>(app: &App, entries: &'a [T], q: &ListQuery, also: impl Fn(&T) -> bool) -> Vec<&'a T> {
    let any = |list: &Option<Vec<String>>, value: &str, eq: fn(&str, &str) -> bool| {
        list.as_ref().is_none_or(|l| l.iter().any(|x| eq(x, value)))
    };
    let mut out: Vec<&T> = entries
        .iter()
        .filter(|e| {
            any(&q.guids, e.guid(), same)
                && any(&q.names, e.name(), |a, b| a == b)
                && q.created_ats.as_ref().is_none_or(|f| f.matches(app.started))
                && q.updated_ats.as_ref().is_none_or(|f| f.matches(app.started))
                && also(e)
        })
        .collect();
    if let Some((field, desc)) = q.order {
        let by_guid = |a: &&T, b: &&T| canonical(a.guid()).cmp(&canonical(b.guid()));
        out.sort_by(|a, b| match field {
            OrderField::Name => a.name().cmp(b.name()).then_with(|| by_guid(a, b)),
            // Every entry has the same timestamps.
            OrderField::CreatedAt | OrderField::UpdatedAt => by_guid(a, b),
        });
        if desc {
            out.reverse();
        }
    }
    out
}

/// `GET /v3/organizations`.
pub fn orgs(app: &App, ctx: &Ctx) -> Result<Resp, V3Error> {
    let q = query::parse(&ctx.query, &query::ORGS)?;
    let found = select(app, &app.cfg.cf.orgs, &q, |_| true);
    let shown = &found[q.window(found.len())];
    let page = Page {
        pagination: q.pagination(&link(app, "/v3/organizations").href, found.len()),
        resources: shown.iter().map(|o| org_object(app, o)).collect(),
    };
    Ok(json(StatusCode::OK, &page))
}

/// `GET /v3/organizations/:guid`.
pub fn org(app: &App, guid: &str) -> Result<Resp, V3Error> {
    let o = find(&app.cfg.cf.orgs, guid).ok_or(V3Error::ResourceNotFound("Organization"))?;
    Ok(json(StatusCode::OK, &org_object(app, o)))
}

/// `GET /v3/spaces`, with `include=organization` the orgs of the page's spaces.
pub fn spaces(app: &App, ctx: &Ctx) -> Result<Resp, V3Error> {
    let q = query::parse(&ctx.query, &query::SPACES)?;
    let found = select(app, &app.cfg.cf.spaces, &q, |s| {
        q.organization_guids
            .as_ref()
            .is_none_or(|l| l.iter().any(|g| same(g, &s.org_guid)))
    });
    let shown = &found[q.window(found.len())];
    let page = SpacePage {
        pagination: q.pagination(&link(app, "/v3/spaces").href, found.len()),
        resources: shown.iter().map(|s| space_object(app, s)).collect(),
        included: q.include_organization.then(|| included(app, shown)),
    };
    Ok(json(StatusCode::OK, &page))
}

/// `GET /v3/spaces/:guid[?include=organization]`: an unknown space is a 404
/// before the query is looked at, as in CC.
pub fn space(app: &App, ctx: &Ctx, guid: &str) -> Result<Resp, V3Error> {
    let s = find(&app.cfg.cf.spaces, guid).ok_or(V3Error::ResourceNotFound("Space"))?;
    let with_org = query::parse_include(&ctx.query, &query::SPACE_INCLUDES)?;
    let object = Space {
        included: with_org.then(|| included(app, &[s])),
        ..space_object(app, s)
    };
    Ok(json(StatusCode::OK, &object))
}
