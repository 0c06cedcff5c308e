//! The Cloud Foundry front ends: v2 (`/v2/...`, legacy tooling and the cf
//! CLI v6) and v3 (`/v3/...`, the cf CLI v7/v8), both over the service
//! layer, so a group written through one reads the same through the other.

pub mod job;
pub mod rescue;
pub mod v2;
pub mod v3;

use crate::server::http::{encode, with_header, Resp};

/// Warnings for the cf CLI: a comma-separated list of URL-encoded texts,
/// bounded so no client's header-line limit is reached.
pub fn warn(resp: Resp, warnings: &[String]) -> Resp {
    const MAX: usize = 8 * 1024;
    if warnings.is_empty() {
        return resp;
    }
    let mut value = String::new();
    let mut shown = 0;
    for w in warnings {
        let item = encode(w);
        if value.len() + item.len() + 1 > MAX - 128 {
            break;
        }
        if !value.is_empty() {
            value.push(',');
        }
        value.push_str(&item);
        shown += 1;
    }
    if shown < warnings.len() {
        let more = encode(&format!("… and {} more warnings", warnings.len() - shown));
        if !value.is_empty() {
            value.push(',');
        }
        value.push_str(&more);
    }
    with_header(resp, "x-cf-warnings", &value)
}
