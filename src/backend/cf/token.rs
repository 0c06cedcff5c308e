//! The gateway's own credentials for a Cloud Controller: a bearer token
//! from the environment, or a UAA client-credentials grant whose token is
//! fetched again a minute before it expires (or when the Cloud Controller
//! refuses it).

use crate::backend::{BackendError, ErrorKind, Result};
use crate::config::CfBackendConfig;
use crate::outbound::HttpsClient;
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Fetch a new token this long before the current one expires.
const EARLY: Duration = Duration::from_secs(60);

pub enum TokenSource {
    Static(HeaderValue),
    Grant(Box<Grant>),
}

pub struct Grant {
    http: HttpsClient,
    token_url: String,
    client_id: String,
    secret: String,
    timeout: Duration,
    current: Mutex<Option<(HeaderValue, Instant)>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenSource {
    pub fn new(cfg: &CfBackendConfig, vars: &crate::config::Env) -> std::result::Result<Self, String> {
        let env = |var: &str| {
            vars.var(var)
                .map(|v| v.trim().to_string())
                .ok_or_else(|| format!("the environment variable {var} is not set"))
        };
        if !cfg.token_env.is_empty() {
            let token = env(&cfg.token_env)?;
            let token = token
                .strip_prefix("bearer ")
                .or(token.strip_prefix("Bearer "))
                .unwrap_or(&token)
                .to_string();
            let mut header = HeaderValue::from_str(&format!("bearer {token}"))
                .map_err(|_| format!("the token in {} is not a valid header value", cfg.token_env))?;
            header.set_sensitive(true);
            return Ok(TokenSource::Static(header));
        }
        Ok(TokenSource::Grant(Box::new(Grant {
            http: crate::outbound::client(cfg.ca_file.as_deref(), 2, vars)?,
            token_url: format!("{}/oauth/token", cfg.uaa_url.trim_end_matches('/')),
            client_id: cfg.client_id.clone(),
            secret: env(&cfg.client_secret_env)?,
            timeout: Duration::from_secs(cfg.request_timeout_s.max(1)),
            current: Mutex::new(None),
        })))
    }

    /// The secrets this source holds (never to appear in a message).
    pub fn secrets(&self) -> Vec<String> {
        match self {
            TokenSource::Static(h) => h
                .to_str()
                .ok()
                .map(|s| s.trim_start_matches("bearer ").to_string())
                .into_iter()
                .collect(),
            TokenSource::Grant(g) => vec![g.secret.clone()],
        }
    }

    /// The `Authorization` header to send; `renew` when the last was refused.
    pub async fn header(&self, renew: bool) -> Result<HeaderValue> {
        match self {
            TokenSource::Static(h) => Ok(h.clone()),
            TokenSource::Grant(g) => g.header(renew).await,
        }
    }
}

impl Grant {
    async fn header(&self, renew: bool) -> Result<HeaderValue> {
        let mut current = self.current.lock().await;
        if let Some((header, refresh_at)) = current.as_ref() {
            if !renew && Instant::now() < *refresh_at {
                return Ok(header.clone());
            }
        }
        let (header, lifetime) = self.fetch().await?;
        let refresh_at = Instant::now() + lifetime.saturating_sub(EARLY).max(lifetime / 2);
        *current = Some((header.clone(), refresh_at));
        Ok(header)
    }

    async fn fetch(&self) -> Result<(HeaderValue, Duration)> {
        let unavailable = |m: String| BackendError::new(ErrorKind::Unavailable, format!("the UAA: {m}"));
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", &self.secret)
            .finish();
        let req = http::Request::post(&self.token_url)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| unavailable(e.to_string()))?;
        let exchange = async {
            let resp = self.http.request(req).await.map_err(|e| unavailable(e.to_string()))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), 1 << 20)
                .collect()
                .await
                .map_err(|e| unavailable(e.to_string()))?
                .to_bytes();
            if status.is_client_error() {
                return Err(BackendError::new(
                    ErrorKind::Unauthorized,
                    format!("the UAA refused the gateway's client {} ({status})", self.client_id),
                ));
            }
            if !status.is_success() {
                return Err(unavailable(format!("answered {status}")));
            }
            serde_json::from_slice::<TokenAnswer>(&body)
                .map_err(|e| unavailable(format!("unreadable token answer: {e}")))
        };
        let answer = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| unavailable("did not answer in time".into()))??;
        let kind = answer.token_type.unwrap_or_else(|| "bearer".into());
        let mut header = HeaderValue::from_str(&format!("{kind} {}", answer.access_token))
            .map_err(|_| unavailable("the token is not a valid header value".into()))?;
        header.set_sensitive(true);
        Ok((header, Duration::from_secs(answer.expires_in.unwrap_or(600))))
    }
}
