//! What one request did, for its access line, its audit record and its
//! answer's warnings: the tasks it started or waited on, what was dropped
//! or changed on the way, and why it failed.
//!
//! Like a tracing span, the journal belongs to the request's task: the
//! observe layer opens it around the whole stack ([`collect`]), and the
//! code that learns something records it ([`tasks`], [`warn`], [`failed`]).
//! Outside a request (background work, tests calling a module directly)
//! recording does nothing.

use crate::error::Error;
use std::cell::RefCell;
use std::future::Future;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Journal {
    /// Backend or gateway task ids, in the order they were met.
    pub tasks: Vec<String>,
    /// Notes for the caller (the dialect decides how they are shown).
    pub warnings: Vec<String>,
    /// The failure, as `blame: message` (never a secret: error messages
    /// are sanitised where they are made).
    pub cause: Option<String>,
}

tokio::task_local! {
    static CURRENT: RefCell<Journal>;
}

/// Runs `fut` with a fresh journal and answers it with what was recorded.
pub async fn collect<F: Future>(fut: F) -> (F::Output, Journal) {
    CURRENT
        .scope(RefCell::new(Journal::default()), async move {
            let out = fut.await;
            let journal = CURRENT.with(|j| j.take());
            (out, journal)
        })
        .await
}

fn record(f: impl FnOnce(&mut Journal)) {
    let _ = CURRENT.try_with(|j| f(&mut j.borrow_mut()));
}

/// Records task ids the request started or waited on (each once).
pub fn tasks<T: ToString>(ids: &[T]) {
    record(|j| {
        for id in ids {
            let id = id.to_string();
            if !j.tasks.contains(&id) {
                j.tasks.push(id);
            }
        }
    });
}

/// Records a note for the caller.
pub fn warn(text: impl Into<String>) {
    let text = text.into();
    record(|j| j.warnings.push(text));
}

/// Records why the request failed (the first failure wins: later ones are
/// usually its consequences).
pub fn failed(e: &Error) {
    record(|j| {
        if j.cause.is_none() {
            j.cause = Some(format!("{}: {}", e.blame().label(), e.message()));
        }
    });
}

/// The warnings recorded so far (for a front end adding them to its answer).
pub fn warnings() -> Vec<String> {
    CURRENT.try_with(|j| j.borrow().warnings.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    #[tokio::test]
    async fn records_inside_a_request_only() {
        warn("outside");
        let ((), j) = collect(async {
            tasks(&["t1", "t2", "t1"]);
            warn("dropped rules.1");
            failed(&Error::new(Kind::Unavailable, "the backend is unreachable"));
            failed(&Error::new(Kind::Internal, "later"));
            assert_eq!(warnings(), ["dropped rules.1"]);
        })
        .await;
        assert_eq!(j.tasks, ["t1", "t2"]);
        assert_eq!(j.warnings, ["dropped rules.1"]);
        assert_eq!(j.cause.as_deref(), Some("backend: the backend is unreachable"));
    }
}
