//! The gateway's configuration: a TOML file, every key optional, defaults
//! equal to `config/sgbridge.toml` (embedded backend on 127.0.0.1:8080).
//!
//! Secrets may come from the environment or from files instead of the file
//! itself (the Gcore backend's API key always does); `Debug` never shows one.

mod credentials;
mod env;
pub mod faults;
pub mod pg_url;
mod validate;

pub use credentials::{resolve_secret, Credential, Scheme};
pub use env::Env;

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The development credentials of the default config; accepted on loopback
/// only, and only while no other credential is configured: your own
/// credentials (named or plain, or a UAA) replace them.
pub const DEV_CF_TOKEN: &str = "dev-admin-token";
pub const DEV_GCORE_KEY: &str = "dev-api-key";

/// Tokens earlier versions of the README published (a cf CLI v6 and a v8
/// `config.json` recipe): known to everyone, so treated as development
/// credentials wherever they are still configured.
const PUBLISHED_TOKENS: [&str; 2] = [
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX25hbWUiOiJhZG1pbiIsInVzZXJfaWQiOiJ1LTEiLCJvcmlnaW4iOiJ1YWEiLCJleHAiOjQxMDI0NDQ4MDB9.c2ln",
    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ1c2VyX25hbWUiOiJhZG1pbiIsInVzZXJfaWQiOiJhZG1pbi1ndWlkIiwib3JpZ2luIjoidWFhIiwiY2xpZW50X2lkIjoiY2YiLCJleHAiOjQxMDI0NDQ4MDAsInNjb3BlIjpbImNsb3VkX2NvbnRyb2xsZXIuYWRtaW4iXX0.",
];

/// Whether `secret` is a development credential: one the repository's own
/// docs and examples publish. These work on loopback only, and only while no
/// other credential is configured.
pub fn is_dev_secret(secret: &str) -> bool {
    secret == DEV_CF_TOKEN || secret == DEV_GCORE_KEY || secret == DEV_USER_HASH || PUBLISHED_TOKENS.contains(&secret)
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub cf: CfConfig,
    pub gcore: GcoreConfig,
    pub wait: WaitConfig,
    pub backend: BackendConfig,
    pub log: LogConfig,
    pub audit: AuditConfig,
    pub idempotency: IdempotencyConfig,
    pub store: StoreConfig,
    /// Where `store.url_env`, `backend.*` `_env` settings and the outbound
    /// proxy variables are read (the process environment unless built in
    /// code). Credentials' `secret_env` always reads the process's.
    #[serde(skip)]
    pub env: Env,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Connections the kernel holds for the gateway before it accepts them
    /// (the kernel caps it at `net.core.somaxconn`). A burst larger than this
    /// has its connects dropped and retried by the clients' TCP a second later.
    pub listen_backlog: u32,
    /// Largest request body; CF allows 16 MiB of rules, so the default is 20 MiB.
    pub max_body_bytes: usize,
    /// Upper bound on any one request, waiting included.
    pub request_timeout_s: u64,
    /// How long a request body may take to arrive (408 after).
    pub body_timeout_s: u64,
    /// The URL the gateway announces (`/v2/info`, `/login`, v3 links); empty:
    /// `http://` and the listen address. Never taken from a request's `Host`.
    pub external_url: String,
    /// A response the client does not read for this long is cut off.
    pub write_timeout_s: u64,
    /// How long a client may take to send a request's headers (408 after).
    pub header_timeout_s: u64,
    /// Serve HTTPS with this certificate and key (PEM).
    pub tls: Option<TlsConfig>,
    /// Serve `/healthz`, `/readyz` and `/metrics` on this address instead
    /// of the API's (plain HTTP; keep it off the public network), on a
    /// thread of their own.
    pub admin_listen: Option<SocketAddr>,
    /// After SIGTERM: `/readyz` answers 503 at once, new connections are
    /// still taken for this long (so load balancers notice), then refused.
    pub shutdown_delay_s: u64,
    /// Then in-flight requests, waits included, get this long to finish;
    /// whatever is still open is answered in its dialect. 0: the wait
    /// deadline plus 10 s.
    pub shutdown_grace_s: u64,
    /// How often the background readiness probe asks the backend.
    pub readiness_interval_s: u64,
    /// How often the config file and the secret files it names are read
    /// for changes, which reload as SIGHUP does (0: only on SIGHUP). Read
    /// at start.
    pub watch_config_s: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            listen_backlog: 4096,
            max_body_bytes: 20 << 20,
            request_timeout_s: 120,
            body_timeout_s: 30,
            external_url: String::new(),
            write_timeout_s: 30,
            header_timeout_s: 30,
            tls: None,
            admin_listen: None,
            shutdown_delay_s: 5,
            shutdown_grace_s: 0,
            readiness_interval_s: 5,
            watch_config_s: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Accepted CF bearer tokens (any string, a JWT included), with admin rights.
    pub cf_bearer_tokens: Vec<String>,
    /// Named CF tokens, their secret from the file, an environment variable or a file.
    pub cf_tokens: Vec<CfTokenEntry>,
    /// Accepted Gcore API keys: every project, no reserved tags.
    pub gcore_api_keys: Vec<String>,
    /// Named Gcore keys, optionally bound to projects and allowed reserved tags.
    pub gcore_keys: Vec<GcoreKeyEntry>,
    /// Verify CF callers' UAA-issued JWTs.
    pub uaa: Option<UaaConfig>,
    /// The gateway as its own token issuer, shaped like UAA (`cf login`).
    pub login: LoginConfig,
    /// Who may log in (`[auth.login]`); passwords as argon2id PHC strings.
    pub users: Vec<UserEntry>,
    /// OAuth clients beside the cf CLI's built-in public client `cf`.
    pub clients: Vec<ClientEntry>,
}

/// `[auth.login]`: `POST /oauth/token` and the documents around it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    pub enabled: bool,
    /// Lifetime of an access token, in seconds.
    pub access_ttl_s: u64,
    /// Lifetime of a refresh token, in seconds.
    pub refresh_ttl_s: u64,
    /// The RSA signing key (PEM, PKCS#1 or PKCS#8); none: one is generated
    /// at start (tokens then last until the process restarts).
    pub signing_key_file: Option<PathBuf>,
    /// Password checks (argon2) running at once; more wait, off the API's workers.
    pub max_concurrent_hashes: usize,
    /// UAA's lockout: this many failed logins within `lockout_window_s`
    /// lock the account for `lockout_period_s`.
    pub lockout_after_failures: u32,
    pub lockout_window_s: u64,
    pub lockout_period_s: u64,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            // UAA's `cf` client in cf-deployment; UAA's lockout defaults
            // (CommonLoginPolicy: 5 failures within 1200 s lock for 300 s).
            enabled: true,
            access_ttl_s: 1_200,
            refresh_ttl_s: 2_592_000,
            signing_key_file: None,
            max_concurrent_hashes: 2,
            lockout_after_failures: 5,
            lockout_window_s: 1_200,
            lockout_period_s: 300,
        }
    }
}

/// A user who may log in with a password.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub name: String,
    /// An argon2id PHC string (`sgbridge hash-password`); plain passwords are refused.
    pub password_hash: String,
    /// The scopes the user's tokens may carry (`cloud_controller.admin`, …).
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
}

/// An OAuth client with a secret (the `cf` client is built in).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    pub id: String,
    pub secret: Option<Redacted>,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// Scopes its client-credentials tokens carry, and the most a user's
    /// token obtained through it may carry.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Of `password`, `refresh_token`, `client_credentials`.
    #[serde(default = "default_grants")]
    pub grant_types: Vec<String>,
}

fn default_grants() -> Vec<String> {
    vec!["client_credentials".into()]
}

impl ClientEntry {
    pub fn resolve(&self, what: &str) -> Result<String, ConfigError> {
        resolve_secret(what, &self.secret, &self.secret_env, &self.secret_file)
    }
}

/// The development user's password hash (`admin` / `admin`), shipped in the
/// default config: accepted on loopback only, like the development tokens,
/// and only while no other credential is configured.
pub const DEV_USER_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$V7wo7W5mSHyc7gMlThNgxw$rLG0LpBVjTUKjdlnErITvs4eHemZzLGyA+NnmX8WYmI";

/// The scopes of an administrator's token.
pub fn admin_scopes() -> Vec<String> {
    [
        "cloud_controller.admin",
        "cloud_controller.read",
        "cloud_controller.write",
        "openid",
    ]
    .map(String::from)
    .to_vec()
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            cf_bearer_tokens: vec![DEV_CF_TOKEN.to_string()],
            cf_tokens: Vec::new(),
            gcore_api_keys: Vec::new(),
            gcore_keys: vec![GcoreKeyEntry {
                name: "dev".into(),
                secret: Some(Redacted(DEV_GCORE_KEY.into())),
                secret_env: None,
                secret_file: None,
                projects: Vec::new(),
                reserved_tags: true,
            }],
            uaa: None,
            login: LoginConfig::default(),
            users: vec![UserEntry {
                name: "admin".into(),
                password_hash: DEV_USER_HASH.into(),
                scopes: admin_scopes(),
                disabled: false,
            }],
            clients: Vec::new(),
        }
    }
}

/// A secret written in the config file itself; `Debug` never shows it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CfTokenEntry {
    /// Logged and audited instead of the token.
    pub name: String,
    pub secret: Option<Redacted>,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// Reads only (as `cloud_controller.admin_read_only`).
    #[serde(default)]
    pub read_only: bool,
}

impl CfTokenEntry {
    pub fn resolve(&self, what: &str) -> Result<String, ConfigError> {
        resolve_secret(what, &self.secret, &self.secret_env, &self.secret_file)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GcoreKeyEntry {
    /// Logged and audited instead of the key.
    pub name: String,
    pub secret: Option<Redacted>,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// The projects the key may touch; empty: every project.
    #[serde(default)]
    pub projects: Vec<u64>,
    /// May write the reserved `sgbridge.cf.*` tags that hold CF state
    /// (defaults, space bindings): a gateway in front of this one needs it.
    #[serde(default)]
    pub reserved_tags: bool,
}

impl GcoreKeyEntry {
    pub fn resolve(&self, what: &str) -> Result<String, ConfigError> {
        resolve_secret(what, &self.secret, &self.secret_env, &self.secret_file)
    }
}

/// CF callers log in at this UAA; their JWTs are verified with its keys.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UaaConfig {
    /// The UAA's base URL; its keys are read from `{url}/token_keys`.
    pub url: String,
    /// The tokens' `iss`; empty: `{url}/oauth/token`.
    #[serde(default)]
    pub issuer: String,
    /// An `aud` the tokens must carry.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_s: u64,
    /// Extra CA certificates (PEM) to trust for the UAA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The fewest seconds between key fetches prompted by a token naming an
    /// unknown key (or by a failed fetch).
    #[serde(default = "default_refetch")]
    pub refetch_s: u64,
}

fn default_refetch() -> u64 {
    10
}

fn default_audience() -> String {
    "cloud_controller".into()
}

fn default_leeway() -> u64 {
    5
}

impl UaaConfig {
    pub fn issuer(&self) -> String {
        if self.issuer.is_empty() {
            format!("{}/oauth/token", self.url.trim_end_matches('/'))
        } else {
            self.issuer.clone()
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable; colour only on a terminal.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter (`info`, `sgbridge=debug,info`); `RUST_LOG` wins.
    pub level: String,
    /// Log lines waiting for their writer thread; past it new lines are
    /// dropped and counted (`sgbridge_log_lines_dropped_total`), so a slow
    /// stderr never slows a request. Read at start only.
    pub queue_lines: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
            queue_lines: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuditTarget {
    /// No audit records.
    Off,
    /// JSON lines on standard output (the logs go to standard error).
    #[default]
    Stdout,
    /// JSON lines appended to `audit.path`.
    File,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub target: AuditTarget,
    pub path: Option<PathBuf>,
    /// How long the store keeps audit events (`GET /v3/audit_events`):
    /// older ones are swept. The memory store also keeps only the newest
    /// 10,000.
    pub retention_days: u32,
    /// Most audit events a durable store keeps: past it the oldest go, so
    /// the table's size has a bound whatever the write rate (~1.2 KB an
    /// event with its indexes).
    pub max_events: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            target: AuditTarget::default(),
            path: None,
            // The Cloud Controller's default for its events.
            retention_days: 31,
            max_events: 1_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// One process, nothing kept across restarts.
    #[default]
    Memory,
    /// One process, durable (a file).
    Sqlite,
    /// Several replicas sharing one PostgreSQL database.
    Postgres,
}

/// What sgbridge itself keeps: locks, name reservations, idempotency
/// records, the tasks it runs, and the embedded backend's groups.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// The SQLite file (`kind = "sqlite"`).
    pub path: Option<PathBuf>,
    /// The environment variable holding the PostgreSQL URL (never the file).
    pub url_env: String,
    /// Most connections to PostgreSQL from this process.
    pub max_connections: usize,
    /// Upper bound on one statement (PostgreSQL `statement_timeout`), and on
    /// waiting for a pooled connection.
    pub statement_timeout_ms: u64,
    /// How long a replica's write lock outlives the replica (it is renewed
    /// while held; a replica that dies releases its locks after this long).
    pub lock_lease_s: u64,
    /// How long PostgreSQL keeps a deleted group's tombstone for other
    /// replicas to see. A replica that looks later than this reads every
    /// group again instead, so this bounds the table, not correctness.
    pub tombstone_keep_s: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Memory,
            path: None,
            url_env: "SGBRIDGE_STORE_URL".into(),
            max_connections: 16,
            statement_timeout_ms: 5_000,
            lock_lease_s: 10,
            tombstone_keep_s: 3_600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencyConfig {
    /// How long a completed request's answer is replayed for its key.
    pub ttl_s: u64,
    /// Most answers kept at once, in all (past it, the caller holding the
    /// most gives up its oldest).
    pub max_keys: u64,
    /// Most bytes of answers kept at once, in all.
    pub max_bytes: u64,
    /// Most answers one credential has kept (past it, its own oldest go).
    pub max_keys_per_caller: u64,
    /// Most bytes of answers one credential has kept.
    pub max_bytes_per_caller: u64,
    /// A larger answer is not kept: a replay of its key answers 409 saying
    /// so (the request is never run twice).
    pub max_answer_bytes: u64,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            ttl_s: 86_400,
            max_keys: 100_000,
            max_bytes: 256 << 20,
            max_keys_per_caller: 10_000,
            max_bytes_per_caller: 64 << 20,
            max_answer_bytes: 1 << 20,
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
            // ±25 % jitter: an answer comes ≤ ~65 ms after its task ends,
            // at 20 rounds a second per scope while anyone waits (a round is
            // list pages, however many wait).
            poll_ms: 50,
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
    pub cf: CfBackendConfig,
}

/// A Cloud Controller as the backend: CF groups written through its v3 API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CfBackendConfig {
    /// The Cloud Controller's base URL (`https://api.sys.example.com`).
    pub api_url: String,
    /// An environment variable holding a bearer token; or, empty, the UAA
    /// client-credentials grant below.
    pub token_env: String,
    /// The UAA that grants the gateway's client its tokens.
    pub uaa_url: String,
    pub client_id: String,
    /// An environment variable holding the client's secret.
    pub client_secret_env: String,
    pub request_timeout_s: u64,
    /// Most requests in flight to the Cloud Controller at once.
    pub max_connections: usize,
    /// Extra CA certificates (PEM) to trust for the Cloud Controller and UAA.
    pub ca_file: Option<PathBuf>,
    /// Gcore writes carrying what CF cannot hold (ingress rules, remote
    /// groups, other protocols, tags, descriptions): false refuses them
    /// (400 naming the field); true drops those parts, with a warning.
    pub drop_unsupported: bool,
}

impl Default for CfBackendConfig {
    fn default() -> Self {
        CfBackendConfig {
            api_url: String::new(),
            token_env: String::new(),
            uaa_url: String::new(),
            client_id: String::new(),
            client_secret_env: String::new(),
            request_timeout_s: 30,
            max_connections: 32,
            ca_file: None,
            drop_unsupported: false,
        }
    }
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
    /// Task delays by operation (`security_groups.create = 50`), over `task_delay_ms`.
    pub task_delays_ms: std::collections::BTreeMap<faults::Operation, u64>,
    /// Seeds the faults' probabilities, so a run can be replayed (absent: a
    /// random seed, logged at start and shown by `GET /_emulator/faults`).
    pub seed: Option<u64>,
    /// Faults the emulator injects from the start (`[[backend.embedded.faults]]`).
    pub faults: Vec<faults::FaultSpec>,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            task_delay_ms: 300,
            region_name: "Embedded-1".into(),
            task_ttl_s: 3600,
            task_delays_ms: Default::default(),
            seed: None,
            faults: Vec::new(),
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
    /// Extra CA certificates (PEM) to trust for Gcore (a TLS-inspecting proxy).
    pub ca_file: Option<PathBuf>,
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
            ca_file: None,
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

    /// Every value `serve` cannot run with, refused with the key and the range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::check(self)
    }

    /// The files besides the config file whose change is a config change:
    /// the secret files it names and the issuer's signing key.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let a = &self.auth;
        let secrets = a.cf_tokens.iter().filter_map(|t| t.secret_file.clone());
        let keys = a.gcore_keys.iter().filter_map(|k| k.secret_file.clone());
        let clients = a.clients.iter().filter_map(|c| c.secret_file.clone());
        secrets
            .chain(keys)
            .chain(clients)
            .chain(a.login.signing_key_file.clone())
            .collect()
    }

    /// What `serve` reaches over the network before it binds, which
    /// `check-config` (it reads files, never the network) does not try.
    pub fn untried(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.store.kind == StoreKind::Postgres {
            out.push(format!(
                "the PostgreSQL connection (the URL in {}, its TLS files read)",
                self.store.url_env
            ));
        }
        out
    }

    /// How long in-flight requests get after the listener closes on
    /// SIGTERM: `server.shutdown_grace_s`, else the wait deadline + 10 s.
    pub fn shutdown_grace(&self) -> Duration {
        match self.server.shutdown_grace_s {
            0 => self.wait.deadline() + Duration::from_secs(10),
            s => Duration::from_secs(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_file() {
        let text = include_str!("../../config/sgbridge.toml");
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
        c.auth.cf_bearer_tokens = vec!["real-cf".into()];
        c.auth.gcore_api_keys = vec!["real-gcore".into()];
        c.auth.gcore_keys.clear();
        // Off loopback the announced URL must be said, too.
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("set server.external_url"));
        c.server.external_url = "https://sgbridge.example.com".into();
        c.validate().unwrap();
        // Beside your own credentials, one holding a development secret is
        // dropped, not accepted.
        c.auth.gcore_keys = vec![GcoreKeyEntry {
            name: "sneaky".into(),
            secret: Some(Redacted(DEV_GCORE_KEY.into())),
            secret_env: None,
            secret_file: None,
            projects: vec![],
            reserved_tags: false,
        }];
        c.validate().unwrap();
        let live = c.auth.credentials().unwrap();
        assert!(live.iter().all(|k| !is_dev_secret(&k.secret)), "{live:?}");
        // Alone, the development credentials are refused off loopback: the
        // tokens, the development user, and the JWTs earlier READMEs published.
        c.auth.cf_bearer_tokens = vec![DEV_CF_TOKEN.into()];
        c.auth.gcore_api_keys.clear();
        c.auth.gcore_keys.clear();
        let refused = |c: &Config| {
            c.validate()
                .is_err_and(|e| e.to_string().contains("development credentials"))
        };
        assert!(refused(&c));
        c.auth.cf_bearer_tokens.clear();
        assert!(refused(&c), "the admin/admin user");
        c.auth.users.clear();
        for published in PUBLISHED_TOKENS {
            c.auth.cf_bearer_tokens = vec![published.into()];
            assert!(refused(&c), "a JWT the README published");
        }
        c.auth.cf_bearer_tokens.clear();
        c.validate().unwrap();
    }

    #[test]
    fn secrets_come_from_exactly_one_place_and_never_show() {
        let t: Config =
            toml::from_str("[auth]\ncf_tokens = [{ name = \"ci\", secret = \"s3cret-value\", secret_env = \"X\" }]")
                .unwrap();
        assert!(t.validate().unwrap_err().to_string().contains("exactly one of"));
        let t: Config =
            toml::from_str("[auth]\ncf_tokens = [{ name = \"ci\", secret_file = \"/nonexistent/token\" }]").unwrap();
        assert!(t
            .validate()
            .unwrap_err()
            .to_string()
            .contains("cannot read /nonexistent/token"));
        let t: Config = toml::from_str("[auth]\ncf_tokens = [{ name = \"ci\", secret = \"s3cret-value\" }]").unwrap();
        assert!(!format!("{t:?}").contains("s3cret-value"));
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
