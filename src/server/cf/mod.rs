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

/// The group and the warnings to answer with, when the request's body is a
/// change already known to change nothing in the group's current state
/// ([`crate::server::noops`]); `None`: run the change. A dry run always
/// runs it, as it answers what the protocol planned.
pub async fn known_noop(
    app: &crate::server::App,
    ctx: &crate::server::http::Ctx,
    api: crate::server::noops::Api,
    id: &crate::model::GroupId,
) -> Option<(crate::model::Group, Vec<String>)> {
    let scope = app.service.cf_scope();
    if ctx.dry_run || !app.service.shares_content() || !app.noops.may_know(api, scope, id, &ctx.body) {
        return None;
    }
    // A failed read is the full protocol's to answer.
    let group = app.service.get(&ctx.cx(), scope, id).await.ok()?;
    let warnings = app.noops.known(api, scope, &group, &ctx.body)?;
    warnings.iter().for_each(|w| crate::journal::warn(w.clone()));
    Some((group, warnings))
}

/// Keeps a change that changed nothing, for [`known_noop`].
pub fn remember_noop(
    app: &crate::server::App,
    ctx: &crate::server::http::Ctx,
    api: crate::server::noops::Api,
    written: &crate::service::CfWritten,
) {
    if written.unchanged && !ctx.dry_run && app.service.shares_content() {
        let scope = app.service.cf_scope();
        app.noops
            .remember(api, scope, &written.group, &ctx.body, &written.warnings);
    }
}
