//! The route-level gates, held once: what each front end checks before it
//! reads a request's body (CC's token gate and role for CF v2 and v3, a
//! Gcore key's projects for a path's project). The front ends refuse with
//! them in their own dialect; the idempotency layer asks [`passes`] before
//! it replays a stored answer, so no answer reaches a caller the route
//! itself would refuse.

use super::http::{CfScopes, Principal};
use super::route::{Route, RouteId};
use http::Method;

/// Why a CF caller is refused: CC's token gate (no read or write scope for
/// the method) or its role (not an admin for a write, no global read for a
/// read; sgbridge cannot see space roles, so other readers are refused
/// rather than shown a subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CfRefusal {
    InsufficientScope,
    NotAuthorized,
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// CC v2's two checks, in CC's order.
pub fn cf_v2(scopes: &CfScopes, method: &Method) -> Result<(), CfRefusal> {
    let (gate, role) = if is_read(method) {
        (scopes.read_scope(), scopes.reads_all())
    } else {
        (scopes.write_scope(), scopes.admin)
    };
    if !gate {
        return Err(CfRefusal::InsufficientScope);
    }
    role.then_some(()).ok_or(CfRefusal::NotAuthorized)
}

/// CC v3: the same checks, both refused as `CF-NotAuthorized`.
pub fn cf_v3(scopes: &CfScopes, method: &Method) -> bool {
    if is_read(method) {
        scopes.read_scope() && scopes.reads_all()
    } else {
        scopes.write_scope() && scopes.admin
    }
}

/// Whether `principal` may drive the emulator (`/_emulator/…`): a CF
/// admin, or a Gcore key for every project. Read-only credentials may not.
pub fn drives_emulator(principal: &Principal) -> bool {
    principal.cf.admin || (principal.gcore_key && principal.projects.is_none())
}

/// Whether a Gcore key may touch `project`.
pub fn gcore_project(principal: &Principal, project: u64) -> bool {
    principal
        .projects
        .as_ref()
        .is_none_or(|allowed| allowed.contains(&project))
}

/// Whether `principal` passes the gate of `route` for `method`. Open CF
/// documents and unknown routes pass (their handlers answer them); a Gcore
/// path whose project is not a number passes too (its handler answers 400).
pub fn passes(principal: &Principal, route: &Route, method: &Method) -> bool {
    use RouteId as R;
    match route.id {
        R::CfRoot | R::CfInfo | R::CfLogin | R::V3Root if is_read(method) => true,
        R::OauthToken | R::TokenKeys | R::TokenKey | R::UserInfo => true,
        id => match id.dialect() {
            super::route::Dialect::Cf => cf_v2(&principal.cf, method).is_ok(),
            super::route::Dialect::CfV3 => cf_v3(&principal.cf, method),
            super::route::Dialect::Gcore => match id {
                R::GcoreCreate
                | R::GcorePatch
                | R::GcoreRules
                | R::GcoreRule
                | R::GcoreList
                | R::GcoreGroup
                | R::GcoreCopy
                | R::GcoreRevert
                | R::GcoreV1Rule => route
                    .param(0)
                    .parse::<u64>()
                    .map_or(true, |project| gcore_project(principal, project)),
                _ => true,
            },
            super::route::Dialect::Ops => true,
            super::route::Dialect::Emulator => drives_emulator(principal),
            // The page reads its own session.
            super::route::Dialect::Ui => true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::route::classify;

    fn reader() -> Principal {
        Principal {
            id: "r".into(),
            cf: CfScopes {
                admin_read_only: true,
                read: true,
                ..CfScopes::default()
            },
            ..Principal::default()
        }
    }

    #[test]
    fn a_read_only_caller_fails_every_write_gate_and_passes_reads() {
        let r = reader();
        for path in ["/v2/security_groups", "/v3/security_groups"] {
            assert!(!passes(&r, &classify(path), &Method::POST), "{path}");
            assert!(passes(&r, &classify(path), &Method::GET), "{path}");
        }
        assert!(!passes(&r, &classify("/v2/security_groups/x"), &Method::PUT));
        assert!(passes(&r, &classify("/v2/info"), &Method::GET));
    }

    #[test]
    fn a_key_bound_to_projects_fails_other_projects_paths() {
        let key = Principal {
            projects: Some(vec![1]),
            ..Principal::default()
        };
        let g = "/cloud/v2/security_groups/2/1/3fa85f64-5717-4562-b3fc-2c963f66afa6";
        assert!(!passes(&key, &classify(g), &Method::PATCH));
        assert!(passes(&key, &classify(&g.replace("/2/1/", "/1/1/")), &Method::PATCH));
        assert!(passes(&key, &classify("/cloud/v2/security_groups/x/1"), &Method::POST));
    }
}
