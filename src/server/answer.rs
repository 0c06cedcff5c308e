//! What a gateway error says to each dialect's caller: the one table from
//! the gateway's error kinds to Cloud Controller's error classes (v2 and v3
//! name each class in their own wire: `cf::rescue`, `cf::v3::rescue`) and
//! to Gcore's errors, whose status says whether a retry is safe
//! (`gcore::rescue` adds `x-should-retry`). A kind added to `Kind` is a
//! compile error here until every dialect has its answer.

use super::cf::answer::{plan_messages, CfAnswer};
use crate::dialect::gcore::error::InvalidFields;
use crate::dialect::gcore::GcoreError;
use crate::error::{Applied, Error, Kind, Missing};
use crate::mapping::PlanError;

/// What each dialect answers for one error.
pub struct Answer {
    pub cf: CfAnswer,
    pub gcore: GcoreError,
}

/// A note on what a failed write left, for the caller.
fn outcome(e: &Error) -> &'static str {
    match e.applied() {
        Applied::Nothing => "",
        Applied::Unknown => " (the change may still be applied)",
    }
}

fn gcore_plan_error(p: &PlanError) -> GcoreError {
    match p {
        PlanError::Unsupported(fields) => {
            let mut invalid = InvalidFields::new();
            for (f, m) in fields {
                invalid.entry(f.clone()).or_default().push(m.clone());
            }
            GcoreError::fields(invalid)
        }
        other => GcoreError::validation(other.to_string()),
    }
}

/// Both dialects' answers to `e` (and its cause recorded for the access line).
pub fn answer(e: &Error) -> Answer {
    crate::journal::failed(e.cause());
    let msg = e.message();
    let text = || msg.to_string();
    let (cf, gcore) = match e.kind() {
        Kind::NotFound(Missing::Group(g)) => (
            CfAnswer::GroupNotFound(g.clone()),
            GcoreError::NotFound("Security group not found".into()),
        ),
        Kind::NotFound(Missing::Space(s)) => (
            CfAnswer::SpaceNotFound(s.clone()),
            GcoreError::NotFound(format!("Space {s} not found")),
        ),
        Kind::NotFound(Missing::Rule(_)) => (
            CfAnswer::NotFound,
            GcoreError::NotFound("Security group rule not found".into()),
        ),
        Kind::NotFound(Missing::Task(t)) => (CfAnswer::NotFound, GcoreError::NotFound(format!("Task {t} not found"))),
        Kind::NoRoute => (CfAnswer::NotFound, GcoreError::NotFound("Not Found".into())),
        Kind::MethodNotAllowed => (CfAnswer::NotFound, GcoreError::MethodNotAllowed),
        Kind::NameTaken(n) => (
            CfAnswer::NameTaken(n.clone()),
            GcoreError::Conflict(format!("Security group with name '{n}' already exists.")),
        ),
        Kind::Unplannable(p) => (CfAnswer::Invalid(plan_messages(p)), gcore_plan_error(p)),
        Kind::Refused => (
            CfAnswer::Invalid(vec![format!("the backend refused the change: {msg}")]),
            GcoreError::validation(text()),
        ),
        Kind::Forbidden => (CfAnswer::NotAuthorized, GcoreError::Forbidden(text())),
        Kind::Conflict => (
            CfAnswer::BackendTimeout(format!(
                "The security group is still locked by another backend task at the deadline: {msg}"
            )),
            GcoreError::Conflict(text()),
        ),
        Kind::BackendAuth => (
            CfAnswer::BackendRejected(format!("The backend refused the gateway's credentials: {msg}")),
            GcoreError::BadGateway(format!("the backend refused the gateway's credentials: {msg}")),
        ),
        Kind::Unavailable => (
            CfAnswer::BackendUnavailable(format!("The backend is unavailable: {msg}{}", outcome(e))),
            GcoreError::Unavailable(text()),
        ),
        Kind::Timeout => (
            CfAnswer::BackendTimeout(format!("The backend did not finish in time: {msg}{}", outcome(e))),
            GcoreError::Timeout(text()),
        ),
        Kind::TaskFailed => (
            CfAnswer::BackendRejected(format!("{msg}{}", outcome(e))),
            GcoreError::validation(text()),
        ),
        Kind::Upstream => (
            CfAnswer::BackendRejected(format!("The backend failed: {msg}{}", outcome(e))),
            GcoreError::BadGateway(text()),
        ),
        Kind::Unsupported => (
            CfAnswer::BackendRejected(format!("The backend cannot do this: {msg}")),
            GcoreError::validation(text()),
        ),
        Kind::Internal => (CfAnswer::Unknown, GcoreError::Internal),
        Kind::Unauthenticated => (CfAnswer::NotAuthenticated, GcoreError::Unauthorized(text())),
        Kind::BadCredentials => (CfAnswer::InvalidAuthToken, GcoreError::Unauthorized(text())),
        Kind::AuthUnavailable => (CfAnswer::UaaUnavailable, GcoreError::Unavailable(text())),
        Kind::TooLarge => (CfAnswer::PayloadTooLarge, GcoreError::PayloadTooLarge),
        Kind::BodyTimeout => (CfAnswer::RequestTimeout, GcoreError::RequestTimeout),
        Kind::RequestTimeout => (
            CfAnswer::BackendTimeout("The request timed out".into()),
            GcoreError::Timeout(text()),
        ),
        Kind::KeyInFlight | Kind::KeyAnswerNotKept => (CfAnswer::Conflict(text()), GcoreError::Conflict(text())),
        Kind::KeyReused => (CfAnswer::KeyReused(text()), GcoreError::Unprocessable(text())),
        Kind::Malformed => (CfAnswer::InvalidRequest(text()), GcoreError::validation(text())),
    };
    let gcore = match e.applied() {
        Applied::Nothing => gcore,
        Applied::Unknown => GcoreError::MayBeApplied(Box::new(gcore)),
    };
    Answer { cf, gcore }
}
