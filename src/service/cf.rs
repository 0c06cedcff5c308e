//! The CF write protocols (v2 and v3 alike): create, change, delete.

use super::Service;
use crate::backend::{Cx, Write};
use crate::coord::{Held, LockKey};
use crate::error::{Applied, Error, Kind, Missing, Result};
use crate::mapping::{CfChange, CfCreate};
use crate::model::{Group, GroupId, GroupPatch, PatchContent, Scope, TagPatch, TaskId};
use tokio::time::Instant;

/// A CF write's result: the group as it now is, and notes for the caller
/// (port-25 narrowing).
#[derive(Debug)]
pub struct CfWritten {
    pub group: Group,
    pub warnings: Vec<String>,
    /// The change planned to nothing against `group`, which is the very
    /// state it was planned against (nothing was sent to the backend).
    pub unchanged: bool,
}

impl Service {
    /// `POST /v2/security_groups`, `POST /v3/security_groups`.
    pub async fn cf_create(&self, cx: &Cx, req: CfCreate) -> Result<CfWritten> {
        let scope = self.cf_scope();
        let deadline = self.deadline();
        let _name = self.coord.lock(LockKey::Name(scope, req.name.clone())).await?;
        self.reconcile(cx, scope, &req.name, deadline).await?;
        if self.name_taken(cx, scope, &req.name, None).await? {
            return Err(Error::new(Kind::NameTaken(req.name.clone()), "name taken"));
        }
        let marker = crate::model::Uuid::new_random().to_string();
        let (new, warnings) = super::heavy(req.rules.len(), || {
            self.settings
                .mapping
                .plan_cf_create(self.backend.shape(), &req, &marker)
        })
        .map_err(Error::plan)?;
        warnings.iter().for_each(|w| crate::journal::warn(w.clone()));
        self.note_planned("create", scope, None, super::audit::planned_new(&new));
        let id = self.commit_create(cx, scope, new, &req.name, &marker, deadline).await?;
        let group = self.get(cx, scope, &id).await?;
        crate::journal::settled(&group);
        Ok(CfWritten {
            group,
            warnings,
            unchanged: false,
        })
    }

    /// `PUT /v2/security_groups/:guid`, `PATCH /v3/security_groups/:guid`,
    /// bindings and defaults: any [`CfChange`].
    pub async fn cf_update(&self, cx: &Cx, id: &GroupId, change: CfChange) -> Result<CfWritten> {
        let scope = self.cf_scope();
        let deadline = self.deadline();
        let key = LockKey::Group(scope, id.clone());
        let _group = match self.coord.try_lock(key.clone()).await? {
            Some(held) => held,
            None => {
                if let Some(unchanged) = self.cf_unchanged(cx, scope, id, &change).await? {
                    return Ok(unchanged);
                }
                self.coord.lock(key).await?
            }
        };
        let mut renaming: Option<(String, Held)> = None;
        let mut pauses = self.conflict_pauses();
        loop {
            let current = self.get(cx, scope, id).await?;
            if let Some(name) = change.name.as_ref().filter(|n| *n != current.name()) {
                // Renames are rare: their futures are boxed so a waiting
                // write does not carry room for them (see `settle_write`).
                if renaming.as_ref().is_none_or(|(n, _)| n != name) {
                    let held = self.coord.lock(LockKey::Name(scope, name.clone())).await?;
                    Box::pin(self.reconcile(cx, scope, name, deadline)).await?;
                    renaming = Some((name.clone(), held));
                }
                if Box::pin(self.name_taken(cx, scope, name, Some(id))).await? {
                    return Err(Error::new(Kind::NameTaken(name.clone()), "name taken"));
                }
            }
            let size = change.rules.as_ref().map_or(0, Vec::len);
            let (patch, warnings) =
                super::heavy(size, || self.settings.mapping.plan_cf_update(&current, &change)).map_err(Error::plan)?;
            warnings.iter().for_each(|w| crate::journal::warn(w.clone()));
            if patch.is_empty() {
                return Ok(CfWritten {
                    group: current,
                    warnings,
                    unchanged: true,
                });
            }
            self.note_planned("update", scope, Some(&current), super::audit::patched(&current, &patch));
            match self.backend.update(cx, scope, id, patch.clone()).await {
                Ok(Write::Done(_)) => {}
                Ok(Write::Pending(tasks)) => {
                    self.settle_write(cx, scope, &current, &patch, &tasks, deadline).await?;
                }
                Err(e) if e.is_conflict() => {
                    // Someone else's task holds the group: read again and re-plan.
                    self.pause_or_give_up(&mut pauses, deadline, Error::backend(e, Some(id.as_str())))
                        .await?;
                    continue;
                }
                Err(e) => return Err(Error::backend(e, Some(id.as_str()))),
            }
            let group = self.get(cx, scope, id).await?;
            crate::journal::settled(&group);
            return Ok(CfWritten {
                group,
                warnings,
                unchanged: false,
            });
        }
    }

    /// A change that changes nothing, answered from one read while another
    /// write holds the group (tooling re-applying the state it wants, many
    /// at once): no wait for the lock. It is ordered before the write in
    /// progress, which has not answered yet. `None`: a change to make.
    async fn cf_unchanged(&self, cx: &Cx, scope: Scope, id: &GroupId, change: &CfChange) -> Result<Option<CfWritten>> {
        let current = self.get(cx, scope, id).await?;
        if change.name.as_ref().is_some_and(|n| *n != current.name()) {
            return Ok(None);
        }
        let size = change.rules.as_ref().map_or(0, Vec::len);
        let (patch, warnings) =
            super::heavy(size, || self.settings.mapping.plan_cf_update(&current, change)).map_err(Error::plan)?;
        if !patch.is_empty() {
            return Ok(None);
        }
        warnings.iter().for_each(|w| crate::journal::warn(w.clone()));
        Ok(Some(CfWritten {
            group: current,
            warnings,
            unchanged: true,
        }))
    }

    /// `DELETE /v2/security_groups/:guid`, `DELETE /v3/security_groups/:guid`.
    pub async fn cf_delete(&self, cx: &Cx, id: &GroupId) -> Result<()> {
        let scope = self.cf_scope();
        let _group = self.coord.lock(LockKey::Group(scope, id.clone())).await?;
        self.note_delete(cx, scope, id).await;
        self.delete_locked(cx, scope, id, self.deadline()).await
    }

    /// Deletes a group whose lock is held, retrying 409s until the deadline.
    pub(super) async fn delete_locked(&self, cx: &Cx, scope: Scope, id: &GroupId, deadline: Instant) -> Result<()> {
        let mut pauses = self.conflict_pauses();
        loop {
            match self.backend.delete(cx, scope, id).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_conflict() => {
                    self.pause_or_give_up(&mut pauses, deadline, Error::backend(e, Some(id.as_str())))
                        .await?
                }
                Err(e) if e.is_not_found() => return Err(Error::not_found(Missing::Group(id.to_string()))),
                Err(e) => return Err(Error::backend(e, Some(id.as_str()))),
            }
        }
    }

    /// Sleeps before the next try, or gives `e` back when the deadline would pass.
    pub(super) async fn pause_or_give_up(
        &self,
        pauses: &mut impl Iterator<Item = std::time::Duration>,
        deadline: Instant,
        e: Error,
    ) -> Result<()> {
        let next = pauses.next().map(|d| Instant::now() + d);
        match next {
            Some(at) if at < deadline => {
                self.telemetry.conflict_retry();
                tokio::time::sleep_until(at).await;
                Ok(())
            }
            _ => Err(e.context("still refused at the deadline")),
        }
    }

    /// Waits on a write's tasks. If one fails, any tag change the backend
    /// applied anyway is undone, so a failed write applies nothing.
    pub(super) async fn settle_write(
        &self,
        cx: &Cx,
        scope: Scope,
        before: &Group,
        patch: &GroupPatch,
        tasks: &[TaskId],
        deadline: Instant,
    ) -> Result<()> {
        match self.wait_tasks(scope, tasks, deadline).await {
            Ok(_) => Ok(()),
            Err(e @ crate::tasks::WaitError::Failed { .. }) => {
                let err = Error::wait(e).with_tasks(tasks.to_vec());
                // Boxed: only a failed write needs it, and inline it would
                // make every waiting write's future as large as the undo.
                match Box::pin(self.undo_tags(cx, scope, before, patch)).await {
                    Ok(undone) => {
                        let note = if undone {
                            "the backend applied the tag change anyway; it was undone, so nothing was applied"
                        } else {
                            "nothing was applied"
                        };
                        Err(err.context(note).with_applied(Applied::Nothing))
                    }
                    Err(undo) => Err(err
                        .context(&format!("the tag change could not be undone ({undo})"))
                        .with_applied(Applied::Unknown)),
                }
            }
            Err(e) => Err(Error::wait(e)),
        }
    }

    /// Restores the tags `patch` touched if the backend applied them although
    /// the write failed; `true` when something had to be undone.
    async fn undo_tags(&self, cx: &Cx, scope: Scope, before: &Group, patch: &GroupPatch) -> Result<bool> {
        let PatchContent::Atomic { tags, .. } = &patch.content else {
            return Ok(false);
        };
        if *tags == TagPatch::Keep {
            return Ok(false);
        }
        let now = self.get(cx, scope, before.id()).await?;
        let undo = tags.undo(now.tags(), before.tags());
        if undo == TagPatch::Keep {
            return Ok(false);
        }
        let restore = GroupPatch {
            name: None,
            description: None,
            content: PatchContent::Atomic {
                rules: None,
                tags: undo,
            },
        };
        match self.backend.update(cx, scope, before.id(), restore).await {
            Ok(Write::Pending(t)) if !t.is_empty() => {
                self.wait_tasks(scope, &t, self.deadline()).await.map_err(Error::wait)?;
                Ok(true)
            }
            Ok(_) => Ok(true),
            Err(e) => Err(Error::backend(e, Some(before.id().as_str()))),
        }
    }
}
