//! Authentication: who is calling, in the dialect's own scheme (CF bearer
//! tokens, Gcore API keys). A failure is the dialect's 401; the principal
//! (never the credential) goes to the handler and to the access line.

use super::{answer_as, next};
use crate::error::{Error, Kind};
use crate::server::auth::{AuthError, Authenticator};
use crate::server::http::Resp;
use crate::server::rescue;
use crate::server::route::{Dialect, Route, RouteId};
use crate::server::AdminPort;
use http::{Method, Request};
use std::sync::Arc;

/// Documents every client reads before it has a token, and the token
/// issuer's own endpoints (which authenticate their callers themselves, in
/// UAA's words).
fn open(route: RouteId, method: &Method) -> bool {
    let documents = matches!(
        route,
        RouteId::CfRoot | RouteId::CfInfo | RouteId::CfLogin | RouteId::V3Root | RouteId::TokenKeys | RouteId::TokenKey
    ) && method == Method::GET;
    documents || matches!(route, RouteId::OauthToken | RouteId::UserInfo)
}

pub fn authenticate<S, B>(
    auth: Arc<Authenticator>,
    req: Request<B>,
    inner: S,
) -> impl std::future::Future<Output = Resp>
where
    S: crate::server::layers::Rest<B>,
{
    use futures_util::future::Either;
    let (dialect, id) = answer_as(&req);
    let route = req.extensions().get::<Route>().map_or(RouteId::CfOther, |r| r.id);
    // The emulator's controls are not found on the API listener, whoever asks.
    let emulator_elsewhere = dialect == Dialect::Emulator && req.extensions().get::<AdminPort>().is_none();
    // The page signs its people in itself (a session cookie).
    if matches!(dialect, Dialect::Ops | Dialect::Ui) || emulator_elsewhere || open(route, req.method()) {
        return Either::Left(next(inner, req));
    }
    Either::Right(checked(auth, dialect, id, req, inner))
}

/// The request with its caller known, or the dialect's 401. Not an
/// `async fn`: its future would keep two slots for the request for the
/// whole of a waiting write (see `observe`).
#[allow(clippy::manual_async_fn)]
fn checked<S, B>(
    auth: Arc<Authenticator>,
    dialect: Dialect,
    id: Arc<str>,
    mut req: Request<B>,
    inner: S,
) -> impl std::future::Future<Output = Resp>
where
    S: crate::server::layers::Rest<B>,
{
    async move {
        let gcore_scheme = match dialect {
            Dialect::Gcore => true,
            // The emulator's controls take either dialect's credentials.
            Dialect::Emulator => req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("apikey ")),
            _ => false,
        };
        let who = if gcore_scheme {
            auth.gcore(req.headers())
        } else {
            // Boxed: a token check may fetch keys, and this future is held for
            // the whole of a waiting write (1,416 bytes of room it never needs
            // once the caller is known).
            Box::pin(auth.cf(req.headers())).await
        };
        let principal = match who {
            Ok(p) => p,
            Err(e) => {
                let (kind, text) = match e {
                    AuthError::Missing => (
                        Kind::Unauthenticated,
                        "Authentication credentials were not provided.".into(),
                    ),
                    AuthError::Invalid => (Kind::BadCredentials, "Bad permanent token.".into()),
                    AuthError::Unavailable(m) => (Kind::AuthUnavailable, m),
                };
                return rescue::render(dialect, &Error::new(kind, text), &id);
            }
        };
        crate::journal::principal(&principal.name);
        if dialect == Dialect::Emulator && !crate::server::authorize::drives_emulator(&principal) {
            let e = Error::new(Kind::Forbidden, "the emulator's controls take admin credentials");
            return rescue::render(dialect, &e, &id);
        }
        req.extensions_mut().insert(principal.clone());
        let mut resp = next(inner, req).await;
        resp.extensions_mut().insert(principal);
        resp
    }
}
