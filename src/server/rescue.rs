//! Gateway errors turned into wire bodies, one place per dialect: whatever
//! failed — a handler, a layer (auth, limits, deadline), a panic — the caller
//! gets an answer in its own dialect.

use super::cf::rescue as cf;
use super::cf::v3::rescue as cf_v3;
use super::gcore::rescue as gcore;
use super::http::{raw, Resp};
use super::route::Dialect;
use crate::error::{Error, Kind};
use bytes::Bytes;
use http::StatusCode;

pub fn render(dialect: Dialect, e: &Error, request_id: &str) -> Resp {
    match dialect {
        Dialect::Cf => cf::response(&cf::to_cf(e)),
        Dialect::CfV3 => cf_v3::response(&cf_v3::to_v3(e)),
        Dialect::Gcore => gcore::response(&gcore::to_gcore(e), request_id),
        Dialect::Emulator => super::emulator::render(e),
        Dialect::Ui => super::ui::error_page(e),
        Dialect::Ops => {
            crate::journal::failed(e.cause());
            let status = match e.kind() {
                Kind::NoRoute => StatusCode::NOT_FOUND,
                Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            raw(status, "text/plain", Bytes::from(format!("{}\n", e.message())))
        }
    }
}
