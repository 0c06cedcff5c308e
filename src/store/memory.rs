//! Idempotency records in this process's memory (the memory store): a
//! bounded cache with a time to live.

use super::{Answer, Begin, Records, StoreError};
use crate::config::IdempotencyConfig;
use async_trait::async_trait;
use moka::sync::Cache;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone)]
enum Entry {
    InFlight { fingerprint: u64, until: Instant },
    Done { fingerprint: u64, answer: Answer },
}

pub struct MemoryRecords {
    entries: Cache<(String, String), Entry>,
}

impl MemoryRecords {
    pub fn new(cfg: &IdempotencyConfig) -> MemoryRecords {
        MemoryRecords {
            entries: Cache::builder()
                .max_capacity(cfg.max_keys)
                .time_to_live(Duration::from_secs(cfg.ttl_s))
                .build(),
        }
    }
}

#[async_trait]
impl Records for MemoryRecords {
    async fn begin(
        &self,
        principal: &str,
        key: &str,
        fingerprint: u64,
        in_flight: Duration,
    ) -> Result<Begin, StoreError> {
        let slot = (principal.to_string(), key.to_string());
        let claim = Entry::InFlight {
            fingerprint,
            until: Instant::now() + in_flight,
        };
        let entry = self.entries.entry(slot.clone()).or_insert_with(|| claim.clone());
        if entry.is_fresh() {
            return Ok(Begin::Fresh);
        }
        Ok(match entry.into_value() {
            Entry::InFlight { until, .. } if until <= Instant::now() => {
                // Its request died without an answer: this one takes over.
                self.entries.insert(slot, claim);
                Begin::Fresh
            }
            Entry::InFlight { fingerprint, .. } => Begin::InFlight { fingerprint },
            Entry::Done { fingerprint, answer } => Begin::Done { fingerprint, answer },
        })
    }

    async fn finish(
        &self,
        principal: &str,
        key: &str,
        fingerprint: u64,
        answer: Answer,
        _ttl: Duration,
    ) -> Result<(), StoreError> {
        self.entries.insert(
            (principal.to_string(), key.to_string()),
            Entry::Done { fingerprint, answer },
        );
        Ok(())
    }

    async fn abandon(&self, principal: &str, key: &str) -> Result<(), StoreError> {
        self.entries.invalidate(&(principal.to_string(), key.to_string()));
        Ok(())
    }
}
