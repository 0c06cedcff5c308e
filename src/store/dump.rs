//! `sgbridge store export` / `store import`: a durable store's contents as
//! JSON lines, to back up, restore, or move (SQLite → PostgreSQL and back).
//!
//! The format, version 2 (version 1, the same without `event` lines, is
//! read too; a newer one is refused with one line):
//!
//! ```text
//! {"sgbridge_store":2,"exported_at":"2026-12-07T11:00:00Z"}
//! {"group":{"project_id":1,"region_id":1,"seq":7,"body":{…the Gcore wire group…}}}
//! {"task":{"registry":"embedded","body":{…the Gcore wire task…}}}
//! {"record":{"principal":"…","key":"…","fingerprint":"…","status":201,
//!            "headers":[["content-type","YXBwbGljYXRpb24vanNvbg=="]],"body":"…base64…","expires_at":1765105200}}
//! {"event":{"guid":"…","type":"audit.security_group.create","created_at":1765105200,"updated_at":1765105201,
//!           "actor":{"guid":"…","type":"user","name":"alice"},"target":{…},"space_guid":"","organization_guid":"",
//!           "data":{…}}}
//! ```
//!
//! Audit events keep their guids and times, and are read back in the order
//! they were written.
//!
//! Groups and tasks in the Gcore wire form the stores keep them in (rule
//! ids, timestamps and tags included); idempotency answers with their
//! credential, fingerprint and expiry (expired ones are not imported).
//! Tasks and answers are read a page at a time, so an export holds one page
//! in memory; groups are read at once, as the embedded backend holds them
//! all anyway. Not moved: locks and in-flight claims (they belong to running
//! processes), failed logins (a 20-minute window) and the signing key (each
//! store makes its own; set `auth.login.signing_key_file` to keep one).

use super::{rows, Answer, AuditEvent, Begin, GroupChange, Kept, Stores};
use crate::model::{Group, Scope, Task};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::io::{BufRead, Write};
use std::time::Duration;

const VERSION: u64 = 2;
/// The task registries a store keeps (the embedded backend's, the gateway's).
const REGISTRIES: [&str; 2] = ["embedded", "gateway"];
const PAGE: usize = 500;

/// How many of each were moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub groups: u64,
    pub tasks: u64,
    pub records: u64,
    pub events: u64,
    /// Records not imported: expired, or the key already held.
    pub skipped: u64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} groups, {} tasks, {} idempotency records ({} skipped), {} audit events",
            self.groups, self.tasks, self.records, self.skipped, self.events
        )
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    sgbridge_store: u64,
    #[serde(default)]
    exported_at: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Group {
        project_id: u64,
        region_id: u64,
        seq: u64,
        body: Box<RawValue>,
    },
    Task {
        registry: String,
        body: Box<RawValue>,
    },
    Record {
        principal: String,
        key: String,
        /// A string: JSON numbers lose precision past 2^53 in most readers.
        fingerprint: String,
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
        expires_at: i64,
    },
    Event(Event),
}

#[derive(Serialize, Deserialize)]
struct Party {
    guid: String,
    #[serde(rename = "type")]
    kind: String,
    name: String,
}

#[derive(Serialize, Deserialize)]
struct Event {
    guid: String,
    #[serde(rename = "type")]
    kind: String,
    created_at: i64,
    updated_at: i64,
    actor: Party,
    target: Party,
    space_guid: String,
    organization_guid: String,
    data: Box<RawValue>,
    #[serde(default)]
    request_id: String,
}

fn event_line(e: &AuditEvent) -> Result<Line, String> {
    let party = |p: &super::audit::Party| Party {
        guid: p.guid.clone(),
        kind: p.kind.clone(),
        name: p.name.clone(),
    };
    Ok(Line::Event(Event {
        guid: e.guid.clone(),
        kind: e.kind.clone(),
        created_at: e.created_at,
        updated_at: e.updated_at,
        actor: party(&e.actor),
        target: party(&e.target),
        space_guid: e.space_guid.clone(),
        organization_guid: e.organization_guid.clone(),
        data: raw(e.data.clone())?,
        request_id: e.request_id.clone(),
    }))
}

fn event_from(e: Event) -> AuditEvent {
    let party = |p: Party| super::audit::Party {
        guid: p.guid,
        kind: p.kind,
        name: p.name,
    };
    AuditEvent {
        guid: e.guid,
        kind: e.kind,
        created_at: e.created_at,
        updated_at: e.updated_at,
        actor: party(e.actor),
        target: party(e.target),
        space_guid: e.space_guid,
        organization_guid: e.organization_guid,
        data: e.data.get().to_string(),
        request_id: e.request_id,
    }
}

fn store_error(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn raw(text: String) -> Result<Box<RawValue>, String> {
    RawValue::from_string(text).map_err(store_error)
}

fn write_line(out: &mut impl Write, line: &impl Serialize) -> Result<(), String> {
    serde_json::to_writer(&mut *out, line).map_err(store_error)?;
    out.write_all(b"\n")
        .map_err(|e| format!("cannot write the export: {e}"))
}

fn write_text(out: &mut impl Write, line: &str) -> Result<(), String> {
    out.write_all(line.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| format!("cannot write the export: {e}"))
}

/// Writes every group, task and kept answer of `stores` to `out`.
pub async fn export(stores: &Stores, out: &mut impl Write) -> Result<Counts, String> {
    let (Some(groups), Some(tasks)) = (&stores.groups, &stores.tasks) else {
        return Err("the memory store holds nothing beyond the process: export a sqlite or postgres store".into());
    };
    let mut counts = Counts::default();
    write_text(out, &header_line()?)?;
    for (scope, seq, group) in groups.load().await.map_err(store_error)? {
        write_text(out, &group_line(scope, seq, &group)?)?;
        counts.groups += 1;
    }
    for registry in REGISTRIES {
        let mut after = None;
        loop {
            let page = tasks.page(registry, after.clone(), PAGE).await.map_err(store_error)?;
            for t in &page {
                write_text(out, &task_line(registry, t)?)?;
                counts.tasks += 1;
            }
            match page.last() {
                Some(t) if page.len() == PAGE => after = Some(t.id.to_string()),
                _ => break,
            }
        }
    }
    let mut after = None;
    loop {
        let page = stores.records.page(after.clone(), PAGE).await.map_err(store_error)?;
        for k in &page {
            write_line(out, &record_line(k))?;
            counts.records += 1;
        }
        match page.last() {
            Some(k) if page.len() == PAGE => after = Some((k.principal.clone(), k.key.clone())),
            _ => break,
        }
    }
    let mut after = 0;
    loop {
        let (page, last) = stores.audit.page(after, PAGE).await.map_err(store_error)?;
        for e in &page {
            write_line(out, &event_line(e)?)?;
            counts.events += 1;
        }
        if page.len() < PAGE {
            break;
        }
        after = last;
    }
    out.flush().map_err(|e| format!("cannot write the export: {e}"))?;
    Ok(counts)
}

fn record_line(k: &Kept) -> Line {
    Line::Record {
        principal: k.principal.clone(),
        key: k.key.clone(),
        fingerprint: k.fingerprint.to_string(),
        status: k.answer.status,
        headers: k
            .answer
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), B64.encode(v)))
            .collect(),
        body: B64.encode(&k.answer.body),
        expires_at: k.expires_at,
    }
}

/// Checks an export's first line: its format version is one this binary reads.
pub fn check_header(first: Option<&str>) -> Result<(), String> {
    let header: Header = first
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or("line 1: not an sgbridge store export (no {\"sgbridge_store\": version} line)")?;
    if !(1..=VERSION).contains(&header.sgbridge_store) {
        return Err(format!(
            "line 1: an export of format version {}, this sgbridge reads version {VERSION}: import it with a newer sgbridge",
            header.sgbridge_store
        ));
    }
    Ok(())
}

/// The first line of an export.
pub fn header_line() -> Result<String, String> {
    let header = Header {
        sgbridge_store: VERSION,
        exported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    serde_json::to_string(&header).map_err(store_error)
}

/// A group's line (the embedded backend's groups).
pub fn group_line(scope: Scope, seq: u64, group: &Group) -> Result<String, String> {
    let body = raw(rows::group_text(scope, group).map_err(store_error)?)?;
    let line = Line::Group {
        project_id: scope.project_id,
        region_id: scope.region_id,
        seq,
        body,
    };
    serde_json::to_string(&line).map_err(store_error)
}

/// A task's line, in `registry`.
pub fn task_line(registry: &str, task: &Task) -> Result<String, String> {
    let body = raw(rows::task_text(task).map_err(store_error)?)?;
    let line = Line::Task {
        registry: registry.to_string(),
        body,
    };
    serde_json::to_string(&line).map_err(store_error)
}

/// What a line after the header holds.
pub enum Item {
    Group { scope: Scope, seq: u64, group: Group },
    Task { registry: &'static str, task: Task },
    Record(Box<Record>),
    Event(Box<AuditEvent>),
}

/// An idempotency record as exported.
pub struct Record {
    principal: String,
    key: String,
    fingerprint: u64,
    answer: Answer,
    expires_at: i64,
}

/// One line after the header (`None`: a blank line).
pub fn parse_item(line: &str) -> Result<Option<Item>, String> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let parsed: Line = serde_json::from_str(line).map_err(store_error)?;
    Ok(Some(match parsed {
        Line::Group {
            project_id,
            region_id,
            seq,
            body,
        } => Item::Group {
            scope: Scope { project_id, region_id },
            seq,
            group: rows::group_from(body.get()).map_err(|e| e.0)?,
        },
        Line::Task { registry, body } => Item::Task {
            registry: REGISTRIES
                .into_iter()
                .find(|r| *r == registry)
                .ok_or_else(|| format!("unknown task registry {registry:?}"))?,
            task: rows::task_from(body.get()).map_err(|e| e.0)?,
        },
        Line::Record {
            principal,
            key,
            fingerprint,
            status,
            headers,
            body,
            expires_at,
        } => {
            let fingerprint: u64 = fingerprint.parse().map_err(|_| "fingerprint is not a number")?;
            let decode = |t: &str| B64.decode(t).map_err(|e| e.to_string());
            let answer = Answer {
                status,
                headers: headers
                    .iter()
                    .map(|(n, v)| Ok((n.clone(), decode(v)?)))
                    .collect::<Result<_, String>>()?,
                body: decode(&body)?,
            };
            Item::Record(Box::new(Record {
                principal,
                key,
                fingerprint,
                answer,
                expires_at,
            }))
        }
        Line::Event(e) => Item::Event(Box::new(event_from(e))),
    }))
}

/// Reads an export into `stores`, a line at a time (groups and tasks in
/// batches); stops at the first line it cannot take, naming it.
pub async fn import(stores: &Stores, input: impl BufRead) -> Result<Counts, String> {
    let (Some(groups), Some(tasks)) = (&stores.groups, &stores.tasks) else {
        return Err("import into a sqlite or postgres store (the memory store ends with the process)".into());
    };
    let mut lines = input.lines().enumerate();
    let first = lines.next().map(|(_, l)| l).transpose().map_err(store_error)?;
    check_header(first.as_deref())?;
    let mut counts = Counts::default();
    let (mut changes, mut batch): (Vec<GroupChange>, Vec<(&'static str, Task)>) = (Vec::new(), Vec::new());
    for (i, line) in lines {
        let at = |e: String| format!("line {}: {e}", i + 1);
        let line = line.map_err(|e| at(e.to_string()))?;
        match parse_item(&line).map_err(at)? {
            None => {}
            Some(Item::Group { scope, seq, group }) => {
                changes.push(GroupChange::Put { scope, seq, group });
                counts.groups += 1;
            }
            Some(Item::Task { registry, task }) => {
                batch.push((registry, task));
                counts.tasks += 1;
            }
            Some(Item::Record(r)) => {
                if keep(stores, &r.principal, &r.key, r.fingerprint, r.answer, r.expires_at)
                    .await
                    .map_err(at)?
                {
                    counts.records += 1;
                } else {
                    counts.skipped += 1;
                }
            }
            Some(Item::Event(e)) => {
                stores.audit.put(&e).await.map_err(|e| at(e.to_string()))?;
                counts.events += 1;
            }
        }
        if changes.len() >= PAGE {
            groups
                .commit(&std::mem::take(&mut changes), &[])
                .await
                .map_err(store_error)?;
        }
        if batch.len() >= PAGE {
            save_tasks(tasks.as_ref(), std::mem::take(&mut batch)).await?;
        }
    }
    groups.commit(&changes, &[]).await.map_err(store_error)?;
    save_tasks(tasks.as_ref(), batch).await?;
    Ok(counts)
}

async fn save_tasks(log: &dyn super::TaskLog, batch: Vec<(&'static str, Task)>) -> Result<(), String> {
    for registry in REGISTRIES {
        let of: Vec<Task> = batch
            .iter()
            .filter(|(r, _)| *r == registry)
            .map(|(_, t)| t.clone())
            .collect();
        if !of.is_empty() {
            log.save_now(registry, &of).await.map_err(store_error)?;
        }
    }
    Ok(())
}

/// Keeps one answer as the idempotency layer would have; false when it has
/// expired or its key is held already.
async fn keep(
    stores: &Stores,
    principal: &str,
    key: &str,
    fingerprint: u64,
    answer: Answer,
    expires_at: i64,
) -> Result<bool, String> {
    let left = expires_at - chrono::Utc::now().timestamp();
    let Ok(left) = u64::try_from(left) else {
        return Ok(false);
    };
    if left == 0 {
        return Ok(false);
    }
    let records = &stores.records;
    match records
        .begin(principal, key, fingerprint, Duration::from_secs(60))
        .await
        .map_err(store_error)?
    {
        Begin::Fresh => {
            records
                .finish(principal, key, fingerprint, answer, Duration::from_secs(left))
                .await
                .map_err(store_error)?;
            Ok(true)
        }
        Begin::InFlight { .. } | Begin::Done { .. } => Ok(false),
    }
}
