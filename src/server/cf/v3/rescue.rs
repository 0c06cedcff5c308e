//! Gateway errors as CF v3 errors: the one place they are turned into v3
//! bodies and codes.

use crate::dialect::cf::v3::V3Error;
use crate::error::{Applied, Error, Kind, Missing};
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
    crate::journal::failed(e.cause());
    let msg = e.message();
    let unknown = match e.applied() {
        Applied::Nothing => "",
        Applied::Unknown => " (the change may still be applied)",
    };
    match e.kind() {
        Kind::NotFound(Missing::Group(_)) => V3Error::ResourceNotFound("Security group"),
        Kind::NotFound(Missing::Space(_)) => V3Error::ResourceNotFound("Space"),
        Kind::NotFound(_) | Kind::NoRoute | Kind::MethodNotAllowed => V3Error::NotFound,
        Kind::NameTaken(n) => V3Error::Unprocessable(vec![format!("Security group with name '{n}' already exists.")]),
        Kind::Unplannable(p) => V3Error::Unprocessable(super::super::rescue::plan_messages(p)),
        Kind::Refused => V3Error::Unprocessable(vec![format!("the backend refused the change: {msg}")]),
        Kind::Forbidden => V3Error::NotAuthorized,
        Kind::Conflict => V3Error::BackendTimeout(format!(
            "The security group is still locked by another backend task at the deadline: {msg}"
        )),
        Kind::BackendAuth => V3Error::BackendRejected(format!("The backend refused the gateway's credentials: {msg}")),
        Kind::Unavailable => V3Error::BackendUnavailable(format!("The backend is unavailable: {msg}{unknown}")),
        Kind::Timeout => V3Error::BackendTimeout(format!("The backend did not finish in time: {msg}{unknown}")),
        Kind::TaskFailed => V3Error::BackendRejected(format!("{msg}{unknown}")),
        Kind::Upstream => V3Error::BackendRejected(format!("The backend failed: {msg}{unknown}")),
        Kind::Unsupported => V3Error::BackendRejected(format!("The backend cannot do this: {msg}")),
        Kind::Internal => V3Error::Unknown,
        Kind::Unauthenticated => V3Error::NotAuthenticated,
        Kind::BadCredentials => V3Error::InvalidAuthToken,
        Kind::AuthUnavailable => V3Error::UaaUnavailable,
        Kind::TooLarge => V3Error::PayloadTooLarge,
        Kind::BodyTimeout => V3Error::RequestTimeout,
        Kind::RequestTimeout => V3Error::BackendTimeout("The request timed out".into()),
        Kind::KeyInFlight | Kind::KeyAnswerNotKept => V3Error::Conflict(msg.to_string()),
        Kind::KeyReused => V3Error::Unprocessable(vec![msg.to_string()]),
        Kind::Malformed => V3Error::InvalidRequest(msg.to_string()),
    }
}

impl From<Error> for V3Error {
    fn from(e: Error) -> Self {
        to_v3(&e)
    }
}
