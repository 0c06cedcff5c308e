//! The embedded backend's groups: one transaction per change with its
//! tasks' states.

use super::tasks::put_tasks;
use super::{db_error, Sqlite};
use crate::model::{Group, Scope, Task};
use crate::store::{rows, GroupChange, GroupLog, StoreError};
use async_trait::async_trait;
use rusqlite::params;

#[async_trait]
impl GroupLog for Sqlite {
    async fn commit(&self, changes: &[GroupChange], tasks: &[Task]) -> Result<(), StoreError> {
        let (changes, tasks) = (changes.to_vec(), tasks.to_vec());
        self.run("commit_groups", move |conn| {
            let tx = conn.transaction().map_err(db_error)?;
            for change in &changes {
                match change {
                    GroupChange::Put { scope, seq, group } => {
                        tx.execute(
                            "INSERT INTO sgbridge_groups (project_id, region_id, id, seq, revision, body)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                             ON CONFLICT (project_id, region_id, id) DO UPDATE
                               SET revision = excluded.revision, body = excluded.body
                             WHERE sgbridge_groups.revision <= excluded.revision",
                            params![
                                scope.project_id as i64,
                                scope.region_id as i64,
                                group.id().to_string(),
                                *seq as i64,
                                group.meta.revision as i64,
                                rows::group_text(*scope, group)?
                            ],
                        )
                        .map_err(db_error)?;
                    }
                    GroupChange::Gone { scope, id } => {
                        tx.execute(
                            "DELETE FROM sgbridge_groups WHERE project_id = ?1 AND region_id = ?2 AND id = ?3",
                            params![scope.project_id as i64, scope.region_id as i64, id.to_string()],
                        )
                        .map_err(db_error)?;
                    }
                }
            }
            put_tasks(&tx, "embedded", &tasks)?;
            let (now, (id, name)) = (super::unix_now(), crate::store::audit::the_group(&changes));
            for (request, outcome) in crate::store::audit::settled(&tasks) {
                tx.execute(
                    crate::store::audit::settle_sql(false),
                    params![request, outcome, now, id, name],
                )
                .map_err(db_error)?;
            }
            tx.commit().map_err(db_error)
        })
        .await
    }

    async fn load(&self) -> Result<Vec<(Scope, u64, Group)>, StoreError> {
        self.run("load_groups", |conn| {
            let mut stmt = conn
                .prepare("SELECT project_id, region_id, seq, body FROM sgbridge_groups")
                .map_err(db_error)?;
            let found = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            found
                .into_iter()
                .map(|(p, r, seq, body)| {
                    let scope = Scope {
                        project_id: p as u64,
                        region_id: r as u64,
                    };
                    Ok((scope, seq as u64, rows::group_from(&body)?))
                })
                .collect()
        })
        .await
    }
}
