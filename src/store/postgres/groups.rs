//! The embedded backend's groups: one commit per change with its tasks'
//! states, and the changes other replicas made, read by cursor.

use super::{db_error, Postgres, GROUPS_LOCK};
use crate::model::{Group, Scope, Task};
use crate::store::{rows, Changes, GroupChange, GroupLog, StoreError};
use async_trait::async_trait;

#[async_trait]
impl GroupLog for Postgres {
    async fn commit(&self, changes: &[GroupChange], tasks: &[Task]) -> Result<(), StoreError> {
        self.timed("commit_groups", async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            if !changes.is_empty() {
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&GROUPS_LOCK])
                    .await
                    .map_err(db_error)?;
            }
            for change in changes {
                match change {
                    GroupChange::Put { scope, seq, group } => {
                        let body = rows::group_text(*scope, group)?;
                        tx.execute(
                            "INSERT INTO sgbridge_groups (project_id, region_id, id, seq, revision, body, changed)
                             VALUES ($1, $2, $3, $4, $5, $6, nextval('sgbridge_group_changes'))
                             ON CONFLICT (project_id, region_id, id) DO UPDATE
                               SET revision = EXCLUDED.revision, body = EXCLUDED.body, changed = EXCLUDED.changed
                             WHERE sgbridge_groups.revision <= EXCLUDED.revision",
                            &[
                                &(scope.project_id as i64),
                                &(scope.region_id as i64),
                                &group.id().to_string(),
                                &(*seq as i64),
                                &(group.meta.revision as i64),
                                &body,
                            ],
                        )
                        .await
                        .map_err(db_error)?;
                    }
                    GroupChange::Gone { scope, id } => {
                        let key: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                            [&(scope.project_id as i64), &(scope.region_id as i64), &id.to_string()];
                        tx.execute(
                            "DELETE FROM sgbridge_groups WHERE project_id = $1 AND region_id = $2 AND id = $3",
                            &key,
                        )
                        .await
                        .map_err(db_error)?;
                        tx.execute(
                            "INSERT INTO sgbridge_groups_gone (project_id, region_id, id, changed)
                             VALUES ($1, $2, $3, nextval('sgbridge_group_changes')) ON CONFLICT DO NOTHING",
                            &key,
                        )
                        .await
                        .map_err(db_error)?;
                    }
                }
            }
            self.put_tasks(&tx, "embedded", tasks).await?;
            let (now, (id, name)) = (chrono::Utc::now().timestamp(), crate::store::audit::the_group(changes));
            for (request, outcome) in crate::store::audit::settled(tasks) {
                tx.execute(
                    crate::store::audit::settle_sql(true),
                    &[&request, &outcome, &now, &id, &name],
                )
                .await
                .map_err(db_error)?;
            }
            tx.commit().await.map_err(db_error)
        })
        .await
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
            let mut client = self.client().await?;
            // One snapshot: a prefix of the changes in order, and the
            // tombstones swept so far.
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
            // Deletions past the cursor may be swept: read every group.
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
        })
        .await
    }
}
