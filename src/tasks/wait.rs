//! How a wait on tasks ended when not every task finished: the tracker
//! (`service::tracker`) answers it, the gateway's error (`error`) words it.

use crate::model::TaskId;

/// Why a wait ended before every task finished.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    #[error("task {id} failed: {error}")]
    Failed { id: TaskId, error: String },
    #[error("tasks still running at the deadline: {}", ids(.pending))]
    Deadline {
        pending: Vec<TaskId>,
        /// The last failed poll, if polling failed.
        last_error: Option<String>,
    },
}

fn ids(list: &[TaskId]) -> String {
    list.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(", ")
}
