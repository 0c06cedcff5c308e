//! Cloud Controller's error classes, as a CF caller of either API version
//! meets them: v2 (`rescue::to_cf`) and v3 (`v3::rescue::to_v3`) only name
//! each class in their own wire; which class an error is, is the one table
//! in `server::answer`.

use crate::error::Error;
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

/// The class and message for `e` (and the cause recorded for the access
/// line): the CF column of [`crate::server::answer`]'s table.
pub fn cf_answer(e: &Error) -> CfAnswer {
    crate::server::answer::answer(e).cf
}
