//! Gateway errors as CF v2 errors: the one place they are turned into CC's
//! bodies and codes.

use crate::dialect::cf::CfError;
use crate::error::{Applied, Error, Kind, Missing};
use crate::mapping::PlanError;
use crate::server::http::{cf_json, Resp};
use http::StatusCode;

pub fn response(e: &CfError) -> Resp {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    cf_json(status, &e.body())
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

pub fn to_cf(e: &Error) -> CfError {
    crate::journal::failed(e.cause());
    let msg = e.message();
    match e.kind() {
        Kind::NotFound(Missing::Group(g)) => CfError::SecurityGroupNotFound(g.clone()),
        Kind::NotFound(Missing::Space(s)) => CfError::InvalidRelation(s.clone()),
        Kind::NotFound(_) | Kind::NoRoute | Kind::MethodNotAllowed => CfError::NotFound,
        Kind::NameTaken(n) => CfError::NameTaken(n.clone()),
        Kind::Unplannable(p) => CfError::SecurityGroupInvalid(plan_messages(p)),
        Kind::Refused => CfError::SecurityGroupInvalid(vec![format!("the backend refused the change: {msg}")]),
        Kind::Forbidden => CfError::NotAuthorized,
        Kind::Conflict => CfError::BackendTimeout(format!(
            "The security group is still locked by another backend task at the deadline: {msg}"
        )),
        Kind::BackendAuth => CfError::BackendRejected(format!("The backend refused the gateway's credentials: {msg}")),
        Kind::Unavailable => CfError::BackendUnavailable(format!("The backend is unavailable: {msg}{}", outcome(e))),
        Kind::Timeout => CfError::BackendTimeout(format!("The backend did not finish in time: {msg}{}", outcome(e))),
        Kind::TaskFailed => CfError::BackendRejected(format!("{msg}{}", outcome(e))),
        Kind::Upstream => CfError::BackendRejected(format!("The backend failed: {msg}{}", outcome(e))),
        Kind::Unsupported => CfError::BackendRejected(format!("The backend cannot do this: {msg}")),
        Kind::Internal => CfError::Unknown,
        Kind::Unauthenticated => CfError::NotAuthenticated,
        Kind::BadCredentials => CfError::InvalidAuthToken,
        Kind::AuthUnavailable => CfError::UaaUnavailable,
        Kind::TooLarge => CfError::PayloadTooLarge,
        Kind::BodyTimeout => CfError::RequestTimeout,
        Kind::RequestTimeout => CfError::BackendTimeout("The request timed out".into()),
        Kind::KeyInFlight | Kind::KeyAnswerNotKept => CfError::Conflict(msg.to_string()),
        Kind::KeyReused => CfError::Unprocessable(msg.to_string()),
        Kind::Malformed => CfError::InvalidRequest(msg.to_string()),
    }
}

impl From<Error> for CfError {
    fn from(e: Error) -> Self {
        to_cf(&e)
    }
}
