//! The unauthenticated documents CF clients read before anything else:
//! `GET /` (root links; `cloudfoundry-client` needs `cloud_controller_v2` and
//! `login`), `GET /v2/info` (the cf CLI reads `api_version`,
//! `authorization_endpoint`, …) and, when no UAA is configured, `GET /login`
//! (the login-server document the refactored cf CLI v6 commands fetch).

use crate::server::http::{cf_json, json, Resp};
use crate::server::App;
use http::StatusCode;
use serde_json::json;

/// The v3 API version announced (the CC release whose v3 security groups
/// sgbridge follows).
const V3_VERSION: &str = "3.228.0";

/// Where clients log in: the configured UAA, else the gateway itself. Never
/// taken from the request's `Host`, which any caller (or a poisoned cache)
/// controls.
fn auth_url(app: &App) -> String {
    let announced = match &app.cfg.auth.uaa {
        Some(uaa) => uaa.url.as_str(),
        None => app.cfg.cf.uaa_url.as_str(),
    };
    if announced.is_empty() {
        app.external_url()
    } else {
        announced.trim_end_matches('/').to_string()
    }
}

pub fn root(app: &App) -> Resp {
    let own = app.external_url();
    let auth = auth_url(app);
    cf_json(
        StatusCode::OK,
        &json!({"links": {
            "self": {"href": own},
            "cloud_controller_v2": {"href": format!("{own}/v2"), "meta": {"version": app.cfg.cf.api_version}},
            "cloud_controller_v3": {"href": format!("{own}/v3"), "meta": {"version": V3_VERSION}},
            "network_policy_v0": null,
            "network_policy_v1": null,
            "login": {"href": auth},
            "uaa": {"href": auth},
            "credhub": null,
            "routing": null,
            "logging": null,
            "log_cache": null,
            "log_stream": null,
            "app_ssh": null,
        }}),
    )
}

pub fn info(app: &App) -> Resp {
    let auth = auth_url(app);
    cf_json(
        StatusCode::OK,
        &json!({
            "name": "sgbridge",
            "build": env!("CARGO_PKG_VERSION"),
            "support": "",
            "version": 0,
            "description": "Cloud Foundry v2 security groups served by sgbridge",
            "authorization_endpoint": auth,
            "token_endpoint": auth,
            "min_cli_version": null,
            "min_recommended_cli_version": null,
            "app_ssh_endpoint": null,
            "app_ssh_host_key_fingerprint": null,
            "app_ssh_oauth_client": null,
            "doppler_logging_endpoint": null,
            "routing_endpoint": null,
            "api_version": app.cfg.cf.api_version,
            "osbapi_version": "2.15",
        }),
    )
}

/// UAA's `/login` document, served only when sgbridge is its own
/// authorization endpoint; with `[auth.login]` off, a 404 that says the
/// gateway issues no tokens (its prompts could only fail).
pub fn login(app: &App) -> Option<Resp> {
    if !app.cfg.cf.uaa_url.is_empty() || app.cfg.auth.uaa.is_some() {
        return None;
    }
    if app.auth.login().is_none() {
        return Some(crate::server::auth::login::endpoint::oauth_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "this gateway issues no tokens: [auth.login] is off and no UAA is configured; send a configured token as `Authorization: bearer <token>`",
        ));
    }
    let own = app.external_url();
    Some(json(
        StatusCode::OK,
        &json!({
            "app": {"version": "4.30.0"},
            "links": {"uaa": own, "login": own, "passwd": "/forgot_password", "register": "/create_account"},
            "zone_name": "uaa",
            "entityID": "sgbridge",
            "commit_id": "sgbridge",
            "idpDefinitions": {},
            "prompts": {"username": ["text", "Email"], "password": ["password", "Password"]},
            "timestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%z").to_string(),
        }),
    ))
}
