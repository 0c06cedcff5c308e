//! The audit stream: one JSON line per write request — who (principal,
//! client), which group (id, name, scope), what (rules added and removed,
//! in the caller's dialect and as the backend stores them), the outcome and
//! the task ids — written apart from the logs (stdout or a file), so it can
//! be shipped and kept on its own terms.

use super::route::Dialect;
use crate::config::{AuditConfig, AuditTarget};
use crate::dialect::cf::{render, CfFlags};
use crate::dialect::gcore::rule::to_spec;
use crate::journal::{Change, Journal};
use crate::mapping::Mapping;
use crate::model::{Content, Group};
use serde::Serialize;
use serde_json::Value;
use std::io::Write;
use std::sync::Mutex;

pub struct Audit {
    sink: Option<Mutex<Box<dyn Write + Send>>>,
    /// Records that could not be written (`sgbridge_audit_write_failures`).
    failures: prometheus_client::metrics::counter::Counter,
}

impl Audit {
    pub fn new(cfg: &AuditConfig, failures: prometheus_client::metrics::counter::Counter) -> Result<Audit, String> {
        let sink: Option<Box<dyn Write + Send>> = match cfg.target {
            AuditTarget::Off => None,
            AuditTarget::Stdout => Some(Box::new(std::io::stdout())),
            AuditTarget::File => {
                let path = cfg.path.as_ref().ok_or("audit.target = \"file\" needs audit.path")?;
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("audit.path {}: {e}", path.display()))?;
                Some(Box::new(file))
            }
        };
        Ok(Audit {
            sink: sink.map(Mutex::new),
            failures,
        })
    }

    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// Writes one record as one line; a failing sink is logged, never fatal.
    pub fn write(&self, record: &Record<'_>) {
        let Some(sink) = &self.sink else { return };
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        let written = sink
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))
            .and_then(|mut s| s.write_all(&line).and_then(|_| s.flush()));
        if let Err(e) = written {
            self.failures.inc();
            tracing::error!(error = %e, "cannot write the audit record");
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Record<'a> {
    pub timestamp: String,
    pub request_id: &'a str,
    pub principal: &'a str,
    pub client: String,
    pub dialect: &'static str,
    pub method: &'static str,
    pub route: &'static str,
    /// The protocol (`create`, `update`, …), or the method and route when
    /// the request failed before it began one.
    pub operation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
    /// `applied`, `accepted` (running on tasks), `dry_run`, `rejected`
    /// (the caller's fault) or `failed`.
    pub outcome: &'static str,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    pub tasks: &'a [String],
}

#[derive(Debug, Serialize)]
pub struct GroupRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize, Default)]
pub struct Changes {
    /// In the caller's dialect (CF rules for CF callers, Gcore rules for
    /// Gcore callers).
    pub rules_added: Vec<Value>,
    pub rules_removed: Vec<Value>,
    /// As the backend stores them.
    pub backend_rules_added: Vec<Value>,
    pub backend_rules_removed: Vec<Value>,
}

/// How rules are shown in records.
#[derive(Clone, Copy)]
pub struct Views<'a> {
    pub mapping: &'a Mapping,
    pub flags: CfFlags,
}

impl Views<'_> {
    fn caller(&self, dialect: Dialect, group: &Group) -> Vec<Value> {
        match dialect {
            Dialect::Gcore => gcore_rules(self.mapping.gcore_view(group).rules.iter().map(|r| &r.atom)),
            _ => cf_rules(&self.mapping.cf_view(group).rules, self.flags),
        }
    }

    /// How many rules the backend holds for `group`.
    pub fn backend_count(&self, group: &Group) -> usize {
        match &group.content {
            Content::Atomic(c) => c.rules.len(),
            Content::Compact(c) => c.rules.len(),
        }
    }

    fn backend(&self, group: &Group) -> Vec<Value> {
        match &group.content {
            Content::Atomic(c) => gcore_rules(c.rules.iter().map(|r| &r.atom)),
            Content::Compact(c) => cf_rules(&c.rules, self.flags),
        }
    }

    /// What `change` did to the rules in both dialects, for an audit
    /// event's `data`: `cf` (CF rules) and `gcore` (Gcore rules), each with
    /// `rules_added` and `rules_removed`.
    pub fn both_dialects(&self, change: &Change) -> serde_json::Map<String, Value> {
        let side = |g: &Option<Group>, f: &dyn Fn(&Group) -> Vec<Value>| g.as_ref().map(f).unwrap_or_default();
        let cf = |g: &Group| cf_rules(&self.mapping.cf_view(g).rules, self.flags);
        let gcore = |g: &Group| gcore_rules(self.mapping.gcore_view(g).rules.iter().map(|r| &r.atom));
        let mut out = serde_json::Map::new();
        for (name, view) in [("cf", &cf as &dyn Fn(&Group) -> Vec<Value>), ("gcore", &gcore)] {
            let (added, removed) = diff(side(&change.before, view), side(&change.after, view));
            out.insert(
                name.into(),
                serde_json::json!({ "rules_added": added, "rules_removed": removed }),
            );
        }
        out
    }

    pub fn changes(&self, dialect: Dialect, change: &Change) -> Changes {
        let side = |g: &Option<Group>, f: &dyn Fn(&Group) -> Vec<Value>| g.as_ref().map(f).unwrap_or_default();
        let caller = |g: &Group| self.caller(dialect, g);
        let backend = |g: &Group| self.backend(g);
        let (rules_added, rules_removed) = diff(side(&change.before, &caller), side(&change.after, &caller));
        let (backend_rules_added, backend_rules_removed) =
            diff(side(&change.before, &backend), side(&change.after, &backend));
        Changes {
            rules_added,
            rules_removed,
            backend_rules_added,
            backend_rules_removed,
        }
    }
}

pub(crate) fn gcore_rules<'a>(atoms: impl Iterator<Item = &'a crate::model::Atom>) -> Vec<Value> {
    atoms.filter_map(|a| serde_json::to_value(to_spec(a)).ok()).collect()
}

pub(crate) fn cf_rules(rules: &[crate::model::Rule], flags: CfFlags) -> Vec<Value> {
    // What CF cannot say is still a change: shown through the Gcore form.
    rules
        .iter()
        .flat_map(|r| match render::rules(std::slice::from_ref(r), flags) {
            Ok(cf) => cf.iter().filter_map(|c| serde_json::to_value(c).ok()).collect(),
            Err(_) => gcore_rules(r.atoms().iter()),
        })
        .collect()
}

/// (in `after` but not `before`, in `before` but not `after`), as multisets.
fn diff(before: Vec<Value>, after: Vec<Value>) -> (Vec<Value>, Vec<Value>) {
    let mut removed = before;
    let mut added = Vec::new();
    for v in after {
        match removed.iter().position(|b| *b == v) {
            Some(i) => {
                removed.remove(i);
            }
            None => added.push(v),
        }
    }
    (added, removed)
}

/// The group a record is about: from the change, else the request path.
pub fn group_ref(journal: &Journal, path_id: Option<&str>) -> Option<GroupRef> {
    let from_change = journal.change.as_ref().and_then(|c| {
        let (id, name) = match (&c.after, &c.before, c.planned) {
            (Some(a), _, false) => (a.id().to_string(), a.name()),
            (_, Some(b), _) => (b.id().to_string(), b.name()),
            // A create still running: its id is not known yet.
            (Some(a), None, true) => (String::new(), a.name()),
            (None, None, _) => return None,
        };
        Some(GroupRef {
            id,
            name: name.to_string(),
        })
    });
    from_change.or_else(|| {
        path_id.map(|id| GroupRef {
            id: id.to_string(),
            name: String::new(),
        })
    })
}

/// The outcome word for a write answered `status`.
pub fn outcome(status: u16, journal: &Journal, dry_run: bool) -> &'static str {
    match status {
        _ if dry_run && status < 300 => "dry_run",
        200..=299 if journal.change.as_ref().is_some_and(|c| c.planned) => "accepted",
        200..=299 => "applied",
        400..=499 => "rejected",
        _ => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diffs_are_multisets() {
        let (added, removed) = diff(vec![json!(1), json!(2), json!(2)], vec![json!(2), json!(3)]);
        assert_eq!(added, [json!(3)]);
        assert_eq!(removed, [json!(1), json!(2)]);
    }
}
