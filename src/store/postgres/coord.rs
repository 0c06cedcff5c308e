//! Write exclusion and CF name reservations across replicas: a lease row
//! per held key in `sgbridge_locks`, renewed while held and taken over once
//! expired, behind the in-process keyed locks (one poller per key).

use crate::coord::locks::KeyGuard;
use crate::coord::{Coord, CoordError, Held, LockKey, UncertainCreate};
use crate::model::Scope;
use crate::store::StoreError;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

fn lock_key(key: &LockKey) -> String {
    match key {
        LockKey::Group(s, id) => format!("group:{s}:{id}"),
        LockKey::Name(s, name) => format!("name:{s}:{name}"),
    }
}

/// A held lease; released (in the background) when dropped.
struct Lease {
    db: Arc<Postgres>,
    key: String,
    holder: String,
    _local: KeyGuard<LockKey>,
}
use super::{db_error, Postgres};

impl Drop for Lease {
    fn drop(&mut self) {
        let entry = (self.key.clone(), self.holder.clone());
        self.db.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&entry);
        let db = self.db.clone();
        // Without a runtime (shutting down) the lease simply expires.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = db.timed("release_lock", db.release(&entry.0, &entry.1)).await {
                    tracing::warn!(error = %e, "a write lock was not released; it expires on its own");
                }
            });
        }
    }
}

/// The coordination seam over the shared store.
pub(super) struct Shared(pub(super) Arc<Postgres>);

impl Shared {
    fn coord_error(e: StoreError) -> CoordError {
        CoordError(e.0)
    }

    fn held(&self, key: &LockKey, holder: String, local: KeyGuard<LockKey>) -> Held {
        let name = lock_key(key);
        self.0
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((name.clone(), holder.clone()));
        Held::new(Lease {
            db: self.0.clone(),
            key: name,
            holder,
            _local: local,
        })
    }
}

#[async_trait]
impl Coord for Shared {
    async fn lock(&self, key: LockKey) -> Result<Held, CoordError> {
        let started = Instant::now();
        let local = self.0.local.lock(key.clone()).await;
        let (name, holder) = (lock_key(&key), self.0.holder());
        let mut pause = Duration::from_millis(10);
        loop {
            let got = self.0.timed("acquire_lock", self.0.acquire(&name, &holder)).await;
            if got.map_err(Self::coord_error)? {
                break;
            }
            let jitter = Duration::from_millis(fastrand::u64(0..=pause.as_millis() as u64 / 2));
            tokio::time::sleep(pause + jitter).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
        self.0.telemetry.lock_wait(started.elapsed());
        Ok(self.held(&key, holder, local))
    }

    async fn try_lock(&self, key: LockKey) -> Result<Option<Held>, CoordError> {
        let Some(local) = self.0.local.try_lock(key.clone()) else {
            return Ok(None);
        };
        let (name, holder) = (lock_key(&key), self.0.holder());
        let got = self.0.timed("acquire_lock", self.0.acquire(&name, &holder)).await;
        Ok(got.map_err(Self::coord_error)?.then(|| self.held(&key, holder, local)))
    }

    async fn uncertain(&self, scope: Scope, name: &str) -> Result<Vec<UncertainCreate>, CoordError> {
        let db = &self.0;
        db.timed("uncertain", async {
            let client = db.client().await?;
            let select = super::prepared(
                &client,
                "SELECT marker, since FROM sgbridge_uncertain WHERE project_id = $1 AND region_id = $2 AND name = $3",
            )
            .await?;
            let found = client
                .query(&select, &[&(scope.project_id as i64), &(scope.region_id as i64), &name])
                .await
                .map_err(db_error)?;
            Ok(found
                .iter()
                .map(|r| UncertainCreate {
                    scope,
                    name: name.to_string(),
                    marker: r.get(0),
                    since: r.get(1),
                })
                .collect())
        })
        .await
        .map_err(Self::coord_error)
    }

    async fn record_uncertain(&self, c: UncertainCreate) -> Result<(), CoordError> {
        let db = &self.0;
        db.timed("record_uncertain", async {
            let client = db.client().await?;
            client
                .execute(
                    "INSERT INTO sgbridge_uncertain (project_id, region_id, name, marker, since)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[
                        &(c.scope.project_id as i64),
                        &(c.scope.region_id as i64),
                        &c.name,
                        &c.marker,
                        &c.since,
                    ],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        })
        .await
        .map_err(Self::coord_error)
    }

    async fn settle(&self, scope: Scope, name: &str, marker: &str) -> Result<(), CoordError> {
        let db = &self.0;
        db.timed("settle_uncertain", async {
            let client = db.client().await?;
            client
                .execute(
                    "DELETE FROM sgbridge_uncertain WHERE project_id = $1 AND region_id = $2 AND name = $3 AND marker = $4",
                    &[&(scope.project_id as i64), &(scope.region_id as i64), &name, &marker],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        })
        .await
        .map_err(Self::coord_error)
    }
}
