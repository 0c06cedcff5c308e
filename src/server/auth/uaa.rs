//! CF callers' UAA tokens (`cf login`), verified as the Cloud Controller
//! does: an RS256/384/512 signature by one of the UAA's keys (its JWK set at
//! `{url}/token_keys`), `exp` and `nbf` with a small leeway, the issuer, the
//! audience, a `jti` that is not a refresh token's, and scopes as an array.
//!
//! Keys are cached; they are fetched again when they are old, or when a
//! token names a key not in the cache, at most once per `refetch_s`. While
//! the UAA cannot be reached, the cached keys keep verifying.

use super::AuthError;
use crate::config::UaaConfig;
use crate::outbound::HttpsClient;
use crate::server::http::CfScopes;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::time::Duration;
use tokio::time::Instant;

/// Keys older than this are fetched again before use.
const MAX_AGE: Duration = Duration::from_secs(600);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_JWKS_BYTES: usize = 1 << 20;

#[derive(Default)]
struct Keys {
    keys: Vec<(Option<String>, DecodingKey)>,
    fetched: Option<Instant>,
    tried: Option<Instant>,
}

pub struct Uaa {
    http: HttpsClient,
    /// The fewest seconds between fetches prompted by unknown keys or failures.
    min_refetch: Duration,
    keys_url: String,
    validation: Validation,
    cache: tokio::sync::Mutex<Keys>,
}

/// What sgbridge reads of a token's claims; a claim of the wrong type makes
/// the token invalid (a `scope` string, a float `exp`).
#[derive(Deserialize)]
struct Claims {
    #[allow(dead_code)]
    exp: u64,
    #[serde(default)]
    scope: Vec<String>,
    jti: Option<String>,
    iss: String,
    user_name: Option<String>,
    user_id: Option<String>,
    origin: Option<String>,
    zid: Option<String>,
    client_id: Option<String>,
    cid: Option<String>,
    sub: Option<String>,
}

/// A CF caller as its token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Issuer, zone, origin and user id (a user's token) or client id (a
    /// client's): user names are unique per origin only.
    pub id: String,
    pub name: String,
    /// A user's token: the user's name and origin (a client's: `None`).
    pub user: Option<(String, String)>,
    pub scopes: CfScopes,
}

impl Uaa {
    pub fn new(cfg: &UaaConfig, env: &crate::config::Env) -> Result<Self, String> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512];
        validation.leeway = cfg.leeway_s;
        validation.validate_nbf = true;
        validation.set_audience(&[cfg.audience.as_str()]);
        validation.set_issuer(&[cfg.issuer()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        Ok(Uaa {
            http: crate::outbound::client(cfg.ca_file.as_deref(), 4, env)?,
            min_refetch: Duration::from_secs(cfg.refetch_s),
            keys_url: format!("{}/token_keys", cfg.url.trim_end_matches('/')),
            validation,
            cache: tokio::sync::Mutex::default(),
        })
    }

    pub async fn verify(&self, token: &str) -> Result<Verified, AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::Invalid)?;
        if !self.validation.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid);
        }
        check(token, &self.candidates(header.kid.as_deref()).await?, &self.validation)
    }

    /// The keys that may have signed a token naming `kid` (all keys when it
    /// names none), fetching them first when they are old or `kid` is new.
    async fn candidates(&self, kid: Option<&str>) -> Result<Vec<DecodingKey>, AuthError> {
        let mut cache = self.cache.lock().await;
        let old = cache.fetched.is_none_or(|t| t.elapsed() > MAX_AGE);
        let unknown = kid.is_some_and(|k| !cache.keys.iter().any(|(id, _)| id.as_deref() == Some(k)));
        let may_try = cache.tried.is_none_or(|t| t.elapsed() >= self.min_refetch);
        if (old || unknown) && !may_try && cache.keys.is_empty() {
            return Err(AuthError::Unavailable("the UAA's token keys cannot be fetched".into()));
        }
        if (old || unknown) && may_try {
            cache.tried = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.fetched = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fetch the UAA's token keys; using the cached ones");
                    if cache.keys.is_empty() {
                        return Err(AuthError::Unavailable(format!(
                            "the UAA's token keys cannot be fetched: {e}"
                        )));
                    }
                }
            }
        }
        let chosen: Vec<DecodingKey> = match kid {
            Some(k) => cache
                .keys
                .iter()
                .filter(|(id, _)| id.as_deref() == Some(k))
                .map(|(_, key)| key.clone())
                .collect(),
            None => cache.keys.iter().map(|(_, key)| key.clone()).collect(),
        };
        Ok(chosen)
    }

    async fn fetch(&self) -> Result<Vec<(Option<String>, DecodingKey)>, String> {
        let req = http::Request::get(&self.keys_url)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let resp = self.http.request(req).await.map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("the UAA answered {}", resp.status()));
            }
            let body = Limited::new(resp.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok(body)
        };
        let body = tokio::time::timeout(FETCH_TIMEOUT, exchange)
            .await
            .map_err(|_| "the UAA did not answer in time".to_string())??;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("unreadable JWK set: {e}"))?;
        let keys: Vec<_> = set
            .keys
            .iter()
            .filter_map(|jwk| {
                DecodingKey::from_jwk(jwk)
                    .ok()
                    .map(|key| (jwk.common.key_id.clone(), key))
            })
            .collect();
        if keys.is_empty() {
            return Err("the JWK set holds no usable key".into());
        }
        Ok(keys)
    }
}

/// The one check every CF token passes, whoever holds its keys (a UAA, or
/// the gateway's own issuer): signed by one of `keys` under `validation`,
/// then CC's claims ([`verified`]).
pub(super) fn check(token: &str, keys: &[DecodingKey], validation: &Validation) -> Result<Verified, AuthError> {
    for key in keys {
        match decode::<Claims>(token, key, validation) {
            Ok(data) => return verified(data.claims),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature) => continue,
            Err(_) => return Err(AuthError::Invalid),
        }
    }
    Err(AuthError::Invalid)
}

/// Who a token speaks for, unique across origins and zones: a user token's
/// `user_id` (UAA's `sub` for users), a client token's `client_id` (`cid`).
/// Each part is length-prefixed, so no two tuples write the same text.
fn identity(c: &Claims) -> Option<String> {
    let zone = c.zid.as_deref().unwrap_or("uaa");
    let part = |s: &str| format!("{}:{s}", s.len());
    let who = if c.user_name.is_some() || c.user_id.is_some() {
        // A user's token; UAA's `sub` is the user id.
        let user = c.user_id.as_deref().or(c.sub.as_deref())?;
        format!("user|{}|{}", part(c.origin.as_deref().unwrap_or("uaa")), part(user))
    } else {
        let client = c.client_id.as_deref().or(c.cid.as_deref()).or(c.sub.as_deref())?;
        format!("client|{}", part(client))
    };
    Some(format!("uaa|{}|{}|{who}", part(&c.iss), part(zone)))
}

fn verified(claims: Claims) -> Result<Verified, AuthError> {
    // CC refuses refresh tokens (their jti ends in "-r") and tokens without a jti.
    match &claims.jti {
        Some(j) if !j.ends_with("-r") => {}
        _ => return Err(AuthError::Invalid),
    }
    let id = identity(&claims).ok_or(AuthError::Invalid)?;
    let user = claims
        .user_name
        .clone()
        .map(|u| (u, claims.origin.clone().unwrap_or_else(|| "uaa".into())));
    let name = claims
        .user_name
        .or(claims.client_id)
        .or(claims.sub)
        .ok_or(AuthError::Invalid)?;
    Ok(Verified {
        id,
        name,
        user,
        scopes: CfScopes::from_names(&claims.scope),
    })
}
