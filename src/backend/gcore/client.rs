//! The HTTP side of the Gcore backend: one pooled keep-alive client (rustls,
//! webpki roots; plain HTTP for loopback tests), at most `max_connections`
//! requests in flight (the rest queue, so a burst cannot exhaust file
//! descriptors), a per-request timeout, GETs retried with jittered backoff,
//! and every answer that is not 2xx turned into a sanitised `BackendError`.
//! The API key is sent as a sensitive header and never appears in an error.

use crate::backend::{BackendError, Cx, ErrorKind, Result};
use crate::config::GcoreBackendConfig;
use crate::dialect::gcore::error::GcoreErrorBody;
use crate::sanitize::foreign_text;
use backon::BackoffBuilder;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Largest Gcore response body read (a list of 1000 groups fits easily).
const MAX_RESPONSE: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the Gcore API key is read from the environment variable {0}, which is not set")]
    MissingKey(String),
    #[error("the Gcore API key in {0} is not a valid header value")]
    BadKey(String),
}

pub struct Client {
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    auth: HeaderValue,
    key: String,
    timeout: Duration,
    slots: Arc<Semaphore>,
}

impl Client {
    pub fn new(cfg: &GcoreBackendConfig) -> std::result::Result<Self, SetupError> {
        let key = std::env::var(&cfg.api_key_env).map_err(|_| SetupError::MissingKey(cfg.api_key_env.clone()))?;
        let key = key.trim().to_string();
        let mut auth =
            HeaderValue::from_str(&format!("APIKey {key}")).map_err(|_| SetupError::BadKey(cfg.api_key_env.clone()))?;
        auth.set_sensitive(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(cfg.max_connections)
            .build(https);
        Ok(Client {
            http,
            base: cfg.base_url.trim_end_matches('/').to_string(),
            auth,
            key,
            timeout: Duration::from_secs(cfg.request_timeout_s.max(1)),
            slots: Arc::new(Semaphore::new(cfg.max_connections.max(1))),
        })
    }

    /// One call; 2xx bodies are returned, everything else is an error. GETs
    /// are retried on transient failures.
    pub async fn call(&self, cx: &Cx, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Bytes> {
        let body = body.map(Bytes::from);
        if method != Method::GET {
            return self.call_once(cx, method, path, body).await;
        }
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(1))
            .with_max_times(2)
            .with_jitter()
            .build();
        loop {
            match self.call_once(cx, method.clone(), path, body.clone()).await {
                Err(e) if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Upstream) => match delays.next() {
                    Some(d) => tokio::time::sleep(d).await,
                    None => return Err(e),
                },
                other => return other,
            }
        }
    }

    async fn call_once(&self, cx: &Cx, method: Method, path: &str, body: Option<Bytes>) -> Result<Bytes> {
        let uri = format!("{}{path}", self.base);
        let sends_body = body.is_some();
        let mut req = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(http::header::AUTHORIZATION, self.auth.clone())
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("sgbridge/", env!("CARGO_PKG_VERSION")),
            );
        if let Ok(id) = HeaderValue::from_str(&cx.request_id) {
            req = req.header("x-request-id", id);
        }
        if sends_body {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| BackendError::new(ErrorKind::Upstream, format!("cannot build request: {e}")))?;
        let what = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let writes = method != Method::GET;
        let exchange = async {
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|_| BackendError::new(ErrorKind::Unavailable, "the Gcore client is shutting down"))?;
            let resp = self.http.request(req).await.map_err(|e| {
                let err = BackendError::new(
                    ErrorKind::Unavailable,
                    format!("Gcore API unreachable ({what}): {}", self.clean(&root_cause(&e))),
                );
                // A request that was never sent cannot have been applied.
                if writes && !e.is_connect() {
                    err.uncertain()
                } else {
                    err
                }
            })?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| {
                    let err = BackendError::new(
                        ErrorKind::Upstream,
                        format!("reading the Gcore answer to {what}: {}", self.clean(&e.to_string())),
                    );
                    if writes {
                        err.uncertain()
                    } else {
                        err
                    }
                })?
                .to_bytes();
            Ok::<_, BackendError>((status, body))
        };
        let (status, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r?,
            Err(_) => {
                let err = BackendError::new(ErrorKind::Timeout, format!("Gcore API did not answer {what} in time"));
                return Err(if writes { err.uncertain() } else { err });
            }
        };
        if status.is_success() {
            return Ok(body);
        }
        Err(self.api_error(status, &body, &what))
    }

    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        cx: &Cx,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T> {
        let bytes = self.call(cx, method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            BackendError::new(
                ErrorKind::Upstream,
                format!(
                    "unreadable Gcore answer to {}: {e}",
                    path.split('?').next().unwrap_or(path)
                ),
            )
        })
    }

    fn clean(&self, text: &str) -> String {
        foreign_text(text, &[&self.key])
    }

    /// A Gcore error answer as a backend error, keeping Gcore's own message.
    pub fn api_error(&self, status: StatusCode, body: &[u8], what: &str) -> BackendError {
        let message = match serde_json::from_slice::<GcoreErrorBody>(body) {
            Ok(b) => self.clean(&b.message),
            Err(_) => {
                let text = self.clean(&String::from_utf8_lossy(&body[..body.len().min(4096)]));
                if text.is_empty() {
                    format!("Gcore API answered {status} to {what}")
                } else {
                    format!("Gcore API answered {status} to {what}: {text}")
                }
            }
        };
        let kind = match status.as_u16() {
            400 | 422 => ErrorKind::Invalid,
            401 | 403 => ErrorKind::Unauthorized,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            408 | 504 => ErrorKind::Timeout,
            429 | 503 => ErrorKind::Unavailable,
            _ => ErrorKind::Upstream,
        };
        BackendError {
            kind,
            message,
            status: Some(status.as_u16()),
            uncertain: false,
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        std::env::set_var("SGBRIDGE_UNIT_GCORE_KEY", "1234$unitsecret");
        let cfg = GcoreBackendConfig {
            api_key_env: "SGBRIDGE_UNIT_GCORE_KEY".into(),
            ..GcoreBackendConfig::default()
        };
        Client::new(&cfg).unwrap()
    }

    #[test]
    fn errors_keep_gcore_messages_without_secrets() {
        let c = client();
        let e = c.api_error(
            StatusCode::CONFLICT,
            br#"{"exception_class":"ConflictError","message":"locked","request_id":"x"}"#,
            "PATCH x",
        );
        assert_eq!(
            (e.kind, e.message.as_str(), e.status),
            (ErrorKind::Conflict, "locked", Some(409))
        );
        let e = c.api_error(StatusCode::BAD_GATEWAY, b"", "GET y");
        assert_eq!(e.kind, ErrorKind::Upstream);
        assert!(e.message.contains("502"));
        let e = c.api_error(
            StatusCode::BAD_REQUEST,
            b"proxy says: your headers were Authorization: APIKey 1234$unitsecret",
            "GET z",
        );
        assert!(!e.message.contains("unitsecret"), "{}", e.message);
        let e = c.api_error(
            StatusCode::BAD_GATEWAY,
            b"<html><body>bad gateway</body></html>",
            "GET z",
        );
        assert!(!e.message.contains("<html>"), "{}", e.message);
    }
}
