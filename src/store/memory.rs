//! Idempotency records in this process's memory (the memory store): each
//! answer kept for its time to live, within [`RecordLimits`] — per caller,
//! then in all, where the caller holding the most bytes gives way first.

use super::{Answer, Begin, RecordLimits, Records, StoreError};
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

enum Entry {
    InFlight {
        fingerprint: u64,
        until: Instant,
    },
    Done {
        fingerprint: u64,
        answer: Answer,
        until: Instant,
        /// Its place in its caller's queue.
        seq: u64,
    },
}

/// One caller's kept answers, oldest first.
#[derive(Default)]
struct Caller {
    kept: VecDeque<(u64, String)>,
    bytes: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<(Arc<str>, String), Entry>,
    callers: HashMap<Arc<str>, Caller>,
    keys: u64,
    bytes: u64,
    seq: u64,
}

pub struct MemoryRecords {
    state: Mutex<State>,
    limits: RecordLimits,
}

impl MemoryRecords {
    pub fn new(limits: RecordLimits) -> MemoryRecords {
        MemoryRecords {
            state: Mutex::default(),
            limits,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent maps (every
        // change is finished before the next statement can panic).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The answers kept and their bytes (for tests and metrics).
    pub fn held(&self) -> (u64, u64) {
        let s = self.state();
        (s.keys, s.bytes)
    }
}

impl State {
    fn caller(&self, principal: &str) -> Option<Arc<str>> {
        self.callers.get_key_value(principal).map(|(k, _)| k.clone())
    }

    /// Forgets the oldest answer `principal` has kept.
    fn drop_oldest(&mut self, principal: &Arc<str>) {
        let Some(caller) = self.callers.get_mut(principal) else {
            return;
        };
        while let Some((seq, key)) = caller.kept.pop_front() {
            let slot = (principal.clone(), key);
            if matches!(self.entries.get(&slot), Some(Entry::Done { seq: s, .. }) if *s == seq) {
                if let Some(Entry::Done { answer, .. }) = self.entries.remove(&slot) {
                    caller.bytes -= answer.size();
                    self.bytes -= answer.size();
                    self.keys -= 1;
                }
                break;
            }
        }
        if caller.kept.is_empty() {
            self.callers.remove(principal);
        }
    }

    /// Forgets every answer whose time is up, oldest first per caller.
    fn expire(&mut self, now: Instant) {
        let due: Vec<Arc<str>> = self
            .callers
            .iter()
            .filter(|(p, c)| {
                c.kept.front().is_some_and(|(_, key)| {
                    matches!(self.entries.get(&((*p).clone(), key.clone())), Some(Entry::Done { until, .. }) if *until <= now)
                })
            })
            .map(|(p, _)| p.clone())
            .collect();
        for principal in due {
            loop {
                let front_due = self.callers.get(&principal).and_then(|c| c.kept.front()).is_some_and(|(_, key)| {
                    matches!(self.entries.get(&(principal.clone(), key.clone())), Some(Entry::Done { until, .. }) if *until <= now)
                });
                if !front_due {
                    break;
                }
                self.drop_oldest(&principal);
            }
        }
    }

    /// The caller holding the most bytes (then the most answers).
    fn biggest(&self) -> Option<Arc<str>> {
        self.callers
            .iter()
            .max_by_key(|(_, c)| (c.bytes, c.kept.len()))
            .map(|(p, _)| p.clone())
    }

    fn enforce(&mut self, principal: &Arc<str>, limits: RecordLimits) {
        while self
            .callers
            .get(principal)
            .is_some_and(|c| c.kept.len() as u64 > limits.caller_keys || c.bytes > limits.caller_bytes)
        {
            self.drop_oldest(principal);
        }
        while self.keys > limits.max_keys || self.bytes > limits.max_bytes {
            let Some(biggest) = self.biggest() else { break };
            self.drop_oldest(&biggest);
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
        let now = Instant::now();
        let mut s = self.state();
        s.expire(now);
        let owner = s.caller(principal).unwrap_or_else(|| Arc::from(principal));
        let slot = (owner, key.to_string());
        let found = match s.entries.get(&slot) {
            Some(Entry::InFlight { until, fingerprint }) if *until > now => Some(Begin::InFlight {
                fingerprint: *fingerprint,
            }),
            Some(Entry::Done {
                fingerprint, answer, ..
            }) => Some(Begin::Done {
                fingerprint: *fingerprint,
                answer: answer.clone(),
            }),
            // None, or a claim whose request died without an answer.
            _ => None,
        };
        if let Some(found) = found {
            return Ok(found);
        }
        s.entries.insert(
            slot,
            Entry::InFlight {
                fingerprint,
                until: now + in_flight,
            },
        );
        Ok(Begin::Fresh)
    }

    async fn finish(
        &self,
        principal: &str,
        key: &str,
        fingerprint: u64,
        answer: Answer,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut s = self.state();
        let owner = s.caller(principal).unwrap_or_else(|| Arc::from(principal));
        let slot = (owner.clone(), key.to_string());
        // Only the claim this request made is finished.
        if !matches!(s.entries.get(&slot), Some(Entry::InFlight { fingerprint: f, .. }) if *f == fingerprint) {
            return Ok(());
        }
        s.seq += 1;
        let seq = s.seq;
        let size = answer.size();
        s.keys += 1;
        s.bytes += size;
        let caller = s.callers.entry(owner.clone()).or_default();
        caller.kept.push_back((seq, key.to_string()));
        caller.bytes += size;
        s.entries.insert(
            slot,
            Entry::Done {
                fingerprint,
                answer,
                until: now + ttl,
                seq,
            },
        );
        s.enforce(&owner, self.limits);
        s.expire(now);
        Ok(())
    }

    async fn abandon(&self, principal: &str, key: &str) -> Result<(), StoreError> {
        let mut s = self.state();
        let owner = s.caller(principal).unwrap_or_else(|| Arc::from(principal));
        let slot = (owner, key.to_string());
        if matches!(s.entries.get(&slot), Some(Entry::InFlight { .. })) {
            s.entries.remove(&slot);
        }
        Ok(())
    }

    /// The memory store is never exported (nothing outlives the process).
    async fn page(&self, _: Option<(String, String)>, _: usize) -> Result<Vec<super::Kept>, StoreError> {
        Ok(Vec::new())
    }

    async fn held(&self) -> Result<(u64, u64), StoreError> {
        let state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok((state.keys, state.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);
    const DAY: Duration = Duration::from_secs(86_400);

    fn answer(bytes: usize) -> Answer {
        Answer {
            status: 201,
            headers: Vec::new(),
            body: vec![b'x'; bytes],
        }
    }

    fn limits(max_keys: u64, caller_keys: u64) -> RecordLimits {
        RecordLimits {
            max_keys,
            max_bytes: 1 << 30,
            caller_keys,
            caller_bytes: 1 << 30,
        }
    }

    async fn keep(r: &MemoryRecords, who: &str, key: &str, bytes: usize) {
        assert_eq!(r.begin(who, key, 1, SECOND).await.unwrap(), Begin::Fresh);
        r.finish(who, key, 1, answer(bytes), DAY).await.unwrap();
    }

    async fn kept(r: &MemoryRecords, who: &str, key: &str) -> bool {
        let found = matches!(r.begin(who, key, 1, SECOND).await.unwrap(), Begin::Done { .. });
        if !found {
            r.abandon(who, key).await.unwrap();
        }
        found
    }

    #[tokio::test(start_paused = true)]
    async fn one_caller_cannot_push_out_another_callers_answers() {
        let r = MemoryRecords::new(limits(100, 30));
        keep(&r, "victim", "create-1", 10).await;
        for i in 0..300 {
            keep(&r, "noisy", &format!("k{i}"), 10).await;
        }
        assert!(kept(&r, "victim", "create-1").await, "the victim's answer was evicted");
        assert_eq!(r.held().0, 31, "30 of the noisy caller's, one of the victim's");
        assert!(kept(&r, "noisy", "k299").await && !kept(&r, "noisy", "k0").await);
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_total_the_biggest_holder_gives_way() {
        let r = MemoryRecords::new(RecordLimits {
            max_keys: 1000,
            max_bytes: 900,
            caller_keys: 1000,
            caller_bytes: 800,
        });
        keep(&r, "small", "a", 100).await;
        for i in 0..8 {
            keep(&r, "big", &format!("b{i}"), 100).await;
        }
        keep(&r, "other", "c", 100).await;
        assert_eq!(r.held(), (9, 900));
        assert!(kept(&r, "small", "a").await && kept(&r, "other", "c").await);
        assert!(!kept(&r, "big", "b0").await);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_expire_and_dead_claims_lapse() {
        let r = MemoryRecords::new(limits(10, 10));
        keep(&r, "a", "k", 1).await;
        tokio::time::advance(DAY + SECOND).await;
        assert!(!kept(&r, "a", "k").await);
        assert_eq!(r.held(), (0, 0));
        assert_eq!(r.begin("a", "x", 1, SECOND).await.unwrap(), Begin::Fresh);
        assert_eq!(
            r.begin("a", "x", 1, SECOND).await.unwrap(),
            Begin::InFlight { fingerprint: 1 }
        );
        tokio::time::advance(2 * SECOND).await;
        assert_eq!(r.begin("a", "x", 1, SECOND).await.unwrap(), Begin::Fresh);
    }
}
