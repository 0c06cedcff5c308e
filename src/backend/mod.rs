//! Backends store and change security groups: one contract ([`Backend`])
//! over model types, implemented by `embedded` (in process, Gcore semantics,
//! the default), `gcore` (the Gcore Cloud API over HTTPS) and `cf` (a Cloud
//! Controller's v3 API); `instrumented` wraps any of them with metrics.
//!
//! A write answers [`Write::Done`] (applied) or [`Write::Pending`] (applied
//! when these tasks finish). Task state is the model's [`Task`]; no wire type
//! crosses this boundary. Backends depend on the model and, for their own
//! wire, on a dialect's wire types (the arrow runs backend → dialect), never
//! on the server, the service layer or the mapping.

pub mod api;
pub mod cf;
pub mod embedded;
pub mod gcore;
pub(crate) mod instrumented;

pub use instrumented::{CallTelemetry, Instrumented};

use crate::model::{Atom, Group, GroupId, GroupPatch, NewGroup, Scope, Shape, Task, TaskId, TaskQuery, Uuid};
use crate::tasks::TaskRegistry;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fmt;

/// What went wrong, in terms every front end can render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The backend refused the request as invalid (Gcore 400).
    Invalid,
    NotFound,
    /// Locked by another task, or a conflicting state (Gcore 409).
    Conflict,
    /// The backend refused our credentials (401/403): a gateway configuration problem.
    Unauthorized,
    /// The backend could not be reached, or said it is unavailable.
    Unavailable,
    /// The backend did not answer in time.
    Timeout,
    /// The backend answered with a server error or something unreadable.
    Upstream,
    /// The operation has no meaning on this backend.
    Unsupported,
}

impl ErrorKind {
    /// What an error status of a remote API means.
    pub fn of_status(status: u16) -> ErrorKind {
        match status {
            400 | 422 => ErrorKind::Invalid,
            401 | 403 => ErrorKind::Unauthorized,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            408 | 504 => ErrorKind::Timeout,
            429 | 503 => ErrorKind::Unavailable,
            _ => ErrorKind::Upstream,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BackendError {
    pub kind: ErrorKind,
    /// The backend's own message, sanitised and bounded (never a credential).
    pub message: String,
    /// The backend's status code, when it answered.
    pub status: Option<u16>,
    /// The request may have been applied although no answer says so (the
    /// connection broke after sending, or the answer came too late).
    pub uncertain: bool,
    /// A fault the emulator injected (the embedded backend only): a Gcore
    /// caller meets it as the emulated API would answer it.
    pub injected: Option<Injected>,
}

/// How an injected fault reaches a caller of the emulated API itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// Answered with the error's own status (and `Retry-After`).
    Answer { retry_after_s: Option<u64> },
    /// The connection closed without an answer.
    Reset,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl BackendError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        BackendError {
            kind,
            message: message.into(),
            status: None,
            uncertain: false,
            injected: None,
        }
    }

    /// A per-rule change asked of a backend that stores groups in CF's
    /// compact shape (its rules have no ids of their own).
    pub fn wrong_shape(backend: &str) -> Self {
        BackendError::new(
            ErrorKind::Unsupported,
            format!("the {backend} backend stores groups in CF's own (compact) shape, not Gcore's rule by rule"),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn uncertain(mut self) -> Self {
        self.uncertain = true;
        self
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    pub fn is_conflict(&self) -> bool {
        self.kind == ErrorKind::Conflict
    }

    /// Whether the same request may succeed later (the backend was down, slow or busy).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Upstream | ErrorKind::Conflict
        )
    }
}

pub type Result<T> = std::result::Result<T, BackendError>;

/// When each task a poller has seen was created.
pub type Seen = std::collections::HashMap<TaskId, DateTime<Utc>>;

/// The tasks of `ids` the backend can show, read one at a time.
pub async fn one_by_one<B: Backend + ?Sized>(backend: &B, cx: &Cx, ids: &[TaskId]) -> Result<Vec<Task>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match backend.task(cx, id).await {
            Ok(t) => out.push(t),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The outcome of an accepted write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Applied; for a create, the new group's id.
    Done(Option<GroupId>),
    /// Applied when every one of these tasks has finished (`[]`: nothing changed).
    Pending(Vec<TaskId>),
}

/// What a call carries besides its arguments: the request it serves (whose
/// id the backend sees too) and who asked.
#[derive(Debug, Clone, Default)]
pub struct Cx {
    pub request_id: String,
    /// The caller's name for logs and audit (a token subject or key name,
    /// never a secret).
    pub principal: String,
    /// Whether the caller may write CF state kept in reserved tags through
    /// the Gcore dialect.
    pub reserved_tags: bool,
    /// Plan only: writes are described, not sent (reads still are).
    pub dry_run: bool,
    /// The operation the caller asked for, when it called the Gcore API
    /// (`security_groups.copy`): the emulator's faults are met by it.
    pub operation: Option<crate::config::faults::Operation>,
}

impl Cx {
    pub fn new(request_id: impl Into<String>) -> Self {
        Cx {
            request_id: request_id.into(),
            ..Cx::default()
        }
    }
}

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// `embedded`, `gcore`, `cf`, …: for logs, metrics and `/readyz`.
    fn name(&self) -> &'static str;

    /// How this backend stores groups.
    fn shape(&self) -> Shape;

    /// Whether a read hands out the backend's own shared content (copy on
    /// write), so reads of a group that did not change share one pointer;
    /// the server then recognises a group state it has seen by that pointer.
    /// False where each read builds new content (a remote backend).
    fn shares_content(&self) -> bool {
        false
    }

    /// Whether groups of `scope` can live here at all (a Cloud Controller
    /// is one scope): creates elsewhere are refused before they are accepted.
    fn serves(&self, scope: Scope) -> bool {
        let _ = scope;
        true
    }

    /// Every group of the scope, oldest first; `name` filters by exact name.
    async fn list(&self, cx: &Cx, scope: Scope, name: Option<&str>) -> Result<Vec<Group>>;

    async fn get(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<Group>;

    /// Starts creating a group; for a pending create the first task's
    /// `created.groups` names it.
    async fn create(&self, cx: &Cx, scope: Scope, group: NewGroup) -> Result<Write>;

    /// Starts a change; `Pending(vec![])` when nothing changes.
    async fn update(&self, cx: &Cx, scope: Scope, id: &GroupId, patch: GroupPatch) -> Result<Write>;

    /// Adds one rule (atomic backends; a compact one refuses it).
    async fn add_rule(&self, cx: &Cx, scope: Scope, id: &GroupId, rule: Atom) -> Result<Write> {
        let _ = (cx, scope, id, rule);
        Err(BackendError::wrong_shape(self.name()))
    }

    /// Deletes one rule by id (atomic backends; a compact one refuses it).
    async fn delete_rule(&self, cx: &Cx, scope: Scope, id: &GroupId, rule_id: &Uuid) -> Result<Write> {
        let _ = (cx, scope, id, rule_id);
        Err(BackendError::wrong_shape(self.name()))
    }

    /// Deletes a group; done when this returns.
    async fn delete(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<()>;

    /// One task. A backend that runs no tasks of its own (its writes are
    /// done when they answer) knows none.
    async fn task(&self, cx: &Cx, id: &TaskId) -> Result<Task> {
        let _ = cx;
        Err(BackendError::not_found(format!("Task {id} not found")))
    }

    /// Tasks matching `query`: (total matching, this page); none by default.
    async fn tasks(&self, cx: &Cx, query: &TaskQuery) -> Result<(usize, Vec<Task>)> {
        let _ = (cx, query);
        Ok((0, Vec::new()))
    }

    /// The current state of several tasks of one scope, in one call where
    /// the backend allows; tasks it cannot show yet are left out. `seen`:
    /// when the ones the caller has seen before were created (the backend's
    /// clock), so a backend that lists can find ended ones in one call.
    async fn task_states(&self, cx: &Cx, scope: Scope, ids: &[TaskId], seen: &Seen) -> Result<Vec<Task>> {
        let _ = (scope, seen);
        one_by_one(self, cx, ids).await
    }

    /// Marks a task acknowledged (not found when unknown, as by default).
    async fn acknowledge(&self, cx: &Cx, id: &TaskId) -> Result<Task> {
        let _ = cx;
        Err(BackendError::not_found(format!("Task {id} not found")))
    }

    /// Marks every task of the scope acknowledged (nothing to do by default).
    async fn acknowledge_all(&self, cx: &Cx, project_id: Option<u64>, region_id: Option<u64>) -> Result<()> {
        let _ = (cx, project_id, region_id);
        Ok(())
    }

    /// Where task completions are announced, for backends that run their
    /// tasks in this process: waiters are woken instead of polling.
    fn task_events(&self) -> Option<&TaskRegistry> {
        None
    }

    /// Whether the backend answers (for `/readyz`).
    async fn ready(&self, cx: &Cx) -> Result<()>;
}
