//! Inbound credentials: CF bearer tokens and Gcore API keys, compared in
//! constant time (`subtle`). Credentials never reach a log line, an error
//! body or a metric; a principal carries a name for them instead.

use super::http::Principal;
use crate::config::AuthConfig;
use http::HeaderMap;
use subtle::ConstantTimeEq;

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Invalid,
    /// What would verify the credential cannot be reached.
    Unavailable(String),
}

pub struct Authenticator {
    cf_tokens: Vec<String>,
    gcore_keys: Vec<String>,
}

fn credential<'a>(headers: &'a HeaderMap, scheme: &str) -> Result<&'a str, AuthError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::Invalid)?;
    let (given, rest) = value.trim().split_once(' ').ok_or(AuthError::Invalid)?;
    if !given.eq_ignore_ascii_case(scheme) {
        return Err(AuthError::Invalid);
    }
    Ok(rest.trim())
}

/// The index of the entry `given` equals; every entry is compared, so the
/// time taken does not tell which one matched.
fn matching(given: &str, allowed: &[String]) -> Option<usize> {
    let mut found = None;
    for (i, a) in allowed.iter().enumerate() {
        if bool::from(given.as_bytes().ct_eq(a.as_bytes())) {
            found = Some(i);
        }
    }
    found
}

impl Authenticator {
    pub fn new(cfg: &AuthConfig) -> Self {
        Authenticator {
            cf_tokens: cfg.cf_bearer_tokens.clone(),
            gcore_keys: cfg.gcore_api_keys.clone(),
        }
    }

    /// `Authorization: bearer <token>` (any case of the scheme, as the cf CLI sends it).
    pub async fn cf(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let token = credential(headers, "bearer")?;
        let i = matching(token, &self.cf_tokens).ok_or(AuthError::Invalid)?;
        Ok(Principal {
            name: format!("cf-token-{}", i + 1),
            projects: None,
            reserved_tags: false,
            cf_read: true,
            cf_write: true,
        })
    }

    /// `Authorization: APIKey <key>` (Gcore documents `apikey` too).
    pub fn gcore(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let key = credential(headers, "apikey")?;
        let i = matching(key, &self.gcore_keys).ok_or(AuthError::Invalid)?;
        Ok(Principal {
            name: format!("gcore-key-{}", i + 1),
            projects: None,
            reserved_tags: true,
            cf_read: false,
            cf_write: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[tokio::test]
    async fn schemes_and_tokens() {
        let a = Authenticator {
            cf_tokens: vec!["t1".to_string(), "t2".to_string()],
            gcore_keys: vec!["t1".to_string()],
        };
        assert_eq!(a.cf(&HeaderMap::new()).await, Err(AuthError::Missing));
        assert_eq!(a.cf(&headers("bearer t2")).await.unwrap().name, "cf-token-2");
        assert!(a.cf(&headers("Bearer t1")).await.is_ok());
        assert_eq!(a.cf(&headers("bearer t3")).await, Err(AuthError::Invalid));
        assert_eq!(a.cf(&headers("APIKey t1")).await, Err(AuthError::Invalid));
        assert!(a.gcore(&headers("APIKey t1")).is_ok());
        assert!(a.gcore(&headers("apikey t1")).is_ok());
        assert_eq!(a.gcore(&headers("APIKey")), Err(AuthError::Invalid));
    }
}
