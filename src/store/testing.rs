//! Test doubles of the store's traits.

use super::{StoreError, TaskLog};
use crate::model::{Task, TaskId};
use async_trait::async_trait;
use std::sync::Mutex;

/// A task log that holds nothing durably: it keeps what it is asked to
/// save in the background, to be read back by the test.
#[derive(Default)]
pub(crate) struct SavedTasks(pub(crate) Mutex<Vec<Task>>);

#[async_trait]
impl TaskLog for SavedTasks {
    fn save(&self, _: &'static str, task: &Task) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(task.clone());
    }
    async fn save_now(&self, _: &'static str, _: &[Task]) -> Result<(), StoreError> {
        Ok(())
    }
    async fn load_all(&self, _: &'static str) -> Result<Vec<Task>, StoreError> {
        Ok(Vec::new())
    }
    async fn load(&self, _: &'static str, _: &TaskId) -> Result<Option<Task>, StoreError> {
        Ok(None)
    }
    fn forget(&self, _: &'static str, _: Vec<TaskId>) {}
    async fn page(&self, _: &'static str, _: Option<String>, _: usize) -> Result<Vec<Task>, StoreError> {
        Ok(Vec::new())
    }
}
