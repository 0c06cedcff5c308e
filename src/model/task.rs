//! Asynchronous tasks: what a backend (or the gateway for a synchronous
//! backend) reports about a change that completes later.

use super::ids::{GroupId, Uuid};
use super::scope::Scope;
use chrono::{DateTime, Utc};

pub type TaskId = Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskState {
    New,
    Running,
    Finished,
    Error,
}

impl TaskState {
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskState::Finished | TaskState::Error)
    }
}

/// What a task does. Backends may report tasks of other kinds (a real Gcore
/// project runs many); those keep their name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaskKind {
    CreateGroup,
    UpdateGroup,
    CreateRule,
    DeleteRule,
    Other(String),
}

/// Resources a finished task created (or, for updates, touched).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Created {
    pub groups: Vec<GroupId>,
    pub rules: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: TaskId,
    pub kind: TaskKind,
    pub scope: Scope,
    pub state: TaskState,
    pub error: Option<String>,
    /// `None` until the task finishes (and for tasks that create nothing).
    pub created: Option<Created>,
    pub created_on: DateTime<Utc>,
    pub updated_on: DateTime<Utc>,
    pub finished_on: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<u64>,
    /// The request that started the task.
    pub request_id: Option<String>,
}

impl Task {
    pub fn is_acknowledged(&self) -> bool {
        self.acknowledged_at.is_some()
    }
}

/// Which tasks to list (Gcore's `GET /cloud/v1/tasks` filters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskQuery {
    /// Empty: any.
    pub project_ids: Vec<u64>,
    pub region_ids: Vec<u64>,
    pub states: Vec<TaskState>,
    pub kind: Option<TaskKind>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub acknowledged: Option<bool>,
    /// Newest first.
    pub descending: bool,
    pub limit: usize,
    pub offset: usize,
}

impl Default for TaskQuery {
    fn default() -> Self {
        TaskQuery {
            project_ids: Vec::new(),
            region_ids: Vec::new(),
            states: Vec::new(),
            kind: None,
            from: None,
            to: None,
            acknowledged: None,
            descending: false,
            limit: 10,
            offset: 0,
        }
    }
}

impl TaskQuery {
    pub fn matches(&self, t: &Task) -> bool {
        (self.project_ids.is_empty() || self.project_ids.contains(&t.scope.project_id))
            && (self.region_ids.is_empty() || self.region_ids.contains(&t.scope.region_id))
            && (self.states.is_empty() || self.states.contains(&t.state))
            && self.kind.as_ref().is_none_or(|k| *k == t.kind)
            && self.from.is_none_or(|f| t.created_on >= f)
            && self.to.is_none_or(|to| t.created_on <= to)
            && self.acknowledged.is_none_or(|a| a == t.is_acknowledged())
    }
}
