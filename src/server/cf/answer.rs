//! What a gateway error says to a CF caller, whichever API version: the one
//! table from the gateway's error kinds to Cloud Controller's error classes
//! and their messages. v2 (`rescue::to_cf`) and v3 (`v3::rescue::to_v3`)
//! only name each class in their own wire.

use crate::error::{Applied, Error, Kind, Missing};
use crate::mapping::PlanError;

/// One of CC's error classes, with what the caller is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CfAnswer {
    GroupNotFound(String),
    SpaceNotFound(String),
    NotFound,
    NameTaken(String),
    /// Validation messages (v2 `SecurityGroupInvalid`, v3 422).
    Invalid(Vec<String>),
    NotAuthorized,
    BackendTimeout(String),
    BackendRejected(String),
    BackendUnavailable(String),
    Unknown,
    NotAuthenticated,
    InvalidAuthToken,
    UaaUnavailable,
    PayloadTooLarge,
    RequestTimeout,
    Conflict(String),
    /// An `Idempotency-Key` reused for another request (422).
    KeyReused(String),
    InvalidRequest(String),
}

/// A note on what a failed write left, for the caller.
fn outcome(e: &Error) -> &'static str {
    match e.applied() {
        Applied::Nothing => "",
        Applied::Unknown => " (the change may still be applied)",
    }
}

/// Messages for a change the backend's shape cannot hold.
pub fn plan_messages(e: &PlanError) -> Vec<String> {
    match e {
        PlanError::Rules(errs) => errs
            .iter()
            .map(|(n, e)| format!("rules rule number {n} cannot be expressed on Gcore: {e}"))
            .collect(),
        PlanError::TooMany { max, at } => vec![format!(
            "rules expand to more than the {max} Gcore rules a Gcore security group holds (reached at rule number {at})"
        )],
        PlanError::Unsupported(fields) => fields.iter().map(|(f, e)| format!("{f} {e}")).collect(),
    }
}

/// The class and message for `e` (and the cause recorded for the access line).
pub fn cf_answer(e: &Error) -> CfAnswer {
    crate::journal::failed(e.cause());
    let msg = e.message();
    match e.kind() {
        Kind::NotFound(Missing::Group(g)) => CfAnswer::GroupNotFound(g.clone()),
        Kind::NotFound(Missing::Space(s)) => CfAnswer::SpaceNotFound(s.clone()),
        Kind::NotFound(_) | Kind::NoRoute | Kind::MethodNotAllowed => CfAnswer::NotFound,
        Kind::NameTaken(n) => CfAnswer::NameTaken(n.clone()),
        Kind::Unplannable(p) => CfAnswer::Invalid(plan_messages(p)),
        Kind::Refused => CfAnswer::Invalid(vec![format!("the backend refused the change: {msg}")]),
        Kind::Forbidden => CfAnswer::NotAuthorized,
        Kind::Conflict => CfAnswer::BackendTimeout(format!(
            "The security group is still locked by another backend task at the deadline: {msg}"
        )),
        Kind::BackendAuth => CfAnswer::BackendRejected(format!("The backend refused the gateway's credentials: {msg}")),
        Kind::Unavailable => CfAnswer::BackendUnavailable(format!("The backend is unavailable: {msg}{}", outcome(e))),
        Kind::Timeout => CfAnswer::BackendTimeout(format!("The backend did not finish in time: {msg}{}", outcome(e))),
        Kind::TaskFailed => CfAnswer::BackendRejected(format!("{msg}{}", outcome(e))),
        Kind::Upstream => CfAnswer::BackendRejected(format!("The backend failed: {msg}{}", outcome(e))),
        Kind::Unsupported => CfAnswer::BackendRejected(format!("The backend cannot do this: {msg}")),
        Kind::Internal => CfAnswer::Unknown,
        Kind::Unauthenticated => CfAnswer::NotAuthenticated,
        Kind::BadCredentials => CfAnswer::InvalidAuthToken,
        Kind::AuthUnavailable => CfAnswer::UaaUnavailable,
        Kind::TooLarge => CfAnswer::PayloadTooLarge,
        Kind::BodyTimeout => CfAnswer::RequestTimeout,
        Kind::RequestTimeout => CfAnswer::BackendTimeout("The request timed out".into()),
        Kind::KeyInFlight | Kind::KeyAnswerNotKept => CfAnswer::Conflict(msg.to_string()),
        Kind::KeyReused => CfAnswer::KeyReused(msg.to_string()),
        Kind::Malformed => CfAnswer::InvalidRequest(msg.to_string()),
    }
}
