//! CF v3 errors and their one conversion into the wire body
//! `{"errors":[{"detail","title","code"}]}` (CC `v3_error_hasher.rb`; key
//! order as CC emits it; several messages joined by `, ` in one `detail`).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V3Error {
    /// 422 `CF-UnprocessableEntity`: validation messages, joined by `, `.
    #[error("{}", .0.join(", "))]
    Unprocessable(Vec<String>),
    /// 400 `CF-BadQueryParameter`: a list query CC's events controller refuses.
    #[error("The query parameter is invalid: {}", .0.join(", "))]
    BadQuery(Vec<String>),
    /// 404 `CF-ResourceNotFound`: `<Resource> not found`.
    #[error("{0} not found")]
    ResourceNotFound(&'static str),
    #[error("Request invalid due to parse error: invalid request body")]
    MessageParse,
    #[error("Authentication error")]
    NotAuthenticated,
    #[error("Invalid Auth Token")]
    InvalidAuthToken,
    #[error("You are not authorized to perform the requested action")]
    NotAuthorized,
    #[error("The UAA service is currently unavailable")]
    UaaUnavailable,
    #[error("Unknown request")]
    NotFound,
    /// CC's `InvalidRequest` (10004): a request the gateway cannot read.
    #[error("The request is invalid: {0}")]
    InvalidRequest(String),
    #[error("The request body is too large")]
    PayloadTooLarge,
    #[error("The request body did not arrive in time")]
    RequestTimeout,
    /// The backend refused or failed; the text carries its message and task ids.
    #[error("{0}")]
    BackendRejected(String),
    #[error("{0}")]
    BackendUnavailable(String),
    #[error("{0}")]
    BackendTimeout(String),
    #[error("An unknown error occurred.")]
    Unknown,
    /// The gateway's own 409 (Idempotency-Key in use).
    #[error("{0}")]
    Conflict(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct V3ErrorItem {
    pub detail: String,
    pub title: String,
    pub code: u32,
}

/// CC's uncaught-error body puts the title first.
#[derive(Serialize)]
struct UnknownItem {
    title: &'static str,
    detail: &'static str,
    code: u32,
}

#[derive(Serialize)]
struct UnknownBody {
    errors: [UnknownItem; 1],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct V3ErrorBody {
    pub errors: Vec<V3ErrorItem>,
}

impl V3Error {
    fn parts(&self) -> (u16, u32, &'static str) {
        match self {
            V3Error::Unprocessable(_) => (422, 10008, "CF-UnprocessableEntity"),
            V3Error::BadQuery(_) => (400, 10005, "CF-BadQueryParameter"),
            V3Error::ResourceNotFound(_) => (404, 10010, "CF-ResourceNotFound"),
            V3Error::MessageParse => (400, 1001, "CF-MessageParseError"),
            V3Error::NotAuthenticated => (401, 10002, "CF-NotAuthenticated"),
            V3Error::InvalidAuthToken => (401, 1000, "CF-InvalidAuthToken"),
            V3Error::NotAuthorized => (403, 10003, "CF-NotAuthorized"),
            V3Error::UaaUnavailable => (502, 20004, "CF-UaaUnavailable"),
            V3Error::NotFound => (404, 10000, "CF-NotFound"),
            V3Error::InvalidRequest(_) => (400, 10004, "CF-InvalidRequest"),
            V3Error::PayloadTooLarge => (413, 10001, "CF-RequestEntityTooLarge"),
            V3Error::RequestTimeout => (408, 10001, "CF-RequestTimeout"),
            V3Error::BackendRejected(_) => (502, 10001, "CF-BackendRejected"),
            V3Error::BackendUnavailable(_) => (503, 10015, "CF-ServiceUnavailable"),
            V3Error::BackendTimeout(_) => (504, 10001, "CF-GatewayTimeout"),
            V3Error::Unknown => (500, 10001, "UnknownError"),
            V3Error::Conflict(_) => (409, 10001, "CF-Conflict"),
        }
    }

    pub fn status(&self) -> u16 {
        self.parts().0
    }

    /// The wire body, as bytes (CC's key order differs for the 500 body).
    pub fn body(&self) -> Vec<u8> {
        let (_, code, title) = self.parts();
        let bytes = match self {
            V3Error::Unknown => serde_json::to_vec(&UnknownBody {
                errors: [UnknownItem {
                    title,
                    detail: "An unknown error occurred.",
                    code,
                }],
            }),
            _ => serde_json::to_vec(&V3ErrorBody {
                errors: vec![V3ErrorItem {
                    detail: self.to_string(),
                    title: title.to_string(),
                    code,
                }],
            }),
        };
        bytes.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_cc_key_order() {
        let e = V3Error::Unprocessable(vec!["Rules[0]: a".into(), "Rules[1]: b".into()]);
        assert_eq!(e.status(), 422);
        assert_eq!(
            String::from_utf8(e.body()).unwrap(),
            r#"{"errors":[{"detail":"Rules[0]: a, Rules[1]: b","title":"CF-UnprocessableEntity","code":10008}]}"#
        );
        assert_eq!(
            String::from_utf8(V3Error::Unknown.body()).unwrap(),
            r#"{"errors":[{"title":"UnknownError","detail":"An unknown error occurred.","code":10001}]}"#
        );
        assert_eq!(
            V3Error::ResourceNotFound("Security group").to_string(),
            "Security group not found"
        );
    }
}
