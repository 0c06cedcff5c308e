//! Gateway errors as CF v2 errors: the one place they are turned into CC's
//! bodies and codes.

use super::answer::{cf_answer, CfAnswer};
use crate::dialect::cf::CfError;
use crate::error::Error;
use crate::server::http::{cf_json, Resp};
use http::StatusCode;

pub fn response(e: &CfError) -> Resp {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    cf_json(status, &e.body())
}

pub use super::answer::plan_messages;

pub fn to_cf(e: &Error) -> CfError {
    match cf_answer(e) {
        CfAnswer::GroupNotFound(g) => CfError::SecurityGroupNotFound(g),
        CfAnswer::SpaceNotFound(s) => CfError::InvalidRelation(s),
        CfAnswer::NotFound => CfError::NotFound,
        CfAnswer::NameTaken(n) => CfError::NameTaken(n),
        CfAnswer::Invalid(messages) => CfError::SecurityGroupInvalid(messages),
        CfAnswer::NotAuthorized => CfError::NotAuthorized,
        CfAnswer::BackendTimeout(m) => CfError::BackendTimeout(m),
        CfAnswer::BackendRejected(m) => CfError::BackendRejected(m),
        CfAnswer::BackendUnavailable(m) => CfError::BackendUnavailable(m),
        CfAnswer::Unknown => CfError::Unknown,
        CfAnswer::NotAuthenticated => CfError::NotAuthenticated,
        CfAnswer::InvalidAuthToken => CfError::InvalidAuthToken,
        CfAnswer::UaaUnavailable => CfError::UaaUnavailable,
        CfAnswer::PayloadTooLarge => CfError::PayloadTooLarge,
        CfAnswer::RequestTimeout => CfError::RequestTimeout,
        CfAnswer::Conflict(m) => CfError::Conflict(m),
        CfAnswer::KeyReused(m) => CfError::Unprocessable(m),
        CfAnswer::InvalidRequest(m) => CfError::InvalidRequest(m),
    }
}

impl From<Error> for CfError {
    fn from(e: Error) -> Self {
        to_cf(&e)
    }
}
