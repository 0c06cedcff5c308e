//! CC's v3 organization and space objects (key order as CC's
//! `OrganizationPresenter` and `SpacePresenter` emit it), the `included`
//! block `include=organization` appends, and the spaces list carrying it.
//! Two departures, both for a directory that is not a Cloud Controller:
//! there are no quotas (`relationships.quota.data` is `null`, as CC writes a
//! space without one), and `links` name only what the gateway serves
//! (`self`, and a space's `organization`).

use super::wire::{Guid, Link, Pagination, SelfLink};
use serde::Serialize;
use std::collections::BTreeMap;

/// A to-one relationship; `data` is `null` when there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToOne {
    pub data: Option<Guid>,
}

/// Labels and annotations (the directory has none: both `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Metadata {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgRelationships {
    pub quota: ToOne,
}

/// `GET /v3/organizations[/:guid]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    pub guid: String,
    pub created_at: String,
    pub updated_at: String,
    pub name: String,
    pub suspended: bool,
    pub relationships: OrgRelationships,
    pub metadata: Metadata,
    pub links: SelfLink,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpaceRelationships {
    pub organization: ToOne,
    pub quota: ToOne,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpaceLinks {
    #[serde(rename = "self")]
    pub this: Link,
    pub organization: Link,
}

/// What `include=organization` adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Included {
    pub organizations: Vec<Organization>,
}

/// `GET /v3/spaces/:guid`; `included` only when asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Space {
    pub guid: String,
    pub created_at: String,
    pub updated_at: String,
    pub name: String,
    pub suspended: bool,
    pub relationships: SpaceRelationships,
    pub metadata: Metadata,
    pub links: SpaceLinks,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub included: Option<Included>,
}

/// `GET /v3/spaces`: a page, then `included` when asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpacePage {
    pub pagination: Pagination,
    pub resources: Vec<Space>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub included: Option<Included>,
}
