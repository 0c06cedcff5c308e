//! `[auth]` resolved into the credentials the gateway accepts, once, for
//! both the validation (`check-config`, `serve`, a reload) and the
//! authenticator: each secret read from where it lives, checked, and given
//! the identity records are bound to.
//!
//! Refused here: a secret with surrounding white space (a file's one
//! trailing newline aside), a secret file anyone may write, two credentials
//! with one secret (the last one used to win, so a wide key silently
//! overrode a narrow one), a named credential that takes an unnamed one's
//! name. The development credentials stand only while nothing else is
//! configured.

use super::{is_dev_secret, AuthConfig, ClientEntry, ConfigError, Redacted, UserEntry};
use std::path::{Path, PathBuf};

/// Which scheme a credential answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: bearer …`
    CfBearer,
    /// `Authorization: APIKey …`
    GcoreKey,
}

/// One accepted credential. `Debug` never shows the secret.
#[derive(Clone)]
pub struct Credential {
    pub scheme: Scheme,
    /// Where it is configured, for messages (`auth.gcore_keys[0] (ci)`).
    pub label: String,
    /// Its identity ([`crate::server::http::Principal::id`]).
    pub id: String,
    /// Its name in logs and audit.
    pub name: String,
    pub secret: String,
    /// CF tokens: reads only.
    pub read_only: bool,
    /// Gcore keys: the projects it may touch (empty: all).
    pub projects: Vec<u64>,
    /// Gcore keys: may write the reserved CF-state tags.
    pub reserved_tags: bool,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("label", &self.label)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn invalid(text: String) -> ConfigError {
    ConfigError::Invalid(text)
}

/// A secret from exactly one of `secret` (the file itself), `secret_env`
/// or `secret_file`.
pub fn resolve_secret(
    what: &str,
    secret: &Option<Redacted>,
    env: &Option<String>,
    file: &Option<PathBuf>,
) -> Result<String, ConfigError> {
    let text = match (secret, env, file) {
        (Some(v), None, None) => v.0.clone(),
        (None, Some(var), None) => {
            std::env::var(var).map_err(|_| invalid(format!("{what}: the environment variable {var} is not set")))?
        }
        (None, None, Some(path)) => read_secret_file(what, path)?,
        _ => {
            return Err(invalid(format!(
                "{what}: give exactly one of secret, secret_env or secret_file"
            )))
        }
    };
    checked(what, text)
}

fn read_secret_file(what: &str, path: &Path) -> Result<String, ConfigError> {
    let meta = std::fs::metadata(path).map_err(|e| invalid(format!("{what}: cannot read {}: {e}", path.display())))?;
    if world_writable(&meta) {
        return Err(invalid(format!(
            "{what}: {} may be written by every user of this machine; make it writable by its owner only (chmod o-w)",
            path.display()
        )));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| invalid(format!("{what}: cannot read {}: {e}", path.display())))?;
    // One line ending, as `echo` and editors write it, is not the secret's.
    let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t));
    Ok(text.unwrap_or_default().to_string())
}

#[cfg(unix)]
fn world_writable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o002 != 0
}

#[cfg(not(unix))]
fn world_writable(_: &std::fs::Metadata) -> bool {
    false
}

/// A secret as configured: not empty, no white space around it (a pasted
/// space would otherwise be silently trimmed on one side of a comparison).
fn checked(what: &str, text: String) -> Result<String, ConfigError> {
    if text.trim().is_empty() {
        return Err(invalid(format!("{what}: the secret is empty")));
    }
    if text.trim() != text {
        return Err(invalid(format!(
            "{what}: the secret has white space before or after it; remove it"
        )));
    }
    Ok(text)
}

impl AuthConfig {
    /// Every credential the gateway accepts, checked. The development
    /// credentials are dropped when any other credential (or a UAA) is
    /// configured: your own replace them.
    pub fn credentials(&self) -> Result<Vec<Credential>, ConfigError> {
        let plain = |scheme, list: &str, name: &str, i: usize, secret: &String| {
            let label = format!("auth.{list}[{i}]");
            Ok::<_, ConfigError>(Credential {
                scheme,
                secret: checked(&label, secret.clone())?,
                id: format!("static:{list}[{i}]"),
                name: format!("{name}-{}", i + 1),
                label,
                read_only: false,
                projects: Vec::new(),
                reserved_tags: false,
            })
        };
        let named =
            |scheme, list: &str, name: &str, i: usize, resolve: &dyn Fn(&str) -> Result<String, ConfigError>| {
                let label = format!("auth.{list}[{i}] ({name})");
                Ok::<_, ConfigError>(Credential {
                    scheme,
                    secret: resolve(&label)?,
                    id: format!("static:{list}:{name}"),
                    name: name.to_string(),
                    label,
                    read_only: false,
                    projects: Vec::new(),
                    reserved_tags: false,
                })
            };
        let mut all = Vec::new();
        for (i, t) in self.cf_bearer_tokens.iter().enumerate() {
            all.push(plain(Scheme::CfBearer, "cf_bearer_tokens", "cf-token", i, t)?);
        }
        for (i, t) in self.cf_tokens.iter().enumerate() {
            let c = named(Scheme::CfBearer, "cf_tokens", &t.name, i, &|what| t.resolve(what))?;
            all.push(Credential {
                read_only: t.read_only,
                ..c
            });
        }
        for (i, k) in self.gcore_api_keys.iter().enumerate() {
            all.push(plain(Scheme::GcoreKey, "gcore_api_keys", "gcore-key", i, k)?);
        }
        for (i, k) in self.gcore_keys.iter().enumerate() {
            let c = named(Scheme::GcoreKey, "gcore_keys", &k.name, i, &|what| k.resolve(what))?;
            all.push(Credential {
                projects: k.projects.clone(),
                reserved_tags: k.reserved_tags,
                ..c
            });
        }
        distinct(&all)?;
        let own = self.uaa.is_some()
            || !self.clients.is_empty()
            || all.iter().any(|c| !is_dev_secret(&c.secret))
            || self.users.iter().any(|u| !is_dev_secret(&u.password_hash));
        if own {
            all.retain(|c| !is_dev_secret(&c.secret));
        }
        Ok(all)
    }

    /// The users who may log in, checked: the development user only while
    /// no other credential is configured.
    pub fn live_users(&self) -> Result<Vec<UserEntry>, ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            let what = format!("auth.users[{i}] ({})", u.name);
            if u.name.trim().is_empty() || u.name.trim() != u.name || !seen.insert(u.name.as_str()) {
                return Err(invalid(format!(
                    "{what}: names must be present, unique and without surrounding white space"
                )));
            }
            crate::crypto::password::check_phc(&u.password_hash)
                .map_err(|e| invalid(format!("{what}: password_hash {e}")))?;
        }
        let dev_only = self.credentials()?.iter().all(|c| is_dev_secret(&c.secret))
            && self.uaa.is_none()
            && self.clients.is_empty()
            && self.users.iter().all(|u| is_dev_secret(&u.password_hash));
        Ok(self
            .users
            .iter()
            .filter(|u| dev_only || !is_dev_secret(&u.password_hash))
            .cloned()
            .collect())
    }

    /// The OAuth clients beside the built-in `cf`, with their secrets.
    pub fn live_clients(&self) -> Result<Vec<(ClientEntry, String)>, ConfigError> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (i, c) in self.clients.iter().enumerate() {
            let what = format!("auth.clients[{i}] ({})", c.id);
            if c.id.trim().is_empty() || c.id == "cf" || !seen.insert(c.id.as_str()) {
                return Err(invalid(format!(
                    "{what}: ids must be present and unique, and `cf` is the cf CLI's built-in client"
                )));
            }
            if let Some(g) = c
                .grant_types
                .iter()
                .find(|g| !matches!(g.as_str(), "password" | "refresh_token" | "client_credentials"))
            {
                return Err(invalid(format!(
                    "{what}: grant type {g:?} is not one of password, refresh_token, client_credentials"
                )));
            }
            out.push((c.clone(), c.resolve(&what)?));
        }
        Ok(out)
    }
}

/// No two credentials share a secret or a name within their scheme.
fn distinct(all: &[Credential]) -> Result<(), ConfigError> {
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            if a.secret == b.secret {
                return Err(invalid(format!(
                    "{} and {} hold the same secret; give each credential its own",
                    a.label, b.label
                )));
            }
            if a.scheme == b.scheme && a.name == b.name {
                return Err(invalid(format!(
                    "{} and {} have the same name {:?}; names tell credentials apart in logs and audit records",
                    a.label, b.label, a.name
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CfTokenEntry, GcoreKeyEntry};

    fn key(name: &str, secret: &str) -> GcoreKeyEntry {
        GcoreKeyEntry {
            name: name.into(),
            secret: Some(Redacted(secret.into())),
            secret_env: None,
            secret_file: None,
            projects: vec![2],
            reserved_tags: false,
        }
    }

    fn err(a: &AuthConfig) -> String {
        a.credentials().unwrap_err().to_string()
    }

    #[test]
    fn own_credentials_replace_the_development_ones() {
        let defaults = AuthConfig::default().credentials().unwrap();
        assert_eq!(defaults.len(), 2, "{defaults:?}");
        let mut a = AuthConfig::default();
        a.cf_tokens.push(CfTokenEntry {
            name: "ci".into(),
            secret: Some(Redacted("a-real-token".into())),
            secret_env: None,
            secret_file: None,
            read_only: false,
        });
        let c = a.credentials().unwrap();
        assert_eq!(c.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["ci"]);
    }

    #[test]
    fn a_shared_secret_a_taken_name_and_white_space_are_refused() {
        let mut a = AuthConfig {
            gcore_api_keys: vec!["wide-key".into()],
            ..AuthConfig::default()
        };
        a.gcore_keys = vec![key("narrow", "wide-key")];
        let e = err(&a);
        assert!(
            e.contains("auth.gcore_api_keys[0] and auth.gcore_keys[0] (narrow) hold the same secret"),
            "{e}"
        );
        assert!(!e.contains("wide-key"), "the secret is never shown: {e}");
        a.gcore_keys = vec![key("gcore-key-1", "other")];
        assert!(err(&a).contains("the same name \"gcore-key-1\""), "{}", err(&a));
        a.gcore_keys = vec![key("k", " padded")];
        assert!(err(&a).contains("white space"), "{}", err(&a));
        a.gcore_keys.clear();
        a.gcore_api_keys = vec!["tab\t".into()];
        assert!(err(&a).contains("white space"));
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_anyone_may_write_is_refused_and_one_newline_is_not_the_secret() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sgbridge-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, "from-a-file\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let file = Some(path.clone());
        assert_eq!(resolve_secret("k", &None, &None, &file).unwrap(), "from-a-file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = resolve_secret("k", &None, &None, &file).unwrap_err().to_string();
        assert!(e.contains("may be written by every user"), "{e}");
        std::fs::write(&path, "two\n\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(resolve_secret("k", &None, &None, &file).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
