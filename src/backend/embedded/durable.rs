//! The embedded backend beyond its process: groups and tasks saved to a
//! durable store and taken back at start, a change the store refuses put
//! back, and (replicas on one shared store) what other replicas changed
//! taken in before each operation.

use super::state::Entry;
use super::Embedded;
use crate::backend::{BackendError, ErrorKind, Result};
use crate::model::{Content, GroupId, Scope, Task, TaskId};
use crate::store::{GroupChange, GroupLog, StoreError, TaskLog};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The looks at a shared store: how many have started, and (held while
/// one runs) the number of the last that ended well.
#[derive(Default)]
pub(super) struct Looks {
    started: AtomicU64,
    done: tokio::sync::Mutex<u64>,
}

impl Embedded {
    /// The store, if other processes share its groups.
    pub(super) fn shared(&self) -> Option<&Arc<dyn GroupLog>> {
        self.inner.store.as_ref().filter(|s| s.shared())
    }

    /// Takes in what other replicas changed since the last look (a shared
    /// store; nothing to do otherwise). A group is replaced only by a later
    /// revision, so a look that began before a local change cannot undo it.
    ///
    /// Looks are coalesced: a caller is served by the first look that
    /// starts after it asked, which sees every change committed before it
    /// asked; callers who ask while a look runs share the next one.
    pub(super) async fn refresh(&self) -> Result<()> {
        let Some(store) = self.shared() else {
            return Ok(());
        };
        let looks = &self.inner.looks;
        let need = looks.started.load(Ordering::SeqCst) + 1;
        let mut done = looks.done.lock().await;
        if *done >= need {
            return Ok(());
        }
        let number = looks.started.fetch_add(1, Ordering::SeqCst) + 1;
        self.look(store.as_ref()).await?;
        *done = number;
        Ok(())
    }

    /// One look at the store: what changed since the cursor, taken in.
    async fn look(&self, store: &dyn GroupLog) -> Result<()> {
        let since = self.state().cursor;
        let changes = store
            .changes(since)
            .await
            .map_err(|e| BackendError::new(ErrorKind::Unavailable, e.to_string()))?;
        let mut state = self.state();
        if changes.full {
            // The tombstones of what was deleted since the last look are
            // swept: whatever is not in the store now is gone. (A change
            // of this process saved after the look comes back with the next.)
            let there: std::collections::HashSet<(Scope, &GroupId)> =
                changes.put.iter().map(|(scope, _, g)| (*scope, &g.meta.id)).collect();
            state.groups.retain(|(scope, id), _| there.contains(&(*scope, id)));
        }
        for (scope, id) in changes.gone {
            state.groups.remove(&(scope, id.clone()));
            state.gone.insert((scope, id));
        }
        for (scope, seq, group) in changes.put {
            let Content::Atomic(content) = group.content else {
                continue;
            };
            let key = (scope, group.meta.id.clone());
            if state.gone.contains(&key) {
                continue;
            }
            state.seq = state.seq.max(seq);
            match state.groups.get_mut(&key) {
                Some(e) if e.meta.revision >= group.meta.revision => {}
                Some(e) => {
                    e.meta = group.meta;
                    e.content = content;
                }
                None => {
                    let entry = Entry {
                        meta: group.meta,
                        content,
                        seq,
                        locked_by: None,
                    };
                    state.groups.insert(key, entry);
                }
            }
        }
        state.cursor = state.cursor.max(changes.cursor);
        Ok(())
    }

    /// A task, here or (a shared store) wherever it runs.
    pub(super) async fn find_task(&self, id: &TaskId) -> Result<Option<Task>> {
        if let Some(t) = self.inner.tasks.get(id) {
            return Ok(Some(t));
        }
        match (self.shared(), &self.inner.task_log) {
            (Some(_), Some(log)) => log
                .load("embedded", id)
                .await
                .map_err(|e| BackendError::new(ErrorKind::Unavailable, e.to_string())),
            _ => Ok(None),
        }
    }

    /// Every task of every replica (a shared store), fresher local states first.
    pub(super) async fn all_tasks(&self, log: &Arc<dyn TaskLog>) -> Result<Vec<Task>> {
        let stored = log
            .load_all("embedded")
            .await
            .map_err(|e| BackendError::new(ErrorKind::Unavailable, e.to_string()))?;
        Ok(stored
            .into_iter()
            .map(|t| self.inner.tasks.get(&t.id).unwrap_or(t))
            .collect())
    }

    /// Takes back what the store kept: every group, and the tasks (one that
    /// was still running when the process stopped ends in ERROR: nothing of
    /// it was applied, since a change is saved only with its task's end).
    /// On a shared store the groups are read as changes, and tasks stay in
    /// the store (a replica that stops has its tasks ended by another).
    pub async fn restore(&self, tasks: &dyn TaskLog) -> std::result::Result<(), StoreError> {
        let Some(store) = &self.inner.store else {
            return Ok(());
        };
        if store.shared() {
            return self.refresh().await.map_err(|e| StoreError(e.message));
        }
        let groups = store.load().await?;
        let kept = tasks.load_all("embedded").await?;
        let interrupted = self.inner.tasks.restore(kept);
        {
            let mut state = self.state();
            for (scope, seq, group) in groups {
                let Content::Atomic(content) = group.content else {
                    continue;
                };
                state.seq = state.seq.max(seq);
                let entry = Entry {
                    meta: group.meta,
                    content,
                    seq,
                    locked_by: None,
                };
                state.groups.insert((scope, entry.meta.id.clone()), entry);
            }
        }
        if !interrupted.is_empty() {
            tracing::warn!(
                count = interrupted.len(),
                "tasks interrupted by the restart end in ERROR"
            );
        }
        store.commit(&[], &interrupted).await
    }

    /// The stored form of groups `ids` of `scope` as they are now.
    pub(super) fn snapshot(&self, scope: Scope, ids: &[GroupId]) -> Vec<GroupChange> {
        let state = self.state();
        ids.iter()
            .map(|id| match state.groups.get(&(scope, id.clone())) {
                Some(e) => GroupChange::Put {
                    scope,
                    seq: e.seq,
                    group: e.group(),
                },
                None => GroupChange::Gone { scope, id: id.clone() },
            })
            .collect()
    }

    /// Puts entries back as they were before a change the store refused.
    pub(super) fn put_back(&self, scope: Scope, previous: Vec<(GroupId, Option<Entry>)>) {
        let mut state = self.state();
        for (id, entry) in previous {
            match entry {
                Some(mut e) => {
                    e.locked_by = None;
                    state.groups.insert((scope, id), e);
                }
                None => {
                    state.groups.remove(&(scope, id));
                }
            }
        }
    }

    pub(super) fn copies(&self, scope: Scope, ids: &[GroupId]) -> Vec<(GroupId, Option<Entry>)> {
        let state = self.state();
        ids.iter()
            .map(|id| (id.clone(), state.groups.get(&(scope, id.clone())).cloned()))
            .collect()
    }

    /// Saves the groups a synchronous change touched, or undoes the change.
    pub(super) async fn save_or_undo(&self, scope: Scope, previous: Vec<(GroupId, Option<Entry>)>) -> Result<()> {
        let Some(store) = &self.inner.store else {
            return Ok(());
        };
        let ids: Vec<GroupId> = previous.iter().map(|(id, _)| id.clone()).collect();
        let changes = self.snapshot(scope, &ids);
        if let Err(e) = store.commit(&changes, &[]).await {
            self.put_back(scope, previous);
            return Err(BackendError::new(
                ErrorKind::Unavailable,
                format!("{e}; nothing was changed"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Task;
    use crate::store::Changes;
    use async_trait::async_trait;
    use std::sync::atomic::AtomicUsize;
    use tokio::sync::{mpsc, Semaphore};

    /// A shared store whose looks are counted and held at a gate.
    struct Gated {
        looks: AtomicUsize,
        entered: mpsc::UnboundedSender<()>,
        gate: Semaphore,
    }

    #[async_trait]
    impl GroupLog for Gated {
        async fn commit(&self, _: &[GroupChange], _: &[Task]) -> std::result::Result<(), StoreError> {
            Ok(())
        }
        async fn load(&self) -> std::result::Result<Vec<(Scope, u64, crate::model::Group)>, StoreError> {
            Ok(Vec::new())
        }
        fn shared(&self) -> bool {
            true
        }
        async fn changes(&self, cursor: i64) -> std::result::Result<Changes, StoreError> {
            self.looks.fetch_add(1, Ordering::SeqCst);
            let _ = self.entered.send(());
            if let Ok(p) = self.gate.acquire().await {
                p.forget();
            }
            Ok(Changes {
                cursor,
                ..Changes::default()
            })
        }
    }

    /// Callers who ask while a look runs share the next look (not that
    /// one: it began before they asked, and may miss what was committed
    /// since), so four callers cost two looks, not four.
    #[tokio::test]
    async fn callers_during_a_look_share_the_next_one() {
        let (entered, mut looked) = mpsc::unbounded_channel();
        let store = Arc::new(Gated {
            looks: AtomicUsize::new(0),
            entered,
            gate: Semaphore::new(0),
        });
        let cfg = crate::config::EmbeddedConfig::default();
        let backend = Embedded::durable(
            &cfg,
            false,
            1000,
            store.clone(),
            Arc::new(crate::store::testing::SavedTasks::default()),
        );
        let first = tokio::spawn({
            let b = backend.clone();
            async move { b.refresh().await }
        });
        looked.recv().await.expect("the first look starts");
        let later: Vec<_> = (0..3)
            .map(|_| {
                let b = backend.clone();
                tokio::spawn(async move { b.refresh().await })
            })
            .collect();
        // One thread: each later caller runs to the wait for the look in progress.
        tokio::task::yield_now().await;
        store.gate.add_permits(10);
        first.await.expect("no panic").expect("the look");
        for l in later {
            l.await.expect("no panic").expect("the look");
        }
        assert_eq!(store.looks.load(Ordering::SeqCst), 2);
    }
}
