//! The page for people: `/ui/` on the admin listener (on the API listener
//! only when no admin listener is set). Read-only, server-rendered HTML
//! (askama templates, checked when the crate compiles), its stylesheet and
//! icon embedded in the binary, no JavaScript; `?refresh=1` adds a
//! `<meta http-equiv="refresh">`.
//!
//! People sign in with the `[auth.login]` users (the token issuer's
//! password check: its lockout, decoy hash and shedding) and must hold a
//! scope that reads everything. A session is a cookie ([`session`]); forms
//! that change it (sign in, sign out) must come from the page's own origin.
//! Every answer carries a strict Content-Security-Policy.

mod figures;
mod pages;
pub mod session;

use super::http::{Ctx, Resp};
use super::App;
use crate::error::Error;
use askama::Template;
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::Full;

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";
const CSS: &str = include_str!("assets/ui.css");
const ICON: &str = include_str!("assets/icon.svg");

/// Who is signed in (a user of `[auth.login]`).
pub(crate) struct Person {
    pub name: String,
}

pub async fn handle(app: &App, ctx: &Ctx) -> Resp {
    use super::route::RouteId as R;
    match (ctx.route.id, &ctx.method) {
        (R::UiAsset, &Method::GET) => return asset(ctx.route.param(0)),
        (R::UiLogin, &Method::GET) => return pages::login_form(None, "", StatusCode::OK),
        (R::UiLogin, &Method::POST) => return sign_in(app, ctx).await,
        (R::UiLogout, &Method::POST) => return sign_out(app, ctx),
        _ => {}
    }
    let Some(person) = signed_in(app, ctx) else {
        return see_other("/ui/login", None);
    };
    crate::journal::principal(&person.name);
    let page = match (ctx.route.id, &ctx.method) {
        (R::UiHome, &Method::GET) => pages::overview(app, ctx, &person).await,
        (R::UiGroups, &Method::GET) => pages::groups(app, ctx, &person).await,
        (R::UiGroup, &Method::GET) => pages::group(app, ctx, &person).await,
        (R::UiChanges, &Method::GET) => pages::changes(app, ctx, &person).await,
        (R::UiTasks, &Method::GET) => pages::tasks(app, ctx, &person).await,
        (R::UiOther, _) => Err((StatusCode::NOT_FOUND, "There is no such page.".to_string())),
        _ => Err((
            StatusCode::METHOD_NOT_ALLOWED,
            "The page does not take this method.".to_string(),
        )),
    };
    page.unwrap_or_else(|(status, text)| pages::error(status, &text, &person.name))
}

/// The person whose session the request's cookie names, if that session
/// is alive and its user still exists, unchanged, and may read everything.
fn signed_in(app: &App, ctx: &Ctx) -> Option<Person> {
    let id = session::cookie(&ctx.headers)?;
    let (name, fingerprint) = app.ui_sessions.find(&id)?;
    let current = app.auth.login().and_then(|l| l.user(&name));
    let valid = current.is_some_and(|u| {
        !u.disabled && session::fingerprint(&u.password_hash) == fingerprint && reads_everything(&u.scopes)
    });
    if !valid {
        app.ui_sessions.end(&id);
        return None;
    }
    Some(Person { name })
}

fn reads_everything(scopes: &[String]) -> bool {
    super::http::CfScopes::from_names(scopes).reads_all()
}

/// Whether a form post comes from the page itself: its `Origin` (or, for
/// browsers that send none, its `Referer`) is this request's own origin.
fn same_origin(ctx: &Ctx) -> bool {
    let Some(host) = ctx.headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let from = ctx
        .headers
        .get(header::ORIGIN)
        .or_else(|| ctx.headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    let Some(from) = from else { return false };
    let rest = from
        .strip_prefix("http://")
        .or_else(|| from.strip_prefix("https://"))
        .unwrap_or("");
    let origin_host = rest.split('/').next().unwrap_or("");
    origin_host.eq_ignore_ascii_case(host)
}

/// Whether the cookie must say `Secure`: the page is served over TLS only
/// on the API listener, when no admin listener is set.
fn secure(app: &App) -> bool {
    app.cfg.server.tls.is_some() && app.cfg.server.admin_listen.is_none()
}

async fn sign_in(app: &App, ctx: &Ctx) -> Resp {
    use crate::server::auth::login::endpoint::{as_caller, outcome, sign_in, SignIn};
    if !same_origin(ctx) {
        return pages::error(
            StatusCode::FORBIDDEN,
            "The sign-in form must be sent from this page.",
            "",
        );
    }
    let Some(login) = app.auth.login() else {
        let text = "Signing in is off: set [auth.login] enabled = true and add users.";
        return pages::login_form(Some(text), "", StatusCode::SERVICE_UNAVAILABLE);
    };
    use crate::server::auth::login::endpoint::{field, form};
    let fields = form(&ctx.body);
    let (username, password) = (
        field(&fields, "username").unwrap_or(""),
        field(&fields, "password").unwrap_or(""),
    );
    let refused = |text: &str, status| pages::login_form(Some(text), username, status);
    let user = match sign_in(login, username, password).await {
        SignIn::Ok(user) => user,
        // The form again, answered 200 as forms are (a 401 without an
        // authentication scheme would only be a console error).
        SignIn::BadCredentials => {
            let r = refused("Wrong user name or password.", StatusCode::OK);
            return outcome(as_caller(r, username), "bad_credentials");
        }
        SignIn::Locked => {
            let r = refused(
                "Too many failed sign-ins: the account is locked for a while.",
                StatusCode::OK,
            );
            return outcome(as_caller(r, username), "locked");
        }
        SignIn::Busy => {
            return outcome(
                refused("Too many sign-ins at once; try again.", StatusCode::SERVICE_UNAVAILABLE),
                "shed",
            )
        }
        SignIn::StoreDown(e) => return refused(&e.to_string(), StatusCode::SERVICE_UNAVAILABLE),
    };
    if user.disabled || !reads_everything(&user.scopes) {
        let text =
            "This user may not read the page: it needs cloud_controller.admin, admin_read_only or global_auditor.";
        return refused(text, StatusCode::FORBIDDEN);
    }
    let id = app.ui_sessions.start(&user.name, &user.password_hash);
    let r = see_other("/ui/", Some(session::set_cookie(Some(&id), secure(app))));
    outcome(as_caller(r, &user.name), "ok")
}

fn sign_out(app: &App, ctx: &Ctx) -> Resp {
    if !same_origin(ctx) {
        return pages::error(
            StatusCode::FORBIDDEN,
            "The sign-out form must be sent from this page.",
            "",
        );
    }
    if let Some(id) = session::cookie(&ctx.headers) {
        app.ui_sessions.end(&id);
    }
    see_other("/ui/login", Some(session::set_cookie(None, secure(app))))
}

fn see_other(location: &str, cookie: Option<String>) -> Resp {
    let mut r = page_response(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", Bytes::new());
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn asset(name: &str) -> Resp {
    match name {
        "ui.css" => page_response(
            StatusCode::OK,
            "text/css; charset=utf-8",
            Bytes::from_static(CSS.as_bytes()),
        ),
        "icon.svg" => page_response(StatusCode::OK, "image/svg+xml", Bytes::from_static(ICON.as_bytes())),
        _ => pages::error(StatusCode::NOT_FOUND, "There is no such file.", ""),
    }
}

/// An answer with the page's headers: its policy, no sniffing, no caching
/// (pages show live state and who is signed in).
fn page_response(status: StatusCode, content_type: &'static str, body: Bytes) -> Resp {
    let mut r = http::Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

fn html(status: StatusCode, page: &impl Template) -> Resp {
    match page.render() {
        Ok(text) => page_response(status, "text/html; charset=utf-8", Bytes::from(text)),
        Err(e) => {
            tracing::error!(error = %e, "a page could not be rendered");
            page_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                Bytes::from_static(b"The page could not be rendered.\n"),
            )
        }
    }
}

/// A gateway error (a layer's: a deadline, a body too large) as a page.
pub fn error_page(e: &Error) -> Resp {
    crate::journal::failed(e.cause());
    pages::error(super::emulator::plain_status(e.kind()), e.message(), "")
}
