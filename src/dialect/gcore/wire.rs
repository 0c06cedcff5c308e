//! Gcore response bodies: groups, rules, task lists and tasks.

use super::rule::to_spec;
use super::time::{ResourceTime, TaskTime};
use crate::model::{
    AtomicContent, Created, GroupId, GroupMeta, GroupRule, Scope, Tag, Task, TaskKind, TaskState as State, Uuid,
};
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
    /// Resource kind → ids; some kinds hold numbers, some are `null`.
    pub created_resources: Option<BTreeMap<String, Option<Vec<serde_json::Value>>>>,
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
}

pub fn rule_out(group: &GroupId, rule: &GroupRule) -> RuleOut {
    let spec = to_spec(&rule.atom);
    RuleOut {
        id: rule.id.to_string(),
        security_group_id: group.to_string(),
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

pub fn group_out(meta: &GroupMeta, content: &AtomicContent, at: Location) -> GroupOut {
    GroupOut {
        id: meta.id.to_string(),
        name: meta.name.clone(),
        description: meta.description.clone(),
        project_id: at.project_id,
        region_id: at.region_id,
        region: meta.region.clone(),
        created_at: ResourceTime(meta.created_at),
        updated_at: ResourceTime(meta.updated_at),
        revision_number: meta.revision,
        security_group_rules: content.rules.iter().map(|r| rule_out(&meta.id, r)).collect(),
        tags_v2: content.tags.iter().map(tag_out).collect(),
        metadata: Vec::new(),
        tags: Vec::new(),
    }
}

/// Gcore's `task_type` for a task kind.
pub fn task_type(kind: &TaskKind) -> &str {
    match kind {
        TaskKind::CreateGroup => "create_security_group",
        TaskKind::UpdateGroup => "update_security_group",
        TaskKind::CreateRule => "create_security_group_rule",
        TaskKind::DeleteRule => "delete_security_group_rule",
        TaskKind::Other(name) => name,
    }
}

pub fn task_kind(task_type: &str) -> TaskKind {
    match task_type {
        "create_security_group" => TaskKind::CreateGroup,
        "update_security_group" => TaskKind::UpdateGroup,
        "create_security_group_rule" => TaskKind::CreateRule,
        "delete_security_group_rule" => TaskKind::DeleteRule,
        other => TaskKind::Other(other.to_string()),
    }
}

/// Every kind of `created_resources` Gcore lists (each `[]` unless set).
const RESOURCE_KINDS: [&str; 36] = [
    "ai_clusters",
    "api_keys",
    "caas_containers",
    "clusters",
    "ddos_profiles",
    "faas_functions",
    "faas_namespaces",
    "file_shares",
    "floatingips",
    "healthmonitors",
    "images",
    "inference_instances",
    "instances",
    "k8s_clusters",
    "k8s_pools",
    "l7polices",
    "l7rules",
    "laas_topic",
    "listeners",
    "loadbalancers",
    "members",
    "networks",
    "pools",
    "ports",
    "postgresql_clusters",
    "projects",
    "registry_registries",
    "registry_users",
    "routers",
    "secrets",
    "security_group_rules",
    "security_groups",
    "servergroups",
    "snapshots",
    "subnets",
    "volumes",
];

fn state_out(s: State) -> TaskState {
    match s {
        State::New => TaskState::New,
        State::Running => TaskState::Running,
        State::Finished => TaskState::Finished,
        State::Error => TaskState::Error,
    }
}

/// A Gcore group body in model terms.
pub fn group_in(g: &GroupOut) -> Result<crate::model::Group, String> {
    use crate::model::{AtomicContent, Content, GroupMeta, GroupRule, Tag};
    let id = Uuid::parse(&g.id).ok_or("invalid id")?;
    let rules = g
        .security_group_rules
        .iter()
        .map(|r| {
            Ok(GroupRule {
                id: Uuid::parse(&r.id).ok_or_else(|| format!("invalid rule id {:?}", r.id))?,
                atom: super::rule::atom_from_out(r).map_err(|e| format!("rule {}: {e}", r.id))?,
                revision: r.revision_number,
                created_at: r.created_at.0,
                updated_at: r.updated_at.0,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let tags = g
        .tags_v2
        .iter()
        .map(|t| Tag {
            key: t.key.clone(),
            value: t.value.clone(),
            read_only: t.read_only,
        })
        .collect();
    Ok(crate::model::Group {
        meta: GroupMeta {
            id,
            name: g.name.clone(),
            description: g.description.clone(),
            region: g.region.clone(),
            revision: g.revision_number,
            created_at: g.created_at.0,
            updated_at: g.updated_at.0,
        },
        content: Content::Atomic(std::sync::Arc::new(AtomicContent { rules, tags })),
    })
}

pub fn task_out(t: &Task) -> TaskOut {
    let created_resources = t.created.as_ref().map(|c| {
        let ids = |list: &[Uuid]| list.iter().map(|i| serde_json::Value::from(i.as_str())).collect();
        RESOURCE_KINDS
            .iter()
            .map(|k| {
                let v: Vec<serde_json::Value> = match *k {
                    "security_groups" => ids(&c.groups),
                    "security_group_rules" => ids(&c.rules),
                    _ => Vec::new(),
                };
                (k.to_string(), Some(v))
            })
            .collect()
    });
    TaskOut {
        id: t.id.to_string(),
        task_type: task_type(&t.kind).to_string(),
        state: state_out(t.state),
        error: t.error.clone(),
        created_resources,
        data: None,
        detailed_state: None,
        created_on: Some(TaskTime(t.created_on)),
        updated_on: Some(TaskTime(t.updated_on)),
        finished_on: t.finished_on.map(TaskTime),
        project_id: Some(t.scope.project_id),
        region_id: Some(t.scope.region_id),
        request_id: t.request_id.clone(),
        user_id: Some(0),
        client_id: Some(0),
        acknowledged_at: t.acknowledged_at.map(TaskTime),
        acknowledged_by: t.acknowledged_by,
    }
}

impl TaskOut {
    /// The task in model terms; `fallback` is the scope asked about, for
    /// tasks that do not name theirs.
    pub fn into_task(self, fallback: Scope) -> Result<Task, String> {
        let id = Uuid::parse(&self.id).ok_or_else(|| format!("invalid task id {:?}", self.id))?;
        let uuids = |key: &str| -> Vec<Uuid> {
            self.created_resources
                .as_ref()
                .and_then(|m| m.get(key))
                .and_then(|v| v.as_ref())
                .map(|list| list.iter().filter_map(|v| v.as_str().and_then(Uuid::parse)).collect())
                .unwrap_or_default()
        };
        let created = self.created_resources.as_ref().map(|_| Created {
            groups: uuids("security_groups"),
            rules: uuids("security_group_rules"),
        });
        let state = match self.state {
            TaskState::New => State::New,
            TaskState::Running => State::Running,
            TaskState::Finished => State::Finished,
            TaskState::Error => State::Error,
        };
        let epoch = chrono::DateTime::UNIX_EPOCH;
        let created_on = self.created_on.map_or(epoch, |t| t.0);
        Ok(Task {
            id,
            kind: task_kind(&self.task_type),
            scope: Scope {
                project_id: self.project_id.unwrap_or(fallback.project_id),
                region_id: self.region_id.unwrap_or(fallback.region_id),
            },
            state,
            error: self.error,
            created,
            created_on,
            updated_on: self.updated_on.map_or(created_on, |t| t.0),
            finished_on: self.finished_on.map(|t| t.0),
            acknowledged_at: self.acknowledged_at.map(|t| t.0),
            acknowledged_by: self.acknowledged_by,
            request_id: self.request_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_round_trip_through_the_wire() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t = Task {
            id: Uuid::from_random(1),
            kind: TaskKind::CreateGroup,
            scope: Scope {
                project_id: 1,
                region_id: 76,
            },
            state: State::Finished,
            error: None,
            created: Some(Created {
                groups: vec![Uuid::from_random(2)],
                rules: vec![],
            }),
            created_on: at,
            updated_on: at,
            finished_on: Some(at),
            acknowledged_at: None,
            acknowledged_by: None,
            request_id: Some("r".into()),
        };
        let wire = serde_json::to_string(&task_out(&t)).unwrap();
        let back: TaskOut = serde_json::from_str(&wire).unwrap();
        assert_eq!(back.into_task(t.scope).unwrap(), t);
        let v: serde_json::Value = serde_json::from_str(&wire).unwrap();
        assert_eq!(v["created_resources"]["instances"], serde_json::json!([]));
        let real = r#"{"id":"286eb01c-0000-4000-8000-000000000000","task_type":"x","state":"RUNNING","error":null,"created_resources":{"projects":[1],"security_groups":null},"created_on":"2026-02-24T10:39:59","updated_on":null,"finished_on":null}"#;
        let t: TaskOut = serde_json::from_str(real).unwrap();
        assert!(t
            .into_task(Scope {
                project_id: 1,
                region_id: 1
            })
            .is_ok());
    }
}
