//! Gateway errors as Gcore errors: the one place they are turned into
//! Gcore's bodies and statuses.

use crate::dialect::gcore::error::InvalidFields;
use crate::dialect::gcore::GcoreError;
use crate::error::{Applied, Error, Kind, Missing};
use crate::mapping::PlanError;
use crate::server::http::{json, Resp};
use http::StatusCode;

pub fn response(e: &GcoreError, request_id: &str) -> Resp {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, &e.body(Some(request_id.to_string())))
}

fn plan_error(p: &PlanError) -> GcoreError {
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

pub fn to_gcore(e: &Error) -> GcoreError {
    let msg = e.message().to_string();
    let unknown = match e.applied() {
        Applied::Nothing => "",
        Applied::Unknown => " (the change may still be applied)",
    };
    match e.kind() {
        Kind::NotFound(Missing::Group(_)) => GcoreError::NotFound("Security group not found".into()),
        Kind::NotFound(Missing::Rule(_)) => GcoreError::NotFound("Security group rule not found".into()),
        Kind::NotFound(Missing::Task(t)) => GcoreError::NotFound(format!("Task {t} not found")),
        Kind::NotFound(Missing::Space(s)) => GcoreError::NotFound(format!("Space {s} not found")),
        Kind::NoRoute => GcoreError::NotFound("Not Found".into()),
        Kind::MethodNotAllowed => GcoreError::MethodNotAllowed,
        Kind::NameTaken(n) => GcoreError::Conflict(format!("Security group with name '{n}' already exists.")),
        Kind::Unplannable(p) => plan_error(p),
        Kind::Refused | Kind::TaskFailed => GcoreError::validation(msg),
        Kind::Forbidden => GcoreError::Forbidden(msg),
        Kind::Conflict => GcoreError::Conflict(msg),
        Kind::BackendAuth => GcoreError::BadGateway(format!("the backend refused the gateway's credentials: {msg}")),
        Kind::Unavailable | Kind::AuthUnavailable => GcoreError::Unavailable(format!("{msg}{unknown}")),
        Kind::Timeout | Kind::RequestTimeout => GcoreError::Timeout(format!("{msg}{unknown}")),
        Kind::Upstream => GcoreError::BadGateway(format!("{msg}{unknown}")),
        Kind::Unsupported => GcoreError::validation(msg),
        Kind::Internal => GcoreError::Internal,
        Kind::Unauthenticated | Kind::BadCredentials => GcoreError::Unauthorized(msg),
        Kind::TooLarge => GcoreError::PayloadTooLarge,
        Kind::BodyTimeout => GcoreError::RequestTimeout,
    }
}

impl From<Error> for GcoreError {
    fn from(e: Error) -> Self {
        to_gcore(&e)
    }
}
