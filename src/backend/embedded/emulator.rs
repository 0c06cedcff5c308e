//! The emulator's controls over the embedded backend: its faults, its task
//! timing, a reset to empty, and a snapshot of its groups and tasks in the
//! `store export` format (to save and restore between tests).

use super::{Embedded, Entry, FaultView, Timing};
use crate::config::faults::FaultSpec;
use crate::model::{Content, Task};
use crate::store::dump::{self, Item};
use crate::store::GroupChange;

/// The emulator's faults, as `GET /_emulator/faults` shows them.
#[derive(Debug, serde::Serialize)]
pub struct FaultList {
    /// The seed the faults' probabilities draw from.
    pub seed: u64,
    pub faults: Vec<FaultView>,
}

/// What a restore took in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Restored {
    pub groups: u64,
    pub tasks: u64,
}

impl Embedded {
    pub fn faults(&self) -> FaultList {
        FaultList {
            seed: self.inner.faults.seed(),
            faults: self.inner.faults.list(),
        }
    }

    /// Replaces the armed faults (each draws afresh from the seed).
    pub fn set_faults(&self, specs: Vec<FaultSpec>) {
        tracing::info!(
            faults = specs.len(),
            seed = self.inner.faults.seed(),
            "emulator faults set"
        );
        self.inner.faults.set(specs);
    }

    pub fn timing(&self) -> Timing {
        self.timing_now().clone()
    }

    pub fn set_timing(&self, timing: Timing) {
        *self.timing_now() = timing;
    }

    /// Everything empty: no groups, no tasks (a task still running ends, and
    /// one stuck is let go), and faults and timing as the config has them.
    pub async fn reset(&self) -> Result<(), String> {
        self.inner.epoch.send_modify(|e| *e += 1);
        let gone = self.take_groups();
        let tasks = self.inner.tasks.clear("the emulator was reset");
        self.inner.faults.set(self.inner.cfg.faults.clone());
        *self.timing_now() = Timing::of(&self.inner.cfg);
        self.forget(gone, tasks).await
    }

    /// Replaces every group and task with a snapshot's (`store export`'s
    /// format; its idempotency records are not the emulator's and are
    /// skipped). A task the snapshot shows running ends in ERROR, as after
    /// a restart.
    pub async fn restore_snapshot(&self, snapshot: &str) -> Result<Restored, String> {
        let mut lines = snapshot.lines().enumerate();
        dump::check_header(lines.next().map(|(_, l)| l))?;
        let (mut groups, mut tasks) = (Vec::new(), Vec::new());
        for (i, line) in lines {
            match dump::parse_item(line).map_err(|e| format!("line {}: {e}", i + 1))? {
                Some(Item::Group { scope, seq, group }) => groups.push((scope, seq, group)),
                Some(Item::Task {
                    registry: "embedded",
                    task,
                }) => tasks.push(task),
                Some(_) | None => {}
            }
        }
        let counts = Restored {
            groups: groups.len() as u64,
            tasks: tasks.len() as u64,
        };
        self.inner.epoch.send_modify(|e| *e += 1);
        let gone = self.take_groups();
        let dropped = self.inner.tasks.clear("the emulator's state was replaced");
        self.forget(gone, dropped).await?;
        let mut puts = Vec::with_capacity(groups.len());
        {
            let mut state = self.state();
            for (scope, seq, group) in groups {
                let Content::Atomic(content) = group.content.clone() else {
                    return Err(format!("group {} is not in Gcore's shape", group.meta.id));
                };
                state.seq = state.seq.max(seq);
                state.gone.remove(&(scope, group.meta.id.clone()));
                let entry = Entry {
                    meta: group.meta.clone(),
                    content,
                    seq,
                    locked_by: None,
                };
                state.groups.insert((scope, group.meta.id.clone()), entry);
                puts.push(GroupChange::Put { scope, seq, group });
            }
        }
        let ended = self.inner.tasks.restore(tasks.clone());
        if let (Some(store), Some(log)) = (&self.inner.store, &self.inner.task_log) {
            log.save_now("embedded", &tasks).await.map_err(|e| e.to_string())?;
            store.commit(&puts, &ended).await.map_err(|e| e.to_string())?;
        }
        Ok(counts)
    }

    /// The groups and tasks as `store export` writes them.
    pub fn snapshot_text(&self) -> Result<String, String> {
        let mut out = dump::header_line()?;
        out.push('\n');
        let groups: Vec<_> = {
            let state = self.state();
            let mut all: Vec<_> = state
                .groups
                .iter()
                .map(|((scope, _), e)| (*scope, e.seq, e.group()))
                .collect();
            all.sort_by(|a, b| (a.1, &a.2.meta.id).cmp(&(b.1, &b.2.meta.id)));
            all
        };
        for (scope, seq, group) in &groups {
            out.push_str(&dump::group_line(*scope, *seq, group)?);
            out.push('\n');
        }
        for task in self.inner.tasks.all() {
            out.push_str(&dump::task_line("embedded", &task)?);
            out.push('\n');
        }
        Ok(out)
    }

    /// Empties the groups; answers their keys.
    fn take_groups(&self) -> Vec<GroupChange> {
        let mut state = self.state();
        let shared = self.shared().is_some();
        let gone: Vec<GroupChange> = state
            .groups
            .drain()
            .map(|((scope, id), _)| GroupChange::Gone { scope, id })
            .collect();
        if shared {
            for change in &gone {
                if let GroupChange::Gone { scope, id } = change {
                    state.gone.insert((*scope, id.clone()));
                }
            }
        }
        gone
    }

    /// Removes groups and tasks from a durable store too.
    async fn forget(&self, gone: Vec<GroupChange>, tasks: Vec<Task>) -> Result<(), String> {
        if let Some(store) = &self.inner.store {
            store.commit(&gone, &[]).await.map_err(|e| e.to_string())?;
        }
        if let Some(log) = &self.inner.task_log {
            log.forget("embedded", tasks.into_iter().map(|t| t.id).collect());
        }
        Ok(())
    }
}
