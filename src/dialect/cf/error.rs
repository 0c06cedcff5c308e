//! CF v2 errors and their one conversion into the wire body
//! `{"code","description","error_code"}` (CC `errors/v2.yml`).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CfError {
    /// Body is not JSON or has the wrong shape (message layer).
    #[error("Request invalid due to parse error: {0}")]
    MessageParse(String),
    /// Model validation failed; each entry is one Sequel full message.
    #[error("The security group is invalid: {}", .0.join(", "))]
    SecurityGroupInvalid(Vec<String>),
    #[error("The security group could not be found: {0}")]
    SecurityGroupNotFound(String),
    #[error("The security group could not be found: {0}")]
    StagingDefaultInvalid(String),
    #[error("The security group could not be found: {0}")]
    RunningDefaultInvalid(String),
    #[error("The security group name is taken: {0}")]
    NameTaken(String),
    #[error("The organization could not be found: {0}")]
    OrganizationNotFound(String),
    #[error("The app space could not be found: {0}")]
    SpaceNotFound(String),
    #[error("Could not find VCAP::CloudController::Space with guid: {0}")]
    InvalidRelation(String),
    #[error("The query parameter is invalid: {0}")]
    BadQueryParameter(String),
    #[error("Cannot order by: {0}")]
    OrderByParameterInvalid(String),
    #[error("Authentication error")]
    NotAuthenticated,
    #[error("Invalid Auth Token")]
    InvalidAuthToken,
    #[error("You are not authorized to perform the requested action")]
    NotAuthorized,
    #[error("Your token lacks the necessary scopes to access this resource.")]
    InsufficientScope,
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
    /// The gateway's own 409 and 422 (Idempotency-Key).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
}

/// The exact three-key CC error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CfErrorBody {
    pub code: u32,
    pub description: String,
    pub error_code: String,
}

impl CfError {
    /// HTTP status, CC code and CC error name.
    fn parts(&self) -> (u16, u32, &'static str) {
        match self {
            CfError::MessageParse(_) => (400, 1001, "CF-MessageParseError"),
            CfError::SecurityGroupInvalid(_) => (400, 300001, "CF-SecurityGroupInvalid"),
            CfError::SecurityGroupNotFound(_) => (404, 300002, "CF-SecurityGroupNotFound"),
            CfError::StagingDefaultInvalid(_) => (400, 300003, "CF-SecurityGroupStagingDefaultInvalid"),
            CfError::RunningDefaultInvalid(_) => (400, 300004, "CF-SecurityGroupRunningDefaultInvalid"),
            CfError::NameTaken(_) => (400, 300005, "CF-SecurityGroupNameTaken"),
            CfError::OrganizationNotFound(_) => (404, 30003, "CF-OrganizationNotFound"),
            CfError::SpaceNotFound(_) => (404, 40004, "CF-SpaceNotFound"),
            CfError::InvalidRelation(_) => (400, 1002, "CF-InvalidRelation"),
            CfError::BadQueryParameter(_) => (400, 10005, "CF-BadQueryParameter"),
            CfError::OrderByParameterInvalid(_) => (500, 10012, "CF-OrderByParameterInvalid"),
            CfError::NotAuthenticated => (401, 10002, "CF-NotAuthenticated"),
            CfError::InvalidAuthToken => (401, 1000, "CF-InvalidAuthToken"),
            CfError::NotAuthorized => (403, 10003, "CF-NotAuthorized"),
            CfError::InsufficientScope => (403, 10007, "CF-InsufficientScope"),
            CfError::UaaUnavailable => (502, 20004, "CF-UaaUnavailable"),
            CfError::NotFound => (404, 10000, "CF-NotFound"),
            CfError::InvalidRequest(_) => (400, 10004, "CF-InvalidRequest"),
            // CC has no code of its own for these gateway outcomes; 10001-range
            // names keep clients that switch on error_code on a generic path.
            CfError::PayloadTooLarge => (413, 10001, "CF-RequestEntityTooLarge"),
            CfError::RequestTimeout => (408, 10001, "CF-RequestTimeout"),
            CfError::BackendRejected(_) => (502, 10001, "CF-BackendRejected"),
            CfError::BackendUnavailable(_) => (503, 10015, "CF-ServiceUnavailable"),
            CfError::BackendTimeout(_) => (504, 10001, "CF-GatewayTimeout"),
            CfError::Unknown => (500, 10001, "UnknownError"),
            CfError::Conflict(_) => (409, 10001, "CF-Conflict"),
            CfError::Unprocessable(_) => (422, 10008, "CF-UnprocessableEntity"),
        }
    }

    pub fn status(&self) -> u16 {
        self.parts().0
    }

    pub fn body(&self) -> CfErrorBody {
        let (_, code, name) = self.parts();
        CfErrorBody {
            code,
            description: self.to_string(),
            error_code: name.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_match_cc_wording() {
        let e = CfError::SecurityGroupInvalid(vec![
            "rules rule number 1 missing required field 'destination'".into(),
            "rules rule number 1 missing required field 'ports'".into(),
        ]);
        assert_eq!(e.status(), 400);
        let body = serde_json::to_value(e.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "code": 300001,
                "description": "The security group is invalid: rules rule number 1 missing required field 'destination', rules rule number 1 missing required field 'ports'",
                "error_code": "CF-SecurityGroupInvalid"
            })
        );
        assert_eq!(CfError::NameTaken("web".into()).body().code, 300005);
        assert_eq!(CfError::InvalidAuthToken.body().code, 1000);
        assert_eq!(CfError::Unknown.body().error_code, "UnknownError");
    }
}
