//! The Gcore write protocols: create, PATCH, rule add and delete, delete.
//!
//! A Gcore write answers task ids at once; the group's lock stays held until
//! those tasks end (by a background waiter), so no other write through the
//! gateway — CF or Gcore — plans against the state they are changing. While
//! the lock is held a Gcore write answers 409 "locked by another task", as
//! Gcore itself does; with `Prefer: wait` it waits for the lock instead and
//! answers the final group. On a backend without tasks (a compact one) the
//! gateway runs the change in the background and serves the task itself.

use super::Service;
use crate::backend::{BackendError, Cx, Write};
use crate::coord::{Held, LockKey};
use crate::dialect::gcore::body::{GcoreCreate, GcorePatch};
use crate::error::{Error, Kind, Missing, Result};
use crate::mapping::Mapping;
use crate::model::{Atom, Created, Group, GroupId, GroupPatch, Scope, Shape, TaskId, TaskKind, Uuid};
use std::time::Duration;
use tokio::time::Instant;

/// How long a Gcore caller wants to wait for the final state (`Prefer: wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    No,
    UpTo(Duration),
}

/// What a Gcore write answers.
#[derive(Debug)]
pub enum GcoreWritten {
    /// The tasks to poll (`[]`: nothing changed).
    Tasks(Vec<TaskId>),
    /// The final group (the caller waited).
    Group(Group),
}

fn locked(id: &GroupId) -> Error {
    Error::new(
        Kind::Conflict,
        format!("Resource `{id}` is already locked by another task. Please try again later."),
    )
}

impl Service {
    fn wait_deadline(&self, waiting: Waiting) -> Option<Instant> {
        match waiting {
            Waiting::No => None,
            Waiting::UpTo(d) => Some(Instant::now() + d.min(self.settings.deadline)),
        }
    }

    /// The group's lock: waited for when the caller waits, else taken only if free.
    async fn gcore_lock(&self, scope: Scope, id: &GroupId, waiting: Waiting) -> Result<Held> {
        let key = LockKey::Group(scope, id.clone());
        match waiting {
            Waiting::UpTo(_) => Ok(self.coord.lock(key).await?),
            Waiting::No => self.coord.try_lock(key).await?.ok_or_else(|| locked(id)),
        }
    }

    fn check_reserved(cx: &Cx, keys: &[&str]) -> Result<()> {
        if cx.reserved_tags || !keys.iter().any(|k| Mapping::reserves_tag(k)) {
            return Ok(());
        }
        Err(Error::new(
            Kind::Forbidden,
            "tags under the reserved prefix sgbridge.cf. hold Cloud Foundry state; this API key may not change them",
        ))
    }

    /// A key that may not write CF state may not delete or revert a group
    /// CF state makes live (a running or staging default, or bound to a
    /// space): either changes what CF apps get, which the reserved tags guard.
    fn check_cf_state(&self, cx: &Cx, group: &Group, what: &str) -> Result<()> {
        if cx.reserved_tags {
            return Ok(());
        }
        let attrs = self.settings.mapping.cf_attrs(group);
        let live = match (
            attrs.running_default || attrs.staging_default,
            attrs.spaces.len() + attrs.staging_spaces.len(),
        ) {
            (true, _) => "a Cloud Foundry running or staging default (it applies to every app)",
            (false, 0) => return Ok(()),
            (false, _) => "bound to Cloud Foundry spaces",
        };
        Err(Error::new(
            Kind::Forbidden,
            format!(
                "this security group is {live}; to {what} it changes Cloud Foundry state (the reserved sgbridge.cf. tags), which this API key may not change"
            ),
        ))
    }

    pub async fn gcore_create(
        &self,
        cx: &Cx,
        scope: Scope,
        req: GcoreCreate,
        waiting: Waiting,
    ) -> Result<GcoreWritten> {
        let keys: Vec<&str> = req.tags.iter().map(|(k, _)| k.as_str()).collect();
        Self::check_reserved(cx, &keys)?;
        if !self.backend.serves(scope) {
            return Err(Error::new(
                Kind::Unsupported,
                format!(
                    "project {}, region {} is not served by this gateway's backend",
                    scope.project_id, scope.region_id
                ),
            ));
        }
        let new = self
            .settings
            .mapping
            .plan_gcore_create(self.backend.shape(), &req)
            .map_err(Error::plan)?;
        // A dry run goes the synchronous way, so the planned write is met
        // (and stopped) within the request.
        if self.backend.shape() == Shape::Compact && waiting == Waiting::No && !cx.dry_run {
            self.note_planned("create", scope, None, super::audit::planned_new(&new));
            let this = self.clone();
            let cx2 = cx.clone();
            let id = self
                .synthesize(cx, scope, TaskKind::CreateGroup, None, move || async move {
                    match this.backend.create(&cx2, scope, new).await? {
                        Write::Done(Some(id)) => Ok(Created {
                            groups: vec![id],
                            rules: Vec::new(),
                        }),
                        _ => Ok(Created::default()),
                    }
                })
                .await?;
            return Ok(GcoreWritten::Tasks(vec![id]));
        }
        let deadline = self.wait_deadline(waiting).unwrap_or_else(|| self.deadline());
        self.note_planned("create", scope, None, super::audit::planned_new(&new));
        let write = self
            .backend
            .create(cx, scope, new)
            .await
            .map_err(|e| Error::backend(e, None))?;
        let tasks = match write {
            Write::Done(Some(id)) => return Ok(GcoreWritten::Group(self.settled(cx, scope, &id).await?)),
            Write::Done(None) => return Err(Error::internal("the backend's create named no group")),
            Write::Pending(tasks) if waiting == Waiting::No => return Ok(GcoreWritten::Tasks(tasks)),
            Write::Pending(tasks) => tasks,
        };
        let done = self.wait_tasks(scope, &tasks, deadline).await.map_err(Error::wait)?;
        let id = done
            .iter()
            .filter_map(|t| t.created.as_ref())
            .flat_map(|c| c.groups.iter())
            .next()
            .cloned()
            .ok_or_else(|| Error::new(Kind::Upstream, "the create task named no security group"))?;
        Ok(GcoreWritten::Group(self.settled(cx, scope, &id).await?))
    }

    pub async fn gcore_patch(
        &self,
        cx: &Cx,
        scope: Scope,
        id: &GroupId,
        req: GcorePatch,
        waiting: Waiting,
    ) -> Result<GcoreWritten> {
        let held = self.gcore_lock(scope, id, waiting).await?;
        let current = self.get(cx, scope, id).await?;
        Self::check_reserved(cx, &req.tags.keys(current.tags()))?;
        let patch = self
            .settings
            .mapping
            .plan_gcore_patch(&current, &req)
            .map_err(Error::plan)?;
        let created = Created {
            groups: vec![id.clone()],
            rules: Vec::new(),
        };
        self.gcore_change(
            cx,
            scope,
            current,
            patch,
            held,
            waiting,
            (TaskKind::UpdateGroup, created),
        )
        .await
    }

    pub async fn gcore_add_rule(
        &self,
        cx: &Cx,
        scope: Scope,
        id: &GroupId,
        atom: Atom,
        waiting: Waiting,
    ) -> Result<GcoreWritten> {
        let held = self.gcore_lock(scope, id, waiting).await?;
        let current = self.get(cx, scope, id).await?;
        if current.shape() == Shape::Compact {
            let view = self.gcore_view(&current);
            let wanted = Atom {
                log: false,
                ..atom.clone()
            };
            if let Some(r) = view.rules.iter().find(|r| r.atom == wanted) {
                return Err(Error::new(
                    Kind::Conflict,
                    format!("Security group rule already exists. Rule id is {}.", r.id),
                ));
            }
            let mut rules: Vec<Atom> = view.rules.iter().map(|r| r.atom.clone()).collect();
            let created = Created {
                groups: Vec::new(),
                rules: vec![crate::mapping::on_cf::rule_id(current.id(), &wanted)],
            };
            rules.push(atom);
            return self
                .compact_rules(
                    cx,
                    scope,
                    current,
                    rules,
                    held,
                    waiting,
                    (TaskKind::CreateRule, created),
                )
                .await;
        }
        self.note_planned(
            "add_rule",
            scope,
            Some(&current),
            super::audit::with_rule(&current, &atom),
        );
        let write = self
            .backend
            .add_rule(cx, scope, id, atom)
            .await
            .map_err(|e| Error::backend(e, Some(id.as_str())))?;
        let patch = GroupPatch::empty(Shape::Atomic);
        self.gcore_settle(cx, scope, current, patch, held, waiting, write).await
    }

    pub async fn gcore_delete_rule(
        &self,
        cx: &Cx,
        scope: Scope,
        id: &GroupId,
        rule_id: &Uuid,
        waiting: Waiting,
    ) -> Result<GcoreWritten> {
        let held = self.gcore_lock(scope, id, waiting).await?;
        let current = self.get(cx, scope, id).await?;
        if current.shape() == Shape::Compact {
            let view = self.gcore_view(&current);
            if !view.rules.iter().any(|r| &r.id == rule_id) {
                return Err(Error::not_found(Missing::Rule(rule_id.to_string())));
            }
            let rules: Vec<Atom> = view
                .rules
                .iter()
                .filter(|r| &r.id != rule_id)
                .map(|r| r.atom.clone())
                .collect();
            return self
                .compact_rules(
                    cx,
                    scope,
                    current,
                    rules,
                    held,
                    waiting,
                    (TaskKind::DeleteRule, Created::default()),
                )
                .await;
        }
        self.note_planned(
            "delete_rule",
            scope,
            Some(&current),
            super::audit::without_rule(&current, rule_id),
        );
        let write = self.backend.delete_rule(cx, scope, id, rule_id).await.map_err(|e| {
            if e.is_not_found() && e.message.contains("rule") {
                Error::not_found(Missing::Rule(rule_id.to_string()))
            } else {
                Error::backend(e, Some(id.as_str()))
            }
        })?;
        let patch = GroupPatch::empty(Shape::Atomic);
        self.gcore_settle(cx, scope, current, patch, held, waiting, write).await
    }

    /// `DELETE /cloud/v1/securitygroups/…`: synchronous, as in Gcore.
    pub async fn gcore_delete(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<()> {
        let _held = self.gcore_lock(scope, id, Waiting::No).await?;
        let current = self.get(cx, scope, id).await?;
        self.check_cf_state(cx, &current, "delete")?;
        self.note("delete", scope, Some(&current), None);
        self.backend.delete(cx, scope, id).await.map_err(|e| {
            if e.is_not_found() {
                Error::not_found(Missing::Group(id.to_string()))
            } else {
                Error::backend(e, Some(id.as_str()))
            }
        })
    }

    /// A rule added or deleted on a compact group: the whole new rule set,
    /// planned like a PATCH.
    #[allow(clippy::too_many_arguments)]
    async fn compact_rules(
        &self,
        cx: &Cx,
        scope: Scope,
        current: Group,
        rules: Vec<Atom>,
        held: Held,
        waiting: Waiting,
        task: (TaskKind, Created),
    ) -> Result<GcoreWritten> {
        let req = GcorePatch {
            rules: Some(rules),
            ..GcorePatch::default()
        };
        let patch = self
            .settings
            .mapping
            .plan_gcore_patch(&current, &req)
            .map_err(Error::plan)?;
        self.gcore_change(cx, scope, current, patch, held, waiting, task).await
    }

    /// Commits a planned change to an existing group.
    #[allow(clippy::too_many_arguments)]
    async fn gcore_change(
        &self,
        cx: &Cx,
        scope: Scope,
        current: Group,
        patch: GroupPatch,
        held: Held,
        waiting: Waiting,
        (kind, created): (TaskKind, Created),
    ) -> Result<GcoreWritten> {
        if patch.is_empty() {
            return match waiting {
                Waiting::No => Ok(GcoreWritten::Tasks(Vec::new())),
                Waiting::UpTo(_) => Ok(GcoreWritten::Group(current)),
            };
        }
        let op = match kind {
            TaskKind::CreateRule => "add_rule",
            TaskKind::DeleteRule => "delete_rule",
            _ => "update",
        };
        self.note_planned(op, scope, Some(&current), super::audit::patched(&current, &patch));
        if current.shape() == Shape::Compact && waiting == Waiting::No && !cx.dry_run {
            let this = self.clone();
            let cx2 = cx.clone();
            let id = current.id().clone();
            let task = self
                .synthesize(cx, scope, kind, Some(held), move || async move {
                    this.backend.update(&cx2, scope, &id, patch).await?;
                    Ok(created)
                })
                .await?;
            return Ok(GcoreWritten::Tasks(vec![task]));
        }
        let write = self
            .backend
            .update(cx, scope, current.id(), patch.clone())
            .await
            .map_err(|e| Error::backend(e, Some(current.id().as_str())))?;
        self.gcore_settle(cx, scope, current, patch, held, waiting, write).await
    }

    /// After the backend accepted a write: answer its tasks and keep the lock
    /// until they end, or (the caller waits) wait and answer the group.
    #[allow(clippy::too_many_arguments)]
    async fn gcore_settle(
        &self,
        cx: &Cx,
        scope: Scope,
        before: Group,
        patch: GroupPatch,
        held: Held,
        waiting: Waiting,
        write: Write,
    ) -> Result<GcoreWritten> {
        let tasks = match write {
            Write::Done(_) => Vec::new(),
            Write::Pending(t) => t,
        };
        match self.wait_deadline(waiting) {
            Some(deadline) => {
                self.settle_write(cx, scope, &before, &patch, &tasks, deadline).await?;
                drop(held);
                Ok(GcoreWritten::Group(self.settled(cx, scope, before.id()).await?))
            }
            None => {
                if !tasks.is_empty() {
                    let this = self.clone();
                    let cx = cx.clone();
                    let tasks2 = tasks.clone();
                    let deadline = self.deadline();
                    tokio::spawn(async move {
                        if let Err(e) = this.settle_write(&cx, scope, &before, &patch, &tasks2, deadline).await {
                            tracing::info!(request_id = %cx.request_id, error = %e, "a Gcore caller's write did not complete");
                        }
                        drop(held);
                    });
                }
                Ok(GcoreWritten::Tasks(tasks))
            }
        }
    }

    /// `POST …/copy`: a new group with the same rules (and the caller's
    /// tags), named `name`. CF state (defaults, space bindings) is not copied:
    /// a copy must not start applying to apps on its own.
    pub async fn gcore_copy(&self, cx: &Cx, scope: Scope, id: &GroupId, name: String) -> Result<Group> {
        let source = self.get(cx, scope, id).await?;
        let view = self.gcore_view(&source);
        let req = GcoreCreate {
            name,
            description: Some(source.meta.description.clone()).filter(|d| !d.is_empty()),
            rules: Some(view.rules.iter().map(|r| r.atom.clone()).collect()),
            tags: view
                .tags
                .iter()
                .filter(|t| !t.read_only && !Mapping::is_cf_attr(&t.key))
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect(),
        };
        let trusted = Cx {
            reserved_tags: true,
            ..cx.clone()
        };
        match self
            .gcore_create(&trusted, scope, req, Waiting::UpTo(self.settings.deadline))
            .await?
        {
            GcoreWritten::Group(g) => {
                crate::journal::set_op("copy");
                Ok(g)
            }
            GcoreWritten::Tasks(_) => Err(Error::internal("a waited-for copy answered tasks")),
        }
    }

    /// `POST …/revert`: the group's rules back to Gcore's default template.
    pub async fn gcore_revert(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<Group> {
        if self.backend.shape() == Shape::Compact {
            return Err(Error::new(
                Kind::Unsupported,
                "revert_to_default has no meaning over a Cloud Foundry backend: a CF security group has no default rule template",
            ));
        }
        self.check_cf_state(cx, &self.get(cx, scope, id).await?, "revert")?;
        let req = GcorePatch {
            rules: Some(crate::dialect::gcore::template::default_rules()),
            ..GcorePatch::default()
        };
        match self
            .gcore_patch(cx, scope, id, req, Waiting::UpTo(self.settings.deadline))
            .await?
        {
            GcoreWritten::Group(g) => {
                crate::journal::set_op("revert");
                Ok(g)
            }
            GcoreWritten::Tasks(_) => Err(Error::internal("a waited-for revert answered tasks")),
        }
    }

    /// `PUT /cloud/v1/securitygrouprules/…/{rule_id}`: the rule replaced by
    /// `atom` in the group that holds it, in one change; the new rule.
    pub async fn gcore_replace_rule(
        &self,
        cx: &Cx,
        scope: Scope,
        rule_id: &Uuid,
        atom: Atom,
    ) -> Result<(Group, crate::model::GroupRule)> {
        let groups = self.list(cx, scope, None).await?;
        let holder = groups
            .iter()
            .find(|g| self.gcore_view(g).rules.iter().any(|r| &r.id == rule_id))
            .ok_or_else(|| Error::not_found(Missing::Rule(rule_id.to_string())))?;
        let id = holder.id().clone();
        let rules: Vec<Atom> = self
            .gcore_view(holder)
            .rules
            .iter()
            .map(|r| if &r.id == rule_id { atom.clone() } else { r.atom.clone() })
            .collect();
        let req = GcorePatch {
            rules: Some(rules),
            ..GcorePatch::default()
        };
        let group = match self
            .gcore_patch(cx, scope, &id, req, Waiting::UpTo(self.settings.deadline))
            .await?
        {
            GcoreWritten::Group(g) => {
                crate::journal::set_op("replace_rule");
                g
            }
            GcoreWritten::Tasks(_) => return Err(Error::internal("a waited-for replace answered tasks")),
        };
        let wanted = Atom { log: false, ..atom };
        let new = self
            .gcore_view(&group)
            .rules
            .iter()
            .find(|r| r.atom == wanted)
            .cloned()
            .ok_or_else(|| Error::new(Kind::Upstream, "the replaced rule is not in the group afterwards"))?;
        Ok((group, new))
    }

    /// Runs `work` in the background as a task the gateway serves itself.
    /// With a durable or shared store the task's start is saved first (a
    /// crash must not lose a task its caller was told of); if it cannot be,
    /// the work never runs and the caller hears so.
    async fn synthesize<F, Fut>(
        &self,
        cx: &Cx,
        scope: Scope,
        kind: TaskKind,
        held: Option<Held>,
        work: F,
    ) -> Result<TaskId>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = std::result::Result<Created, BackendError>> + Send,
    {
        let registry = self.synthesized.clone();
        let task = registry.start(scope, kind, Some(cx.request_id.clone()));
        if let (Some(log), Some(started)) = (&self.task_log, registry.get(&task)) {
            if let Err(e) = log.save_now(super::GATEWAY_TASKS, &[started]).await {
                registry.finish(
                    &task,
                    Err("the task's start could not be saved; nothing was applied".into()),
                );
                return Err(Error::new(Kind::Unavailable, format!("{e}; nothing was changed")));
            }
        }
        let id = task.clone();
        tokio::spawn(async move {
            let outcome = work().await.map_err(|e| e.message);
            registry.finish(&id, outcome);
            drop(held);
        });
        Ok(task)
    }
}
