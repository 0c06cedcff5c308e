//! The embedded backend's groups: each change committed with its tasks'
//! states before anyone hears of it, the changes of every caller waiting
//! when a transaction starts sharing it (group commit: one advisory lock
//! and one flush to disk for all of them); and the changes other replicas
//! made, read by cursor.

use super::{db_error, Postgres, GROUPS_LOCK};
use crate::model::{Group, Scope, Task};
use crate::store::{rows, Changes, GroupChange, GroupLog, StoreError};
use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;

/// Most callers' changes in one transaction.
const MAX_BATCH: usize = 64;

/// One caller's change, waiting for the transaction that carries it.
pub(super) struct Pending {
    changes: Vec<GroupChange>,
    tasks: Vec<Task>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

fn closing() -> StoreError {
    StoreError("the store is closing; the change was not saved".into())
}

/// Commits the changes waiting, a transaction at a time (across replicas
/// the advisory lock serialises them anyway, so change numbers are seen in
/// commit order). A transaction carries every change waiting when it
/// starts; if it fails, each of its changes is tried again alone, so a
/// change the database refuses fails no other. (Trying again is safe: every
/// statement is an upsert guarded by revision, a delete, or an update of
/// what is still pending.)
pub(super) async fn committer(db: std::sync::Weak<Postgres>, mut queue: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        // Gone: the callers hear `closing` as their answers drop.
        let Some(db) = db.upgrade() else { return };
        if batch.len() > 1 && db.timed("commit_groups", db.transact(&batch)).await.is_ok() {
            for p in batch {
                let _ = p.done.send(Ok(()));
            }
            continue;
        }
        for p in batch {
            let saved = db.timed("commit_groups", db.transact(std::slice::from_ref(&p))).await;
            let _ = p.done.send(saved);
        }
    }
}

impl Postgres {
    /// One transaction holding every change of `batch`. Its statements are
    /// sent together (tokio-postgres pipelines the queries of one
    /// connection polled at once, and the server runs them in the order
    /// sent): a round trip for the batch, not one per statement.
    async fn transact(&self, batch: &[Pending]) -> Result<(), StoreError> {
        let statements = statements(batch, &self.replica)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        if batch.iter().any(|p| !p.changes.is_empty()) {
            // First and alone: change numbers are taken under it.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&GROUPS_LOCK])
                .await
                .map_err(db_error)?;
        }
        // `try_join_all` polls up to 30 futures in order on its first poll,
        // which is when each sends its query: the order is kept.
        for chunk in statements.chunks(30) {
            let mut prepared = Vec::with_capacity(chunk.len());
            for (sql, _) in chunk {
                prepared.push(tx.prepare_cached(sql).await.map_err(db_error)?);
            }
            let params: Vec<Vec<&(dyn ToSql + Sync)>> = chunk
                .iter()
                .map(|(_, ps)| ps.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect())
                .collect();
            let runs = prepared
                .iter()
                .zip(&params)
                .map(|(st, ps)| tx.execute(st, ps.as_slice()));
            futures_util::future::try_join_all(runs).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }
}

type Param = Box<dyn ToSql + Sync + Send>;

/// The statements of a batch, in order: for each caller its groups, its
/// tasks' states, and the audit events its ended tasks settle.
fn statements(batch: &[Pending], replica: &str) -> Result<Vec<(&'static str, Vec<Param>)>, StoreError> {
    let mut out: Vec<(&'static str, Vec<Param>)> = Vec::new();
    let now = chrono::Utc::now().timestamp();
    for p in batch {
        for change in &p.changes {
            match change {
                GroupChange::Put { scope, seq, group } => out.push((
                    GROUP_UPSERT,
                    vec![
                        Box::new(scope.project_id as i64),
                        Box::new(scope.region_id as i64),
                        Box::new(group.id().to_string()),
                        Box::new(*seq as i64),
                        Box::new(group.meta.revision as i64),
                        Box::new(rows::group_text(*scope, group)?),
                    ],
                )),
                GroupChange::Gone { scope, id } => {
                    for sql in [GROUP_DELETE, TOMBSTONE_INSERT] {
                        out.push((
                            sql,
                            vec![
                                Box::new(scope.project_id as i64),
                                Box::new(scope.region_id as i64),
                                Box::new(id.to_string()),
                            ],
                        ));
                    }
                }
            }
        }
        for t in &p.tasks {
            out.push((
                super::TASK_UPSERT,
                vec![
                    Box::new("embedded"),
                    Box::new(t.id.to_string()),
                    Box::new(rows::state_name(t)),
                    Box::new(rows::task_text(t)?),
                    Box::new(replica.to_string()),
                ],
            ));
        }
        let (id, name) = crate::store::audit::the_group(&p.changes);
        for (request, outcome) in crate::store::audit::settled(&p.tasks) {
            out.push((
                crate::store::audit::settle_sql(true),
                vec![
                    Box::new(request),
                    Box::new(outcome),
                    Box::new(now),
                    Box::new(id.clone()),
                    Box::new(name.clone()),
                ],
            ));
        }
    }
    Ok(out)
}

/// The changes past the cursor ($1) and the newest tombstone swept (kind 2).
const LOOK: &str =
    "SELECT project_id, region_id, id, seq, body, changed, 0 AS kind FROM sgbridge_groups WHERE changed > $1
     UNION ALL
     SELECT project_id, region_id, id, 0, NULL, changed, 1 FROM sgbridge_groups_gone WHERE changed > $1
     UNION ALL
     SELECT 0, 0, '', 0, NULL, value, 2 FROM sgbridge_marks WHERE name = 'gone_horizon'";

const GROUP_UPSERT: &str = "INSERT INTO sgbridge_groups (project_id, region_id, id, seq, revision, body, changed)
     VALUES ($1, $2, $3, $4, $5, $6, nextval('sgbridge_group_changes'))
     ON CONFLICT (project_id, region_id, id) DO UPDATE
       SET revision = EXCLUDED.revision, body = EXCLUDED.body, changed = EXCLUDED.changed
     WHERE sgbridge_groups.revision <= EXCLUDED.revision";
const GROUP_DELETE: &str = "DELETE FROM sgbridge_groups WHERE project_id = $1 AND region_id = $2 AND id = $3";
const TOMBSTONE_INSERT: &str = "INSERT INTO sgbridge_groups_gone (project_id, region_id, id, changed)
     VALUES ($1, $2, $3, nextval('sgbridge_group_changes')) ON CONFLICT DO NOTHING";

#[async_trait]
impl GroupLog for Postgres {
    async fn commit(&self, changes: &[GroupChange], tasks: &[Task]) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        let pending = Pending {
            changes: changes.to_vec(),
            tasks: tasks.to_vec(),
            done,
        };
        self.commits.send(pending).map_err(|_| closing())?;
        answer.await.map_err(|_| closing())?
    }

    async fn load(&self) -> Result<Vec<(Scope, u64, Group)>, StoreError> {
        self.timed("load_groups", async {
            let client = self.client().await?;
            let found = client
                .query("SELECT project_id, region_id, seq, body FROM sgbridge_groups", &[])
                .await
                .map_err(db_error)?;
            found
                .iter()
                .map(|r| {
                    let scope = Scope {
                        project_id: r.get::<_, i64>(0) as u64,
                        region_id: r.get::<_, i64>(1) as u64,
                    };
                    Ok((scope, r.get::<_, i64>(2) as u64, rows::group_from(r.get(3))?))
                })
                .collect()
        })
        .await
    }

    fn shared(&self) -> bool {
        true
    }

    async fn changes(&self, cursor: i64) -> Result<Changes, StoreError> {
        self.timed("group_changes", async {
            let client = self.client().await?;
            // One statement, one snapshot, one round trip: the changes past
            // the cursor and the newest tombstone swept (kind 2). Not a
            // prepared statement: its generic plan guesses a third of the
            // table past any cursor and scans all of it (0.4 ms a look at
            // 9,000 groups, the store's largest cost); planned for the
            // actual cursor it reads the index's last few entries.
            let found = client
                .query_typed(LOOK, &[(&cursor, tokio_postgres::types::Type::INT8)])
                .await
                .map_err(db_error)?;
            let swept = found
                .iter()
                .find(|r| r.get::<_, i32>(6) == 2)
                .map(|r| r.get::<_, i64>(5));
            if swept.is_some_and(|h| h > cursor) {
                // Deletions past the cursor may be swept: read every group.
                drop(found);
                return self.every_group(client, cursor).await;
            }
            changes_from(cursor, false, found.iter().filter(|r| r.get::<_, i32>(6) != 2))
        })
        .await
    }
}

impl Postgres {
    /// Every group and tombstone there is, in one snapshot with the mark
    /// that made it necessary (the look began behind swept tombstones).
    async fn every_group(&self, mut client: deadpool_postgres::Object, cursor: i64) -> Result<Changes, StoreError> {
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db_error)?;
        let horizon: Option<i64> = tx
            .query_opt("SELECT value FROM sgbridge_marks WHERE name = 'gone_horizon'", &[])
            .await
            .map_err(db_error)?
            .map(|r| r.get(0));
        let full = horizon.is_some_and(|h| h > cursor);
        let from = if full { 0 } else { cursor };
        let found = tx
            .query(
                "SELECT project_id, region_id, id, seq, body, changed FROM sgbridge_groups WHERE changed > $1
                 UNION ALL
                 SELECT project_id, region_id, id, 0, NULL, changed FROM sgbridge_groups_gone WHERE changed > $1",
                &[&from],
            )
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        changes_from(cursor, full, found.iter())
    }
}

/// The changes rows say (project, region, id, seq, body or NULL for a
/// tombstone, change number), from `cursor` on.
fn changes_from<'a>(
    cursor: i64,
    full: bool,
    found: impl Iterator<Item = &'a tokio_postgres::Row>,
) -> Result<Changes, StoreError> {
    let mut out = Changes {
        cursor,
        full,
        ..Changes::default()
    };
    for r in found {
        let scope = Scope {
            project_id: r.get::<_, i64>(0) as u64,
            region_id: r.get::<_, i64>(1) as u64,
        };
        out.cursor = out.cursor.max(r.get::<_, i64>(5));
        match r.get::<_, Option<&str>>(4) {
            Some(body) => out
                .put
                .push((scope, r.get::<_, i64>(3) as u64, rows::group_from(body)?)),
            None => {
                let id = crate::model::GroupId::parse(r.get::<_, &str>(2))
                    .ok_or_else(|| StoreError("a stored group id is not valid".into()))?;
                out.gone.push((scope, id));
            }
        }
    }
    Ok(out)
}
