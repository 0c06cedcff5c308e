//! Inbound credentials: CF bearer tokens (static ones from the config, or
//! UAA-issued JWTs) and Gcore API keys (each optionally bound to projects and
//! allowed the reserved tags). Secrets are compared in constant time
//! (`subtle`) and never reach a log line, an error body or a metric; a
//! principal carries a name for them instead.

mod uaa;

use super::http::{CfScopes, Principal};
use crate::config::{AuthConfig, ConfigError};
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

struct Credential {
    secret: String,
    principal: Principal,
}

pub struct Authenticator {
    cf: Vec<Credential>,
    gcore: Vec<Credential>,
    uaa: Option<uaa::Uaa>,
}

/// The credential after `scheme` in `Authorization` (the scheme in any case).
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
    let rest = rest.trim();
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(AuthError::Invalid);
    }
    Ok(rest)
}

/// The credential `given` equals; every entry is compared, so the time
/// taken does not tell which one matched.
fn matching<'a>(given: &str, allowed: &'a [Credential]) -> Option<&'a Principal> {
    let mut found = None;
    for c in allowed {
        if bool::from(given.as_bytes().ct_eq(c.secret.as_bytes())) {
            found = Some(&c.principal);
        }
    }
    found
}

fn admin(read_only: bool) -> CfScopes {
    CfScopes {
        admin: !read_only,
        admin_read_only: read_only,
        ..CfScopes::default()
    }
}

impl Authenticator {
    pub fn new(cfg: &AuthConfig) -> Result<Self, ConfigError> {
        let mut cf: Vec<Credential> = cfg
            .cf_bearer_tokens
            .iter()
            .enumerate()
            .map(|(i, t)| Credential {
                secret: t.clone(),
                principal: Principal {
                    name: format!("cf-token-{}", i + 1),
                    cf: admin(false),
                    ..Principal::default()
                },
            })
            .collect();
        for (i, t) in cfg.cf_tokens.iter().enumerate() {
            cf.push(Credential {
                secret: t.resolve(&format!("auth.cf_tokens[{i}] ({})", t.name))?,
                principal: Principal {
                    name: t.name.clone(),
                    cf: admin(t.read_only),
                    ..Principal::default()
                },
            });
        }
        let mut gcore: Vec<Credential> = cfg
            .gcore_api_keys
            .iter()
            .enumerate()
            .map(|(i, k)| Credential {
                secret: k.clone(),
                principal: Principal {
                    name: format!("gcore-key-{}", i + 1),
                    ..Principal::default()
                },
            })
            .collect();
        for (i, k) in cfg.gcore_keys.iter().enumerate() {
            gcore.push(Credential {
                secret: k.resolve(&format!("auth.gcore_keys[{i}] ({})", k.name))?,
                principal: Principal {
                    name: k.name.clone(),
                    projects: (!k.projects.is_empty()).then(|| k.projects.clone()),
                    reserved_tags: k.reserved_tags,
                    ..Principal::default()
                },
            });
        }
        let uaa = cfg
            .uaa
            .as_ref()
            .map(uaa::Uaa::new)
            .transpose()
            .map_err(ConfigError::Invalid)?;
        Ok(Authenticator { cf, gcore, uaa })
    }

    /// `Authorization: bearer <token>` (any case of the scheme, as the cf
    /// CLI sends it): a static token, else a UAA token when UAA is configured.
    pub async fn cf(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let token = credential(headers, "bearer")?;
        if let Some(p) = matching(token, &self.cf) {
            return Ok(p.clone());
        }
        let uaa = self.uaa.as_ref().ok_or(AuthError::Invalid)?;
        let v = uaa.verify(token).await?;
        Ok(Principal {
            name: v.name,
            cf: v.scopes,
            ..Principal::default()
        })
    }

    /// `Authorization: APIKey <key>` (Gcore documents `apikey` too).
    pub fn gcore(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let key = credential(headers, "apikey")?;
        matching(key, &self.gcore).cloned().ok_or(AuthError::Invalid)
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
        let cfg = AuthConfig {
            cf_bearer_tokens: vec!["t1".to_string(), "t2".to_string()],
            gcore_api_keys: vec!["t1".to_string()],
            gcore_keys: Vec::new(),
            ..AuthConfig::default()
        };
        let a = Authenticator::new(&cfg).unwrap();
        assert_eq!(a.cf(&HeaderMap::new()).await, Err(AuthError::Missing));
        assert_eq!(a.cf(&headers("bearer t2")).await.unwrap().name, "cf-token-2");
        assert!(a.cf(&headers("Bearer t1")).await.is_ok());
        assert_eq!(a.cf(&headers("bearer t3")).await, Err(AuthError::Invalid));
        assert_eq!(a.cf(&headers("bearer t1 t2")).await, Err(AuthError::Invalid));
        assert_eq!(a.cf(&headers("APIKey t1")).await, Err(AuthError::Invalid));
        let key = a.gcore(&headers("APIKey t1")).unwrap();
        assert!(!key.reserved_tags && key.projects.is_none());
        assert!(a.gcore(&headers("apikey t1")).is_ok());
        assert_eq!(a.gcore(&headers("APIKey")), Err(AuthError::Invalid));
    }
}
