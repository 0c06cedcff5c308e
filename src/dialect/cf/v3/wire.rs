//! CF v3 objects as CC renders them (key order as its presenters emit),
//! shared by the v3 front end (which renders them) and the Cloud Controller
//! backend (which reads them).

use super::error::V3ErrorItem;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub href: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guid {
    pub guid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GloballyEnabled {
    pub running: bool,
    pub staging: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ToManyData {
    pub data: Vec<Guid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Relationships {
    pub running_spaces: ToManyData,
    pub staging_spaces: ToManyData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfLink {
    #[serde(rename = "self")]
    pub this: Link,
}

/// A security group; `R` is the rules: rendered CF rules when serving, raw
/// JSON when reading a Cloud Controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroup<R> {
    pub guid: String,
    pub created_at: String,
    pub updated_at: String,
    pub name: String,
    pub rules: R,
    pub globally_enabled: GloballyEnabled,
    pub relationships: Relationships,
    pub links: SelfLink,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pagination {
    pub total_results: usize,
    pub total_pages: usize,
    pub first: Link,
    pub last: Link,
    pub next: Option<Link>,
    pub previous: Option<Link>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub pagination: Pagination,
    pub resources: Vec<T>,
}

/// A to-many relationship as `POST …/relationships/…` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToMany {
    pub data: Vec<Guid>,
    pub links: SelfLink,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLinks {
    #[serde(rename = "self")]
    pub this: Link,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group: Option<Link>,
}

/// `GET /v3/jobs/:guid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub guid: String,
    pub created_at: String,
    pub updated_at: String,
    pub operation: String,
    pub state: String,
    #[serde(default)]
    pub errors: Vec<V3ErrorItem>,
    #[serde(default)]
    pub warnings: Vec<Warning>,
    pub links: JobLinks,
}

pub fn guids<'a>(list: impl IntoIterator<Item = &'a str>) -> Vec<Guid> {
    list.into_iter().map(|g| Guid { guid: g.to_string() }).collect()
}
