//! Passwords: argon2id (RustCrypto's `argon2`, OWASP's first choice) in
//! PHC strings. Checking one costs tens of milliseconds of CPU by design, so
//! checks run on the blocking pool behind a semaphore: a storm of logins
//! queues there and never takes the async workers that serve the API and
//! `/healthz`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// A new PHC string for `password` (argon2id, the crate's default cost:
/// 19 MiB, two passes — OWASP's minimum).
pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Why a configured hash cannot be used; plain passwords are refused here.
pub fn check_phc(phc: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(phc).map_err(|_| {
        "is not a password hash; write the output of `sgbridge hash-password` (an argon2id PHC string), never the password"
            .to_string()
    })?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "uses {}; sgbridge takes argon2id hashes only",
            parsed.algorithm
        ));
    }
    Ok(())
}

/// Checks passwords off the async workers, a bounded number at once.
#[derive(Clone)]
pub struct Checker {
    slots: Arc<Semaphore>,
}

/// A hash of no password, checked when the user is unknown, so an unknown
/// user takes as long as a wrong password.
static DECOY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| hash("decoy").unwrap_or_default());

impl Checker {
    pub fn new(at_once: usize) -> Checker {
        Checker {
            slots: Arc::new(Semaphore::new(at_once.max(1))),
        }
    }

    /// Whether `password` matches `phc` (`None`: check against a decoy and
    /// answer false).
    pub async fn matches(&self, phc: Option<&str>, password: &str) -> bool {
        let Ok(_slot) = self.slots.acquire().await else {
            return false;
        };
        let known = phc.is_some();
        let phc = phc.map_or_else(|| DECOY.clone(), str::to_string);
        let password = password.to_string();
        let checked = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
        })
        .await
        .unwrap_or(false);
        known && checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_matches_its_password_only() {
        let phc = hash("s3cret").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        check_phc(&phc).unwrap();
        let c = Checker::new(1);
        assert!(c.matches(Some(&phc), "s3cret").await);
        assert!(!c.matches(Some(&phc), "s3cret ").await);
        assert!(!c.matches(None, "decoy").await, "an unknown user never matches");
        assert!(check_phc("s3cret").unwrap_err().contains("never the password"));
    }
}
