//! The Cloud Foundry front ends: v2 (`/v2/...`, legacy tooling and the cf
//! CLI v6) and v3 (`/v3/...`, the cf CLI v7/v8), both over the service
//! layer, so a group written through one reads the same through the other.

pub mod answer;
pub mod job;
pub mod rescue;
pub mod v2;
pub mod v3;

use crate::server::http::{warnings_header, Resp};

/// Warnings for the cf CLI (`X-Cf-Warnings`).
pub fn warn(resp: Resp, warnings: &[String]) -> Resp {
    warnings_header(resp, "x-cf-warnings", warnings)
}
