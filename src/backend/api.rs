//! The HTTP side shared by the backends that are remote APIs (Gcore, a Cloud
//! Controller): one pooled keep-alive client (`crate::outbound`), at most
//! `max_connections` requests in flight (the rest queue, so a burst cannot
//! exhaust file descriptors), a per-request timeout, GETs retried with
//! jittered backoff, the caller's request id forwarded, and every answer
//! that is not 2xx turned into a sanitised `BackendError` carrying the
//! upstream's own message. Credentials are sent as sensitive headers and
//! never appear in an error.

use super::{BackendError, Cx, ErrorKind, Result};
use crate::outbound::HttpsClient;
use crate::sanitize::foreign_text;
use backon::BackoffBuilder;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use std::path::Path;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Largest answer read (a list of 1000 groups fits easily).
const MAX_RESPONSE: usize = 64 << 20;

/// What the upstream answered.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The settings of an API client.
pub struct ApiSettings<'a> {
    /// For messages: "Gcore API", "Cloud Controller".
    pub name: &'static str,
    pub base: &'a str,
    pub timeout: Duration,
    pub max_connections: usize,
    pub ca_file: Option<&'a Path>,
    /// Where the proxy variables are read.
    pub env: &'a crate::config::Env,
    /// Pulls the upstream's own message out of an error body.
    pub error_message: fn(&[u8]) -> Option<String>,
}

pub struct ApiClient {
    http: HttpsClient,
    name: &'static str,
    base: String,
    timeout: Duration,
    slots: Semaphore,
    error_message: fn(&[u8]) -> Option<String>,
    /// Texts never to show (the credentials this client sends).
    secrets: Vec<String>,
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl ApiClient {
    pub fn new(s: ApiSettings, secrets: Vec<String>) -> std::result::Result<Self, String> {
        Ok(ApiClient {
            http: crate::outbound::client(s.ca_file, s.max_connections, s.env)?,
            name: s.name,
            base: s.base.trim_end_matches('/').to_string(),
            timeout: s.timeout.max(Duration::from_secs(1)),
            slots: Semaphore::new(s.max_connections.max(1)),
            error_message: s.error_message,
            secrets,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn clean(&self, text: &str) -> String {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        foreign_text(text, &secrets)
    }

    /// One call to `target` (a path below the base, or an absolute URL on
    /// it); 2xx answers are returned, everything else is an error. GETs are
    /// retried on transient failures.
    pub async fn call(
        &self,
        cx: &Cx,
        method: Method,
        target: &str,
        auth: &HeaderValue,
        body: Option<(Bytes, &'static str)>,
    ) -> Result<Answer> {
        if method != Method::GET {
            return self.call_once(cx, method, target, auth, body).await;
        }
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(1))
            .with_max_times(2)
            .with_jitter()
            .build();
        loop {
            match self.call_once(cx, method.clone(), target, auth, body.clone()).await {
                Err(e) if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Upstream) => match delays.next() {
                    Some(d) => tokio::time::sleep(d).await,
                    None => return Err(e),
                },
                other => return other,
            }
        }
    }

    fn url(&self, target: &str) -> Result<String> {
        if target.starts_with('/') {
            return Ok(format!("{}{target}", self.base));
        }
        // An absolute URL the upstream gave (a `next` link): only on its own base.
        if target.starts_with(&format!("{}/", self.base)) {
            return Ok(target.to_string());
        }
        Err(BackendError::new(
            ErrorKind::Upstream,
            format!("the {} pointed outside itself", self.name),
        ))
    }

    async fn call_once(
        &self,
        cx: &Cx,
        method: Method,
        target: &str,
        auth: &HeaderValue,
        body: Option<(Bytes, &'static str)>,
    ) -> Result<Answer> {
        let url = self.url(target)?;
        let mut auth = auth.clone();
        auth.set_sensitive(true);
        let mut req = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header(http::header::AUTHORIZATION, auth)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("sgbridge/", env!("CARGO_PKG_VERSION")),
            );
        if let Ok(id) = HeaderValue::from_str(&cx.request_id) {
            req = req.header("x-request-id", id.clone()).header("x-vcap-request-id", id);
        }
        let body = match body {
            Some((bytes, content_type)) => {
                req = req.header(http::header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(body))
            .map_err(|e| BackendError::new(ErrorKind::Upstream, format!("cannot build request: {e}")))?;
        let what = format!("{method} {}", target.split('?').next().unwrap_or(target));
        let writes = method != Method::GET;
        let uncertain = |e: BackendError| if writes { e.uncertain() } else { e };
        let exchange = async {
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|_| BackendError::new(ErrorKind::Unavailable, "the client is shutting down"))?;
            let resp = self.http.request(req).await.map_err(|e| {
                let err = BackendError::new(
                    ErrorKind::Unavailable,
                    format!("{} unreachable ({what}): {}", self.name, self.clean(&root_cause(&e))),
                );
                // A request that was never sent cannot have been applied.
                if e.is_connect() {
                    err
                } else {
                    uncertain(err)
                }
            })?;
            let (parts, body) = resp.into_parts();
            let body = http_body_util::Limited::new(body, MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| {
                    uncertain(BackendError::new(
                        ErrorKind::Upstream,
                        format!(
                            "reading the {} answer to {what}: {}",
                            self.name,
                            self.clean(&e.to_string())
                        ),
                    ))
                })?
                .to_bytes();
            Ok::<_, BackendError>(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        let answer = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(uncertain(BackendError::new(
                    ErrorKind::Timeout,
                    format!("{} did not answer {what} in time", self.name),
                )))
            }
        };
        if answer.status.is_success() {
            return Ok(answer);
        }
        Err(self.api_error(answer.status, &answer.body, &what))
    }

    /// An error answer as a backend error, keeping the upstream's own message.
    pub fn api_error(&self, status: StatusCode, body: &[u8], what: &str) -> BackendError {
        let message = match (self.error_message)(body) {
            Some(m) => self.clean(&m),
            None => {
                let text = self.clean(&String::from_utf8_lossy(&body[..body.len().min(4096)]));
                if text.is_empty() {
                    format!("{} answered {status} to {what}", self.name)
                } else {
                    format!("{} answered {status} to {what}: {text}", self.name)
                }
            }
        };
        let kind = ErrorKind::of_status(status.as_u16());
        BackendError {
            kind,
            message,
            status: Some(status.as_u16()),
            uncertain: false,
            injected: None,
        }
    }

    /// A JSON answer, parsed.
    pub fn parse<T: serde::de::DeserializeOwned>(&self, answer: &Answer, what: &str) -> Result<T> {
        serde_json::from_slice(&answer.body).map_err(|e| {
            BackendError::new(
                ErrorKind::Upstream,
                format!("unreadable {} answer to {what}: {e}", self.name),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ApiClient {
        ApiClient::new(
            ApiSettings {
                name: "Gcore API",
                base: "https://api.example.com/",
                timeout: Duration::from_secs(5),
                max_connections: 4,
                ca_file: None,
                env: &crate::config::Env::isolated(),
                error_message: |b| {
                    serde_json::from_slice::<serde_json::Value>(b)
                        .ok()?
                        .get("message")?
                        .as_str()
                        .map(str::to_string)
                },
            },
            vec!["1234$unitsecret".into()],
        )
        .unwrap()
    }

    #[test]
    fn errors_keep_upstream_messages_without_secrets() {
        let c = client();
        let e = c.api_error(StatusCode::CONFLICT, br#"{"message":"locked"}"#, "PATCH x");
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

    #[test]
    fn absolute_targets_stay_on_the_base() {
        let c = client();
        assert_eq!(c.url("/v3/x").unwrap(), "https://api.example.com/v3/x");
        assert!(c.url("https://api.example.com/v3/x?page=2").is_ok());
        assert!(c.url("https://evil.example/v3/x").is_err());
        assert!(c.url("https://api.example.com.evil.example/v3").is_err());
    }
}
