//! The Gcore backend: the Gcore Cloud API over HTTPS.
//!
//! Writes use the v2 endpoints, reads and group deletion the v1 ones, tasks
//! `GET /cloud/v1/tasks[/{id}]`. Several pending tasks of one scope are
//! asked about in one list call (pending tasks of the scope), with single
//! reads only for tasks that left the list; an upstream without the list
//! call is polled task by task. The caller's request id is forwarded.

use super::api::{Answer, ApiClient, ApiSettings};
use super::{Backend, BackendError, Cx, ErrorKind, Result, Write};
use crate::config::GcoreBackendConfig;
use crate::dialect::gcore::rule::to_spec;
use crate::dialect::gcore::wire::{group_in, task_type, GroupOut, ListOut, TaskIds, TaskOut};
use crate::dialect::gcore::RuleSpec;
use crate::model::{
    Atom, Group, GroupId, GroupPatch, NewContent, NewGroup, PatchContent, Scope, Shape, TagPatch, Task, TaskId,
    TaskQuery, TaskState, Uuid,
};
use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderValue, Method};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Page size for listing (Gcore's maximum).
const PAGE: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the Gcore API key is read from the environment variable {0}, which is not set")]
    MissingKey(String),
    #[error("the Gcore API key in {0} is not a valid header value")]
    BadKey(String),
    #[error("{0}")]
    Client(String),
}

#[derive(Clone)]
pub struct GcoreHttp {
    client: Arc<ApiClient>,
    auth: HeaderValue,
    /// Set once the upstream refuses `GET /cloud/v1/tasks`: poll task by task.
    no_task_list: Arc<AtomicBool>,
}

/// Gcore's error body: `{"exception_class", "message", …}`.
fn error_message(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<crate::dialect::gcore::error::GcoreErrorBody>(body)
        .ok()
        .map(|b| b.message)
}

/// The v2 create body; `rules` omitted means Gcore's default template.
#[derive(Serialize)]
struct CreateBody<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rules: Option<Vec<RuleSpec>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct PatchBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rules: Option<Vec<RuleSpec>>,
    /// Absent: keep; `null`: remove all; a map: merge patch.
    #[serde(skip_serializing_if = "Tags::is_keep")]
    tags: Tags<'a>,
}

enum Tags<'a> {
    Keep,
    Null,
    Merge(BTreeMap<&'a str, Option<&'a str>>),
}

impl Tags<'_> {
    fn is_keep(&self) -> bool {
        matches!(self, Tags::Keep)
    }
}

impl Serialize for Tags<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Tags::Keep | Tags::Null => s.serialize_none(),
            Tags::Merge(m) => m.serialize(s),
        }
    }
}

fn wrong_shape() -> BackendError {
    BackendError::new(ErrorKind::Unsupported, "Gcore stores groups in its own (atomic) shape")
}

fn group_path(scope: Scope, id: &GroupId) -> String {
    format!("/cloud/v1/securitygroups/{}/{}/{id}", scope.project_id, scope.region_id)
}

fn v2_path(scope: Scope) -> String {
    format!("/cloud/v2/security_groups/{}/{}", scope.project_id, scope.region_id)
}

impl GcoreHttp {
    pub fn new(cfg: &GcoreBackendConfig, env: &crate::config::Env) -> std::result::Result<Self, SetupError> {
        let key = env
            .var(&cfg.api_key_env)
            .ok_or_else(|| SetupError::MissingKey(cfg.api_key_env.clone()))?;
        let key = key.trim().to_string();
        let auth =
            HeaderValue::from_str(&format!("APIKey {key}")).map_err(|_| SetupError::BadKey(cfg.api_key_env.clone()))?;
        let settings = ApiSettings {
            name: "Gcore API",
            base: &cfg.base_url,
            timeout: std::time::Duration::from_secs(cfg.request_timeout_s),
            max_connections: cfg.max_connections,
            ca_file: cfg.ca_file.as_deref(),
            env,
            error_message,
        };
        Ok(GcoreHttp {
            client: Arc::new(ApiClient::new(settings, vec![key]).map_err(SetupError::Client)?),
            auth,
            no_task_list: Arc::default(),
        })
    }

    async fn call(&self, cx: &Cx, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Answer> {
        let body = body.map(|b| (Bytes::from(b), "application/json"));
        self.client.call(cx, method, path, &self.auth, body).await
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        cx: &Cx,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T> {
        let answer = self.call(cx, method, path, body).await?;
        self.client.parse(&answer, path.split('?').next().unwrap_or(path))
    }

    async fn write<B: Serialize>(&self, cx: &Cx, method: Method, path: &str, body: Option<&B>) -> Result<Write> {
        let bytes = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| BackendError::new(ErrorKind::Upstream, format!("cannot encode request: {e}")))?;
        let ids: TaskIds = self.json(cx, method, path, bytes).await?;
        task_ids(ids).map(Write::Pending)
    }

    /// One page of the task list.
    async fn task_page(&self, cx: &Cx, query: &TaskQuery) -> Result<ListOut<TaskOut>> {
        self.json(cx, Method::GET, &task_list_path(query), None).await
    }

    /// States of several tasks: the pending ones from the scope's pending
    /// list; those that left it from one list of ended tasks created since
    /// the earliest one seen (when two or more left), the rest one by one —
    /// so the requests per round follow the pages, not the tasks that ended.
    async fn states_from_list(&self, cx: &Cx, scope: Scope, ids: &[TaskId], seen: &super::Seen) -> Result<Vec<Task>> {
        let pending = TaskQuery {
            project_ids: vec![scope.project_id],
            region_ids: vec![scope.region_id],
            states: vec![TaskState::New, TaskState::Running],
            limit: PAGE,
            ..TaskQuery::default()
        };
        let wanted: HashSet<&TaskId> = ids.iter().collect();
        let (mut found, pages) = self.listed(cx, scope, pending, &wanted).await?;
        let listed: HashSet<TaskId> = found.iter().map(|t| t.id.clone()).collect();
        let mut left: HashSet<&TaskId> = wanted.iter().copied().filter(|id| !listed.contains(*id)).collect();
        if let (true, Some(since)) = (left.len() > 1, seen.values().min().copied()) {
            let ended = TaskQuery {
                project_ids: vec![scope.project_id],
                region_ids: vec![scope.region_id],
                states: vec![TaskState::Finished, TaskState::Error],
                // Second resolution on the wire: a second's margin.
                from: Some(since - chrono::Duration::seconds(1)),
                limit: PAGE,
                ..TaskQuery::default()
            };
            for task in self.listed(cx, scope, ended, &left).await?.0 {
                left.remove(&task.id);
                found.push(task);
            }
            // Over several pages, tasks ending between two pages shift the
            // offsets and hide pending ones: a task seen before and found in
            // neither list is looked for again next round, not read alone.
            if pages > 1 {
                left.retain(|id| !seen.contains_key(*id));
            }
        }
        // Not listed either way (not listed yet, or older): read them.
        for id in ids.iter().filter(|id| left.contains(id)) {
            match self.task(cx, id).await {
                Ok(t) => found.push(t),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    /// The tasks of `wanted` among every page of `query`, and how many
    /// pages there were.
    async fn listed(
        &self,
        cx: &Cx,
        scope: Scope,
        mut query: TaskQuery,
        wanted: &HashSet<&TaskId>,
    ) -> Result<(Vec<Task>, usize)> {
        let (mut found, mut pages) = (Vec::new(), 0);
        loop {
            pages += 1;
            let page = self.task_page(cx, &query).await?;
            let got = page.results.len();
            for t in page.results {
                let task = t.into_task(scope).map_err(upstream)?;
                if wanted.contains(&task.id) {
                    found.push(task);
                }
            }
            query.offset += got;
            if got == 0 || query.offset >= page.count {
                return Ok((found, pages));
            }
        }
    }
}

fn upstream(message: String) -> BackendError {
    BackendError::new(ErrorKind::Upstream, format!("unreadable Gcore task: {message}"))
}

fn state_name(s: TaskState) -> &'static str {
    match s {
        TaskState::New => "NEW",
        TaskState::Running => "RUNNING",
        TaskState::Finished => "FINISHED",
        TaskState::Error => "ERROR",
    }
}

fn task_list_path(q: &TaskQuery) -> String {
    let mut params: Vec<(String, String)> = Vec::new();
    params.extend(q.project_ids.iter().map(|p| ("project_id".into(), p.to_string())));
    params.extend(q.region_ids.iter().map(|r| ("region_id".into(), r.to_string())));
    params.extend(q.states.iter().map(|s| ("state".into(), state_name(*s).into())));
    if let Some(k) = &q.kind {
        params.push(("task_type".into(), task_type(k).into()));
    }
    let stamp = |t: &chrono::DateTime<chrono::Utc>| crate::timefmt::write_utc(t, "");
    if let Some(f) = &q.from {
        params.push(("from_timestamp".into(), stamp(f)));
    }
    if let Some(t) = &q.to {
        params.push(("to_timestamp".into(), stamp(t)));
    }
    if let Some(a) = q.acknowledged {
        params.push(("is_acknowledged".into(), a.to_string()));
    }
    params.push(("order_by".into(), if q.descending { "desc" } else { "asc" }.into()));
    params.push(("limit".into(), q.limit.to_string()));
    params.push(("offset".into(), q.offset.to_string()));
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::urlenc::encode(v)))
        .collect();
    format!("/cloud/v1/tasks?{}", query.join("&"))
}

fn task_ids(ids: TaskIds) -> Result<Vec<Uuid>> {
    ids.tasks
        .iter()
        .map(|t| {
            Uuid::parse(t).ok_or_else(|| {
                BackendError::new(ErrorKind::Upstream, format!("Gcore returned an invalid task id {t:?}"))
            })
        })
        .collect()
}

fn to_model(g: &GroupOut) -> Result<Group> {
    group_in(g).map_err(|e| BackendError::new(ErrorKind::Upstream, format!("Gcore group {}: {e}", g.id)))
}

#[async_trait]
impl Backend for GcoreHttp {
    fn name(&self) -> &'static str {
        "gcore"
    }

    fn shape(&self) -> Shape {
        Shape::Atomic
    }

    async fn list(&self, cx: &Cx, scope: Scope, name: Option<&str>) -> Result<Vec<Group>> {
        let mut out = Vec::new();
        loop {
            let mut path = format!(
                "/cloud/v1/securitygroups/{}/{}?limit={PAGE}&offset={}",
                scope.project_id,
                scope.region_id,
                out.len()
            );
            if let Some(n) = name {
                path.push_str("&name=");
                path.push_str(&crate::urlenc::encode(n));
            }
            let page: ListOut<GroupOut> = self.json(cx, Method::GET, &path, None).await?;
            let got = page.results.len();
            for g in &page.results {
                out.push(to_model(g)?);
            }
            if got < PAGE || out.len() >= page.count {
                return Ok(out);
            }
        }
    }

    async fn get(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<Group> {
        let g: GroupOut = self.json(cx, Method::GET, &group_path(scope, id), None).await?;
        to_model(&g)
    }

    async fn create(&self, cx: &Cx, scope: Scope, group: NewGroup) -> Result<Write> {
        let NewContent::Atomic { rules, tags } = &group.content else {
            return Err(wrong_shape());
        };
        let body = CreateBody {
            name: &group.name,
            description: group.description.as_deref(),
            rules: rules.as_ref().map(|r| r.iter().map(to_spec).collect()),
            tags: tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        };
        self.write(cx, Method::POST, &v2_path(scope), Some(&body)).await
    }

    async fn update(&self, cx: &Cx, scope: Scope, id: &GroupId, patch: GroupPatch) -> Result<Write> {
        let PatchContent::Atomic { rules, tags } = &patch.content else {
            return Err(wrong_shape());
        };
        let tags = match tags {
            TagPatch::Keep => Tags::Keep,
            TagPatch::RemoveAll => Tags::Null,
            TagPatch::Merge(m) => Tags::Merge(m.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect()),
        };
        let body = PatchBody {
            name: patch.name.as_deref(),
            description: patch.description.as_deref(),
            rules: rules.as_ref().map(|r| r.iter().map(to_spec).collect()),
            tags,
        };
        let path = format!("{}/{id}", v2_path(scope));
        self.write(cx, Method::PATCH, &path, Some(&body)).await
    }

    async fn add_rule(&self, cx: &Cx, scope: Scope, id: &GroupId, rule: Atom) -> Result<Write> {
        let path = format!("{}/{id}/rules", v2_path(scope));
        self.write(cx, Method::POST, &path, Some(&to_spec(&rule))).await
    }

    async fn delete_rule(&self, cx: &Cx, scope: Scope, id: &GroupId, rule_id: &Uuid) -> Result<Write> {
        let path = format!("{}/{id}/rules/{rule_id}", v2_path(scope));
        self.write::<()>(cx, Method::DELETE, &path, None).await
    }

    async fn delete(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<()> {
        self.call(cx, Method::DELETE, &group_path(scope, id), None)
            .await
            .map(|_| ())
    }

    async fn task(&self, cx: &Cx, id: &TaskId) -> Result<Task> {
        let t: TaskOut = self
            .json(cx, Method::GET, &format!("/cloud/v1/tasks/{id}"), None)
            .await?;
        t.into_task(Scope {
            project_id: 0,
            region_id: 0,
        })
        .map_err(upstream)
    }

    async fn tasks(&self, cx: &Cx, query: &TaskQuery) -> Result<(usize, Vec<Task>)> {
        let page = self.task_page(cx, query).await?;
        let fallback = Scope {
            project_id: 0,
            region_id: 0,
        };
        let tasks = page
            .results
            .into_iter()
            .map(|t| t.into_task(fallback).map_err(upstream))
            .collect::<Result<Vec<_>>>()?;
        Ok((page.count, tasks))
    }

    async fn task_states(&self, cx: &Cx, scope: Scope, ids: &[TaskId], seen: &super::Seen) -> Result<Vec<Task>> {
        if ids.len() > 1 && !self.no_task_list.load(Ordering::Relaxed) {
            match self.states_from_list(cx, scope, ids, seen).await {
                Err(e) if matches!(e.status, Some(404 | 405 | 501)) => {
                    tracing::info!("the Gcore upstream has no task list; polling task by task");
                    self.no_task_list.store(true, Ordering::Relaxed);
                }
                other => return other,
            }
        }
        super::one_by_one(self, cx, ids).await
    }

    async fn acknowledge(&self, cx: &Cx, id: &TaskId) -> Result<Task> {
        let t: TaskOut = self
            .json(cx, Method::POST, &format!("/cloud/v1/tasks/{id}/acknowledge"), None)
            .await?;
        t.into_task(Scope {
            project_id: 0,
            region_id: 0,
        })
        .map_err(upstream)
    }

    async fn acknowledge_all(&self, cx: &Cx, project_id: Option<u64>, region_id: Option<u64>) -> Result<()> {
        let mut params = Vec::new();
        if let Some(p) = project_id {
            params.push(format!("project_id={p}"));
        }
        if let Some(r) = region_id {
            params.push(format!("region_id={r}"));
        }
        let mut path = "/cloud/v1/tasks/acknowledge_all".to_string();
        if !params.is_empty() {
            path = format!("{path}?{}", params.join("&"));
        }
        self.call(cx, Method::POST, &path, None).await.map(|_| ())
    }

    /// Reachable and accepting our key: any task list answer will do.
    async fn ready(&self, cx: &Cx) -> Result<()> {
        self.call(cx, Method::GET, "/cloud/v1/tasks?limit=1", None)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_bodies_say_keep_null_and_merge() {
        let body = PatchBody {
            name: None,
            description: None,
            rules: Some(vec![]),
            tags: Tags::Keep,
        };
        assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"rules":[]}"#);
        let body = PatchBody {
            name: Some("n"),
            description: None,
            rules: None,
            tags: Tags::Null,
        };
        assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"name":"n","tags":null}"#);
        let body = PatchBody {
            name: None,
            description: None,
            rules: None,
            tags: Tags::Merge(BTreeMap::from([("a", Some("1")), ("b", None)])),
        };
        assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"tags":{"a":"1","b":null}}"#);
    }

    #[test]
    fn task_list_queries_use_repeated_keys() {
        let q = TaskQuery {
            project_ids: vec![1],
            region_ids: vec![76],
            states: vec![TaskState::New, TaskState::Running],
            limit: 1000,
            ..TaskQuery::default()
        };
        assert_eq!(
            task_list_path(&q),
            "/cloud/v1/tasks?project_id=1&region_id=76&state=NEW&state=RUNNING&order_by=asc&limit=1000&offset=0"
        );
    }
}
