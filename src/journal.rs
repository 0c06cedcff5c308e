//! What one request did, for its access line, its audit record and its
//! answer's warnings: the tasks it started or waited on, what was dropped
//! or changed on the way, and why it failed.
//!
//! Like a tracing span, the journal belongs to the request's task: the
//! observe layer opens it around the whole stack ([`collect`]), and the
//! code that learns something records it ([`tasks`], [`warn`], [`failed`]).
//! Outside a request (background work, tests calling a module directly)
//! recording does nothing.

use crate::model::{Group, Scope};
use std::cell::RefCell;
use std::future::Future;

/// A change the request made (or asked for), for the audit record.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `create`, `update`, `delete`, `add_rule`, `delete_rule`, …
    pub op: &'static str,
    pub scope: Scope,
    pub before: Option<Group>,
    /// The group afterwards; for a change still running on tasks, the
    /// group as planned (`planned`).
    pub after: Option<Group>,
    pub planned: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Journal {
    /// Backend or gateway task ids, in the order they were met.
    pub tasks: Vec<String>,
    /// Calls made to the backend on the request's behalf.
    pub backend_calls: u32,
    /// Notes for the caller (the dialect decides how they are shown).
    pub warnings: Vec<String>,
    /// The failure, as `blame: message` (never a secret: error messages
    /// are sanitised where they are made).
    pub cause: Option<String>,
    /// The change, when the request reached the point of making one.
    /// Boxed: a journal is held for the whole of a waiting write, and most
    /// requests record no change.
    pub change: Option<Box<Change>>,
    /// A dry run: the backend writes that were planned and not sent.
    pub unsent: Vec<String>,
    /// Who the request was authenticated as (its name in logs and audit),
    /// kept here so an answer made outside the handler — the deadline, the
    /// end of the shutdown grace, a panic — still names the caller.
    pub principal: Option<String>,
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

/// Records who the request is from.
pub fn principal(name: &str) {
    record(|j| j.principal = Some(name.to_string()));
}

/// Counts one backend call.
pub fn backend_call() {
    record(|j| j.backend_calls += 1);
}

/// Records the change the request made or asked for. The last record
/// wins: a protocol built on another (a copy on a create) records after
/// the inner one returns.
pub fn change(c: Change) {
    record(|j| j.change = Some(Box::new(c)));
}

/// Records why a front end refused the request in its own dialect (a
/// body or query its parser rejected), unless a cause is known already.
pub fn refused(status: u16, text: &str) {
    record(|j| {
        if j.cause.is_none() {
            let blame = if status < 500 { "caller" } else { "gateway" };
            j.cause = Some(format!("{blame}: {text}"));
        }
    });
}

/// The recorded change happened: `after` is the group now.
pub fn settled(after: &Group) {
    record(|j| {
        if let Some(c) = &mut j.change {
            c.after = Some(after.clone());
            c.planned = false;
        }
    });
}

/// Names the recorded change after the protocol that made it (a revert
/// is made as an update).
pub fn set_op(op: &'static str) {
    record(|j| {
        if let Some(c) = &mut j.change {
            c.op = op;
        }
    });
}

/// A dry run stopped a backend write; `what` says what it would have done.
pub fn unsent(what: String) {
    record(|j| j.unsent.push(what));
}

/// Forgets the recorded failure (a dry run's stop is its success).
pub fn clear_failure() {
    record(|j| j.cause = None);
}

/// A copy of what was recorded so far.
pub fn snapshot() -> Journal {
    CURRENT.try_with(|j| j.borrow().clone()).unwrap_or_default()
}

/// The task ids recorded so far (for an answer cut short).
pub fn current_tasks() -> Vec<String> {
    CURRENT.try_with(|j| j.borrow().tasks.clone()).unwrap_or_default()
}

/// Records a note for the caller.
pub fn warn(text: impl Into<String>) {
    let text = text.into();
    record(|j| j.warnings.push(text));
}

/// Records why the request failed (the first failure wins: later ones are
/// usually its consequences).
pub fn failed(cause: impl std::fmt::Display) {
    record(|j| {
        if j.cause.is_none() {
            j.cause = Some(cause.to_string());
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

    #[tokio::test]
    async fn records_inside_a_request_only() {
        warn("outside");
        let ((), j) = collect(async {
            tasks(&["t1", "t2", "t1"]);
            warn("dropped rules.1");
            failed("backend: the backend is unreachable");
            failed("gateway: later");
            assert_eq!(warnings(), ["dropped rules.1"]);
        })
        .await;
        assert_eq!(j.tasks, ["t1", "t2"]);
        assert_eq!(j.warnings, ["dropped rules.1"]);
        assert_eq!(j.cause.as_deref(), Some("backend: the backend is unreachable"));
    }
}
