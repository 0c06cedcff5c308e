//! Gateway errors as CF v3 errors: the one place they are turned into v3
//! bodies and codes.

use crate::dialect::cf::v3::V3Error;
use crate::error::Error;
use crate::server::cf::answer::{cf_answer, CfAnswer};
use crate::server::http::{raw, Resp};
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;

pub fn response(e: &V3Error) -> Resp {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = raw(status, "application/json", Bytes::from(e.body()));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

pub fn to_v3(e: &Error) -> V3Error {
    match cf_answer(e) {
        CfAnswer::GroupNotFound(_) => V3Error::ResourceNotFound("Security group"),
        CfAnswer::SpaceNotFound(_) => V3Error::ResourceNotFound("Space"),
        CfAnswer::NotFound => V3Error::NotFound,
        CfAnswer::NameTaken(n) => {
            V3Error::Unprocessable(vec![format!("Security group with name '{n}' already exists.")])
        }
        CfAnswer::Invalid(messages) => V3Error::Unprocessable(messages),
        CfAnswer::NotAuthorized => V3Error::NotAuthorized,
        CfAnswer::BackendTimeout(m) => V3Error::BackendTimeout(m),
        CfAnswer::BackendRejected(m) => V3Error::BackendRejected(m),
        CfAnswer::BackendUnavailable(m) => V3Error::BackendUnavailable(m),
        CfAnswer::Unknown => V3Error::Unknown,
        CfAnswer::NotAuthenticated => V3Error::NotAuthenticated,
        CfAnswer::InvalidAuthToken => V3Error::InvalidAuthToken,
        CfAnswer::UaaUnavailable => V3Error::UaaUnavailable,
        CfAnswer::PayloadTooLarge => V3Error::PayloadTooLarge,
        CfAnswer::RequestTimeout => V3Error::RequestTimeout,
        CfAnswer::Conflict(m) => V3Error::Conflict(m),
        CfAnswer::KeyReused(m) => V3Error::Unprocessable(vec![m]),
        CfAnswer::InvalidRequest(m) => V3Error::InvalidRequest(m),
    }
}

impl From<Error> for V3Error {
    fn from(e: Error) -> Self {
        to_v3(&e)
    }
}
