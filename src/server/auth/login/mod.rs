//! The gateway as its own token issuer, shaped like UAA (`[auth.login]`):
//! the users and clients of the config, RS256 tokens with UAA's claims,
//! verified by the same check as a UAA's tokens ([`super::uaa::check`]) and
//! refused once their user is removed or disabled by a reload. The HTTP
//! side (`/oauth/token`, `/token_keys`, `/userinfo`) is [`endpoint`].

pub mod endpoint;
pub mod lockout;

use super::uaa::{check, Verified};
use super::AuthError;
use crate::config::{AuthConfig, ConfigError, UserEntry};
use crate::crypto::signing::SigningKey;
use jsonwebtoken::{Algorithm, Header, Validation};
use lockout::{Lockout, Policy};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What outlives a config reload: the generated signing key (tokens stay
/// valid) and the failed-login counts (a reload does not unlock anyone).
#[derive(Default)]
pub struct State {
    generated: OnceLock<Arc<SigningKey>>,
    /// The key in use, and keys a reload rotated away from, each with the
    /// time its last token expires: they still verify, and `/token_keys`
    /// lists them, until then.
    keys: std::sync::Mutex<KeyRing>,
    lockout: Lockout,
    /// A durable or shared store: failed logins counted there (across
    /// replicas and restarts), not in the process.
    log: Option<Arc<dyn crate::store::LoginLog>>,
}

/// How long a token signed now may be used: the longer of the lifetimes.
fn l_ttl(cfg: &AuthConfig) -> i64 {
    cfg.login.access_ttl_s.max(cfg.login.refresh_ttl_s) as i64
}

impl State {
    /// Makes `key` the one in use; the one it replaces is kept for `ttl`
    /// seconds (its tokens' longest life). Answers the keys still kept.
    fn rotate(&self, key: &Arc<SigningKey>, ttl: i64) -> Vec<Arc<SigningKey>> {
        let now = lockout::unix_now();
        let mut keys = self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = keys.current.replace(key.clone()).filter(|old| old.kid != key.kid) {
            keys.retired.push((old, now + ttl));
        }
        keys.retired.retain(|(k, until)| *until > now && k.kid != key.kid);
        keys.retired.iter().map(|(k, _)| k.clone()).collect()
    }

    /// The issuer's state over `stores`: with a durable or shared store, its
    /// signing key is the store's (made by whichever replica came first),
    /// unless `[auth.login] signing_key_file` names one.
    pub async fn open(cfg: &AuthConfig, stores: &crate::store::Stores) -> Result<State, String> {
        let state = State {
            log: stores.logins.clone(),
            ..State::default()
        };
        if let (Some(log), true, None) = (&state.log, cfg.login.enabled, &cfg.login.signing_key_file) {
            let candidate = SigningKey::generate_pem()?;
            let pem = log
                .signing_key(&candidate)
                .await
                .map_err(|e| format!("cannot read the token signing key from the store: {e}"))?;
            let key = SigningKey::from_pem(pem.as_bytes()).map_err(|e| format!("the store's signing key: {e}"))?;
            let _ = state.generated.set(Arc::new(key));
        }
        Ok(state)
    }
}

/// The key in use and the retired ones, each with the time (unix seconds)
/// its last token expires.
#[derive(Default)]
struct KeyRing {
    current: Option<Arc<SigningKey>>,
    retired: Vec<(Arc<SigningKey>, i64)>,
}

/// The issuer's URL, read when needed: the announced URL is known only once
/// the listener is bound (port 0).
pub type Announced = Arc<dyn Fn() -> String + Send + Sync>;

/// An OAuth client: the cf CLI's public `cf`, or one of the config.
pub struct Client {
    /// `None`: a public client (empty secret).
    secret: Option<String>,
    /// `None`: any scope a user holds.
    scopes: Option<Vec<String>>,
    grants: Vec<String>,
}

impl Client {
    pub fn allows(&self, grant: &str) -> bool {
        self.grants.iter().any(|g| g == grant)
    }
}

pub struct Login {
    key: Arc<SigningKey>,
    /// Keys rotated away from whose tokens may still be valid.
    retired: Vec<Arc<SigningKey>>,
    announced: Announced,
    users: HashMap<String, UserEntry>,
    clients: HashMap<String, Client>,
    access_ttl: u64,
    refresh_ttl: u64,
    pub(crate) checker: crate::crypto::password::Checker,
    pub(crate) state: Arc<State>,
    pub(crate) policy: Policy,
}

/// A token answer's parts.
pub struct Issued {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: u64,
    pub scope: Vec<String>,
    pub jti: String,
}

fn now() -> u64 {
    chrono::Utc::now().timestamp().max(0) as u64
}

fn new_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A user's stable id: derived from the name, so a user keeps it across
/// restarts and replicas (and a re-created user gets the same one).
fn user_id(name: &str) -> String {
    crate::model::Uuid::derived(&format!("sgbridge-user:{name}"))
        .as_str()
        .to_string()
}

/// UAA's `aud`: the resource of each scope (the text before its last dot),
/// and the client.
fn audience(scopes: &[String], client: &str) -> Vec<String> {
    let mut aud: Vec<String> = scopes
        .iter()
        .filter_map(|s| s.rsplit_once('.').map(|(r, _)| r.to_string()))
        .collect();
    aud.push(client.to_string());
    aud.sort();
    aud.dedup();
    aud
}

impl Login {
    pub fn new(cfg: &AuthConfig, state: Arc<State>, announced: Announced) -> Result<Option<Login>, ConfigError> {
        if !cfg.login.enabled {
            return Ok(None);
        }
        let key = match &cfg.login.signing_key_file {
            Some(path) => Arc::new(SigningKey::load(path).map_err(ConfigError::Invalid)?),
            None => match state.generated.get() {
                Some(k) => k.clone(),
                None => {
                    let k = Arc::new(SigningKey::generate().map_err(ConfigError::Invalid)?);
                    state.generated.get_or_init(|| k).clone()
                }
            },
        };
        let retired = state.rotate(&key, l_ttl(cfg));
        let mut clients = HashMap::new();
        clients.insert(
            "cf".to_string(),
            Client {
                secret: None,
                scopes: None,
                grants: vec!["password".into(), "refresh_token".into()],
            },
        );
        for (c, secret) in cfg.live_clients()? {
            clients.insert(
                c.id.clone(),
                Client {
                    secret: Some(secret),
                    scopes: Some(c.scopes.clone()),
                    grants: c.grant_types.clone(),
                },
            );
        }
        let users = cfg.live_users()?.into_iter().map(|u| (u.name.clone(), u)).collect();
        let l = &cfg.login;
        Ok(Some(Login {
            key,
            retired,
            announced,
            users,
            clients,
            access_ttl: l.access_ttl_s,
            refresh_ttl: l.refresh_ttl_s,
            checker: crate::crypto::password::Checker::new(l.max_concurrent_hashes),
            state,
            policy: Policy {
                after: l.lockout_after_failures,
                window: Duration::from_secs(l.lockout_window_s),
                period: Duration::from_secs(l.lockout_period_s),
            },
        }))
    }

    /// `iss` of the tokens issued here (UAA: `{url}/oauth/token`).
    pub fn issuer(&self) -> String {
        format!("{}/oauth/token", (self.announced)())
    }

    /// The public keys tokens may be signed with: the one in use first.
    pub fn jwks(&self) -> Vec<&Value> {
        std::iter::once(&self.key.jwk)
            .chain(self.retired.iter().map(|k| &k.jwk))
            .collect()
    }

    pub fn jwk(&self) -> &Value {
        &self.key.jwk
    }

    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.get(id)
    }

    /// Whether `secret` is the client's (a public client takes the empty one).
    pub fn client_secret_matches(client: &Client, secret: &str) -> bool {
        use subtle::ConstantTimeEq;
        match &client.secret {
            None => secret.is_empty(),
            Some(s) => bool::from(s.as_bytes().ct_eq(secret.as_bytes())),
        }
    }

    /// The user, if it may log in now (present and not disabled).
    pub fn user(&self, name: &str) -> Option<&UserEntry> {
        self.users.get(name).filter(|u| !u.disabled)
    }

    /// The scopes a token for `user` through `client` carries: what was
    /// asked for (all, when nothing was), within what both hold.
    pub fn scopes(&self, held: &[String], client: &Client, asked: &[String]) -> Result<Vec<String>, String> {
        let allowed = |s: &String| held.contains(s) && client.scopes.as_ref().is_none_or(|c| c.contains(s));
        if let Some(bad) = asked.iter().find(|s| !allowed(s)) {
            return Err(format!("Invalid scope: {bad}"));
        }
        Ok(if asked.is_empty() {
            held.iter().filter(|s| allowed(s)).cloned().collect()
        } else {
            asked.to_vec()
        })
    }

    fn sign(&self, claims: &Value) -> Result<String, String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.key.kid.clone());
        header.jku = Some(format!("{}/token_keys", (self.announced)()));
        jsonwebtoken::encode(&header, claims, &self.key.encoding).map_err(|e| e.to_string())
    }

    /// An access token (and, for a user, a refresh token) with UAA's claims.
    pub fn issue(
        &self,
        user: Option<&UserEntry>,
        client_id: &str,
        scope: Vec<String>,
        grant: &str,
        refresh: Option<String>,
    ) -> Result<Issued, String> {
        let (iat, jti, iss) = (now(), new_jti(), self.issuer());
        let aud = audience(&scope, client_id);
        let mut claims = json!({
            "jti": jti, "scope": scope, "client_id": client_id, "cid": client_id, "azp": client_id,
            "grant_type": grant, "rev_sig": "sgbridge", "iat": iat, "exp": iat + self.access_ttl,
            "iss": iss, "zid": "uaa", "aud": aud,
        });
        match user {
            Some(u) => {
                let id = user_id(&u.name);
                for (k, v) in [
                    ("sub", json!(id)),
                    ("user_id", json!(id)),
                    ("origin", json!("uaa")),
                    ("user_name", json!(u.name)),
                    ("email", json!(u.name)),
                    ("auth_time", json!(iat)),
                ] {
                    claims[k] = v;
                }
            }
            None => {
                claims["sub"] = json!(client_id);
                claims["authorities"] = json!(scope);
            }
        }
        let access_token = self.sign(&claims)?;
        let refresh_token = match (user, refresh) {
            (Some(_), Some(kept)) => Some(kept),
            (Some(u), None) => Some(self.sign(&json!({
                "jti": format!("{}-r", new_jti()), "sub": user_id(&u.name), "iat": iat,
                "exp": iat + self.refresh_ttl, "cid": client_id, "client_id": client_id, "iss": iss,
                "zid": "uaa", "aud": aud, "granted_scopes": scope, "amr": ["pwd"], "auth_time": iat,
                "grant_type": grant, "user_name": u.name, "origin": "uaa", "user_id": user_id(&u.name),
            }))?),
            (None, _) => None,
        };
        Ok(Issued {
            access_token,
            refresh_token,
            expires_in: self.access_ttl.saturating_sub(1),
            scope,
            jti,
        })
    }

    fn validation(&self, audience: bool) -> Validation {
        let mut v = Validation::new(Algorithm::RS256);
        v.leeway = 5;
        v.set_issuer(&[self.issuer()]);
        if audience {
            v.set_audience(&["cloud_controller"]);
            v.set_required_spec_claims(&["exp", "iss", "aud"]);
        } else {
            v.validate_aud = false;
            v.set_required_spec_claims(&["exp", "iss"]);
        }
        v
    }

    /// The key named by a token's `kid`, if it is one of this issuer's.
    fn key_of(&self, token: &str) -> Option<&SigningKey> {
        let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
        std::iter::once(&self.key)
            .chain(self.retired.iter())
            .find(|k| k.kid == kid)
            .map(|k| k.as_ref())
    }

    /// Whether the token names one of this issuer's keys (else it is another's).
    pub fn signed_here(&self, token: &str) -> bool {
        self.key_of(token).is_some()
    }

    /// An access token issued here, checked as a UAA's would be, and
    /// refused once its user or client is gone or disabled.
    pub fn verify(&self, token: &str) -> Result<Verified, AuthError> {
        let key = self.key_of(token).ok_or(AuthError::Invalid)?;
        let v = check(token, std::slice::from_ref(&key.decoding), &self.validation(true))?;
        let live = match &v.user {
            Some((name, _)) => self.user(name).is_some(),
            None => self.clients.contains_key(&v.name),
        };
        live.then_some(v).ok_or(AuthError::Invalid)
    }

    /// A refresh token issued here: its claims, or UAA's complaint.
    pub fn refresh_claims(&self, token: &str) -> Result<Value, &'static str> {
        use jsonwebtoken::errors::ErrorKind;
        let key = self.key_of(token).ok_or("Could not verify token signature.")?;
        let data = jsonwebtoken::decode::<Value>(token, &key.decoding, &self.validation(false)).map_err(|e| match e
            .kind()
        {
            ErrorKind::ExpiredSignature => "The token expired, was revoked, or the token ID is incorrect.",
            _ => "Could not verify token signature.",
        })?;
        let claims = data.claims;
        if !claims["jti"].as_str().is_some_and(|j| j.ends_with("-r")) {
            return Err("Invalid refresh token.");
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_id_is_stable_and_the_audience_is_the_scopes_resources() {
        assert_eq!(user_id("alice"), user_id("alice"));
        assert_ne!(user_id("alice"), user_id("bob"));
        let aud = audience(&["cloud_controller.admin".into(), "openid".into()], "cf");
        assert_eq!(aud, ["cf", "cloud_controller"]);
    }
}
