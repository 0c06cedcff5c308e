//! Authentication: who is calling, in the dialect's own scheme (CF bearer
//! tokens, Gcore API keys). A failure is the dialect's 401; the principal
//! (never the credential) goes to the handler and to the access line.

use super::{answer_as, next};
use crate::error::{Error, Kind};
use crate::server::auth::{AuthError, Authenticator};
use crate::server::http::Resp;
use crate::server::rescue;
use crate::server::route::{Dialect, Route, RouteId};
use http::{Method, Request};
use std::convert::Infallible;
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

pub async fn authenticate<S, B>(auth: Arc<Authenticator>, mut req: Request<B>, inner: S) -> Resp
where
    S: tower::Service<Request<B>, Response = Resp, Error = Infallible, Future = crate::server::layers::BoxFuture>,
{
    let (dialect, id) = answer_as(&req);
    let route = req.extensions().get::<Route>().map_or(RouteId::CfOther, |r| r.id);
    if dialect == Dialect::Ops || open(route, req.method()) {
        return next(inner, req).await;
    }
    let who = match dialect {
        Dialect::Gcore => auth.gcore(req.headers()),
        _ => auth.cf(req.headers()).await,
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
    req.extensions_mut().insert(principal.clone());
    let mut resp = next(inner, req).await;
    resp.extensions_mut().insert(principal);
    resp
}
