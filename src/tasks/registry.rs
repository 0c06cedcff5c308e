//! Tasks this process runs: the embedded backend's, and those the gateway
//! synthesizes when a Gcore caller writes to a backend without tasks.
//!
//! A task that has not ended is never evicted; an ended one stays readable
//! for the configured time, then goes (swept as new tasks arrive). Every
//! change of state is announced on a watch channel, so waiters are woken by
//! the completion itself instead of polling.

use crate::model::{Created, Scope, Task, TaskId, TaskKind, TaskQuery, TaskState, Uuid};
use crate::store::TaskLog;
use chrono::Utc;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

struct Entry {
    task: Task,
    notify: watch::Sender<TaskState>,
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<TaskId, Entry>,
    /// Creation order, for listing.
    order: Vec<TaskId>,
    /// Ended tasks in the order they ended, with when.
    ended: VecDeque<(Instant, TaskId)>,
    /// When ended tasks were last dropped.
    swept: Option<Instant>,
}

pub struct TaskRegistry {
    inner: Mutex<Inner>,
    ttl: Duration,
    /// Where task states are kept beyond this process (durable stores).
    log: Option<(Arc<dyn TaskLog>, &'static str)>,
}

fn new_id() -> TaskId {
    Uuid::new_random()
}

/// Ends `task`: FINISHED with what it created, or ERROR with a message.
fn end(task: &mut Task, outcome: Result<Created, String>, at: chrono::DateTime<Utc>) {
    task.updated_on = at;
    task.finished_on = Some(at);
    match outcome {
        Ok(created) => {
            task.state = TaskState::Finished;
            task.created = Some(created);
        }
        Err(e) => {
            task.state = TaskState::Error;
            task.error = Some(e);
        }
    }
}

/// Tasks matching `query`, in creation order: (total matching, the page
/// asked for).
pub fn page(mut tasks: Vec<Task>, query: &TaskQuery) -> (usize, Vec<Task>) {
    tasks.retain(|t| query.matches(t));
    tasks.sort_by_key(|t| t.created_on);
    let total = tasks.len();
    if query.descending {
        tasks.reverse();
    }
    let page = tasks.into_iter().skip(query.offset).take(query.limit).collect();
    (total, page)
}

/// Marks `task` acknowledged unless it was: whether it changed.
pub fn acknowledge(task: &mut Task, by: u64) -> bool {
    if task.acknowledged_at.is_some() {
        return false;
    }
    task.acknowledged_at = Some(now());
    task.acknowledged_by = Some(by);
    true
}

fn now() -> chrono::DateTime<Utc> {
    let t = Utc::now();
    chrono::DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

impl TaskRegistry {
    /// Ended tasks stay readable for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        TaskRegistry {
            inner: Mutex::new(Inner::default()),
            ttl,
            log: None,
        }
    }

    /// Saves every state change to `log`, as registry `name`.
    pub fn with_log(mut self, log: Arc<dyn TaskLog>, name: &'static str) -> Self {
        self.log = Some((log, name));
        self
    }

    fn saved(&self, task: &Task) {
        if let Some((log, name)) = &self.log {
            log.save(name, task);
        }
    }

    /// Takes back tasks kept before a restart. One that had not ended did
    /// not survive the restart: it ends now in ERROR, never stays RUNNING.
    /// Answers the tasks it ended.
    pub fn restore(&self, tasks: Vec<Task>) -> Vec<Task> {
        let mut ended_now = Vec::new();
        let mut inner = self.lock();
        for mut task in tasks {
            if !task.state.is_terminal() {
                let at = now();
                task.state = TaskState::Error;
                task.error = Some("the gateway restarted before this task finished; nothing was applied".into());
                task.updated_on = at;
                task.finished_on = Some(at);
                ended_now.push(task.clone());
            }
            let (notify, _) = watch::channel(task.state);
            inner.order.push(task.id.clone());
            inner.ended.push_back((Instant::now(), task.id.clone()));
            inner.tasks.insert(task.id.clone(), Entry { task, notify });
        }
        let mut order = std::mem::take(&mut inner.order);
        order.sort_by_key(|id| inner.tasks.get(id).map(|e| e.task.created_on));
        inner.order = order;
        ended_now
    }

    /// The task as it will be once `finish(id, outcome)` runs (to save it
    /// durably first).
    pub fn ending(&self, id: &TaskId, outcome: &Result<Created, String>) -> Option<Task> {
        let mut task = self.get(id)?;
        end(&mut task, outcome.clone(), now());
        Some(task)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every change below is a single assignment; a panic elsewhere cannot
        // leave an entry half written, so a poisoned lock is still sound.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a RUNNING task and returns its id. With a log, the caller
    /// saves the start itself (`TaskLog::save_now`) before anyone hears of
    /// the task; later states are saved here.
    pub fn start(&self, scope: Scope, kind: TaskKind, request_id: Option<String>) -> TaskId {
        let id = new_id();
        let at = now();
        let task = Task {
            id: id.clone(),
            kind,
            scope,
            state: TaskState::Running,
            error: None,
            created: None,
            created_on: at,
            updated_on: at,
            finished_on: None,
            acknowledged_at: None,
            acknowledged_by: None,
            request_id,
        };
        let (notify, _) = watch::channel(TaskState::Running);
        let mut inner = self.lock();
        self.sweep(&mut inner);
        inner.order.push(id.clone());
        inner.tasks.insert(id.clone(), Entry { task, notify });
        id
    }

    /// Ends a task: FINISHED with what it created, or ERROR with a message.
    pub fn finish(&self, id: &TaskId, outcome: Result<Created, String>) {
        let mut inner = self.lock();
        let Some(entry) = inner.tasks.get_mut(id) else {
            return;
        };
        if entry.task.state.is_terminal() {
            return;
        }
        end(&mut entry.task, outcome, now());
        entry.notify.send_replace(entry.task.state);
        let task = entry.task.clone();
        inner.ended.push_back((Instant::now(), id.clone()));
        drop(inner);
        self.saved(&task);
    }

    /// Ends a task as `saved`, the state [`Self::ending`] gave, which the
    /// caller has saved durably with the task's change: not saved again.
    /// (Acknowledged meanwhile: ended as [`Self::finish`] would, and saved.)
    pub fn finish_saved(&self, saved: Task) {
        let mut inner = self.lock();
        let Some(entry) = inner.tasks.get_mut(&saved.id) else {
            return;
        };
        if entry.task.state.is_terminal() {
            return;
        }
        let (at, by) = (entry.task.acknowledged_at, entry.task.acknowledged_by);
        let again = at != saved.acknowledged_at;
        let id = saved.id.clone();
        entry.task = saved;
        (entry.task.acknowledged_at, entry.task.acknowledged_by) = (at, by);
        entry.notify.send_replace(entry.task.state);
        let task = again.then(|| entry.task.clone());
        inner.ended.push_back((Instant::now(), id));
        drop(inner);
        if let Some(task) = task {
            self.saved(&task);
        }
    }

    /// Empties the registry: a task still running ends in ERROR with
    /// `reason` first (its waiters hear so). Answers every task it held.
    pub fn clear(&self, reason: &str) -> Vec<Task> {
        let mut inner = self.lock();
        let at = now();
        let mut out = Vec::with_capacity(inner.tasks.len());
        for (_, mut entry) in inner.tasks.drain() {
            if !entry.task.state.is_terminal() {
                end(&mut entry.task, Err(reason.to_string()), at);
                entry.notify.send_replace(entry.task.state);
            }
            out.push(entry.task);
        }
        inner.order.clear();
        inner.ended.clear();
        out
    }

    /// Every task held, in creation order.
    pub fn all(&self) -> Vec<Task> {
        let inner = self.lock();
        inner
            .order
            .iter()
            .filter_map(|id| inner.tasks.get(id))
            .map(|e| e.task.clone())
            .collect()
    }

    pub fn get(&self, id: &TaskId) -> Option<Task> {
        self.lock().tasks.get(id).map(|e| e.task.clone())
    }

    /// Tasks matching `query`: (total matching, the page asked for).
    pub fn query(&self, query: &TaskQuery) -> (usize, Vec<Task>) {
        let inner = self.lock();
        let tasks = inner
            .order
            .iter()
            .filter_map(|id| inner.tasks.get(id).map(|e| &e.task))
            .filter(|t| query.matches(t))
            .cloned()
            .collect();
        page(tasks, query)
    }

    /// Marks a task acknowledged, as Gcore does (once; the first time counts).
    pub fn acknowledge(&self, id: &TaskId, by: u64) -> Option<Task> {
        let mut inner = self.lock();
        let entry = inner.tasks.get_mut(id)?;
        acknowledge(&mut entry.task, by);
        let task = entry.task.clone();
        drop(inner);
        self.saved(&task);
        Some(task)
    }

    /// Acknowledges every task of the given project and region (either may be any).
    pub fn acknowledge_all(&self, project_id: Option<u64>, region_id: Option<u64>, by: u64) {
        let mut inner = self.lock();
        let at = now();
        for entry in inner.tasks.values_mut() {
            let t = &mut entry.task;
            if project_id.is_none_or(|p| p == t.scope.project_id)
                && region_id.is_none_or(|r| r == t.scope.region_id)
                && t.acknowledged_at.is_none()
            {
                t.acknowledged_at = Some(at);
                t.acknowledged_by = Some(by);
                if let Some((log, name)) = &self.log {
                    log.save(name, t);
                }
            }
        }
    }

    /// A channel that announces the task's state changes (`None`: unknown task).
    pub fn subscribe(&self, id: &TaskId) -> Option<watch::Receiver<TaskState>> {
        self.lock().tasks.get(id).map(|e| e.notify.subscribe())
    }

    /// How many tasks have not ended yet.
    pub fn pending(&self) -> usize {
        self.lock()
            .tasks
            .values()
            .filter(|e| !e.task.state.is_terminal())
            .count()
    }

    /// How many tasks are held (pending and ended).
    pub fn len(&self) -> usize {
        self.lock().tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops ended tasks older than the TTL, here and in the log, so every
    /// store keeps them by this one rule; pending ones are never dropped.
    /// At most every quarter TTL (at most a second), so the log deletes
    /// them in batches (one transaction, one fsync, each) rather than one
    /// by one under a steady load.
    fn sweep(&self, inner: &mut Inner) {
        let now = Instant::now();
        let every = (self.ttl / 4).min(Duration::from_secs(1));
        if inner.swept.is_some_and(|at| now.duration_since(at) < every) {
            return;
        }
        inner.swept = Some(now);
        let mut removed = Vec::new();
        while let Some((at, _)) = inner.ended.front() {
            if now.duration_since(*at) < self.ttl {
                break;
            }
            if let Some((_, id)) = inner.ended.pop_front() {
                inner.tasks.remove(&id);
                removed.push(id);
            }
        }
        if !removed.is_empty() {
            // Listing skips ids no longer held; the list is compacted only
            // once it is mostly such ids (a retain on every sweep made each
            // start O(tasks held)).
            if inner.order.len() > 2 * inner.tasks.len() + 64 {
                let tasks = &inner.tasks;
                inner.order.retain(|id| tasks.contains_key(id));
            }
            if let Some((log, name)) = &self.log {
                log.forget(name, removed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: Scope = Scope {
        project_id: 1,
        region_id: 1,
    };

    #[tokio::test(start_paused = true)]
    async fn pending_tasks_stay_and_ended_ones_expire() {
        let r = TaskRegistry::new(Duration::from_secs(10));
        let pending = r.start(SCOPE, TaskKind::UpdateGroup, None);
        let done = r.start(SCOPE, TaskKind::CreateGroup, Some("req".into()));
        let mut events = r.subscribe(&done).unwrap();
        r.finish(&done, Ok(Created::default()));
        events.changed().await.unwrap();
        assert_eq!(*events.borrow(), TaskState::Finished);
        tokio::time::advance(Duration::from_secs(3600)).await;
        r.start(SCOPE, TaskKind::CreateGroup, None);
        assert!(r.get(&done).is_none(), "ended past the TTL");
        assert_eq!(r.get(&pending).unwrap().state, TaskState::Running, "never evicted");
    }

    #[test]
    fn query_filters_and_pages() {
        let r = TaskRegistry::new(Duration::from_secs(10));
        let ids: Vec<_> = (0..5).map(|_| r.start(SCOPE, TaskKind::UpdateGroup, None)).collect();
        r.finish(&ids[1], Err("boom".into()));
        let q = TaskQuery {
            states: vec![TaskState::Running],
            limit: 2,
            offset: 1,
            ..TaskQuery::default()
        };
        let (total, page) = r.query(&q);
        assert_eq!(total, 4);
        assert_eq!(
            page.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
            [ids[2].clone(), ids[3].clone()]
        );
        r.acknowledge_all(Some(1), None, 7);
        assert!(r.get(&ids[0]).unwrap().is_acknowledged());
    }

    /// An end saved with its change is not saved again, and is the very
    /// state held (its times included); one acknowledged meanwhile keeps
    /// the acknowledgement and is saved with it.
    #[tokio::test]
    async fn an_end_saved_with_its_change_is_not_saved_twice() {
        let log = Arc::new(crate::store::testing::SavedTasks::default());
        let r = TaskRegistry::new(Duration::from_secs(10)).with_log(log.clone(), "embedded");
        let id = r.start(SCOPE, TaskKind::UpdateGroup, None);
        let mut events = r.subscribe(&id).unwrap();
        let ending = r.ending(&id, &Ok(Created::default())).unwrap();
        r.finish_saved(ending.clone());
        events.changed().await.unwrap();
        assert_eq!(*events.borrow(), TaskState::Finished);
        assert_eq!(r.get(&id).unwrap(), ending);
        assert!(log.0.lock().unwrap().is_empty(), "saved once, with the change");
        r.finish(&id, Err("late".into()));
        assert_eq!(r.get(&id).unwrap(), ending, "an ended task stays ended");

        let acked = r.start(SCOPE, TaskKind::UpdateGroup, None);
        let ending = r.ending(&acked, &Ok(Created::default())).unwrap();
        r.acknowledge(&acked, 7);
        log.0.lock().unwrap().clear();
        r.finish_saved(ending);
        let held = r.get(&acked).unwrap();
        assert_eq!(held.state, TaskState::Finished);
        assert_eq!(held.acknowledged_by, Some(7));
        assert_eq!(*log.0.lock().unwrap(), [held]);
    }
}
