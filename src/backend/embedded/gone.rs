//! Groups known deleted on a shared store, remembered only as long as a
//! look at the store that began before the delete can still be under way:
//! such a look must not bring the group back, and nothing older matters
//! (ids are never reused), so the set does not grow with every delete.

use crate::model::{GroupId, Scope};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// Longer than any look at the store can take (each statement is bounded
/// by `store.statement_timeout_ms`, at most ten minutes).
const REMEMBER: Duration = Duration::from_secs(15 * 60);

type Key = (Scope, GroupId);

#[derive(Default)]
pub(super) struct Gone {
    since: HashMap<Key, Instant>,
    /// Keys in the order they were marked, to forget the oldest first.
    order: VecDeque<(Instant, Key)>,
}

impl Gone {
    pub(super) fn insert(&mut self, key: Key) {
        let now = Instant::now();
        self.forget_before(now);
        self.since.insert(key.clone(), now);
        self.order.push_back((now, key));
    }

    pub(super) fn contains(&self, key: &Key) -> bool {
        self.since.contains_key(key)
    }

    pub(super) fn remove(&mut self, key: &Key) {
        self.since.remove(key);
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < REMEMBER {
                break;
            }
            if let Some((at, key)) = self.order.pop_front() {
                // Marked again since: the newer mark stays.
                if self.since.get(&key) == Some(&at) {
                    self.since.remove(&key);
                }
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.since.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u128) -> Key {
        let id: GroupId = crate::model::Uuid::from_random(n);
        (
            Scope {
                project_id: 1,
                region_id: 1,
            },
            id,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn marks_are_forgotten_after_a_while_and_renewed_by_a_new_mark() {
        let mut gone = Gone::default();
        gone.insert(key(1));
        gone.insert(key(2));
        tokio::time::advance(REMEMBER / 2).await;
        gone.insert(key(1));
        tokio::time::advance(REMEMBER / 2).await;
        gone.insert(key(3));
        // 2 is past its time; 1 was marked again.
        assert!(gone.contains(&key(1)) && !gone.contains(&key(2)) && gone.contains(&key(3)));
        tokio::time::advance(REMEMBER).await;
        gone.insert(key(4));
        assert_eq!(gone.len(), 1);
        gone.remove(&key(4));
        assert!(!gone.contains(&key(4)));
    }
}
