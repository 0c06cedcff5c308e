//! Keyed async locks whose entries live exactly while someone holds or waits
//! for them: nothing evicts a held lock, and nothing stays behind once the
//! last holder and waiter are gone.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

pub struct KeyedLocks<K: Eq + Hash + Clone> {
    entries: Arc<Mutex<HashMap<K, Arc<AsyncMutex<()>>>>>,
}

impl<K: Eq + Hash + Clone> Default for KeyedLocks<K> {
    fn default() -> Self {
        KeyedLocks {
            entries: Arc::default(),
        }
    }
}

/// A held lock; dropping it releases the lock and, if nobody else holds or
/// waits for the key, its entry.
pub struct KeyGuard<K: Eq + Hash + Clone> {
    // Declared first: released before the entry is looked at in `drop`.
    guard: Option<OwnedMutexGuard<()>>,
    key: K,
    lock: Option<Arc<AsyncMutex<()>>>,
    entries: Arc<Mutex<HashMap<K, Arc<AsyncMutex<()>>>>>,
}

impl<K: Eq + Hash + Clone> KeyedLocks<K> {
    /// Registers interest in `key`: should it be dropped before it is turned
    /// into a guard, it removes the entry if it was the last interest in it.
    fn interest(&self, key: K) -> (Arc<AsyncMutex<()>>, Waiting<K>) {
        let lock = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.entry(key.clone()).or_default().clone()
        };
        let waiting = Waiting {
            key: Some(key),
            lock: Some(lock.clone()),
            entries: self.entries.clone(),
        };
        (lock, waiting)
    }

    pub async fn lock(&self, key: K) -> KeyGuard<K> {
        let (lock, waiting) = self.interest(key);
        let guard = lock.lock_owned().await;
        waiting.into_guard(guard)
    }

    /// The lock of `key` if nobody holds it now.
    pub fn try_lock(&self, key: K) -> Option<KeyGuard<K>> {
        let (lock, waiting) = self.interest(key);
        let guard = lock.try_lock_owned().ok()?;
        Some(waiting.into_guard(guard))
    }

    /// How many keys have an entry (held or waited for).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Waiting<K: Eq + Hash + Clone> {
    key: Option<K>,
    lock: Option<Arc<AsyncMutex<()>>>,
    entries: Arc<Mutex<HashMap<K, Arc<AsyncMutex<()>>>>>,
}

impl<K: Eq + Hash + Clone> Waiting<K> {
    fn into_guard(mut self, guard: OwnedMutexGuard<()>) -> KeyGuard<K> {
        KeyGuard {
            guard: Some(guard),
            key: self.key.take().expect("set until converted"),
            lock: self.lock.take(),
            entries: self.entries.clone(),
        }
    }
}

fn release<K: Eq + Hash + Clone>(entries: &Mutex<HashMap<K, Arc<AsyncMutex<()>>>>, key: &K, lock: Arc<AsyncMutex<()>>) {
    let mut map = entries.lock().unwrap_or_else(|p| p.into_inner());
    // Interest is counted by the Arc: the map's copy plus ours. Others only
    // take a copy while holding the map lock, so this check cannot race.
    if Arc::strong_count(&lock) == 2 {
        if let Some(current) = map.get(key) {
            if Arc::ptr_eq(current, &lock) {
                map.remove(key);
            }
        }
    }
}

impl<K: Eq + Hash + Clone> Drop for Waiting<K> {
    fn drop(&mut self) {
        if let (Some(key), Some(lock)) = (self.key.take(), self.lock.take()) {
            release(&self.entries, &key, lock);
        }
    }
}

impl<K: Eq + Hash + Clone> Drop for KeyGuard<K> {
    fn drop(&mut self) {
        drop(self.guard.take());
        if let Some(lock) = self.lock.take() {
            release(&self.entries, &self.key, lock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn one_holder_per_key_and_no_leftovers() {
        let locks: Arc<KeyedLocks<u32>> = Arc::default();
        let first = locks.lock(1).await;
        let other = locks.lock(2).await;
        assert_eq!(locks.len(), 2);
        let l = locks.clone();
        let waiter = tokio::spawn(async move {
            let _g = l.lock(1).await;
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished(), "key 1 is held");
        drop(first);
        waiter.await.unwrap();
        drop(other);
        assert!(locks.is_empty(), "entries go with their last holder");
    }

    #[tokio::test(start_paused = true)]
    async fn try_lock_fails_while_held() {
        let locks: KeyedLocks<u32> = KeyedLocks::default();
        let held = locks.lock(1).await;
        assert!(locks.try_lock(1).is_none());
        assert_eq!(locks.len(), 1, "a failed try leaves no extra entry");
        drop(held);
        let again = locks.try_lock(1);
        assert!(again.is_some());
        drop(again);
        assert!(locks.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_leaves_nothing_behind() {
        let locks: Arc<KeyedLocks<u32>> = Arc::default();
        let held = locks.lock(1).await;
        let l = locks.clone();
        let waiter = tokio::spawn(async move {
            let _g = l.lock(1).await;
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        waiter.abort();
        let _ = waiter.await;
        drop(held);
        assert!(locks.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn many_keys_never_lose_exclusion() {
        // Far more keys than any cache capacity: each lock stays exclusive.
        let locks: Arc<KeyedLocks<u32>> = Arc::default();
        let held: Vec<_> = futures_util::future::join_all((0..50_000).map(|k| locks.lock(k))).await;
        let l = locks.clone();
        let second = tokio::spawn(async move { l.lock(7).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!second.is_finished());
        drop(held);
        drop(second.await.unwrap());
        assert!(locks.is_empty());
    }
}
