//! The Cloud Foundry v3 front end (`/v3/security_groups` and its family).

pub mod rescue;

use crate::dialect::cf::v3::V3Error;
use crate::server::http::{Ctx, Resp};
use crate::server::App;

pub async fn handle(_app: &App, _ctx: &Ctx) -> Resp {
    rescue::response(&V3Error::NotFound)
}
