//! The page's sessions: a random id in an `HttpOnly`, `SameSite=Strict`
//! cookie, kept here by its hash (a memory dump holds no usable cookie).
//! A session names its user and a fingerprint of the user's password hash,
//! and is good only while that user still exists with that hash and may
//! read everything: a reload that removes or disables the user, changes
//! the password or takes away the scopes ends it at the next request.
//! Sessions end after 30 idle minutes or 12 hours, and are per process.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

pub const COOKIE: &str = "sgbridge_ui";
const IDLE: Duration = Duration::from_secs(30 * 60);
const LONGEST: Duration = Duration::from_secs(12 * 3600);
/// The most sessions kept; past it the oldest is ended.
const MOST: usize = 10_000;

#[derive(Debug, Clone)]
struct Session {
    user: String,
    fingerprint: String,
    started: Instant,
    seen: Instant,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

fn digest(text: &str) -> String {
    let d = Sha256::digest(text.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a password hash is remembered as.
pub fn fingerprint(password_hash: &str) -> String {
    digest(password_hash)
}

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session for `user`; answers its id (the cookie's value).
    pub fn start(&self, user: &str, password_hash: &str) -> String {
        let id = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let now = Instant::now();
        let mut map = self.map();
        map.retain(|_, s| alive(s, now));
        if map.len() >= MOST {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.started).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(
            digest(&id),
            Session {
                user: user.to_string(),
                fingerprint: fingerprint(password_hash),
                started: now,
                seen: now,
            },
        );
        id
    }

    /// The user of session `id` and the fingerprint it was started with,
    /// if it is alive (and marks it seen).
    pub fn find(&self, id: &str) -> Option<(String, String)> {
        let now = Instant::now();
        let mut map = self.map();
        let key = digest(id);
        let s = map.get_mut(&key)?;
        if !alive(s, now) {
            map.remove(&key);
            return None;
        }
        s.seen = now;
        Some((s.user.clone(), s.fingerprint.clone()))
    }

    pub fn end(&self, id: &str) {
        self.map().remove(&digest(id));
    }

    /// Sessions kept (ended ones may linger until the next start).
    pub fn count(&self) -> usize {
        self.map().len()
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.duration_since(s.seen) < IDLE && now.duration_since(s.started) < LONGEST
}

/// The session id a request's `Cookie` headers carry.
pub fn cookie(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value for a session (`None`: ending it).
pub fn set_cookie(id: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match id {
        Some(id) => format!("{COOKIE}={id}; Path=/ui/; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{COOKIE}=; Path=/ui/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sessions_end_when_idle_or_old() {
        let s = Sessions::default();
        let id = s.start("ada", "$argon2id$x");
        assert_eq!(s.find(&id).map(|f| f.0), Some("ada".to_string()));
        tokio::time::advance(IDLE - Duration::from_secs(1)).await;
        assert!(s.find(&id).is_some(), "seen again in time");
        tokio::time::advance(IDLE).await;
        assert!(s.find(&id).is_none(), "idle too long");
        let id = s.start("ada", "$argon2id$x");
        for _ in 0..25 {
            tokio::time::advance(Duration::from_secs(29 * 60)).await;
            let _ = s.find(&id);
        }
        assert!(s.find(&id).is_none(), "past the longest");
        s.end("nothing");
        assert_eq!(s.count(), 0);
    }

    #[test]
    fn the_cookie_is_read_and_written_strictly() {
        let s = Sessions::default();
        let id = s.start("ada", "h");
        let mut h = http::HeaderMap::new();
        h.insert(http::header::COOKIE, format!("a=b; {COOKIE}={id}").parse().unwrap());
        assert_eq!(cookie(&h), Some(id.clone()));
        h.insert(http::header::COOKIE, format!("{COOKIE}=short").parse().unwrap());
        assert_eq!(cookie(&h), None);
        let set = set_cookie(Some(&id), true);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.ends_with("; Secure"));
        assert!(set_cookie(None, false).contains("Max-Age=0"));
    }
}
