//! How records are written in the store: groups and tasks in the Gcore
//! wire form (the one complete form of a group, rule ids and timestamps
//! included), answers' headers as JSON.

use super::{Answer, StoreError};
use crate::dialect::gcore::wire::{group_in, group_out, task_out, GroupOut, Location, TaskOut};
use crate::model::{Content, Group, Scope, Task};

pub fn group_text(scope: Scope, group: &Group) -> Result<String, StoreError> {
    let Content::Atomic(content) = &group.content else {
        return Err(StoreError("only atomic (Gcore-shaped) groups are stored".into()));
    };
    let at = Location {
        project_id: scope.project_id,
        region_id: scope.region_id,
    };
    serde_json::to_string(&group_out(&group.meta, content, at)).map_err(|e| StoreError(e.to_string()))
}

pub fn group_from(text: &str) -> Result<Group, StoreError> {
    let out: GroupOut = serde_json::from_str(text).map_err(|e| StoreError(format!("a stored group: {e}")))?;
    group_in(&out).map_err(|e| StoreError(format!("a stored group: {e}")))
}

pub fn task_text(task: &Task) -> Result<String, StoreError> {
    serde_json::to_string(&task_out(task)).map_err(|e| StoreError(e.to_string()))
}

pub fn task_from(text: &str) -> Result<Task, StoreError> {
    let out: TaskOut = serde_json::from_str(text).map_err(|e| StoreError(format!("a stored task: {e}")))?;
    let fallback = Scope {
        project_id: 0,
        region_id: 0,
    };
    out.into_task(fallback)
        .map_err(|e| StoreError(format!("a stored task: {e}")))
}

pub fn state_name(task: &Task) -> &'static str {
    match task.state {
        crate::model::TaskState::New => "NEW",
        crate::model::TaskState::Running => "RUNNING",
        crate::model::TaskState::Finished => "FINISHED",
        crate::model::TaskState::Error => "ERROR",
    }
}

pub fn headers_text(answer: &Answer) -> String {
    let pairs: Vec<(&str, String)> = answer
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v).into_owned()))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

pub fn headers_from(text: &str) -> Vec<(String, Vec<u8>)> {
    serde_json::from_str::<Vec<(String, String)>>(text)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect()
}
