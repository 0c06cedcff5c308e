//! The service layer: every write protocol held once, for every front end.
//!
//! A write takes its lock (the group's; a CF create the lock of its name),
//! reads the group, plans the change through the mapping for the backend's
//! shape, commits it, waits on the backend's tasks and reads the result. A
//! write refused with 409 re-reads and re-plans until the deadline; a failed
//! write leaves nothing applied (a tag change the backend applied anyway is
//! undone) or says that its outcome is unknown; a create whose answer was lost
//! is reconciled before anything of that name is created again. Front ends
//! parse, call one method here, and render.

mod audit;
mod cf;
mod gcore;
mod reconcile;
pub mod tracker;

pub use cf::CfWritten;
pub use gcore::{GcoreWritten, Waiting};

use crate::backend::{Backend, Cx};
use crate::coord::Coord;
use crate::error::{Error, Kind, Missing, Result};
use crate::mapping::{CfGroup, Mapping};
use crate::model::{AtomicContent, Group, GroupId, Scope, Shape, Task, TaskId, TaskQuery};
use crate::store::TaskLog;
use crate::tasks::TaskRegistry;
use backon::BackoffBuilder;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracker::{PollConfig, Tracker};

/// The service's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mapping: Mapping,
    /// Where CF groups live.
    pub cf_scope: Scope,
    /// How long a write may wait on tasks and 409s.
    pub deadline: Duration,
    pub poll: PollConfig,
    /// First and longest pause between retries of a write refused with 409.
    pub conflict_backoff: (Duration, Duration),
    /// How long ended tasks the gateway synthesized stay readable.
    pub task_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mapping: Mapping::default(),
            cf_scope: Scope {
                project_id: 1,
                region_id: 1,
            },
            deadline: Duration::from_secs(60),
            poll: PollConfig::default(),
            conflict_backoff: (Duration::from_millis(100), Duration::from_secs(1)),
            task_ttl: Duration::from_secs(3600),
        }
    }
}

/// What the service reports as it works (metrics, implemented by the server).
pub trait Telemetry: Send + Sync {
    /// A write starts waiting on tasks.
    fn wait_started(&self);
    /// A wait on tasks ended: `finished`, `error` or `deadline`, after
    /// `polls` rounds of the task poller.
    fn wait_ended(&self, outcome: &'static str, took: Duration, polls: u64);
    /// A wait saw its tasks ended `late` after the last of them ended (by
    /// the tasks' own `finished_on`, so a backend's clock skew shows too).
    fn wait_lateness(&self, late: Duration);
    /// A write refused with 409 is tried again.
    fn conflict_retry(&self);
}

/// The registry name of the gateway's own tasks in a task log.
const GATEWAY_TASKS: &str = "gateway";

/// Reports nothing.
pub struct NoTelemetry;

impl Telemetry for NoTelemetry {
    fn wait_started(&self) {}
    fn wait_ended(&self, _: &'static str, _: Duration, _: u64) {}
    fn wait_lateness(&self, _: Duration) {}
    fn conflict_retry(&self) {}
}

#[derive(Clone)]
pub struct Service {
    backend: Arc<dyn Backend>,
    coord: Arc<dyn Coord>,
    tracker: Arc<Tracker>,
    /// Tasks the gateway runs for backends without tasks of their own.
    synthesized: Arc<TaskRegistry>,
    /// Where those tasks are kept beyond this process (another replica may
    /// be asked about them).
    task_log: Option<Arc<dyn TaskLog>>,
    settings: Settings,
    telemetry: Arc<dyn Telemetry>,
}

impl Service {
    pub fn new(backend: Arc<dyn Backend>, coord: Arc<dyn Coord>, settings: Settings) -> Self {
        Service {
            tracker: Arc::new(Tracker::new(backend.clone(), settings.poll)),
            synthesized: Arc::new(TaskRegistry::new(settings.task_ttl)),
            task_log: None,
            backend,
            coord,
            settings,
            telemetry: Arc::new(NoTelemetry),
        }
    }

    /// The same service (backend, coordination, tasks) under new settings
    /// (a config reload); the poller keeps the pace it started with.
    pub fn with_settings(&self, settings: Settings) -> Self {
        Service {
            settings,
            ..self.clone()
        }
    }

    /// Keeps the tasks the gateway runs in `log` (a durable or shared store).
    pub fn with_task_log(mut self, log: Arc<dyn TaskLog>) -> Self {
        self.synthesized = Arc::new(TaskRegistry::new(self.settings.task_ttl).with_log(log.clone(), GATEWAY_TASKS));
        self.task_log = Some(log);
        self
    }

    /// A task the gateway ran, here or (from the shared store) elsewhere.
    /// Tasks not ended yet, by who runs them: the gateway (for Gcore callers
    /// over a backend without tasks) and the backend, when it runs them in
    /// this process (embedded).
    pub fn pending_tasks(&self) -> [(&'static str, usize); 2] {
        let backend = self.backend.task_events().map_or(0, TaskRegistry::pending);
        [("gateway", self.synthesized.pending()), ("backend", backend)]
    }

    async fn synthesized_task(&self, id: &TaskId) -> Result<Option<Task>> {
        if let Some(t) = self.synthesized.get(id) {
            return Ok(Some(t));
        }
        match &self.task_log {
            Some(log) => log
                .load(GATEWAY_TASKS, id)
                .await
                .map_err(|e| Error::new(Kind::Unavailable, e.to_string())),
            None => Ok(None),
        }
    }

    pub fn with_telemetry(mut self, telemetry: Arc<dyn Telemetry>) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Waits on tasks, reported to telemetry.
    async fn wait_tasks(
        &self,
        scope: Scope,
        ids: &[TaskId],
        deadline: Instant,
    ) -> std::result::Result<Vec<Task>, crate::tasks::WaitError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        crate::journal::tasks(ids);
        let tasks = ids.iter().map(TaskId::as_str).collect::<Vec<_>>().join(",");
        tracing::info!(target: "sgbridge::wait", %scope, tasks = tasks.as_str(), "waiting on tasks");
        self.telemetry.wait_started();
        let started = Instant::now();
        let rounds = || self.tracker.stats.rounds.load(std::sync::atomic::Ordering::Relaxed);
        let polls_before = rounds();
        let r = self.tracker.wait(scope, ids, deadline).await;
        let outcome = match &r {
            Ok(_) => "finished",
            Err(crate::tasks::WaitError::Failed { .. }) => "error",
            Err(crate::tasks::WaitError::Deadline { .. }) => "deadline",
        };
        let took = started.elapsed();
        let polls = rounds().saturating_sub(polls_before);
        self.telemetry.wait_ended(outcome, took, polls);
        if let Some(last) = r
            .as_ref()
            .ok()
            .and_then(|t| t.iter().filter_map(|t| t.finished_on).max())
        {
            let late = (chrono::Utc::now() - last).to_std().unwrap_or_default();
            self.telemetry.wait_lateness(late);
        }
        tracing::info!(
            target: "sgbridge::wait",
            %scope,
            tasks = tasks.as_str(),
            outcome,
            polls,
            duration_ms = took.as_secs_f64() * 1000.0,
            "wait ended"
        );
        r
    }

    /// Reads a group a write just changed and records it as the change's
    /// outcome.
    async fn settled(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<Group> {
        let group = self.get(cx, scope, id).await?;
        crate::journal::settled(&group);
        Ok(group)
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether two reads of an unchanged group share its content (see
    /// [`Backend::shares_content`]).
    pub fn shares_content(&self) -> bool {
        self.backend.shares_content()
    }

    pub fn cf_scope(&self) -> Scope {
        self.settings.cf_scope
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.settings.deadline
    }

    /// The pauses between retries of a write refused with 409.
    fn conflict_pauses(&self) -> impl Iterator<Item = Duration> {
        let (first, max) = self.settings.conflict_backoff;
        backon::ExponentialBuilder::default()
            .with_min_delay(first)
            .with_max_delay(max)
            .without_max_times()
            .with_jitter()
            .build()
    }

    pub async fn get(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<Group> {
        self.backend
            .get(cx, scope, id)
            .await
            .map_err(|e| Error::backend(e, Some(id.as_str())))
    }

    pub async fn list(&self, cx: &Cx, scope: Scope, name: Option<&str>) -> Result<Vec<Group>> {
        self.backend
            .list(cx, scope, name)
            .await
            .map_err(|e| Error::backend(e, None))
    }

    pub fn cf_view(&self, group: &Group) -> CfGroup {
        self.settings.mapping.cf_view(group)
    }

    pub fn gcore_view<'a>(&self, group: &'a Group) -> Cow<'a, AtomicContent> {
        self.settings.mapping.gcore_view(group)
    }

    /// Whether tasks are the gateway's own (the backend has none).
    fn synthesizes_tasks(&self) -> bool {
        self.backend.shape() == Shape::Compact
    }

    pub async fn task(&self, cx: &Cx, id: &TaskId) -> Result<Task> {
        if let Some(t) = self.synthesized_task(id).await? {
            return Ok(t);
        }
        if self.synthesizes_tasks() {
            return Err(Error::not_found(Missing::Task(id.to_string())));
        }
        self.backend.task(cx, id).await.map_err(|e| {
            if e.is_not_found() {
                Error::not_found(Missing::Task(id.to_string()))
            } else {
                Error::backend(e, None)
            }
        })
    }

    pub async fn tasks(&self, cx: &Cx, query: &TaskQuery) -> Result<(usize, Vec<Task>)> {
        if self.synthesizes_tasks() {
            return Ok(self.synthesized.query(query));
        }
        self.backend.tasks(cx, query).await.map_err(|e| Error::backend(e, None))
    }

    pub async fn acknowledge(&self, cx: &Cx, id: &TaskId) -> Result<Task> {
        if cx.dry_run && self.synthesizes_tasks() {
            // The gateway's own tasks: planned here, as the backend decorator
            // plans the backend's (the task must exist; nothing changes).
            self.task(cx, id).await?;
            return dry_run(format!("acknowledge task {id}"));
        }
        if let Some(t) = self.synthesized.acknowledge(id, 0) {
            return Ok(t);
        }
        if let (Some(mut t), Some(log)) = (self.synthesized_task(id).await?, &self.task_log) {
            // Started on another replica: acknowledged in the shared store.
            if t.acknowledged_at.is_none() {
                t.acknowledged_at = Some(chrono::Utc::now());
                t.acknowledged_by = Some(0);
                log.save_now(GATEWAY_TASKS, std::slice::from_ref(&t))
                    .await
                    .map_err(|e| Error::new(Kind::Unavailable, e.to_string()))?;
            }
            return Ok(t);
        }
        if self.synthesizes_tasks() {
            return Err(Error::not_found(Missing::Task(id.to_string())));
        }
        self.backend.acknowledge(cx, id).await.map_err(|e| {
            if e.is_not_found() {
                Error::not_found(Missing::Task(id.to_string()))
            } else {
                Error::backend(e, None)
            }
        })
    }

    pub async fn acknowledge_all(&self, cx: &Cx, project_id: Option<u64>, region_id: Option<u64>) -> Result<()> {
        if cx.dry_run && self.synthesizes_tasks() {
            return dry_run("acknowledge every task of the filter".to_string());
        }
        if !cx.dry_run {
            self.synthesized.acknowledge_all(project_id, region_id, 0);
        }
        if self.synthesizes_tasks() {
            return Ok(());
        }
        self.backend
            .acknowledge_all(cx, project_id, region_id)
            .await
            .map_err(|e| Error::backend(e, None))
    }

    pub async fn ready(&self, cx: &Cx) -> Result<()> {
        self.backend.ready(cx).await.map_err(|e| Error::backend(e, None))
    }

    /// Whether another group of the scope has this name.
    async fn name_taken(&self, cx: &Cx, scope: Scope, name: &str, except: Option<&GroupId>) -> Result<bool> {
        let same = self.list(cx, scope, Some(name)).await?;
        Ok(same.iter().any(|g| g.name() == name && Some(g.id()) != except))
    }
}

/// A dry run's change to the gateway's own state: noted, not made.
fn dry_run<T>(what: String) -> Result<T> {
    crate::backend::instrumented::unsent(what).map_err(|e| Error::backend(e, None))
}

/// Rule sets from this many rules up are planned off the async worker.
const HEAVY_RULES: usize = 1_000;

/// Runs the planning of `rules` rules where it stalls no other request: a
/// large one (a 16 MB rule set expands and folds ~300,000 rules) tells the
/// runtime this worker blocks, so its other tasks move to another thread.
/// A single-threaded runtime (some tests) cannot, and runs it in place.
fn heavy<T>(rules: usize, plan: impl FnOnce() -> T) -> T {
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if rules >= HEAVY_RULES && multi {
        tokio::task::block_in_place(plan)
    } else {
        plan()
    }
}
