//! The Cloud Foundry v3 front end (`/v3/security_groups` and its family).

pub mod rescue;

use crate::dialect::cf::v3::V3Error;
use crate::server::http::{Ctx, Resp};
use crate::server::App;
use http::Method;

pub async fn handle(app: &App, ctx: &Ctx) -> Resp {
    match route(app, ctx).await {
        Ok(r) => r,
        Err(e) => rescue::response(&e),
    }
}

/// v3's token gate: reads need a read scope, everything else a write scope;
/// either way a refusal is `CF-NotAuthorized` (v3 has no InsufficientScope).
fn gate(ctx: &Ctx) -> Result<(), V3Error> {
    let scopes = &ctx.principal.cf;
    let ok = match ctx.method {
        Method::GET | Method::HEAD => scopes.read_scope(),
        _ => scopes.write_scope(),
    };
    ok.then_some(()).ok_or(V3Error::NotAuthorized)
}

async fn route(_app: &App, ctx: &Ctx) -> Result<Resp, V3Error> {
    gate(ctx)?;
    Err(V3Error::NotFound)
}
