//! Inbound credentials: CF bearer tokens (static ones from the config, or
//! UAA-issued JWTs) and Gcore API keys (each optionally bound to projects and
//! allowed the reserved tags). Secrets are compared in constant time
//! (`subtle`) and never reach a log line, an error body or a metric; a
//! principal carries a name for them instead.

pub mod login;
mod uaa;

use super::http::{CfScopes, Principal};
use crate::config::{AuthConfig, ConfigError, Scheme};
use http::HeaderMap;
use std::sync::Arc;
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
    login: Option<login::Login>,
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
    /// The credentials of `cfg`; the token issuer (when `[auth.login]` is
    /// on) keeps its key and lockout counts in `state` across reloads and
    /// names itself by `announced`.
    pub fn new(
        cfg: &AuthConfig,
        env: &crate::config::Env,
        state: Arc<login::State>,
        announced: login::Announced,
    ) -> Result<Self, ConfigError> {
        let (mut cf, mut gcore) = (Vec::new(), Vec::new());
        for c in cfg.credentials()? {
            let principal = Principal {
                id: c.id,
                name: c.name,
                projects: (!c.projects.is_empty()).then_some(c.projects),
                reserved_tags: c.reserved_tags,
                cf: match c.scheme {
                    Scheme::CfBearer => admin(c.read_only),
                    Scheme::GcoreKey => CfScopes::default(),
                },
                gcore_key: c.scheme == Scheme::GcoreKey,
            };
            let list = match c.scheme {
                Scheme::CfBearer => &mut cf,
                Scheme::GcoreKey => &mut gcore,
            };
            list.push(Credential {
                secret: c.secret,
                principal,
            });
        }
        let uaa = cfg
            .uaa
            .as_ref()
            .map(|u| uaa::Uaa::new(u, env))
            .transpose()
            .map_err(ConfigError::Invalid)?;
        let login = login::Login::new(cfg, state, announced)?;
        Ok(Authenticator { cf, gcore, uaa, login })
    }

    /// Only static credentials, no issuer (tests of the other parts).
    pub fn with_static(cfg: &AuthConfig) -> Result<Self, ConfigError> {
        let cfg = AuthConfig {
            login: crate::config::LoginConfig {
                enabled: false,
                ..cfg.login.clone()
            },
            ..cfg.clone()
        };
        Self::new(
            &cfg,
            &crate::config::Env::default(),
            Arc::default(),
            Arc::new(String::new),
        )
    }

    /// The gateway's own token issuer, when `[auth.login]` is on.
    pub fn login(&self) -> Option<&login::Login> {
        self.login.as_ref()
    }

    /// `Authorization: bearer <token>` (any case of the scheme, as the cf
    /// CLI sends it): a static token, else a UAA token when UAA is configured.
    pub async fn cf(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let token = credential(headers, "bearer")?;
        if let Some(p) = matching(token, &self.cf) {
            return Ok(p.clone());
        }
        let v = match (&self.login, &self.uaa) {
            (Some(login), _) if login.signed_here(token) => login.verify(token)?,
            (_, Some(uaa)) => uaa.verify(token).await?,
            _ => return Err(AuthError::Invalid),
        };
        Ok(Principal {
            id: v.id,
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
            gcore_api_keys: vec!["k1".to_string()],
            gcore_keys: Vec::new(),
            ..AuthConfig::default()
        };
        let a = Authenticator::with_static(&cfg).unwrap();
        assert_eq!(a.cf(&HeaderMap::new()).await, Err(AuthError::Missing));
        assert_eq!(a.cf(&headers("bearer t2")).await.unwrap().name, "cf-token-2");
        assert!(a.cf(&headers("Bearer t1")).await.is_ok());
        assert_eq!(a.cf(&headers("bearer t3")).await, Err(AuthError::Invalid));
        assert_eq!(a.cf(&headers("bearer t1 t2")).await, Err(AuthError::Invalid));
        assert_eq!(a.cf(&headers("APIKey t1")).await, Err(AuthError::Invalid));
        assert_eq!(a.gcore(&headers("APIKey t1")), Err(AuthError::Invalid));
        let key = a.gcore(&headers("APIKey k1")).unwrap();
        assert!(!key.reserved_tags && key.projects.is_none());
        assert!(a.gcore(&headers("apikey k1")).is_ok());
        assert_eq!(a.gcore(&headers("APIKey")), Err(AuthError::Invalid));
    }

    /// Records are bound to `id`: an unnamed key and a named one never
    /// share it, whatever their names say.
    #[tokio::test]
    async fn each_credential_has_its_own_identity() {
        let mut cfg = AuthConfig {
            cf_bearer_tokens: vec!["t1".into()],
            gcore_api_keys: vec!["k1".into()],
            ..AuthConfig::default()
        };
        cfg.gcore_keys = vec![crate::config::GcoreKeyEntry {
            name: "team".into(),
            secret: Some(crate::config::Redacted("k2".into())),
            secret_env: None,
            secret_file: None,
            projects: vec![2],
            reserved_tags: false,
        }];
        let a = Authenticator::with_static(&cfg).unwrap();
        let ids = [
            a.cf(&headers("bearer t1")).await.unwrap().id,
            a.gcore(&headers("APIKey k1")).unwrap().id,
            a.gcore(&headers("APIKey k2")).unwrap().id,
        ];
        assert_eq!(
            ids,
            [
                "static:cf_bearer_tokens[0]",
                "static:gcore_api_keys[0]",
                "static:gcore_keys:team"
            ]
        );
        // The development key is not accepted beside configured ones.
        assert_eq!(a.gcore(&headers("APIKey dev-api-key")), Err(AuthError::Invalid));
    }
}
