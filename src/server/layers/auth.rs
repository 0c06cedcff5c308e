//! Authentication: who is calling, in the dialect's own scheme (CF bearer
//! tokens, Gcore API keys). A failure is the dialect's 401; the principal
//! (never the credential) goes to the handler and to the access line.

use super::{answer_as, BoxFuture};
use crate::error::{Error, Kind};
use crate::server::auth::{AuthError, Authenticator};
use crate::server::http::Resp;
use crate::server::rescue;
use crate::server::route::{Dialect, Route, RouteId};
use http::{Method, Request};
use std::sync::Arc;
use std::task::{Context, Poll};

#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<Authenticator>,
}

impl AuthLayer {
    pub fn new(auth: Arc<Authenticator>) -> Self {
        AuthLayer { auth }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            auth: self.auth.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

/// Documents every client reads before it has a token.
fn open(route: RouteId, method: &Method) -> bool {
    matches!(
        route,
        RouteId::CfRoot | RouteId::CfInfo | RouteId::CfLogin | RouteId::V3Root
    ) && method == Method::GET
}

impl<S, B> tower::Service<Request<B>> for Auth<S>
where
    S: tower::Service<Request<B>, Response = Resp, Error = std::convert::Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Resp;
    type Error = std::convert::Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> BoxFuture {
        let (dialect, id) = answer_as(&req);
        let route = req.extensions().get::<Route>().map_or(RouteId::CfOther, |r| r.id);
        let auth = self.auth.clone();
        let mut inner = self.inner.clone();
        std::mem::swap(&mut inner, &mut self.inner);
        Box::pin(async move {
            if dialect == Dialect::Ops || open(route, req.method()) {
                return inner.call(req).await;
            }
            let who = match dialect {
                Dialect::Gcore => auth.gcore(req.headers()),
                _ => auth.cf(req.headers()).await,
            };
            let principal = match who {
                Ok(p) => p,
                Err(e) => {
                    let kind = match e {
                        AuthError::Missing => Kind::Unauthenticated,
                        AuthError::Invalid => Kind::BadCredentials,
                        AuthError::Unavailable(_) => Kind::Unavailable,
                    };
                    let text = match &e {
                        AuthError::Missing => "Authentication credentials were not provided.".to_string(),
                        AuthError::Invalid => "Bad permanent token.".to_string(),
                        AuthError::Unavailable(m) => m.clone(),
                    };
                    return Ok(rescue::render(dialect, &Error::new(kind, text), &id));
                }
            };
            req.extensions_mut().insert(principal.clone());
            let mut resp = inner.call(req).await?;
            resp.extensions_mut().insert(principal);
            Ok(resp)
        })
    }
}
