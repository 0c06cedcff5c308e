//! Where the backend and store `*_env` settings (`store.url_env`,
//! `backend.gcore.api_key_env`, `backend.cf.token_env`,
//! `backend.cf.client_secret_env`) and the outbound proxy variables
//! (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`) are read: the
//! process environment, or, for a config built in code (tests, an embedding
//! program), a set of variables of its own. Two gateways in one process then
//! never see each other's secrets or proxies, and nothing sets the process
//! environment, which other threads read concurrently.

use std::collections::BTreeMap;
use std::sync::Arc;

/// The process environment (the default), or variables of its own only.
#[derive(Clone, Default)]
pub struct Env {
    own: Option<Arc<BTreeMap<String, String>>>,
}

impl Env {
    /// Variables of its own, none from the process.
    pub fn isolated() -> Env {
        Env {
            own: Some(Arc::default()),
        }
    }

    /// This set with `name` = `value` (the process environment is left
    /// alone; a process-backed `Env` becomes an isolated one).
    pub fn with(self, name: &str, value: &str) -> Env {
        let mut own = self.own.map(|o| (*o).clone()).unwrap_or_default();
        own.insert(name.to_string(), value.to_string());
        Env {
            own: Some(Arc::new(own)),
        }
    }

    /// The variable's value, if set (and valid UTF-8).
    pub fn var(&self, name: &str) -> Option<String> {
        match &self.own {
            Some(own) => own.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    /// The first of `names` that is set (as proxies are named: `HTTPS_PROXY`
    /// then `https_proxy`).
    pub fn first(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|n| self.var(n))
    }
}

/// Names only: the values are secrets.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.own {
            None => f.write_str("Env(process)"),
            Some(own) => f.debug_set().entries(own.keys()).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_isolated_env_reads_nothing_from_the_process_and_shows_no_value() {
        let env = Env::isolated().with("SGBRIDGE_ENV_TEST", "s3cret");
        assert_eq!(env.var("SGBRIDGE_ENV_TEST").as_deref(), Some("s3cret"));
        assert_eq!(env.var("PATH"), None, "the process's variables stay out");
        assert!(
            Env::default().var("PATH").is_some(),
            "the default is the process environment"
        );
        assert_eq!(env.first(&["NOPE", "SGBRIDGE_ENV_TEST"]).as_deref(), Some("s3cret"));
        let shown = format!("{env:?}");
        assert!(
            shown.contains("SGBRIDGE_ENV_TEST") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
