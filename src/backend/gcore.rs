//! The Gcore HTTP backend: the Gcore Cloud API over HTTPS (rustls, webpki
//! roots; plain HTTP for loopback tests), one pooled keep-alive client.
//!
//! Writes use the v2 endpoints, reads and group deletion the v1 ones, task
//! state `GET /cloud/v1/tasks/{id}`. The API key is read once from the
//! environment variable the config names and sent as `Authorization: APIKey`;
//! the header is marked sensitive and the key appears in no log or error.
//! Idempotent reads are retried twice on connection errors and 5xx.

use super::{BackendError, ErrorKind, GroupPatch, NewGroup, Result, Scope};
use crate::config::GcoreBackendConfig;
use crate::dialect::gcore::error::GcoreErrorBody;
use crate::dialect::gcore::rule::{atom_from_out, to_spec};
use crate::dialect::gcore::wire::{GroupOut, ListOut, TaskIds, TaskOut};
use crate::dialect::gcore::RuleSpec;
use crate::model::{GroupId, GroupRule, SecurityGroup, Tag, TagPatch, Uuid};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Largest Gcore response body read (a list of 1000 groups fits easily).
const MAX_RESPONSE: usize = 64 << 20;
/// Page size for listing (Gcore's maximum).
const PAGE: usize = 1000;

#[derive(Clone)]
pub struct GcoreHttp {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    auth: HeaderValue,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the Gcore API key is read from the environment variable {0}, which is not set")]
    MissingKey(String),
    #[error("the Gcore API key in {0} is not a valid header value")]
    BadKey(String),
}

/// The v2 create body; `rules` is always sent (omitting it means Gcore's
/// default template).
#[derive(Serialize)]
struct CreateBody<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    rules: Vec<RuleSpec>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct PatchBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rules: Option<Vec<RuleSpec>>,
    /// Absent: keep; `null`: remove all; a map: merge patch.
    #[serde(skip_serializing_if = "Tags::is_keep")]
    tags: Tags<'a>,
}

enum Tags<'a> {
    Keep,
    Null,
    Merge(BTreeMap<&'a str, Option<&'a str>>),
}

impl Tags<'_> {
    fn is_keep(&self) -> bool {
        matches!(self, Tags::Keep)
    }
}

impl Serialize for Tags<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Tags::Keep | Tags::Null => s.serialize_none(),
            Tags::Merge(m) => m.serialize(s),
        }
    }
}

impl GcoreHttp {
    pub fn new(cfg: &GcoreBackendConfig) -> std::result::Result<Self, SetupError> {
        let key = std::env::var(&cfg.api_key_env).map_err(|_| SetupError::MissingKey(cfg.api_key_env.clone()))?;
        let mut auth = HeaderValue::from_str(&format!("APIKey {}", key.trim()))
            .map_err(|_| SetupError::BadKey(cfg.api_key_env.clone()))?;
        auth.set_sensitive(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(GcoreHttp {
            inner: Arc::new(Inner {
                client,
                base: cfg.base_url.trim_end_matches('/').to_string(),
                auth,
                timeout: Duration::from_secs(cfg.request_timeout_s.max(1)),
            }),
        })
    }

    /// One request; 2xx bodies are returned, everything else becomes a `BackendError`.
    async fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Bytes> {
        let retries = if method == Method::GET { 2 } else { 0 };
        let mut attempt = 0;
        loop {
            match self.call_once(method.clone(), path, body.clone()).await {
                Err(e) if attempt < retries && matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Upstream) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn call_once(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Bytes> {
        let uri = format!("{}{path}", self.inner.base);
        let mut req = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(http::header::AUTHORIZATION, self.inner.auth.clone())
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("sgbridge/", env!("CARGO_PKG_VERSION")),
            );
        if body.is_some() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| BackendError::new(ErrorKind::Upstream, format!("cannot build request: {e}")))?;
        let what = format!("{method} {path}");
        let exchange = async {
            let resp = self.inner.client.request(req).await.map_err(|e| {
                BackendError::new(
                    ErrorKind::Unavailable,
                    format!("Gcore API unreachable ({what}): {}", root_cause(&e)),
                )
            })?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| {
                    BackendError::new(ErrorKind::Upstream, format!("reading the Gcore answer to {what}: {e}"))
                })?
                .to_bytes();
            Ok::<_, BackendError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.inner.timeout, exchange)
            .await
            .map_err(|_| BackendError::new(ErrorKind::Timeout, format!("Gcore API did not answer {what} in time")))??;
        if status.is_success() {
            return Ok(body);
        }
        Err(api_error(status, &body, &what))
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T> {
        let bytes = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| BackendError::new(ErrorKind::Upstream, format!("unreadable Gcore answer to {path}: {e}")))
    }

    fn group_path(scope: Scope, id: &GroupId) -> String {
        format!("/cloud/v1/securitygroups/{}/{}/{id}", scope.project_id, scope.region_id)
    }

    pub async fn list(&self, scope: Scope, name: Option<&str>) -> Result<Vec<SecurityGroup>> {
        let mut out = Vec::new();
        loop {
            let mut path = format!(
                "/cloud/v1/securitygroups/{}/{}?limit={PAGE}&offset={}",
                scope.project_id,
                scope.region_id,
                out.len()
            );
            if let Some(n) = name {
                path.push_str("&name=");
                path.push_str(&crate::urlenc::encode(n));
            }
            let page: ListOut<GroupOut> = self.json(Method::GET, &path, None).await?;
            let got = page.results.len();
            for g in &page.results {
                out.push(to_model(g)?);
            }
            if got < PAGE || out.len() >= page.count {
                return Ok(out);
            }
        }
    }

    pub async fn get(&self, scope: Scope, id: &GroupId) -> Result<SecurityGroup> {
        let g: GroupOut = self.json(Method::GET, &Self::group_path(scope, id), None).await?;
        to_model(&g)
    }

    pub async fn create(&self, scope: Scope, group: NewGroup) -> Result<Vec<Uuid>> {
        let body = CreateBody {
            name: &group.name,
            description: group.description.as_deref(),
            rules: group.rules.iter().flatten().map(to_spec).collect(),
            tags: group.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        };
        let path = format!("/cloud/v2/security_groups/{}/{}", scope.project_id, scope.region_id);
        self.write(Method::POST, &path, &body).await
    }

    pub async fn update(&self, scope: Scope, id: &GroupId, patch: GroupPatch) -> Result<Vec<Uuid>> {
        let tags = match &patch.tags {
            TagPatch::Keep => Tags::Keep,
            TagPatch::RemoveAll => Tags::Null,
            TagPatch::Merge(m) => Tags::Merge(m.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect()),
        };
        let body = PatchBody {
            name: patch.name.as_deref(),
            description: patch.description.as_deref(),
            rules: patch.rules.as_ref().map(|r| r.iter().map(to_spec).collect()),
            tags,
        };
        let path = format!(
            "/cloud/v2/security_groups/{}/{}/{id}",
            scope.project_id, scope.region_id
        );
        self.write(Method::PATCH, &path, &body).await
    }

    pub async fn add_rule(&self, scope: Scope, id: &GroupId, rule: crate::model::Atom) -> Result<Vec<Uuid>> {
        let path = format!(
            "/cloud/v2/security_groups/{}/{}/{id}/rules",
            scope.project_id, scope.region_id
        );
        self.write(Method::POST, &path, &to_spec(&rule)).await
    }

    pub async fn delete_rule(&self, scope: Scope, id: &GroupId, rule_id: &Uuid) -> Result<Vec<Uuid>> {
        let path = format!(
            "/cloud/v2/security_groups/{}/{}/{id}/rules/{rule_id}",
            scope.project_id, scope.region_id
        );
        let ids: TaskIds = self.json(Method::DELETE, &path, None).await?;
        task_ids(ids)
    }

    pub async fn delete(&self, scope: Scope, id: &GroupId) -> Result<()> {
        self.call(Method::DELETE, &Self::group_path(scope, id), None)
            .await
            .map(|_| ())
    }

    pub async fn task(&self, id: &Uuid) -> Result<TaskOut> {
        self.json(Method::GET, &format!("/cloud/v1/tasks/{id}"), None).await
    }

    /// Reachable and accepting our key: any list answer will do.
    pub async fn ready(&self) -> Result<()> {
        self.call(Method::GET, "/cloud/v1/tasks?limit=1", None)
            .await
            .map(|_| ())
    }

    async fn write<B: Serialize>(&self, method: Method, path: &str, body: &B) -> Result<Vec<Uuid>> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| BackendError::new(ErrorKind::Upstream, format!("cannot encode request: {e}")))?;
        let ids: TaskIds = self.json(method, path, Some(bytes)).await?;
        task_ids(ids)
    }
}

fn task_ids(ids: TaskIds) -> Result<Vec<Uuid>> {
    ids.tasks
        .iter()
        .map(|t| {
            Uuid::parse(t).ok_or_else(|| {
                BackendError::new(ErrorKind::Upstream, format!("Gcore returned an invalid task id {t:?}"))
            })
        })
        .collect()
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A Gcore error answer as a backend error, keeping Gcore's own message.
fn api_error(status: StatusCode, body: &[u8], what: &str) -> BackendError {
    let message = match serde_json::from_slice::<GcoreErrorBody>(body) {
        Ok(b) => b.message,
        Err(_) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).trim().to_string();
            if text.is_empty() {
                format!("Gcore API answered {status} to {what}")
            } else {
                text
            }
        }
    };
    let kind = match status.as_u16() {
        400 | 422 => ErrorKind::Invalid,
        401 | 403 => ErrorKind::Unauthorized,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        408 | 504 => ErrorKind::Timeout,
        _ => ErrorKind::Upstream,
    };
    BackendError {
        kind,
        message,
        status: Some(status.as_u16()),
    }
}

fn to_model(g: &GroupOut) -> Result<SecurityGroup> {
    let bad = |what: String| BackendError::new(ErrorKind::Upstream, format!("Gcore group {}: {what}", g.id));
    let id = Uuid::parse(&g.id).ok_or_else(|| bad("invalid id".into()))?;
    let rules = g
        .security_group_rules
        .iter()
        .map(|r| {
            Ok(GroupRule {
                id: Uuid::parse(&r.id).ok_or_else(|| bad(format!("invalid rule id {:?}", r.id)))?,
                atom: atom_from_out(r).map_err(|e| bad(format!("rule {}: {e}", r.id)))?,
                revision: r.revision_number,
                created_at: r.created_at.0,
                updated_at: r.updated_at.0,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SecurityGroup {
        id,
        name: g.name.clone(),
        description: g.description.clone(),
        rules,
        tags: g
            .tags_v2
            .iter()
            .map(|t| Tag {
                key: t.key.clone(),
                value: t.value.clone(),
                read_only: t.read_only,
            })
            .collect(),
        region: g.region.clone(),
        revision: g.revision_number,
        created_at: g.created_at.0,
        updated_at: g.updated_at.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_bodies_say_keep_null_and_merge() {
        let body = PatchBody {
            name: None,
            description: None,
            rules: Some(vec![]),
            tags: Tags::Keep,
        };
        assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"rules":[]}"#);
        let body = PatchBody {
            name: Some("n"),
            description: None,
            rules: None,
            tags: Tags::Null,
        };
        assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"name":"n","tags":null}"#);
        let body = PatchBody {
            name: None,
            description: None,
            rules: None,
            tags: Tags::Merge(BTreeMap::from([("a", Some("1")), ("b", None)])),
        };
        assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"tags":{"a":"1","b":null}}"#);
    }

    #[test]
    fn errors_keep_gcore_messages() {
        let e = api_error(
            StatusCode::CONFLICT,
            br#"{"exception_class":"ConflictError","message":"locked","request_id":"x"}"#,
            "PATCH x",
        );
        assert_eq!(
            (e.kind, e.message.as_str(), e.status),
            (ErrorKind::Conflict, "locked", Some(409))
        );
        let e = api_error(StatusCode::BAD_GATEWAY, b"", "GET y");
        assert_eq!(e.kind, ErrorKind::Upstream);
        assert!(e.message.contains("502"));
    }
}
