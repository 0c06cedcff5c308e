//! A scripted backend in process: the embedded backend (Gcore semantics,
//! real tasks on tokio's clock) with faults injected on demand, implemented
//! from outside the crate against the public `Backend` contract.
//!
//! With `poll` set it hides the embedded task events, so waiters poll it as
//! they would poll Gcore, and its task reads can fail or hang.

use async_trait::async_trait;
use sgbridge::backend::embedded::Embedded;
use sgbridge::backend::{Backend, BackendError, Cx, ErrorKind, Result, Write};
use sgbridge::config::EmbeddedConfig;
use sgbridge::model::{
    Atom, Created, Group, GroupId, GroupPatch, NewGroup, PatchContent, Scope, Shape, Task, TaskId, TaskKind, TaskQuery,
    Uuid,
};
use sgbridge::tasks::TaskRegistry;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one task read does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollFault {
    /// Answer 503.
    Unavailable,
    /// Never answer.
    Hang,
}

#[derive(Default)]
pub struct Script {
    /// Waiters poll (no task events).
    pub poll: bool,
    /// Faults for the next task reads, in order.
    pub poll_faults: VecDeque<PollFault>,
    /// The next create is applied, then its answer is lost.
    pub lose_create_answer: bool,
    /// The next task-list reads fail (the backend cannot tell what is pending).
    pub task_list_failures: u32,
    /// The next update fails its task (ERROR) after applying its tag change
    /// anyway, as a backend that stores tags outside the task might.
    pub fail_update_keeping_tags: bool,
}

#[derive(Clone)]
pub struct Scripted {
    inner: Embedded,
    pub script: Arc<Mutex<Script>>,
    /// Task reads (polls) served.
    pub polls: Arc<AtomicU64>,
    /// Creates sent to the backend.
    pub creates: Arc<AtomicU64>,
    /// Tasks this wrapper made up (failed updates).
    own: Arc<TaskRegistry>,
}

impl Scripted {
    pub fn new(task_delay: Duration) -> Self {
        let cfg = EmbeddedConfig {
            task_delay_ms: task_delay.as_millis() as u64,
            ..EmbeddedConfig::default()
        };
        Self::with_config(&cfg)
    }

    pub fn with_config(cfg: &EmbeddedConfig) -> Self {
        Scripted {
            inner: Embedded::new(cfg, true, 250),
            script: Arc::default(),
            polls: Arc::default(),
            creates: Arc::default(),
            own: Arc::new(TaskRegistry::new(Duration::from_secs(3600))),
        }
    }

    pub fn script(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.script.lock().unwrap());
    }

    fn next_fault(&self) -> Option<PollFault> {
        self.script.lock().unwrap().poll_faults.pop_front()
    }
}

#[async_trait]
impl Backend for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn shape(&self) -> Shape {
        Shape::Atomic
    }

    async fn list(&self, cx: &Cx, scope: Scope, name: Option<&str>) -> Result<Vec<Group>> {
        self.inner.list(cx, scope, name).await
    }

    async fn get(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<Group> {
        self.inner.get(cx, scope, id).await
    }

    async fn create(&self, cx: &Cx, scope: Scope, group: NewGroup) -> Result<Write> {
        self.creates.fetch_add(1, Ordering::SeqCst);
        let written = self.inner.create(cx, scope, group).await?;
        let lose = std::mem::take(&mut self.script.lock().unwrap().lose_create_answer);
        if lose {
            return Err(BackendError::new(ErrorKind::Unavailable, "connection reset by peer").uncertain());
        }
        Ok(written)
    }

    async fn update(&self, cx: &Cx, scope: Scope, id: &GroupId, patch: GroupPatch) -> Result<Write> {
        let fail = std::mem::take(&mut self.script.lock().unwrap().fail_update_keeping_tags);
        if !fail {
            return self.inner.update(cx, scope, id, patch).await;
        }
        if let PatchContent::Atomic { tags, .. } = patch.content {
            let tags_only = GroupPatch {
                name: None,
                description: None,
                content: PatchContent::Atomic { rules: None, tags },
            };
            self.inner.update(cx, scope, id, tags_only).await?;
        }
        let task = self.own.start(scope, TaskKind::UpdateGroup, None);
        let own = self.own.clone();
        let t = task.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            own.finish(&t, Err::<Created, _>("Scripted failure: the update task failed".into()));
        });
        Ok(Write::Pending(vec![task]))
    }

    async fn add_rule(&self, cx: &Cx, scope: Scope, id: &GroupId, rule: Atom) -> Result<Write> {
        self.inner.add_rule(cx, scope, id, rule).await
    }

    async fn delete_rule(&self, cx: &Cx, scope: Scope, id: &GroupId, rule_id: &Uuid) -> Result<Write> {
        self.inner.delete_rule(cx, scope, id, rule_id).await
    }

    async fn delete(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<()> {
        self.inner.delete(cx, scope, id).await
    }

    async fn task(&self, cx: &Cx, id: &TaskId) -> Result<Task> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        match self.next_fault() {
            Some(PollFault::Unavailable) => {
                return Err(BackendError::new(ErrorKind::Unavailable, "503 Service Unavailable"))
            }
            Some(PollFault::Hang) => std::future::pending::<()>().await,
            None => {}
        }
        if let Some(t) = self.own.get(id) {
            return Ok(t);
        }
        self.inner.task(cx, id).await
    }

    async fn tasks(&self, cx: &Cx, query: &TaskQuery) -> Result<(usize, Vec<Task>)> {
        let fail = {
            let mut s = self.script.lock().unwrap();
            let f = s.task_list_failures > 0;
            s.task_list_failures = s.task_list_failures.saturating_sub(1);
            f
        };
        if fail {
            return Err(BackendError::new(ErrorKind::Unavailable, "503 Service Unavailable"));
        }
        self.inner.tasks(cx, query).await
    }

    async fn acknowledge(&self, cx: &Cx, id: &TaskId) -> Result<Task> {
        self.inner.acknowledge(cx, id).await
    }

    async fn acknowledge_all(&self, cx: &Cx, project_id: Option<u64>, region_id: Option<u64>) -> Result<()> {
        self.inner.acknowledge_all(cx, project_id, region_id).await
    }

    fn task_events(&self) -> Option<&TaskRegistry> {
        if self.script.lock().unwrap().poll {
            None
        } else {
            self.inner.task_events()
        }
    }

    async fn ready(&self, cx: &Cx) -> Result<()> {
        self.inner.ready(cx).await
    }
}
