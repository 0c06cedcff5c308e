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
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Records waiting for the writer thread. A full queue makes the writing
/// request wait (backpressure): a record is never dropped.
const QUEUE: usize = 4096;

enum Msg {
    Line(Vec<u8>),
    /// Answered once everything queued before it is written.
    Flushed(oneshot::Sender<()>),
}

pub struct Audit {
    sink: Option<mpsc::Sender<Msg>>,
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
        Audit::over(sink, QUEUE, failures)
    }

    /// Records written to `sink` by a thread of their own, `queue` waiting
    /// at most.
    fn over(
        sink: Option<Box<dyn Write + Send>>,
        queue: usize,
        failures: prometheus_client::metrics::counter::Counter,
    ) -> Result<Audit, String> {
        let Some(sink) = sink else {
            return Ok(Audit { sink: None, failures });
        };
        let (tx, rx) = mpsc::channel(queue);
        let counted = failures.clone();
        std::thread::Builder::new()
            .name("sgbridge-audit".into())
            .spawn(move || write_all(sink, rx, &counted))
            .map_err(|e| format!("cannot start the audit writer: {e}"))?;
        Ok(Audit {
            sink: Some(tx),
            failures,
        })
    }

    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// Queues one record as one line; waits while the queue is full.
    pub async fn write(&self, record: &Record<'_>) {
        let Some(sink) = &self.sink else { return };
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        if sink.send(Msg::Line(line)).await.is_err() {
            self.failures.inc();
            tracing::error!("cannot write the audit record: the writer has stopped");
        }
    }

    /// Waits (at most `limit`) until every record queued so far is written
    /// (the exit; a reader that must see them).
    pub async fn flush(&self, limit: Duration) {
        let Some(sink) = &self.sink else { return };
        let (done, written) = oneshot::channel();
        let flushed = async { sink.send(Msg::Flushed(done)).await.is_ok() && written.await.is_ok() };
        if !tokio::time::timeout(limit, flushed).await.unwrap_or(false) {
            let waiting = QUEUE.saturating_sub(sink.capacity());
            tracing::error!(waiting, "audit records were not all written in time");
        }
    }
}

/// The writer thread: takes what is queued (waiting a moment after the
/// first, as the log writer does), writes it in one go, flushes when the
/// queue is empty.
fn write_all(
    sink: Box<dyn Write + Send>,
    mut rx: mpsc::Receiver<Msg>,
    failures: &prometheus_client::metrics::counter::Counter,
) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, sink);
    let mut acks = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        super::log_writer::pause_for_the_rest();
        let (mut batch, mut written) = (0u64, Ok(()));
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Line(line) => {
                    batch += 1;
                    written = written.and_then(|()| out.write_all(&line));
                }
                Msg::Flushed(ack) => acks.push(ack),
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = written.and_then(|()| out.flush()) {
            failures.inc_by(batch);
            tracing::error!(error = %e, records = batch, "cannot write the audit records");
            // What the failed write left behind is not written again.
            out = std::io::BufWriter::with_capacity(64 * 1024, out.into_parts().0);
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
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

    /// A sink that holds every write until it is opened, and says when the
    /// first write reached it.
    #[derive(Clone)]
    struct Gate {
        open: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
        reached: std::sync::mpsc::SyncSender<()>,
        out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.reached.try_send(());
            let (open, turned) = &*self.open;
            let mut is_open = open.lock().map_err(|_| std::io::Error::other("poisoned"))?;
            while !*is_open {
                is_open = turned.wait(is_open).map_err(|_| std::io::Error::other("poisoned"))?;
            }
            self.out
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn record(request_id: &str) -> Record<'_> {
        Record {
            timestamp: String::new(),
            request_id,
            principal: "admin",
            client: String::new(),
            dialect: "cf",
            method: "PUT",
            route: "/v2/security_groups/:guid",
            operation: "update".into(),
            scope: None,
            group: None,
            changes: None,
            outcome: "applied",
            status: 201,
            error: None,
            tasks: &[],
        }
    }

    /// The promise: a sink that does not take what is written holds the
    /// writing requests back once the queue is full, and nothing is lost.
    #[tokio::test]
    async fn a_blocked_sink_holds_writers_back_and_loses_nothing() {
        let (reached, first_write) = std::sync::mpsc::sync_channel(1);
        let gate = Gate {
            open: Default::default(),
            reached,
            out: Default::default(),
        };
        let failures = prometheus_client::metrics::counter::Counter::default();
        let audit = Audit::over(Some(Box::new(gate.clone())), 2, failures.clone()).unwrap();
        audit.write(&record("r0")).await;
        tokio::task::spawn_blocking(move || first_write.recv())
            .await
            .unwrap()
            .unwrap();
        // The writer is held in r0's write; two more fill the queue.
        audit.write(&record("r1")).await;
        audit.write(&record("r2")).await;
        let last = record("r3");
        let held = audit.write(&last);
        tokio::pin!(held);
        assert!(
            tokio::time::timeout(Duration::ZERO, &mut held).await.is_err(),
            "a full queue holds the writer back"
        );
        let (open, turned) = &*gate.open;
        *open.lock().unwrap() = true;
        turned.notify_all();
        held.await;
        audit.flush(Duration::from_secs(30)).await;
        let out = String::from_utf8(gate.out.lock().unwrap().clone()).unwrap();
        let ids: Vec<String> = out
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["request_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(ids, ["r0", "r1", "r2", "r3"]);
        assert_eq!(failures.get(), 0);
    }
}
