//! Gateway errors as Gcore errors: the one place they are turned into
//! Gcore's bodies and statuses.

use crate::backend::Injected;
use crate::dialect::gcore::error::InvalidFields;
use crate::dialect::gcore::GcoreError;
use crate::error::{Applied, Error, Kind, Missing};
use crate::mapping::PlanError;
use crate::server::http::{json, with_header, CloseWithoutAnswer, Resp};
use http::StatusCode;

pub fn response(e: &GcoreError, request_id: &str) -> Resp {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json(status, &e.body(Some(request_id.to_string())));
    match e {
        // An emulated API's answer: no advice of the gateway's own, so the
        // SDK retries by its status as it would against Gcore.
        GcoreError::Injected { retry_after_s, .. } => match retry_after_s {
            Some(s) => with_header(resp, "retry-after", &s.to_string()),
            None => resp,
        },
        GcoreError::Reset => {
            resp.extensions_mut().insert(CloseWithoutAnswer);
            resp
        }
        _ => with_header(resp, "x-should-retry", if e.should_retry() { "true" } else { "false" }),
    }
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
    crate::journal::failed(e.cause());
    match e.injected() {
        Some((Injected::Reset, _)) => return GcoreError::Reset,
        Some((Injected::Answer { retry_after_s }, Some(status))) => {
            return GcoreError::Injected {
                status,
                message: e.message().to_string(),
                retry_after_s,
            }
        }
        _ => {}
    }
    let msg = e.message().to_string();
    let error = match e.kind() {
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
        Kind::Unavailable | Kind::AuthUnavailable => GcoreError::Unavailable(msg),
        Kind::Timeout | Kind::RequestTimeout => GcoreError::Timeout(msg),
        Kind::Upstream => GcoreError::BadGateway(msg),
        Kind::Unsupported => GcoreError::validation(msg),
        Kind::Internal => GcoreError::Internal,
        Kind::Unauthenticated | Kind::BadCredentials => GcoreError::Unauthorized(msg),
        Kind::TooLarge => GcoreError::PayloadTooLarge,
        Kind::BodyTimeout => GcoreError::RequestTimeout,
        Kind::KeyInFlight | Kind::KeyAnswerNotKept => GcoreError::Conflict(msg),
        Kind::KeyReused => GcoreError::Unprocessable(msg),
        Kind::Malformed => GcoreError::validation(msg),
    };
    match e.applied() {
        Applied::Nothing => error,
        Applied::Unknown => GcoreError::MayBeApplied(Box::new(error)),
    }
}

impl From<Error> for GcoreError {
    fn from(e: Error) -> Self {
        to_gcore(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(r: &Resp) -> &str {
        r.headers()["x-should-retry"].to_str().unwrap()
    }

    #[test]
    fn retries_are_invited_only_where_nothing_was_applied() {
        let busy = to_gcore(&Error::new(
            Kind::Conflict,
            "Security group is already locked by another task",
        ));
        let r = response(&busy, "r1");
        assert_eq!((r.status().as_u16(), header(&r)), (409, "true"));

        let slow = Error::new(Kind::Timeout, "the tasks did not finish in time").with_applied(Applied::Unknown);
        let e = to_gcore(&slow);
        let r = response(&e, "r1");
        assert_eq!((r.status().as_u16(), header(&r)), (504, "false"));
        assert_eq!(
            e.body(None).message,
            "the tasks did not finish in time (the change may still be applied)"
        );
        assert_eq!(e.body(None).exception_class, "GatewayTimeoutError");

        let bad = response(&to_gcore(&Error::new(Kind::Refused, "no")), "r1");
        assert_eq!((bad.status().as_u16(), header(&bad)), (400, "false"));
    }
}
