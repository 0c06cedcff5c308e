//! UAA's lockout policy (`CommonLoginPolicy`): an account with this many
//! failed logins inside the window, the last one less than the lockout
//! period ago, is refused even with the right password. Counted in the
//! store when it is durable or shared (across restarts and replicas, in
//! wall-clock seconds), else in the process (on tokio's clock), and kept
//! across config reloads either way.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub after: u32,
    pub window: Duration,
    pub period: Duration,
}

/// The most accounts remembered: an attacker trying made-up names cannot
/// grow this without end (the oldest are forgotten first).
const MAX_ACCOUNTS: usize = 10_000;

#[derive(Default)]
pub struct Lockout {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Lockout {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, VecDeque<Instant>>) -> T) -> T {
        f(&mut self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    pub fn is_locked(&self, user: &str, p: Policy) -> bool {
        let now = Instant::now();
        self.with(|m| {
            m.get(user).is_some_and(|f| {
                let recent = f.iter().filter(|t| now.duration_since(**t) < p.window).count();
                recent >= p.after as usize && f.back().is_some_and(|last| now.duration_since(*last) < p.period)
            })
        })
    }

    pub fn failed(&self, user: &str, p: Policy) {
        let now = Instant::now();
        self.with(|m| {
            if m.len() >= MAX_ACCOUNTS && !m.contains_key(user) {
                let oldest = m.iter().min_by_key(|(_, f)| f.back().copied()).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    m.remove(&k);
                }
            }
            let f = m.entry(user.to_string()).or_default();
            f.push_back(now);
            while f.front().is_some_and(|t| now.duration_since(*t) >= p.window) || f.len() > p.after as usize {
                f.pop_front();
            }
        });
    }

    /// A successful login clears the count (UAA counts consecutive failures).
    pub fn succeeded(&self, user: &str) {
        self.with(|m| m.remove(user));
    }
}

/// Seconds since the epoch: failed logins in a shared store are compared
/// across replicas, so they are wall-clock times.
pub(super) use crate::timefmt::unix_now;

impl super::Login {
    /// Whether `user` is locked out now (UAA's policy), counted in the
    /// store when there is one.
    pub(crate) async fn locked(&self, user: &str) -> Result<bool, crate::store::StoreError> {
        let Some(log) = &self.state.log else {
            return Ok(self.state.lockout.is_locked(user, self.policy));
        };
        let now = unix_now();
        let since = now - self.policy.window.as_secs() as i64;
        let failures = log.login_failures(user, since).await?;
        let period = self.policy.period.as_secs() as i64;
        Ok(failures.len() >= self.policy.after as usize && failures.last().is_some_and(|t| now - t < period))
    }

    pub(crate) async fn failed(&self, user: &str) -> Result<(), crate::store::StoreError> {
        match &self.state.log {
            None => {
                self.state.lockout.failed(user, self.policy);
                Ok(())
            }
            Some(log) => {
                let now = unix_now();
                log.login_failed(user, now, now - self.policy.window.as_secs() as i64)
                    .await
            }
        }
    }

    pub(crate) async fn succeeded(&self, user: &str) -> Result<(), crate::store::StoreError> {
        match &self.state.log {
            None => {
                self.state.lockout.succeeded(user);
                Ok(())
            }
            Some(log) => log.login_succeeded(user).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn five_failures_lock_for_the_period() {
        let p = Policy {
            after: 5,
            window: Duration::from_secs(1200),
            period: Duration::from_secs(300),
        };
        let l = Lockout::default();
        for _ in 0..4 {
            l.failed("alice", p);
        }
        assert!(!l.is_locked("alice", p));
        l.failed("alice", p);
        assert!(l.is_locked("alice", p) && !l.is_locked("bob", p));
        tokio::time::advance(Duration::from_secs(301)).await;
        assert!(!l.is_locked("alice", p), "the period passed");
        l.failed("alice", p);
        assert!(l.is_locked("alice", p), "still five within the window");
        l.succeeded("alice");
        assert!(!l.is_locked("alice", p));
    }
}
