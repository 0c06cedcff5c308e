//! Gcore response bodies: groups, rules, task lists and tasks.

use super::rule::to_spec;
use super::time::{ResourceTime, TaskTime};
use crate::model::{GroupRule, SecurityGroup, Tag};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A rule inside a group (`security_group_rules[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleOut {
    pub id: String,
    pub security_group_id: String,
    pub direction: String,
    pub ethertype: Option<String>,
    pub protocol: Option<String>,
    pub port_range_min: Option<u16>,
    pub port_range_max: Option<u16>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    pub description: Option<String>,
    pub created_at: ResourceTime,
    pub updated_at: ResourceTime,
    pub revision_number: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagOut {
    pub key: String,
    pub value: String,
    pub read_only: bool,
}

/// `GET /cloud/v1/securitygroups/{p}/{r}/{id}` and list items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupOut {
    pub id: String,
    pub name: String,
    pub description: String,
    pub project_id: u64,
    pub region_id: u64,
    pub region: String,
    pub created_at: ResourceTime,
    pub updated_at: ResourceTime,
    pub revision_number: u64,
    pub security_group_rules: Vec<RuleOut>,
    pub tags_v2: Vec<TagOut>,
    #[serde(default)]
    pub metadata: Vec<TagOut>,
    #[serde(default)]
    pub tags: Vec<TagOut>,
}

/// Offset-paginated list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOut<T> {
    pub count: usize,
    pub results: Vec<T>,
}

/// What every v2 write answers: the tasks to poll (`[]` when nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskIds {
    pub tasks: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TaskState {
    New,
    Running,
    Finished,
    Error,
}

/// `GET /cloud/v1/tasks/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskOut {
    pub id: String,
    pub task_type: String,
    pub state: TaskState,
    pub error: Option<String>,
    pub created_resources: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    #[serde(default)]
    pub detailed_state: Option<String>,
    pub created_on: Option<TaskTime>,
    pub updated_on: Option<TaskTime>,
    pub finished_on: Option<TaskTime>,
    #[serde(default)]
    pub project_id: Option<u64>,
    #[serde(default)]
    pub region_id: Option<u64>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<u64>,
    #[serde(default)]
    pub client_id: Option<u64>,
    #[serde(default)]
    pub acknowledged_at: Option<TaskTime>,
    #[serde(default)]
    pub acknowledged_by: Option<u64>,
}

/// Where a group lives, for rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub project_id: u64,
    pub region_id: u64,
    pub region: String,
}

pub fn rule_out(group: &SecurityGroup, rule: &GroupRule) -> RuleOut {
    let spec = to_spec(&rule.atom);
    RuleOut {
        id: rule.id.to_string(),
        security_group_id: group.id.to_string(),
        direction: spec.direction,
        ethertype: Some(spec.ethertype),
        protocol: spec.protocol,
        port_range_min: spec.port_range_min,
        port_range_max: spec.port_range_max,
        remote_ip_prefix: spec.remote_ip_prefix,
        remote_group_id: spec.remote_group_id,
        description: spec.description,
        created_at: ResourceTime(rule.created_at),
        updated_at: ResourceTime(rule.updated_at),
        revision_number: rule.revision,
    }
}

fn tag_out(tag: &Tag) -> TagOut {
    TagOut {
        key: tag.key.clone(),
        value: tag.value.clone(),
        read_only: tag.read_only,
    }
}

pub fn group_out(group: &SecurityGroup, at: &Location) -> GroupOut {
    GroupOut {
        id: group.id.to_string(),
        name: group.name.clone(),
        description: group.description.clone(),
        project_id: at.project_id,
        region_id: at.region_id,
        region: at.region.clone(),
        created_at: ResourceTime(group.created_at),
        updated_at: ResourceTime(group.updated_at),
        revision_number: group.revision,
        security_group_rules: group.rules.iter().map(|r| rule_out(group, r)).collect(),
        tags_v2: group.tags.iter().map(tag_out).collect(),
        metadata: Vec::new(),
        tags: Vec::new(),
    }
}
