//! Config validation: every value `serve` cannot run with is refused here,
//! with the key and the range, so `check-config` and `serve` agree.

use super::{is_dev_secret, BackendKind, Config, ConfigError};
use std::ops::RangeInclusive;

fn range(key: &str, value: u64, allowed: RangeInclusive<u64>) -> Result<(), ConfigError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(ConfigError::Invalid(format!(
        "{key} = {value} is out of range: it must be between {} and {}",
        allowed.start(),
        allowed.end()
    )))
}

fn invalid(text: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(text.into())
}

/// An `http(s)://host…` URL; plain HTTP only to a loopback host, so a TLS
/// check is never silently skipped.
fn url(key: &str, value: &str) -> Result<(), ConfigError> {
    let uri: http::Uri = value
        .parse()
        .map_err(|_| invalid(format!("{key} = {value:?} is not a URL")))?;
    let host = uri.host().unwrap_or("");
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => Err(invalid(format!(
            "{key} = {value:?}: plain http is allowed for loopback hosts only; use https"
        ))),
        _ => Err(invalid(format!("{key} = {value:?} must start with https://"))),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn operations(c: &Config) -> Result<(), ConfigError> {
    tracing_subscriber::EnvFilter::try_new(&c.log.level)
        .map_err(|e| invalid(format!("log.level = {:?} is not a log filter: {e}", c.log.level)))?;
    if c.audit.retention_days == 0 {
        return Err(invalid("audit.retention_days must be at least 1"));
    }
    range("log.queue_lines", c.log.queue_lines, 16..=10_000_000)?;
    range("audit.max_events", c.audit.max_events, 1_000..=1_000_000_000)?;
    if c.audit.target == super::AuditTarget::File {
        let Some(path) = &c.audit.path else {
            return Err(invalid("audit.target = \"file\" needs audit.path"));
        };
        // `serve` creates the file, never its directory.
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            return Err(invalid(format!(
                "audit.path {}: the directory {} does not exist",
                path.display(),
                dir.display()
            )));
        }
    }
    range("idempotency.ttl_s", c.idempotency.ttl_s, 1..=30 * 86_400)?;
    let i = &c.idempotency;
    range("idempotency.max_keys", i.max_keys, 1..=10_000_000)?;
    range("idempotency.max_bytes", i.max_bytes, 1 << 10..=1 << 40)?;
    range("idempotency.max_keys_per_caller", i.max_keys_per_caller, 1..=i.max_keys)?;
    range(
        "idempotency.max_bytes_per_caller",
        i.max_bytes_per_caller,
        1..=i.max_bytes,
    )?;
    range(
        "idempotency.max_answer_bytes",
        i.max_answer_bytes,
        1..=i.max_bytes_per_caller,
    )?;
    store(&c.store, &c.env)
}

fn store(s: &super::StoreConfig, env: &super::Env) -> Result<(), ConfigError> {
    use super::StoreKind;
    range("store.max_connections", s.max_connections as u64, 1..=1_000)?;
    range("store.statement_timeout_ms", s.statement_timeout_ms, 100..=600_000)?;
    range("store.lock_lease_s", s.lock_lease_s, 2..=3_600)?;
    range("store.tombstone_keep_s", s.tombstone_keep_s, 60..=30 * 86_400)?;
    match s.kind {
        StoreKind::Memory => Ok(()),
        StoreKind::Sqlite => {
            let path = s
                .path
                .as_ref()
                .ok_or_else(|| invalid("store.kind = \"sqlite\" needs store.path"))?;
            // `serve` creates the file, never its directory.
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            if dir.is_dir() {
                Ok(())
            } else {
                Err(invalid(format!(
                    "store.path {}: the directory {} does not exist",
                    path.display(),
                    dir.display()
                )))
            }
        }
        StoreKind::Postgres => match env.var(&s.url_env) {
            // What `serve` reads before it connects: the TLS parameters and
            // the files they name (never the URL itself in the message).
            Some(v) if !v.trim().is_empty() => super::pg_url::split(v.trim())
                .and_then(|(_, tls)| tls.check_files())
                .map_err(|e| invalid(format!("store.url_env ({}): {e}", s.url_env))),
            _ => Err(invalid(format!(
                "store.kind = \"postgres\": the environment variable {} (store.url_env) holds no URL",
                s.url_env
            ))),
        },
    }
}

pub fn check(c: &Config) -> Result<(), ConfigError> {
    limits(c)?;
    credentials(c)?;
    announced(c)?;
    directory(c)?;
    backend(c)
}

/// CF clients follow the URL the gateway announces (`/v2/info`, `/login`,
/// v3 links, the issuer of its tokens); off loopback the listen address is
/// not one they can reach (`http://0.0.0.0:8080`), so it must be said.
fn announced(c: &Config) -> Result<(), ConfigError> {
    let s = &c.server;
    if s.external_url.is_empty() && !s.listen.ip().is_loopback() {
        return Err(invalid(format!(
            "server.listen = {} is not a loopback address: set server.external_url to the URL CF clients reach the gateway at (announced in /v2/info, /login and v3 links; http://{} reaches nothing)",
            s.listen, s.listen
        )));
    }
    Ok(())
}

fn limits(c: &Config) -> Result<(), ConfigError> {
    let s = &c.server;
    range("server.max_body_bytes", s.max_body_bytes as u64, 1..=1 << 30)?;
    range("server.request_timeout_s", s.request_timeout_s, 1..=86_400)?;
    range("server.body_timeout_s", s.body_timeout_s, 1..=3_600)?;
    range("server.write_timeout_s", s.write_timeout_s, 1..=3_600)?;
    range("server.header_timeout_s", s.header_timeout_s, 1..=3_600)?;
    if !s.external_url.is_empty() {
        let uri: http::Uri = s
            .external_url
            .parse()
            .map_err(|_| invalid(format!("server.external_url = {:?} is not a URL", s.external_url)))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(invalid(format!(
                "server.external_url = {:?} must be an http:// or https:// URL",
                s.external_url
            )));
        }
    }
    if let Some(tls) = &s.tls {
        for (key, path) in [
            ("server.tls.cert_file", &tls.cert_file),
            ("server.tls.key_file", &tls.key_file),
        ] {
            std::fs::metadata(path).map_err(|e| invalid(format!("{key}: cannot read {}: {e}", path.display())))?;
        }
    }
    range("server.listen_backlog", u64::from(s.listen_backlog), 1..=65_535)?;
    range("server.shutdown_delay_s", s.shutdown_delay_s, 0..=600)?;
    range("server.shutdown_grace_s", s.shutdown_grace_s, 0..=86_400)?;
    range("server.readiness_interval_s", s.readiness_interval_s, 1..=3_600)?;
    range("server.watch_config_s", s.watch_config_s, 0..=3_600)?;
    if s.admin_listen.is_some_and(|a| a == s.listen && a.port() != 0) {
        return Err(invalid("server.admin_listen must differ from server.listen"));
    }
    operations(c)?;
    let w = &c.wait;
    range("wait.poll_ms", w.poll_ms, 1..=60_000)?;
    range("wait.max_poll_ms", w.max_poll_ms, w.poll_ms.max(1)..=600_000)?;
    range("wait.deadline_s", w.deadline_s, 1..=86_400)?;
    if s.request_timeout_s <= w.deadline_s {
        return Err(invalid(format!(
            "server.request_timeout_s = {} must be longer than wait.deadline_s = {}, or writes are cut off while they wait",
            s.request_timeout_s, w.deadline_s
        )));
    }
    range("gcore.max_rules", c.gcore.max_rules as u64, 1..=100_000)?;
    let e = &c.backend.embedded;
    range("backend.embedded.task_delay_ms", e.task_delay_ms, 0..=86_400_000)?;
    range("backend.embedded.task_ttl_s", e.task_ttl_s, 1..=31_536_000)?;
    for (op, ms) in &e.task_delays_ms {
        if !op.starts_tasks() {
            return Err(invalid(format!(
                "backend.embedded.task_delays_ms: {op} starts no task, so it has no task delay"
            )));
        }
        range("backend.embedded.task_delays_ms", *ms, 0..=86_400_000)?;
    }
    let g = &c.backend.gcore;
    range("backend.gcore.request_timeout_s", g.request_timeout_s, 1..=3_600)?;
    range("backend.gcore.max_connections", g.max_connections as u64, 1..=10_000)
}

fn credentials(c: &Config) -> Result<(), ConfigError> {
    let a = &c.auth;
    let named = a.cf_tokens.iter().map(|t| (&t.name, "auth.cf_tokens"));
    let named = named.chain(a.gcore_keys.iter().map(|k| (&k.name, "auth.gcore_keys")));
    for (name, list) in named {
        if name.trim().is_empty() {
            return Err(invalid(format!("{list}: every entry needs a name")));
        }
    }
    let live = a.credentials()?;
    let users = a.live_users()?;
    a.live_clients()?;
    let dev = live.iter().any(|k| is_dev_secret(&k.secret)) || users.iter().any(|u| is_dev_secret(&u.password_hash));
    if dev && !c.server.listen.ip().is_loopback() {
        return Err(invalid(format!(
            "server.listen = {} is not a loopback address, but auth still accepts the development credentials; configure your own in [auth]",
            c.server.listen
        )));
    }
    login(&a.login)?;
    if let Some(uaa) = &a.uaa {
        url("auth.uaa.url", &uaa.url)?;
        range("auth.uaa.leeway_s", uaa.leeway_s, 0..=300)?;
        range("auth.uaa.refetch_s", uaa.refetch_s, 0..=3_600)?;
        if uaa.audience.is_empty() {
            return Err(invalid("auth.uaa.audience must not be empty"));
        }
        if let Some(ca) = &uaa.ca_file {
            std::fs::metadata(ca)
                .map_err(|e| invalid(format!("auth.uaa.ca_file: cannot read {}: {e}", ca.display())))?;
        }
    }
    Ok(())
}

fn login(l: &super::LoginConfig) -> Result<(), ConfigError> {
    range("auth.login.access_ttl_s", l.access_ttl_s, 60..=31_536_000)?;
    range("auth.login.refresh_ttl_s", l.refresh_ttl_s, 60..=31_536_000)?;
    range(
        "auth.login.max_concurrent_hashes",
        l.max_concurrent_hashes as u64,
        1..=64,
    )?;
    range(
        "auth.login.lockout_after_failures",
        u64::from(l.lockout_after_failures),
        1..=1_000,
    )?;
    range("auth.login.lockout_window_s", l.lockout_window_s, 1..=86_400)?;
    range("auth.login.lockout_period_s", l.lockout_period_s, 1..=86_400)?;
    if let Some(path) = &l.signing_key_file {
        crate::crypto::signing::SigningKey::load(path)
            .map_err(|e| invalid(format!("auth.login.signing_key_file: {e}")))?;
    }
    Ok(())
}

fn directory(c: &Config) -> Result<(), ConfigError> {
    let uuid = |g: &str| crate::model::Uuid::parse(g).is_some();
    if let Some(o) = c.cf.orgs.iter().find(|o| !uuid(&o.guid)) {
        return Err(invalid(format!("cf.orgs: guid {:?} is not a UUID", o.guid)));
    }
    for s in &c.cf.spaces {
        if !uuid(&s.guid) {
            return Err(invalid(format!("cf.spaces: guid {:?} is not a UUID", s.guid)));
        }
        if !c.cf.orgs.iter().any(|o| o.guid.eq_ignore_ascii_case(&s.org_guid)) {
            return Err(invalid(format!(
                "cf.spaces: space {:?} names org_guid {:?}, which is not in cf.orgs",
                s.name, s.org_guid
            )));
        }
    }
    Ok(())
}

fn backend(c: &Config) -> Result<(), ConfigError> {
    match c.backend.kind {
        BackendKind::Embedded => Ok(()),
        BackendKind::Cf => cf_backend(&c.backend.cf, &c.env),
        BackendKind::Gcore => {
            let g = &c.backend.gcore;
            url("backend.gcore.base_url", &g.base_url)?;
            if g.project_id == 0 || g.region_id == 0 {
                return Err(invalid(
                    "backend.gcore.project_id and backend.gcore.region_id must be set",
                ));
            }
            match c.env.var(&g.api_key_env) {
                Some(v) if !v.trim().is_empty() => Ok(()),
                _ => Err(invalid(format!(
                    "the Gcore API key is read from the environment variable {}, which is not set",
                    g.api_key_env
                ))),
            }
        }
    }
}

fn env_set(key: &str, var: &str, env: &super::Env) -> Result<(), ConfigError> {
    match env.var(var) {
        Some(v) if !v.trim().is_empty() => Ok(()),
        _ => Err(invalid(format!("{key}: the environment variable {var} is not set"))),
    }
}

fn cf_backend(cf: &super::CfBackendConfig, env: &super::Env) -> Result<(), ConfigError> {
    url("backend.cf.api_url", &cf.api_url)?;
    range("backend.cf.request_timeout_s", cf.request_timeout_s, 1..=3_600)?;
    range("backend.cf.max_connections", cf.max_connections as u64, 1..=10_000)?;
    let grant = !cf.uaa_url.is_empty() || !cf.client_id.is_empty() || !cf.client_secret_env.is_empty();
    match (cf.token_env.is_empty(), grant) {
        (false, false) => env_set("backend.cf.token_env", &cf.token_env, env),
        (true, true) => {
            url("backend.cf.uaa_url", &cf.uaa_url)?;
            if cf.client_id.is_empty() {
                return Err(invalid(
                    "backend.cf.client_id must be set for the UAA client-credentials grant",
                ));
            }
            env_set("backend.cf.client_secret_env", &cf.client_secret_env, env)
        }
        (false, true) => Err(invalid(
            "backend.cf: give either token_env or uaa_url, client_id and client_secret_env, not both",
        )),
        (true, false) => Err(invalid(
            "backend.cf: give token_env (a bearer token) or uaa_url, client_id and client_secret_env (a UAA client)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(c: &Config) -> String {
        check(c).unwrap_err().to_string()
    }

    #[test]
    fn values_serve_cannot_run_with_are_refused() {
        let mut c = Config::default();
        c.backend.embedded.task_ttl_s = 9_223_372_036_854_775_807;
        assert!(err(&c).contains("backend.embedded.task_ttl_s"), "{}", err(&c));
        let mut c = Config::default();
        c.wait.deadline_s = 9_223_372_036_854_775_807;
        assert!(err(&c).contains("wait.deadline_s"));
        let mut c = Config::default();
        c.server.request_timeout_s = 0;
        assert!(err(&c).contains("server.request_timeout_s = 0 is out of range"));
        let mut c = Config::default();
        c.wait.deadline_s = 200;
        assert!(err(&c).contains("must be longer than wait.deadline_s"));
    }

    #[test]
    fn outbound_urls_need_tls_off_loopback() {
        assert!(url("k", "https://uaa.example.com").is_ok());
        assert!(url("k", "http://127.0.0.1:9000").is_ok());
        assert!(url("k", "http://localhost:9000").is_ok());
        assert!(url("k", "http://uaa.example.com")
            .unwrap_err()
            .to_string()
            .contains("loopback"));
        assert!(url("k", "ftp://x").is_err());
    }
}
