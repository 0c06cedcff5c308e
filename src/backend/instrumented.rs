//! Any backend, measured: every call is counted by operation and outcome
//! with its latency (for metrics) and noted in the request's journal (for
//! the access line). A decorator over the contract, so each backend stays
//! free of telemetry.

use super::{Backend, BackendError, Cx, ErrorKind, Result, Write};
use crate::model::{
    Atom, Group, GroupId, GroupPatch, NewContent, NewGroup, PatchContent, Scope, Shape, TagPatch, Task, TaskId,
    TaskQuery, Uuid,
};
use crate::tasks::TaskRegistry;
use async_trait::async_trait;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Where backend calls are reported.
pub trait CallTelemetry: Send + Sync {
    /// One call: `op` from a fixed list, `outcome` `ok` or an error kind.
    fn backend_call(&self, op: &'static str, outcome: &'static str, took: Duration);
}

pub struct Instrumented {
    inner: Arc<dyn Backend>,
    telemetry: Arc<dyn CallTelemetry>,
}

impl Instrumented {
    pub fn new(inner: Arc<dyn Backend>, telemetry: Arc<dyn CallTelemetry>) -> Self {
        Instrumented { inner, telemetry }
    }

    async fn call<T>(&self, op: &'static str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let out = fut.await;
        let outcome = match &out {
            Ok(_) => "ok",
            Err(e) => kind_label(e),
        };
        self.telemetry.backend_call(op, outcome, started.elapsed());
        crate::journal::backend_call();
        out
    }
}

/// A dry run's write: noted, not sent.
pub(crate) fn unsent<T>(what: String) -> Result<T> {
    crate::journal::unsent(what);
    Err(BackendError::new(
        ErrorKind::Unsupported,
        "dry run: the write was not sent",
    ))
}

fn new_summary(scope: Scope, g: &NewGroup) -> String {
    let rules = match &g.content {
        NewContent::Atomic { rules: None, .. } => "the default rules".to_string(),
        NewContent::Atomic { rules: Some(r), .. } => format!("{} rules", r.len()),
        NewContent::Compact { rules, .. } => format!("{} rules", rules.len()),
    };
    let tags = match &g.content {
        NewContent::Atomic { tags, .. } => tags.len(),
        NewContent::Compact { .. } => 0,
    };
    format!("create group {:?} in {scope} with {rules} and {tags} tags", g.name)
}

fn patch_summary(scope: Scope, id: &GroupId, p: &GroupPatch) -> String {
    let mut parts = Vec::new();
    if let Some(n) = &p.name {
        parts.push(format!("name → {n:?}"));
    }
    if p.description.is_some() {
        parts.push("description".to_string());
    }
    match &p.content {
        PatchContent::Atomic { rules, tags } => {
            if let Some(r) = rules {
                parts.push(format!("rules → {} rules", r.len()));
            }
            if *tags != TagPatch::Keep {
                parts.push("tags".to_string());
            }
        }
        PatchContent::Compact { rules, attrs } => {
            if let Some(r) = rules {
                parts.push(format!("rules → {} rules", r.len()));
            }
            if attrs.is_some() {
                parts.push("CF defaults and space bindings".to_string());
            }
        }
    }
    format!("update group {id} in {scope}: {}", parts.join(", "))
}

fn kind_label(e: &BackendError) -> &'static str {
    match e.kind {
        ErrorKind::Invalid => "invalid",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Conflict => "conflict",
        ErrorKind::Unauthorized => "unauthorized",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Upstream => "upstream",
        ErrorKind::Unsupported => "unsupported",
    }
}

#[async_trait]
impl Backend for Instrumented {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn shape(&self) -> Shape {
        self.inner.shape()
    }

    fn shares_content(&self) -> bool {
        self.inner.shares_content()
    }

    fn serves(&self, scope: Scope) -> bool {
        self.inner.serves(scope)
    }

    async fn list(&self, cx: &Cx, scope: Scope, name: Option<&str>) -> Result<Vec<Group>> {
        self.call("list", self.inner.list(cx, scope, name)).await
    }

    async fn get(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<Group> {
        self.call("get", self.inner.get(cx, scope, id)).await
    }

    async fn create(&self, cx: &Cx, scope: Scope, group: NewGroup) -> Result<Write> {
        if cx.dry_run {
            return unsent(new_summary(scope, &group));
        }
        self.call("create", self.inner.create(cx, scope, group)).await
    }

    async fn update(&self, cx: &Cx, scope: Scope, id: &GroupId, patch: GroupPatch) -> Result<Write> {
        if cx.dry_run {
            return unsent(patch_summary(scope, id, &patch));
        }
        self.call("update", self.inner.update(cx, scope, id, patch)).await
    }

    async fn add_rule(&self, cx: &Cx, scope: Scope, id: &GroupId, rule: Atom) -> Result<Write> {
        if cx.dry_run {
            return unsent(format!("add one rule to group {id} in {scope}"));
        }
        self.call("add_rule", self.inner.add_rule(cx, scope, id, rule)).await
    }

    async fn delete_rule(&self, cx: &Cx, scope: Scope, id: &GroupId, rule_id: &Uuid) -> Result<Write> {
        if cx.dry_run {
            return unsent(format!("delete rule {rule_id} of group {id} in {scope}"));
        }
        self.call("delete_rule", self.inner.delete_rule(cx, scope, id, rule_id))
            .await
    }

    async fn delete(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<()> {
        if cx.dry_run {
            // A dry run answers what the real request would: 404 for a
            // group that does not exist.
            self.get(cx, scope, id).await?;
            return unsent(format!("delete group {id} in {scope}"));
        }
        self.call("delete", self.inner.delete(cx, scope, id)).await
    }

    async fn task(&self, cx: &Cx, id: &TaskId) -> Result<Task> {
        self.call("task", self.inner.task(cx, id)).await
    }

    async fn tasks(&self, cx: &Cx, query: &TaskQuery) -> Result<(usize, Vec<Task>)> {
        self.call("tasks", self.inner.tasks(cx, query)).await
    }

    async fn task_states(&self, cx: &Cx, scope: Scope, ids: &[TaskId], seen: &super::Seen) -> Result<Vec<Task>> {
        self.call("task_states", self.inner.task_states(cx, scope, ids, seen))
            .await
    }

    async fn acknowledge(&self, cx: &Cx, id: &TaskId) -> Result<Task> {
        if cx.dry_run {
            self.task(cx, id).await?;
            return unsent(format!("acknowledge task {id}"));
        }
        self.call("acknowledge", self.inner.acknowledge(cx, id)).await
    }

    async fn acknowledge_all(&self, cx: &Cx, project_id: Option<u64>, region_id: Option<u64>) -> Result<()> {
        if cx.dry_run {
            return unsent("acknowledge every task of the filter".to_string());
        }
        self.call("acknowledge_all", self.inner.acknowledge_all(cx, project_id, region_id))
            .await
    }

    fn task_events(&self) -> Option<&TaskRegistry> {
        self.inner.task_events()
    }

    async fn ready(&self, cx: &Cx) -> Result<()> {
        self.call("ready", self.inner.ready(cx)).await
    }
}
