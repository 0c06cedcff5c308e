//! The gateway's configuration: a TOML file, every key optional, defaults
//! equal to `config/sgbridge.toml` (embedded backend on 127.0.0.1:8080).
//!
//! Secrets are never read from the file: the Gcore API key comes from the
//! environment variable the file names (`backend.gcore.api_key_env`).

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// The development credentials of the default config; accepted on loopback only.
pub const DEV_CF_TOKEN: &str = "dev-admin-token";
pub const DEV_GCORE_KEY: &str = "dev-api-key";

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub cf: CfConfig,
    pub gcore: GcoreConfig,
    pub wait: WaitConfig,
    pub backend: BackendConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Largest request body; CF allows 16 MiB of rules, so the default is 20 MiB.
    pub max_body_bytes: usize,
    /// Upper bound on any one request, waiting included.
    pub request_timeout_s: u64,
    /// How long a request body may take to arrive (408 after).
    pub body_timeout_s: u64,
    /// The URL the gateway announces (`/v2/info`, `/login`, v3 links); empty:
    /// `http://` and the listen address. Never taken from a request's `Host`.
    pub external_url: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 20 << 20,
            request_timeout_s: 120,
            body_timeout_s: 30,
            external_url: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Accepted CF bearer tokens (any string, a JWT included).
    pub cf_bearer_tokens: Vec<String>,
    /// Accepted Gcore API keys.
    pub gcore_api_keys: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            cf_bearer_tokens: vec![DEV_CF_TOKEN.to_string()],
            gcore_api_keys: vec![DEV_GCORE_KEY.to_string()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CfConfig {
    /// CC's `security_groups.enable_comma_delimited_destinations`.
    pub enable_comma_delimited_destinations: bool,
    /// CC's `enable_ipv6`.
    pub enable_ipv6: bool,
    /// Where CF groups live on a Gcore-semantics backend (embedded backend;
    /// the Gcore backend uses `backend.gcore.project_id`/`region_id`).
    pub project_id: u64,
    pub region_id: u64,
    /// The UAA that issues callers' tokens, announced as `authorization_endpoint`
    /// in `/v2/info`; empty: sgbridge announces itself and answers `/login`.
    pub uaa_url: String,
    /// The v2 API version announced in `/v2/info` (the cf CLI v6 wants >= 2.128.0).
    pub api_version: String,
    /// Orgs and spaces the gateway answers look-ups for (`cf bind-security-group`,
    /// `cf security-groups`); sgbridge is not a Cloud Controller and knows no others.
    pub orgs: Vec<OrgEntry>,
    pub spaces: Vec<SpaceEntry>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OrgEntry {
    pub guid: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SpaceEntry {
    pub guid: String,
    pub name: String,
    pub org_guid: String,
}

impl Default for CfConfig {
    fn default() -> Self {
        CfConfig {
            enable_comma_delimited_destinations: false,
            enable_ipv6: false,
            project_id: 1,
            region_id: 1,
            uaa_url: String::new(),
            api_version: "2.293.0".into(),
            orgs: Vec::new(),
            spaces: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Port25 {
    #[default]
    Narrow,
    Reject,
    Allow,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcoreConfig {
    /// CF rules covering egress TCP/UDP port 25: narrow (with `X-Cf-Warnings`), reject, allow.
    pub port25: Port25,
    /// Whether the Gcore front end and the embedded backend refuse egress port 25, as Gcore does.
    pub smtp_blocked: bool,
    /// Most rules one group may hold (Gcore's PATCH takes at most 250).
    pub max_rules: usize,
}

impl Default for GcoreConfig {
    fn default() -> Self {
        GcoreConfig {
            port25: Port25::Narrow,
            smtp_blocked: true,
            max_rules: 250,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WaitConfig {
    /// Between task polls while anyone waits (one poller per scope serves
    /// every waiter); `first_poll_ms` is accepted as its old name.
    #[serde(alias = "first_poll_ms")]
    pub poll_ms: u64,
    /// Longest pause between polls after failed polls.
    pub max_poll_ms: u64,
    /// Give up waiting on tasks (and 409 retries) after this long.
    pub deadline_s: u64,
}

impl Default for WaitConfig {
    fn default() -> Self {
        WaitConfig {
            poll_ms: 100,
            max_poll_ms: 2000,
            deadline_s: 60,
        }
    }
}

impl WaitConfig {
    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_ms)
    }
    pub fn max_poll(&self) -> Duration {
        Duration::from_millis(self.max_poll_ms)
    }
    pub fn deadline(&self) -> Duration {
        Duration::from_secs(self.deadline_s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    #[default]
    Embedded,
    Gcore,
    Cf,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BackendConfig {
    pub kind: BackendKind,
    pub embedded: EmbeddedConfig,
    pub gcore: GcoreBackendConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// How long a task stays RUNNING before it applies its change.
    pub task_delay_ms: u64,
    /// Region name shown in group bodies.
    pub region_name: String,
    /// How long finished tasks stay readable.
    pub task_ttl_s: u64,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            task_delay_ms: 300,
            region_name: "Embedded-1".into(),
            task_ttl_s: 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcoreBackendConfig {
    pub base_url: String,
    pub project_id: u64,
    pub region_id: u64,
    /// Name of the environment variable holding the API key.
    pub api_key_env: String,
    pub request_timeout_s: u64,
    /// Most requests in flight to Gcore at once; more wait for a connection.
    pub max_connections: usize,
}

impl Default for GcoreBackendConfig {
    fn default() -> Self {
        GcoreBackendConfig {
            base_url: "https://api.gcore.com".into(),
            project_id: 0,
            region_id: 0,
            api_key_env: "GCORE_API_KEY".into(),
            request_timeout_s: 30,
            max_connections: 64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that need more than one field, or the environment.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let dev = self.auth.cf_bearer_tokens.iter().any(|t| t == DEV_CF_TOKEN)
            || self.auth.gcore_api_keys.iter().any(|k| k == DEV_GCORE_KEY);
        if dev && !self.server.listen.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "server.listen = {} is not a loopback address, but auth still accepts the development credentials; set auth.cf_bearer_tokens and auth.gcore_api_keys",
                self.server.listen
            )));
        }
        if self.wait.poll_ms == 0 || self.wait.max_poll_ms < self.wait.poll_ms {
            return Err(ConfigError::Invalid(
                "wait.poll_ms must be > 0 and <= wait.max_poll_ms".into(),
            ));
        }
        let uuid = |g: &str| crate::model::Uuid::parse(g).is_some();
        if let Some(o) = self.cf.orgs.iter().find(|o| !uuid(&o.guid)) {
            return Err(ConfigError::Invalid(format!(
                "cf.orgs: guid {:?} is not a UUID",
                o.guid
            )));
        }
        for s in &self.cf.spaces {
            if !uuid(&s.guid) {
                return Err(ConfigError::Invalid(format!(
                    "cf.spaces: guid {:?} is not a UUID",
                    s.guid
                )));
            }
            if !self.cf.orgs.iter().any(|o| o.guid.eq_ignore_ascii_case(&s.org_guid)) {
                return Err(ConfigError::Invalid(format!(
                    "cf.spaces: space {:?} names org_guid {:?}, which is not in cf.orgs",
                    s.name, s.org_guid
                )));
            }
        }
        if self.server.max_body_bytes == 0 {
            return Err(ConfigError::Invalid("server.max_body_bytes must be > 0".into()));
        }
        match self.backend.kind {
            BackendKind::Embedded => Ok(()),
            BackendKind::Cf => Err(ConfigError::Invalid(
                "backend.kind = \"cf\" (a Cloud Controller backend) is not available in this version; use \"embedded\" or \"gcore\"".into(),
            )),
            BackendKind::Gcore => {
                let g = &self.backend.gcore;
                if !(g.base_url.starts_with("https://") || g.base_url.starts_with("http://")) {
                    return Err(ConfigError::Invalid(format!(
                        "backend.gcore.base_url must start with https:// or http://, got {:?}",
                        g.base_url
                    )));
                }
                if g.project_id == 0 || g.region_id == 0 {
                    return Err(ConfigError::Invalid(
                        "backend.gcore.project_id and backend.gcore.region_id must be set".into(),
                    ));
                }
                match std::env::var(&g.api_key_env) {
                    Ok(v) if !v.trim().is_empty() => Ok(()),
                    _ => Err(ConfigError::Invalid(format!(
                        "the Gcore API key is read from the environment variable {}, which is not set",
                        g.api_key_env
                    ))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_file() {
        let text = include_str!("../config/sgbridge.toml");
        let file: Config = toml::from_str(text).unwrap();
        let defaults = Config::default();
        assert_eq!(format!("{file:?}"), format!("{defaults:?}"));
        defaults.validate().unwrap();
    }

    #[test]
    fn dev_credentials_need_loopback() {
        let mut c = Config::default();
        c.server.listen = "0.0.0.0:8080".parse().unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("development credentials"));
        c.auth.cf_bearer_tokens = vec!["real".into()];
        c.auth.gcore_api_keys = vec!["real".into()];
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_missing_secrets_are_errors() {
        assert!(toml::from_str::<Config>("[server]\nlisten_addr = \"x\"").is_err());
        let c: Config = toml::from_str(
            "[backend]\nkind = \"gcore\"\n[backend.gcore]\nproject_id = 1\nregion_id = 2\napi_key_env = \"SGBRIDGE_TEST_UNSET_KEY\"",
        )
        .unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("SGBRIDGE_TEST_UNSET_KEY"));
    }
}
