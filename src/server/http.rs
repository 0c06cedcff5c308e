//! HTTP plumbing shared by the front ends: the request context handlers
//! get, JSON responses and query strings.

use super::route::Route;
use crate::backend::Cx;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use std::sync::Arc;

pub type Body = Full<Bytes>;
pub type Resp = Response<Body>;

/// The id of the request being served (incoming `X-Request-Id` or
/// `X-Vcap-Request-Id` when well-formed, else a new one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub Arc<str>);

/// Marks a response that must not be sent: the connection closes instead
/// (an emulator fault that resets connections).
#[derive(Debug, Clone, Copy)]
pub struct CloseWithoutAnswer;

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principal {
    /// The credential's identity, unique across every kind of credential
    /// and stable across requests: what records (idempotency) are bound to.
    /// A UAA token's issuer, zone, origin and user id (or client id); a
    /// static credential's own entry. Never a display name (UAA user names
    /// are unique per origin only) and never a secret.
    pub id: String,
    /// A name for logs and audit: a token's user or client, a key's name; never a secret.
    pub name: String,
    /// Gcore keys: the projects this key may touch (`None`: all).
    pub projects: Option<Vec<u64>>,
    /// Gcore keys: may write CF state kept in reserved tags.
    pub reserved_tags: bool,
    /// CF callers: the Cloud Controller scopes the token holds.
    pub cf: CfScopes,
    /// Whether the credential is a Gcore API key.
    pub gcore_key: bool,
}

/// The Cloud Controller scopes that matter for security groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CfScopes {
    pub admin: bool,
    pub admin_read_only: bool,
    pub global_auditor: bool,
    pub read: bool,
    pub write: bool,
}

impl CfScopes {
    /// The scopes among a token's (or a login user's) scope names.
    pub fn from_names(names: &[String]) -> CfScopes {
        let has = |s: &str| names.iter().any(|x| x == s);
        CfScopes {
            admin: has("cloud_controller.admin"),
            admin_read_only: has("cloud_controller.admin_read_only"),
            global_auditor: has("cloud_controller.global_auditor"),
            read: has("cloud_controller.read"),
            write: has("cloud_controller.write"),
        }
    }

    /// May read every security group (CC's `can_read_globally?`).
    pub fn reads_all(&self) -> bool {
        self.admin || self.admin_read_only || self.global_auditor
    }

    /// Passes CC's token gate for reads.
    pub fn read_scope(&self) -> bool {
        self.reads_all() || self.read
    }

    /// Passes CC's token gate for writes.
    pub fn write_scope(&self) -> bool {
        self.admin || self.write
    }
}

/// What a handler knows about its request.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub request_id: String,
    pub route: Route,
    pub principal: Principal,
    pub body: Bytes,
    /// The caller asked for the plan only (`?dry_run=true`).
    pub dry_run: bool,
}

impl Ctx {
    /// All values of one query parameter, in order.
    pub fn params<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn param<'a>(&'a self, key: &'a str) -> Option<&'a str> {
        self.params(key).next()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The backend call context for this request.
    pub fn cx(&self) -> Cx {
        Cx {
            request_id: self.request_id.clone(),
            principal: self.principal.name.clone(),
            reserved_tags: self.principal.reserved_tags,
            dry_run: self.dry_run,
            operation: super::gcore::operation(self.route.id, &self.method),
        }
    }
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Resp {
    match serde_json::to_vec(value) {
        Ok(bytes) => raw(status, "application/json", Bytes::from(bytes)),
        Err(_) => raw(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            Bytes::from_static(b"encoding error"),
        ),
    }
}

/// CC's content type.
pub const CF_JSON: &str = "application/json;charset=utf-8";

/// CC answers `application/json;charset=utf-8`.
pub fn cf_json<T: Serialize>(status: StatusCode, value: &T) -> Resp {
    let mut r = json(status, value);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json;charset=utf-8"));
    r
}

pub fn raw(status: StatusCode, content_type: &'static str, body: Bytes) -> Resp {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

pub fn with_header(mut r: Resp, name: &'static str, value: &str) -> Resp {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(HeaderName::from_static(name), v);
    }
    r
}

/// Decode a query string into pairs (`+` is a space, `%XX` a byte).
pub fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    crate::urlenc::parse_pairs(query.unwrap_or(""))
}

pub use crate::urlenc::encode;

/// Warnings in a header: a comma-separated list of URL-encoded texts,
/// bounded so no client's header-line limit is reached.
pub fn warnings_header(resp: Resp, name: &'static str, warnings: &[String]) -> Resp {
    const MAX: usize = 8 * 1024;
    if warnings.is_empty() {
        return resp;
    }
    let mut value = String::new();
    let mut shown = 0;
    for w in warnings {
        let item = encode(w);
        if value.len() + item.len() + 1 > MAX - 128 {
            break;
        }
        if !value.is_empty() {
            value.push(',');
        }
        value.push_str(&item);
        shown += 1;
    }
    if shown < warnings.len() {
        let more = encode(&format!("… and {} more warnings", warnings.len() - shown));
        if !value.is_empty() {
            value.push(',');
        }
        value.push_str(&more);
    }
    with_header(resp, name, &value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trip() {
        let q = parse_query(Some("q=name%3Aweb+1&q=x&page=2&flag&bad=%zz&end=%4&u=%é"));
        assert_eq!(
            q,
            vec![
                ("q".into(), "name:web 1".into()),
                ("q".into(), "x".into()),
                ("page".into(), "2".into()),
                ("flag".into(), "".into()),
                ("bad".into(), "%zz".into()),
                ("end".into(), "%4".into()),
                ("u".into(), "%é".into()),
            ]
        );
    }
}
