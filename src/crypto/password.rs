//! Passwords: argon2id (RustCrypto's `argon2`, OWASP's first choice) in
//! PHC strings. Checking one costs tens of milliseconds of CPU by design, so
//! checks run on a few threads of their own at a low CPU priority (nice 10),
//! behind a bounded queue: a storm of logins never takes the async workers
//! that serve the API and `/healthz`, and what cannot be checked soon is
//! shed with UAA's 503.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::oneshot;

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

/// What a check came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    Match,
    NoMatch,
    /// Every hashing thread is busy and the queue is full: the login is shed
    /// rather than queued without end (the caller is told to retry).
    Busy,
}

/// Logins a hashing thread may have waiting before more are shed: at about
/// 25 ms a check, 16 waiting keep a login answered within half a second.
const QUEUED_PER_THREAD: usize = 16;

/// Checks passwords on threads of their own at nice 10: on a machine with
/// few cores a storm of logins takes mostly the CPU the API and `/healthz`
/// leave (the blocking pool would compete with the async workers as equals).
/// Nice 10 rather than 19: with the API saturating both cores of the
/// benchmark machine, nice 19 let 3 logins a second through, nice 10 about
/// 11, nice 5 about 33 but at 1.56x the API's p99 (BENCHMARKS.md). A bounded queue sheds what they cannot keep up
/// with.
#[derive(Clone)]
pub struct Checker {
    jobs: mpsc::SyncSender<Job>,
}

struct Job {
    /// `None`: an unknown user, checked against the decoy (computed on the
    /// hashing thread the first time, never on an async worker).
    phc: Option<String>,
    password: String,
    answer: oneshot::Sender<bool>,
}

/// A hash of no password, checked when the user is unknown, so an unknown
/// user takes as long as a wrong password.
static DECOY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| hash("decoy").unwrap_or_default());

impl Checker {
    /// `threads` hashing threads; they end when the last clone is dropped
    /// (a reload builds a new checker).
    pub fn new(threads: usize) -> Checker {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::sync_channel(threads * QUEUED_PER_THREAD);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("sgbridge-hash-{i}"))
                .spawn(move || work(&queue));
            if let Err(e) = spawned {
                tracing::warn!(target: "sgbridge::login", error = %e, "a password-hashing thread could not start");
            }
        }
        Checker { jobs }
    }

    /// Whether `password` matches `phc` (`None`: check against a decoy and
    /// answer no match).
    pub async fn check(&self, phc: Option<&str>, password: &str) -> Checked {
        let (answer, answered) = oneshot::channel();
        let job = Job {
            phc: phc.map(str::to_string),
            password: password.to_string(),
            answer,
        };
        if self.jobs.try_send(job).is_err() {
            return Checked::Busy;
        }
        match answered.await {
            Ok(true) if phc.is_some() => Checked::Match,
            Ok(_) => Checked::NoMatch,
            // The thread went away (it panicked): shed, never let in.
            Err(_) => Checked::Busy,
        }
    }
}

fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    loop {
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = next else {
            return;
        };
        let phc = job.phc.as_deref().unwrap_or(DECOY.as_str());
        let ok = PasswordHash::new(phc)
            .is_ok_and(|h| Argon2::default().verify_password(job.password.as_bytes(), &h).is_ok());
        let _ = job.answer.send(ok);
    }
}

/// The calling thread at nice 10, where the OS allows it (Linux sets nice
/// per thread). Best effort: a failure only costs the API some latency.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10) {
        tracing::debug!(target: "sgbridge::login", error = %e, "hashing thread priority unchanged");
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
        assert_eq!(c.check(Some(&phc), "s3cret").await, Checked::Match);
        assert_eq!(c.check(Some(&phc), "s3cret ").await, Checked::NoMatch);
        assert_eq!(
            c.check(None, "decoy").await,
            Checked::NoMatch,
            "an unknown user never matches"
        );
        assert!(check_phc("s3cret").unwrap_err().contains("never the password"));
    }

    #[tokio::test]
    async fn a_full_queue_sheds_logins_instead_of_queueing_them_without_end() {
        // A cheap hash (1 MiB, one pass), so the test is quick; the queue
        // is what is tested.
        let params = argon2::Params::new(1024, 1, 1, None).unwrap();
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let phc = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        let c = Checker::new(1);
        let asked = 4 * QUEUED_PER_THREAD;
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..asked {
            let (c, phc) = (c.clone(), phc.clone());
            set.spawn(async move { c.check(Some(&phc), "pw").await });
        }
        let all = set.join_all().await;
        let busy = all.iter().filter(|c| **c == Checked::Busy).count();
        assert!(busy > 0 && busy < asked, "{busy} of {asked} shed");
        assert!(all.iter().all(|c| *c != Checked::NoMatch), "{all:?}");
    }
}
