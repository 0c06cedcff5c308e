//! Audit events as the store keeps them: one row per change (or login),
//! engine-agnostic — who ([`Party`]), about what, when, and what changed
//! (`data`, JSON text the server writes and the store does not read).
//!
//! A change's event is written twice: *before* the change is sent (its
//! intent, `data.outcome = "pending"`), then completed with what changed, or
//! dropped when nothing did. So a change that happened is never missing
//! from the log, even when the process dies between the backend's answer
//! and the second write (it stays `pending`: the change may have happened).
//!
//! Filters compare whole seconds, as the Cloud Controller stores them.
//! Without an order, events come in the order they were first written (CC's
//! id order); ordered by a time, ties go by guid in the same direction (as CC).

use super::StoreError;
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::Mutex;

/// An actor or a target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Party {
    pub guid: String,
    /// `user`, `security_group`, …
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub guid: String,
    /// `audit.security_group.create`, …
    pub kind: String,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub actor: Party,
    pub target: Party,
    /// Empty: none.
    pub space_guid: String,
    pub organization_guid: String,
    /// A JSON object, as text.
    pub data: String,
    /// The request that made it (empty: none): the embedded backend's
    /// commit of that request's change marks its event in the same
    /// transaction ([`settle_sql`]).
    pub request_id: String,
}

/// A time condition on whole seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seconds {
    AnyOf(Vec<i64>),
    Lt(i64),
    Lte(i64),
    Gt(i64),
    Gte(i64),
}

impl Seconds {
    pub fn matches(&self, t: i64) -> bool {
        match self {
            Seconds::AnyOf(list) => list.contains(&t),
            Seconds::Lt(x) => t < *x,
            Seconds::Lte(x) => t <= *x,
            Seconds::Gt(x) => t > *x,
            Seconds::Gte(x) => t >= *x,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderBy {
    /// The order events were first written.
    #[default]
    Written,
    CreatedAt,
    UpdatedAt,
}

/// Which events, in which order, which slice.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventQuery {
    pub guids: Option<Vec<String>>,
    pub types: Option<Vec<String>>,
    pub target_guids: Option<Vec<String>>,
    /// Every target but these.
    pub target_guids_not: Option<Vec<String>>,
    pub space_guids: Option<Vec<String>>,
    pub organization_guids: Option<Vec<String>>,
    pub actor_names: Option<Vec<String>>,
    pub created: Option<Seconds>,
    pub updated: Option<Seconds>,
    pub order: OrderBy,
    pub descending: bool,
    pub offset: u64,
    pub limit: u64,
}

fn listed(filter: &Option<Vec<String>>, value: &str) -> bool {
    filter.as_ref().is_none_or(|l| l.iter().any(|v| v == value))
}

impl EventQuery {
    pub fn matches(&self, e: &AuditEvent) -> bool {
        listed(&self.guids, &e.guid)
            && listed(&self.types, &e.kind)
            && self
                .target_guids_not
                .as_ref()
                .is_none_or(|l| !l.contains(&e.target.guid))
            && listed(&self.target_guids, &e.target.guid)
            && listed(&self.space_guids, &e.space_guid)
            && listed(&self.organization_guids, &e.organization_guid)
            && listed(&self.actor_names, &e.actor.name)
            && self.created.as_ref().is_none_or(|s| s.matches(e.created_at))
            && self.updated.as_ref().is_none_or(|s| s.matches(e.updated_at))
    }

    /// The SQL condition for this query's filters (`TRUE` for none), with
    /// its parameters in order; `ph(n)` writes the n-th (1-based) placeholder.
    pub(super) fn condition(&self, ph: &dyn Fn(usize) -> String) -> (String, Vec<SqlValue>) {
        let mut parts: Vec<String> = Vec::new();
        let mut values: Vec<SqlValue> = Vec::new();
        let push = |values: &mut Vec<SqlValue>, v: SqlValue| {
            values.push(v);
            ph(values.len())
        };
        let lists = [
            ("guid", &self.guids),
            ("type", &self.types),
            ("target_guid", &self.target_guids),
            ("space_guid", &self.space_guids),
            ("organization_guid", &self.organization_guids),
            ("actor_name", &self.actor_names),
        ];
        for (column, filter) in lists {
            if let Some(list) = filter {
                let marks: Vec<String> = list
                    .iter()
                    .map(|v| push(&mut values, SqlValue::Text(v.clone())))
                    .collect();
                parts.push(match marks.is_empty() {
                    true => "FALSE".into(),
                    false => format!("{column} IN ({})", marks.join(", ")),
                });
            }
        }
        if let Some(list) = self.target_guids_not.as_ref().filter(|l| !l.is_empty()) {
            let marks: Vec<String> = list
                .iter()
                .map(|v| push(&mut values, SqlValue::Text(v.clone())))
                .collect();
            parts.push(format!("target_guid NOT IN ({})", marks.join(", ")));
        }
        for (column, filter) in [("created_at", &self.created), ("updated_at", &self.updated)] {
            let Some(s) = filter else { continue };
            let (op, list) = match s {
                Seconds::AnyOf(l) => ("IN", l.clone()),
                Seconds::Lt(x) => ("<", vec![*x]),
                Seconds::Lte(x) => ("<=", vec![*x]),
                Seconds::Gt(x) => (">", vec![*x]),
                Seconds::Gte(x) => (">=", vec![*x]),
            };
            let marks: Vec<String> = list.iter().map(|v| push(&mut values, SqlValue::Int(*v))).collect();
            parts.push(match (op, marks.is_empty()) {
                ("IN", true) => "FALSE".into(),
                ("IN", false) => format!("{column} IN ({})", marks.join(", ")),
                _ => format!("{column} {op} {}", marks.join("")),
            });
        }
        let text = if parts.is_empty() {
            "TRUE".to_string()
        } else {
            parts.join(" AND ")
        };
        (text, values)
    }

    /// How many events match `condition` ([`condition`](Self::condition)'s text).
    pub(super) fn count_sql(condition: &str) -> String {
        format!("SELECT count(*) FROM sgbridge_audit_events WHERE {condition}")
    }

    /// The page of events matching `condition`, in this query's order.
    pub(super) fn select_sql(&self, condition: &str) -> String {
        format!(
            "SELECT {COLUMNS} FROM sgbridge_audit_events WHERE {condition} ORDER BY {} LIMIT {} OFFSET {}",
            self.order_sql(),
            i64::try_from(self.limit).unwrap_or(i64::MAX),
            i64::try_from(self.offset).unwrap_or(i64::MAX),
        )
    }

    /// The SQL ordering for this query.
    fn order_sql(&self) -> &'static str {
        match (self.order, self.descending) {
            (OrderBy::Written, false) => "seq ASC",
            (OrderBy::Written, true) => "seq DESC",
            (OrderBy::CreatedAt, false) => "created_at ASC, guid ASC",
            (OrderBy::CreatedAt, true) => "created_at DESC, guid DESC",
            (OrderBy::UpdatedAt, false) => "updated_at ASC, guid ASC",
            (OrderBy::UpdatedAt, true) => "updated_at DESC, guid DESC",
        }
    }
}

/// A parameter of a built SQL condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SqlValue {
    Text(String),
    Int(i64),
}

/// The columns every engine's table has, in this order.
pub(super) const COLUMNS: &str = "guid, type, created_at, updated_at, actor_guid, actor_type, actor_name, \
     target_guid, target_type, target_name, space_guid, organization_guid, data, request_id";

/// The statement a group commit runs, in its transaction, for each task it
/// ends: the pending event of the task's request takes the task's outcome
/// (`applied`, `failed`). So with the embedded backend on SQLite or
/// PostgreSQL the change and its event commit together; the completion
/// after the answer adds what changed. `json_set` is SQLite's; PostgreSQL
/// merges jsonb. A target not known when the intent was written (a
/// create's new group) is the commit's one group. Placeholders: request
/// id, outcome, unix time, the group's id and name (empty: more than one).
pub(super) fn settle_sql(postgres: bool) -> &'static str {
    if postgres {
        "UPDATE sgbridge_audit_events
         SET data = (data::jsonb || jsonb_build_object('outcome', $2::text, 'committed_with_change', true))::text,
             updated_at = $3,
             target_guid = CASE WHEN target_guid = '' THEN $4 ELSE target_guid END,
             target_name = CASE WHEN target_name = '' THEN $5 ELSE target_name END
         WHERE request_id = $1 AND data::jsonb->>'outcome' = 'pending'"
    } else {
        "UPDATE sgbridge_audit_events
         SET data = json_set(data, '$.outcome', ?2, '$.committed_with_change', json('true')), updated_at = ?3,
             target_guid = CASE WHEN target_guid = '' THEN ?4 ELSE target_guid END,
             target_name = CASE WHEN target_name = '' THEN ?5 ELSE target_name END
         WHERE request_id = ?1 AND json_extract(data, '$.outcome') = 'pending'"
    }
}

/// The one group a commit changes, as (id, name); empty when it changes
/// none or several.
pub(super) fn the_group(changes: &[super::GroupChange]) -> (String, String) {
    match changes {
        [super::GroupChange::Put { group, .. }] => (group.id().to_string(), group.name().to_string()),
        [super::GroupChange::Gone { id, .. }] => (id.to_string(), String::new()),
        _ => (String::new(), String::new()),
    }
}

/// The (request id, outcome) of each task a commit ends that a request started.
pub(super) fn settled(tasks: &[crate::model::Task]) -> Vec<(String, &'static str)> {
    use crate::model::TaskState;
    tasks
        .iter()
        .filter_map(|t| {
            let outcome = match t.state {
                TaskState::Finished => "applied",
                TaskState::Error => "failed",
                _ => return None,
            };
            let id = t.request_id.as_ref().filter(|r| !r.is_empty())?;
            Some((id.clone(), outcome))
        })
        .collect()
}

/// The statements that forget old events: those created before the first
/// placeholder, then those written before the newest `keep` (the second).
/// Two statements, so each uses its own index (`created_at`; `seq`).
pub(super) const SWEEP_SQL: [&str; 2] = [
    "DELETE FROM sgbridge_audit_events WHERE created_at < $1",
    "DELETE FROM sgbridge_audit_events WHERE seq <= (SELECT max(seq) FROM sgbridge_audit_events) - $1",
];

/// The statement that writes an event or completes the one with its guid
/// (its `created_at` and place kept); `ph(n)` writes the n-th placeholder.
pub(super) fn upsert_sql(ph: &dyn Fn(usize) -> String) -> String {
    let marks: Vec<String> = (1..=14).map(ph).collect();
    format!(
        "INSERT INTO sgbridge_audit_events ({COLUMNS}) VALUES ({})
         ON CONFLICT (guid) DO UPDATE SET type = excluded.type, updated_at = excluded.updated_at,
           actor_guid = excluded.actor_guid, actor_type = excluded.actor_type,
           actor_name = excluded.actor_name, target_guid = excluded.target_guid,
           target_type = excluded.target_type, target_name = excluded.target_name,
           space_guid = excluded.space_guid, organization_guid = excluded.organization_guid,
           data = excluded.data, request_id = excluded.request_id",
        marks.join(", ")
    )
}

/// Where audit events are kept.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Writes the event, or replaces the one with its guid (keeping its
    /// place in time and its `created_at`).
    async fn put(&self, event: &AuditEvent) -> Result<(), StoreError>;

    /// Forgets an event (an intent whose change did not happen).
    async fn discard(&self, guid: &str) -> Result<(), StoreError>;

    async fn get(&self, guid: &str) -> Result<Option<AuditEvent>, StoreError>;

    /// The events the query selects: (how many match in all, the slice).
    async fn list(&self, query: &EventQuery) -> Result<(u64, Vec<AuditEvent>), StoreError>;

    /// Forgets events created before `before` (unix seconds), and the
    /// oldest written past the newest `keep`; how many.
    async fn sweep(&self, before: i64, keep: u64) -> Result<u64, StoreError>;

    /// Events written after cursor `after` (0: from the first), in the
    /// order they were written, at most `limit`, with the cursor of the
    /// last: `store export` reads them a page at a time.
    async fn page(&self, after: i64, limit: usize) -> Result<(Vec<AuditEvent>, i64), StoreError>;
}

/// Events in this process's memory: a ring of the newest `capacity`.
pub struct MemoryAudit {
    ring: Mutex<Ring>,
    capacity: usize,
}

#[derive(Default)]
struct Ring {
    /// In written order (`seq` ascending).
    events: VecDeque<(u64, AuditEvent)>,
    /// Each event's `seq`, by guid: a completion finds its intent without a
    /// scan of the ring (a scan per write was most of a write's time).
    by_guid: std::collections::HashMap<String, u64>,
    seq: u64,
}

impl Ring {
    /// Where the event with this guid is in `events`.
    fn position(&self, guid: &str) -> Option<usize> {
        let seq = *self.by_guid.get(guid)?;
        self.events.binary_search_by_key(&seq, |(s, _)| *s).ok()
    }

    /// Keeps the events `keep` accepts, and the index with them.
    fn retain(&mut self, keep: impl Fn(&AuditEvent) -> bool) {
        let by_guid = &mut self.by_guid;
        self.events.retain(|(_, e)| {
            let kept = keep(e);
            if !kept {
                by_guid.remove(&e.guid);
            }
            kept
        });
    }

    fn pop_front(&mut self) {
        if let Some((_, gone)) = self.events.pop_front() {
            self.by_guid.remove(&gone.guid);
        }
    }
}

impl MemoryAudit {
    pub fn new(capacity: usize) -> MemoryAudit {
        MemoryAudit {
            ring: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl AuditLog for MemoryAudit {
    async fn put(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let mut ring = self.ring();
        if let Some(at) = ring.position(&event.guid) {
            let kept = &mut ring.events[at].1;
            let created_at = kept.created_at;
            *kept = event.clone();
            kept.created_at = created_at;
            return Ok(());
        }
        ring.seq += 1;
        let seq = ring.seq;
        ring.by_guid.insert(event.guid.clone(), seq);
        ring.events.push_back((seq, event.clone()));
        while ring.events.len() > self.capacity {
            ring.pop_front();
        }
        Ok(())
    }

    async fn discard(&self, guid: &str) -> Result<(), StoreError> {
        let mut ring = self.ring();
        if let Some(at) = ring.position(guid) {
            ring.events.remove(at);
            ring.by_guid.remove(guid);
        }
        Ok(())
    }

    async fn get(&self, guid: &str) -> Result<Option<AuditEvent>, StoreError> {
        let ring = self.ring();
        Ok(ring.position(guid).map(|at| ring.events[at].1.clone()))
    }

    async fn list(&self, q: &EventQuery) -> Result<(u64, Vec<AuditEvent>), StoreError> {
        let ring = self.ring();
        let mut hits: Vec<&(u64, AuditEvent)> = ring.events.iter().filter(|(_, e)| q.matches(e)).collect();
        match q.order {
            OrderBy::Written => hits.sort_by_key(|(seq, _)| *seq),
            OrderBy::CreatedAt => hits.sort_by(|(_, a), (_, b)| (a.created_at, &a.guid).cmp(&(b.created_at, &b.guid))),
            OrderBy::UpdatedAt => hits.sort_by(|(_, a), (_, b)| (a.updated_at, &a.guid).cmp(&(b.updated_at, &b.guid))),
        }
        if q.descending {
            hits.reverse();
        }
        let total = hits.len() as u64;
        let page = hits
            .into_iter()
            .skip(usize::try_from(q.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(q.limit).unwrap_or(usize::MAX))
            .map(|(_, e)| e.clone())
            .collect();
        Ok((total, page))
    }

    async fn page(&self, after: i64, limit: usize) -> Result<(Vec<AuditEvent>, i64), StoreError> {
        let ring = self.ring();
        let page: Vec<&(u64, AuditEvent)> = ring
            .events
            .iter()
            .filter(|(seq, _)| i64::try_from(*seq).unwrap_or(i64::MAX) > after)
            .take(limit)
            .collect();
        let last = page
            .last()
            .map_or(after, |(seq, _)| i64::try_from(*seq).unwrap_or(i64::MAX));
        Ok((page.into_iter().map(|(_, e)| e.clone()).collect(), last))
    }

    async fn sweep(&self, before: i64, keep: u64) -> Result<u64, StoreError> {
        let mut ring = self.ring();
        let was = ring.events.len();
        ring.retain(|e| e.created_at >= before);
        let past = ring
            .events
            .len()
            .saturating_sub(usize::try_from(keep).unwrap_or(usize::MAX));
        for _ in 0..past {
            ring.pop_front();
        }
        Ok((was - ring.events.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(guid: &str, kind: &str, at: i64, target: &str) -> AuditEvent {
        AuditEvent {
            guid: guid.into(),
            kind: kind.into(),
            created_at: at,
            updated_at: at,
            actor: Party {
                guid: "u1".into(),
                kind: "user".into(),
                name: "alice".into(),
            },
            target: Party {
                guid: target.into(),
                kind: "security_group".into(),
                name: "web".into(),
            },
            space_guid: String::new(),
            organization_guid: String::new(),
            data: "{}".into(),
            request_id: String::new(),
        }
    }

    #[tokio::test]
    async fn memory_keeps_the_newest() {
        let log = MemoryAudit::new(2);
        for (i, g) in ["a", "b", "c"].iter().enumerate() {
            log.put(&event(g, "t", i as i64, "g")).await.unwrap();
        }
        let q = EventQuery {
            limit: 10,
            ..EventQuery::default()
        };
        let (total, events) = log.list(&q).await.unwrap();
        assert_eq!(total, 2);
        assert_eq!(events[0].guid, "b");
        // The index follows evictions, discards and completions.
        assert_eq!(log.get("a").await.unwrap(), None);
        log.discard("b").await.unwrap();
        log.put(&event("d", "t", 9, "g")).await.unwrap();
        log.put(&event("c", "done", 10, "g")).await.unwrap();
        let c = log.get("c").await.unwrap().unwrap();
        assert_eq!((c.kind.as_str(), c.created_at), ("done", 2));
        let guids: Vec<String> = log.list(&q).await.unwrap().1.into_iter().map(|e| e.guid).collect();
        assert_eq!(guids, ["c", "d"]);
        log.put(&event("e", "t", 11, "g")).await.unwrap();
        assert_eq!(log.get("c").await.unwrap(), None);
        assert!(log.get("e").await.unwrap().is_some());
    }

    #[test]
    fn conditions_number_their_placeholders() {
        let q = EventQuery {
            types: Some(vec!["a".into(), "b".into()]),
            created: Some(Seconds::Gt(5)),
            ..EventQuery::default()
        };
        let (text, values) = q.condition(&|n| format!("${n}"));
        assert_eq!(text, "type IN ($1, $2) AND created_at > $3");
        assert_eq!(values.len(), 3);
        assert_eq!(EventQuery::default().condition(&|n| format!("?{n}")).0, "TRUE");
    }
}
