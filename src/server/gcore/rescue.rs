//! Gateway errors as Gcore errors: the one place they are turned into
//! Gcore's bodies, statuses and retry advice (which error is which is the
//! table in `server::answer`; an emulator's fault answers as it says).

use crate::backend::Injected;
use crate::dialect::gcore::GcoreError;
use crate::error::Error;
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

/// `e` as a Gcore error: an emulator's fault as the emulated API answers
/// it, else the Gcore column of [`crate::server::answer`]'s table.
pub fn to_gcore(e: &Error) -> GcoreError {
    match e.injected() {
        Some((Injected::Reset, _)) => {
            crate::journal::failed(e.cause());
            GcoreError::Reset
        }
        Some((Injected::Answer { retry_after_s }, Some(status))) => {
            crate::journal::failed(e.cause());
            GcoreError::Injected {
                status,
                message: e.message().to_string(),
                retry_after_s,
            }
        }
        _ => crate::server::answer::answer(e).gcore,
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
    use crate::error::{Applied, Kind};

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
