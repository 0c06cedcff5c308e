//! UAA's token endpoint and the documents around it, in UAA's words (what
//! the cf CLI v6/v7/v8 and `cloudfoundry-client` read): `POST /oauth/token`
//! (password, refresh_token and client_credentials grants; form bodies;
//! client authentication by HTTP Basic or form fields), `GET /token_keys`,
//! `GET /token_key`, `GET /userinfo`.
//!
//! Errors: `{"error","error_description"}` with UAA's codes. A wrong
//! password and an unknown user get the same 401 "Bad credentials" after
//! the same work (a decoy hash is checked); `unauthorized` rather than the
//! `invalid_client` of UAA ≥ 76.26, because the cf CLI v6 and v8 recognise
//! only the former, and the locked-account text exactly as the CLI matches it.

use super::{Issued, Login};
use crate::crypto::password::Checked;
use crate::server::http::{json, with_header, Ctx, Principal, Resp};
use base64::Engine;
use http::StatusCode;
use serde_json::json;

const BAD_CREDENTIALS: &str = "Bad credentials";
const LOCKED: &str = "Your account has been locked because of too many failed attempts to login.";

fn no_store(r: Resp) -> Resp {
    with_header(with_header(r, "cache-control", "no-store"), "pragma", "no-cache")
}

/// UAA's error body.
pub fn oauth_error(status: StatusCode, error: &str, description: &str) -> Resp {
    let r = no_store(json(status, &json!({"error": error, "error_description": description})));
    if status == StatusCode::UNAUTHORIZED {
        let challenge = format!(r#"Basic realm="UAA/client", error="{error}", error_description="{description}""#);
        return with_header(r, "www-authenticate", &challenge);
    }
    r
}

/// The lockout cannot be counted: no login is answered without it.
fn store_down(e: &crate::store::StoreError) -> Resp {
    tracing::warn!(target: "sgbridge::login", error = %e, "login refused: the failed-login count cannot be read");
    oauth_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        &e.to_string(),
    )
}

fn unauthorized(description: &str) -> Resp {
    oauth_error(StatusCode::UNAUTHORIZED, "unauthorized", description)
}

/// The form's fields: the query's, then the body's (UAA takes both).
fn fields(ctx: &Ctx) -> Vec<(String, String)> {
    let mut out = ctx.query.clone();
    out.extend(form(&ctx.body));
    out
}

/// An `application/x-www-form-urlencoded` body's fields.
pub(crate) fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// A field's last value.
pub(crate) fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The client's id and secret: HTTP Basic (URL-encoded parts, as OAuth 2.0
/// says), else the form's `client_id` and `client_secret`.
fn client_credentials(ctx: &Ctx, fields: &[(String, String)]) -> Option<(String, String)> {
    if let Some(basic) = ctx
        .header("authorization")
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
    {
        let decoded = base64::engine::general_purpose::STANDARD.decode(basic.1.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, secret) = text.split_once(':')?;
        let unescape = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        return Some((unescape(id), unescape(secret)));
    }
    let id = field(fields, "client_id")?;
    Some((id.to_string(), field(fields, "client_secret").unwrap_or("").to_string()))
}

fn answer(issued: Issued) -> Resp {
    let mut body = serde_json::Map::new();
    body.insert("access_token".into(), json!(issued.access_token));
    body.insert("token_type".into(), json!("bearer"));
    if let Some(r) = issued.refresh_token {
        body.insert("refresh_token".into(), json!(r));
    }
    body.insert("expires_in".into(), json!(issued.expires_in));
    body.insert("scope".into(), json!(issued.scope.join(" ")));
    body.insert("jti".into(), json!(issued.jti));
    no_store(json(StatusCode::OK, &body))
}

/// How a token request ended, for the `sgbridge_logins` metric (a closed set).
#[derive(Debug, Clone, Copy)]
pub struct LoginOutcome(pub &'static str);

pub(crate) fn outcome(mut r: Resp, what: &'static str) -> Resp {
    r.extensions_mut().insert(LoginOutcome(what));
    r
}

/// The answer names who logged in, for the access line and the audit record.
pub(crate) fn as_caller(mut r: Resp, name: &str) -> Resp {
    r.extensions_mut().insert(Principal {
        id: String::new(),
        name: name.to_string(),
        ..Principal::default()
    });
    r
}

/// `POST /oauth/token`.
pub async fn token(login: &Login, ctx: &Ctx) -> Resp {
    let fields = fields(ctx);
    let Some((client_id, secret)) = client_credentials(ctx, &fields) else {
        return unauthorized("Full authentication is required to access this resource");
    };
    let Some(client) = login
        .client(&client_id)
        .filter(|c| Login::client_secret_matches(c, &secret))
    else {
        return unauthorized(BAD_CREDENTIALS);
    };
    let asked: Vec<String> = field(&fields, "scope")
        .unwrap_or("")
        .split_whitespace()
        .map(String::from)
        .collect();
    let grant = match field(&fields, "grant_type") {
        None | Some("") => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Missing grant type"),
        Some(g @ ("password" | "refresh_token" | "client_credentials")) => g,
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant type",
            )
        }
    };
    if !client.allows(grant) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized grant type");
    }
    let issued = match grant {
        "password" => return password(login, &fields, &client_id, &asked).await,
        "refresh_token" => {
            let r = refresh(login, &fields, &client_id, &asked);
            let what = if r.status().is_success() {
                "refreshed"
            } else {
                "refresh_refused"
            };
            return outcome(r, what);
        }
        _ => login
            .scopes(client.scopes.as_deref().unwrap_or_default(), client, &asked)
            .and_then(|scope| login.issue(None, &client_id, scope, grant, None)),
    };
    match issued {
        Ok(i) => outcome(as_caller(answer(i), &client_id), "client"),
        Err(e) => oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", &e),
    }
}

/// How a password check ended (the token endpoint and the page share it:
/// the same lockout, decoy hash and shedding).
pub(crate) enum SignIn<'a> {
    Ok(&'a crate::config::UserEntry),
    Locked,
    BadCredentials,
    /// Every hashing thread is busy: shed before anything is counted.
    Busy,
    StoreDown(crate::store::StoreError),
}

/// Checks `username`'s `password`, counting failures toward the lockout.
pub(crate) async fn sign_in<'a>(login: &'a Login, username: &str, password: &str) -> SignIn<'a> {
    match login.locked(username).await {
        Err(e) => return SignIn::StoreDown(e),
        Ok(true) => {
            tracing::warn!(target: "sgbridge::login", user = username, "login refused: the account is locked");
            return SignIn::Locked;
        }
        Ok(false) => {}
    }
    let user = login.user(username);
    let checked = login
        .checker
        .check(user.map(|u| u.password_hash.as_str()), password)
        .await;
    if checked == Checked::Busy {
        tracing::warn!(target: "sgbridge::login", user = username, "login shed: every password check is busy");
        return SignIn::Busy;
    }
    if checked == Checked::NoMatch {
        if let Err(e) = login.failed(username).await {
            return SignIn::StoreDown(e);
        }
        tracing::info!(target: "sgbridge::login", user = username, "login failed: bad credentials");
        return SignIn::BadCredentials;
    }
    let Some(user) = user else {
        return SignIn::BadCredentials;
    };
    if let Err(e) = login.succeeded(username).await {
        return SignIn::StoreDown(e);
    }
    tracing::info!(target: "sgbridge::login", user = username, "login");
    SignIn::Ok(user)
}

async fn password(login: &Login, fields: &[(String, String)], client_id: &str, asked: &[String]) -> Resp {
    let username = field(fields, "username").unwrap_or("");
    let Some(password) = field(fields, "password").filter(|p| !p.is_empty()) else {
        return unauthorized("No password supplied");
    };
    let user = match sign_in(login, username, password).await {
        SignIn::Ok(user) => user,
        SignIn::StoreDown(e) => return store_down(&e),
        SignIn::Locked => return outcome(as_caller(unauthorized(LOCKED), username), "locked"),
        SignIn::BadCredentials => {
            return outcome(as_caller(unauthorized(BAD_CREDENTIALS), username), "bad_credentials")
        }
        SignIn::Busy => {
            let r = oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "Too many logins at once; try again in a second",
            );
            return outcome(with_header(r, "retry-after", "1"), "shed");
        }
    };
    let Some(client) = login.client(client_id) else {
        return unauthorized(BAD_CREDENTIALS);
    };
    let issued = login
        .scopes(&user.scopes, client, asked)
        .and_then(|scope| login.issue(Some(user), client_id, scope, "password", None));
    match issued {
        Ok(i) => outcome(as_caller(answer(i), username), "ok"),
        Err(e) => oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", &e),
    }
}

fn refresh(login: &Login, fields: &[(String, String)], client_id: &str, asked: &[String]) -> Resp {
    let Some(token) = field(fields, "refresh_token").filter(|t| !t.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "refresh_token parameter not provided",
        );
    };
    let invalid = |d: &str| oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", d);
    let claims = match login.refresh_claims(token) {
        Ok(c) => c,
        Err(d) => return invalid(d),
    };
    let cid = claims["cid"].as_str().unwrap_or("");
    if cid != client_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &format!("Wrong client for this refresh token: {cid}"),
        );
    }
    // A user removed or disabled by a reload can no longer refresh.
    let name = claims["user_name"].as_str().unwrap_or("");
    let (Some(user), Some(client)) = (login.user(name), login.client(client_id)) else {
        return invalid("The token expired, was revoked, or the token ID is incorrect.");
    };
    let granted: Vec<String> = claims["granted_scopes"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default();
    // Scopes taken from the user since the token was granted are dropped.
    let held: Vec<String> = granted.into_iter().filter(|s| user.scopes.contains(s)).collect();
    let issued = login
        .scopes(&held, client, asked)
        .and_then(|scope| login.issue(Some(user), client_id, scope, "refresh_token", Some(token.to_string())));
    match issued {
        Ok(i) => as_caller(answer(i), name),
        Err(e) => oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", &e),
    }
}

/// `GET /token_keys`.
pub fn token_keys(login: &Login) -> Resp {
    json(StatusCode::OK, &json!({"keys": login.jwks()}))
}

/// `GET /token_key`.
pub fn token_key(login: &Login) -> Resp {
    json(StatusCode::OK, login.jwk())
}

/// `GET /userinfo`: the user a token issued here speaks for.
pub fn userinfo(login: &Login, ctx: &Ctx) -> Resp {
    let token = ctx
        .header("authorization")
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let Some(token) = token else {
        return unauthorized("Full authentication is required to access this resource");
    };
    match login.verify(token) {
        Ok(v) => {
            let Some((name, _)) = v.user else {
                return oauth_error(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    "A user's token is required",
                );
            };
            let id = super::user_id(&name);
            json(
                StatusCode::OK,
                &json!({"user_id": id, "sub": id, "user_name": name, "given_name": name, "family_name": "",
                    "email": name, "email_verified": false, "name": name, "previous_logon_time": null}),
            )
        }
        Err(_) => oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", "Invalid token"),
    }
}

/// The issuer's routes; without `[auth.login]`, a 404 saying that the
/// gateway issues no tokens.
pub async fn serve(login: Option<&Login>, ctx: &Ctx) -> Resp {
    use crate::server::route::RouteId as R;
    use http::Method;
    let Some(login) = login else {
        return oauth_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "this gateway issues no tokens: [auth.login] is off and no UAA is configured",
        );
    };
    match (ctx.route.id, &ctx.method) {
        (R::OauthToken, &Method::POST) => token(login, ctx).await,
        (R::TokenKeys, &Method::GET) => token_keys(login),
        (R::TokenKey, &Method::GET) => token_key(login),
        (R::UserInfo, &Method::GET) => userinfo(login, ctx),
        _ => oauth_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Request method not supported",
        ),
    }
}
