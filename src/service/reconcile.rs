//! Creates whose answer was lost.
//!
//! A create that may have been applied without our knowing (the connection
//! broke after sending, the answer came after the timeout, or its tasks were
//! still running at the deadline) is recorded with the marker its group
//! carries. Before the next create of that name — and at once, in the same
//! request — it is reconciled: the marked group is looked for, the scope's
//! pending create tasks since it was sent are waited on, and only when
//! neither turns it up is it forgotten. So a caller's immediate retry finds
//! the in-flight create instead of making a second group.

use super::Service;
use crate::backend::{Cx, Write};
use crate::coord::UncertainCreate;
use crate::error::{Applied, Error, Kind, Result};
use crate::mapping::Mapping;
use crate::model::{GroupId, NewGroup, Scope, Shape, TaskKind, TaskQuery, TaskState};
use chrono::Utc;
use tokio::time::Instant;

/// How far back pending create tasks are looked for (clock skew).
const SKEW: chrono::Duration = chrono::Duration::seconds(120);

impl Service {
    /// Sends a create and waits for it; returns the new group's id. A create
    /// whose outcome is unknown is recorded and reconciled at once.
    pub(super) async fn commit_create(
        &self,
        cx: &Cx,
        scope: Scope,
        new: NewGroup,
        name: &str,
        marker: &str,
        deadline: Instant,
    ) -> Result<GroupId> {
        let since = Utc::now();
        let uncertain = UncertainCreate {
            scope,
            name: name.to_string(),
            marker: marker.to_string(),
            since,
        };
        let mut pauses = self.conflict_pauses();
        loop {
            let tasks = match self.backend.create(cx, scope, new.clone()).await {
                Ok(Write::Done(Some(id))) => return Ok(id),
                Ok(Write::Done(None)) => return Err(Error::internal("the backend's create named no group")),
                Ok(Write::Pending(tasks)) => tasks,
                Err(e) if e.is_conflict() => {
                    self.pause_or_give_up(&mut pauses, deadline, Error::backend(e, None))
                        .await?;
                    continue;
                }
                Err(e) if e.uncertain => {
                    tracing::warn!(%scope, name, error = %e, "the create's answer was lost; reconciling");
                    self.coord.record_uncertain(uncertain.clone()).await?;
                    return match self.settle_uncertain(cx, &uncertain, deadline).await? {
                        Some(id) => Ok(id),
                        None => Err(Error::backend(e, None).with_applied(Applied::Nothing)),
                    };
                }
                Err(e) => return Err(Error::backend(e, None)),
            };
            return match self.wait_tasks(scope, &tasks, deadline).await {
                Ok(done) => done
                    .iter()
                    .filter_map(|t| t.created.as_ref())
                    .flat_map(|c| c.groups.iter())
                    .next()
                    .cloned()
                    .ok_or_else(|| Error::new(Kind::Upstream, "the backend's create task named no security group")),
                Err(e @ crate::tasks::WaitError::Failed { .. }) => Err(Error::wait(e).with_applied(Applied::Nothing)),
                Err(e) => {
                    // Still running: it may yet create the group.
                    self.coord.record_uncertain(uncertain).await?;
                    Err(Error::wait(e))
                }
            };
        }
    }

    /// Settles every uncertain create of `name` before a new one is sent.
    pub(super) async fn reconcile(&self, cx: &Cx, scope: Scope, name: &str, deadline: Instant) -> Result<()> {
        for create in self.coord.uncertain(scope, name).await? {
            self.settle_uncertain(cx, &create, deadline).await?;
        }
        Ok(())
    }

    /// Finds out what became of an uncertain create: the id of the group it
    /// made, or `None` when it made none. Forgotten once known; an error
    /// (the backend cannot tell yet) keeps it for the next attempt.
    async fn settle_uncertain(&self, cx: &Cx, create: &UncertainCreate, deadline: Instant) -> Result<Option<GroupId>> {
        if let Some(id) = self.find_marked(cx, create).await? {
            self.coord.settle(create.scope, &create.name, &create.marker).await?;
            return Ok(Some(id));
        }
        let query = TaskQuery {
            project_ids: vec![create.scope.project_id],
            region_ids: vec![create.scope.region_id],
            states: vec![TaskState::New, TaskState::Running],
            kind: Some(TaskKind::CreateGroup),
            from: Some(create.since - SKEW),
            limit: 1000,
            ..TaskQuery::default()
        };
        let (_, pending) = self.backend.tasks(cx, &query).await.map_err(|e| {
            Error::backend(e, None).context("cannot tell whether an earlier create of this name was applied")
        })?;
        if !pending.is_empty() {
            let ids: Vec<_> = pending.into_iter().map(|t| t.id).collect();
            match self.wait_tasks(create.scope, &ids, deadline).await {
                Ok(_) | Err(crate::tasks::WaitError::Failed { .. }) => {}
                Err(e) => {
                    return Err(Error::wait(e)
                        .context("an earlier create of this name is still running")
                        .with_applied(Applied::Unknown))
                }
            }
        }
        let found = self.find_marked(cx, create).await?;
        self.coord.settle(create.scope, &create.name, &create.marker).await?;
        Ok(found)
    }

    async fn find_marked(&self, cx: &Cx, create: &UncertainCreate) -> Result<Option<GroupId>> {
        let named = self.list(cx, create.scope, Some(&create.name)).await?;
        // A compact backend (a Cloud Controller) keeps names unique itself and
        // has no tags to mark with: the name is the mark.
        Ok(named
            .into_iter()
            .find(|g| g.shape() == Shape::Compact || Mapping::create_marker(g) == Some(create.marker.as_str()))
            .map(|g| g.meta.id))
    }
}
