//! Gcore errors and their one conversion into Gcore's error body
//! `{"exception_class","message","request_id","invalid_fields"?}`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Field path (`rules.0.direction`) → messages, marshmallow style.
pub type InvalidFields = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GcoreError {
    #[error("{message}")]
    Validation {
        message: String,
        invalid_fields: InvalidFields,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    #[error("Request body is too large")]
    PayloadTooLarge,
    #[error("The request body did not arrive in time")]
    RequestTimeout,
    /// The backend behind the gateway failed; the text carries its message.
    #[error("{0}")]
    BadGateway(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Timeout(String),
    #[error("Internal server error")]
    Internal,
    #[error("{0}")]
    Unprocessable(String),
    /// A failure after which the change may still be applied: sending the
    /// same write again could apply it twice.
    #[error("{0} (the change may still be applied)")]
    MayBeApplied(Box<GcoreError>),
    /// An emulator fault: answered with its own status and message.
    #[error("{message}")]
    Injected {
        status: u16,
        message: String,
        retry_after_s: Option<u64>,
    },
    /// An emulator fault: the connection closes without an answer (the
    /// status is only what the access line shows).
    #[error("the connection was reset (an emulator fault)")]
    Reset,
}

/// Gcore's exception class for an error status.
fn class_of(status: u16) -> &'static str {
    match status {
        400 => "ValidationError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        409 => "ConflictError",
        422 => "UnprocessableEntityError",
        429 => "TooManyRequestsError",
        500 => "InternalServerError",
        502 => "BadGatewayError",
        503 => "ServiceUnavailableError",
        504 => "GatewayTimeoutError",
        _ => "HTTPError",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcoreErrorBody {
    pub exception_class: String,
    pub message: String,
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_fields: Option<InvalidFields>,
}

impl GcoreError {
    /// A validation error about the body as a whole.
    pub fn validation(message: impl Into<String>) -> Self {
        GcoreError::Validation {
            message: message.into(),
            invalid_fields: InvalidFields::new(),
        }
    }

    /// A validation error from per-field messages; the message names the first.
    pub fn fields(invalid_fields: InvalidFields) -> Self {
        let message = invalid_fields
            .iter()
            .next()
            .map(|(f, m)| format!("{f}: {}", m.join(" ")))
            .unwrap_or_else(|| "Validation error".into());
        GcoreError::Validation {
            message,
            invalid_fields,
        }
    }

    /// Gcore's SDKs retry 408, 409, 429 and 5xx unless `x-should-retry`
    /// says otherwise: retrying is safe when nothing was applied and the
    /// cause may pass (a busy group, an unreachable or slow backend).
    pub fn should_retry(&self) -> bool {
        matches!(
            self,
            GcoreError::Conflict(_)
                | GcoreError::RequestTimeout
                | GcoreError::Unavailable(_)
                | GcoreError::Timeout(_)
                | GcoreError::BadGateway(_)
        )
    }

    pub fn status(&self) -> u16 {
        match self {
            GcoreError::MayBeApplied(inner) => inner.status(),
            GcoreError::Validation { .. } => 400,
            GcoreError::NotFound(_) => 404,
            GcoreError::Conflict(_) => 409,
            GcoreError::Unauthorized(_) => 401,
            GcoreError::Forbidden(_) => 403,
            GcoreError::MethodNotAllowed => 405,
            GcoreError::PayloadTooLarge => 413,
            GcoreError::RequestTimeout => 408,
            GcoreError::BadGateway(_) => 502,
            GcoreError::Unavailable(_) => 503,
            GcoreError::Timeout(_) => 504,
            GcoreError::Internal => 500,
            GcoreError::Unprocessable(_) => 422,
            GcoreError::Injected { status, .. } => *status,
            GcoreError::Reset => 502,
        }
    }

    pub fn body(&self, request_id: Option<String>) -> GcoreErrorBody {
        if let GcoreError::MayBeApplied(inner) = self {
            return GcoreErrorBody {
                message: self.to_string(),
                ..inner.body(request_id)
            };
        }
        let class = match self {
            GcoreError::MayBeApplied(_) => unreachable!("answered above"),
            GcoreError::Validation { .. } => "ValidationError",
            GcoreError::NotFound(_) => "NotFoundError",
            GcoreError::Conflict(_) => "ConflictError",
            GcoreError::Unauthorized(_) => "AuthenticationError",
            GcoreError::Forbidden(_) => "PermissionDeniedError",
            GcoreError::MethodNotAllowed => "HTTPError",
            GcoreError::PayloadTooLarge | GcoreError::RequestTimeout => "HTTPError",
            GcoreError::BadGateway(_) => "BadGatewayError",
            GcoreError::Unavailable(_) => "ServiceUnavailableError",
            GcoreError::Timeout(_) => "GatewayTimeoutError",
            GcoreError::Internal => "InternalServerError",
            GcoreError::Unprocessable(_) => "UnprocessableEntityError",
            GcoreError::Injected { status, .. } => class_of(*status),
            GcoreError::Reset => class_of(502),
        };
        let invalid_fields = match self {
            GcoreError::Validation { invalid_fields, .. } if !invalid_fields.is_empty() => Some(invalid_fields.clone()),
            _ => None,
        };
        GcoreErrorBody {
            exception_class: class.to_string(),
            message: self.to_string(),
            request_id,
            invalid_fields,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_gcore_shape() {
        let mut f = InvalidFields::new();
        f.insert(
            "rules.0.direction".into(),
            vec!["Missing data for required field.".into()],
        );
        let e = GcoreError::fields(f);
        assert_eq!(e.status(), 400);
        let body = serde_json::to_value(e.body(Some("r1".into()))).unwrap();
        assert_eq!(body["exception_class"], "ValidationError");
        assert_eq!(body["message"], "rules.0.direction: Missing data for required field.");
        assert_eq!(
            body["invalid_fields"]["rules.0.direction"][0],
            "Missing data for required field."
        );
        let conflict = GcoreError::Conflict("locked".into()).body(None);
        assert_eq!(
            serde_json::to_value(conflict).unwrap(),
            serde_json::json!({"exception_class":"ConflictError","message":"locked","request_id":null})
        );
    }
}
