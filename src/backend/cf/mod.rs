//! The Cloud Controller backend: CF security groups stored natively (the
//! compact shape) in a Cloud Foundry foundation, through its v3 API — the
//! API whose changes the policy server's ASG syncer notices at once.
//!
//! Reads follow `pagination.next` (only on the Cloud Controller itself);
//! writes are synchronous (`Write::Done`); a delete waits on CC's job; space
//! bindings are changed through the relationship endpoints; CC's error
//! details reach the caller. The gateway authenticates with a bearer token
//! from the environment or a UAA client grant (`token`). CF groups live in
//! one scope (`cf.project_id`/`cf.region_id`); others hold no groups.

mod token;

use super::api::{Answer, ApiClient, ApiSettings};
use super::{Backend, BackendError, Cx, ErrorKind, Result, Write};
use crate::config::CfBackendConfig;
use crate::dialect::cf::render::CfRule;
use crate::dialect::cf::v3::error::V3ErrorBody;
use crate::dialect::cf::v3::wire::{guids, GloballyEnabled, Job, Page, SecurityGroup};
use crate::dialect::cf::{self, CfFlags};
use crate::model::{
    CfAttrs, CompactContent, Content, Group, GroupId, GroupMeta, GroupPatch, Lifecycle, NewContent, NewGroup,
    PatchContent, Rule, Scope, Shape, Uuid,
};
use async_trait::async_trait;
use bytes::Bytes;
use http::Method;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use token::TokenSource;

/// How long a delete may wait on CC's job.
const JOB_WAIT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct CloudController {
    client: Arc<ApiClient>,
    token: Arc<TokenSource>,
    scope: Scope,
    /// How rules are written for this foundation (its feature flags).
    flags: CfFlags,
}

/// CC's v3 error body: every `detail`, joined.
fn error_message(body: &[u8]) -> Option<String> {
    let b: V3ErrorBody = serde_json::from_slice(body).ok()?;
    let details: Vec<String> = b.errors.into_iter().map(|e| e.detail).collect();
    (!details.is_empty()).then(|| details.join(", "))
}

fn wrong_shape() -> BackendError {
    BackendError::wrong_shape("cf")
}

fn unreadable(what: impl std::fmt::Display) -> BackendError {
    BackendError::new(
        ErrorKind::Upstream,
        format!("unreadable Cloud Controller group: {what}"),
    )
}

/// A stable version of a group read from CC: a hash of its whole object.
fn revision(raw: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in raw {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h >> 1
}

fn to_group(object: &RawValue) -> Result<Group> {
    let g: SecurityGroup<Box<RawValue>> = serde_json::from_str(object.get()).map_err(unreadable)?;
    let id = Uuid::parse(&g.guid).ok_or_else(|| unreadable(format!("guid {:?}", g.guid)))?;
    // CC validated these rules when it stored them: read them with every form enabled.
    let all = CfFlags {
        comma_delimited_destinations: true,
        ipv6: true,
    };
    let rules = cf::body::parse_rules(g.rules.get().as_bytes(), all).map_err(|e| unreadable(format!("rules: {e}")))?;
    let set = |list: &[crate::dialect::cf::v3::wire::Guid]| -> BTreeSet<Uuid> {
        list.iter().filter_map(|s| Uuid::parse(&s.guid)).collect()
    };
    let time = |t: &str| crate::dialect::gcore::time::parse(t).ok_or_else(|| unreadable(format!("timestamp {t:?}")));
    Ok(Group {
        meta: GroupMeta {
            id,
            name: g.name,
            description: String::new(),
            region: "cf".into(),
            revision: revision(object.get().as_bytes()),
            created_at: time(&g.created_at)?,
            updated_at: time(&g.updated_at)?,
        },
        content: Content::Compact(std::sync::Arc::new(CompactContent {
            rules,
            attrs: CfAttrs {
                running_default: g.globally_enabled.running,
                staging_default: g.globally_enabled.staging,
                spaces: set(&g.relationships.running_spaces.data),
                staging_spaces: set(&g.relationships.staging_spaces.data),
            },
        })),
    })
}

fn rel(lifecycle: Lifecycle) -> &'static str {
    match lifecycle {
        Lifecycle::Running => "running_spaces",
        Lifecycle::Staging => "staging_spaces",
    }
}

impl CloudController {
    pub fn new(
        cfg: &CfBackendConfig,
        env: &crate::config::Env,
        scope: Scope,
        flags: CfFlags,
    ) -> std::result::Result<Self, String> {
        let token = TokenSource::new(cfg, env)?;
        let settings = ApiSettings {
            name: "Cloud Controller",
            base: &cfg.api_url,
            timeout: Duration::from_secs(cfg.request_timeout_s),
            max_connections: cfg.max_connections,
            ca_file: cfg.ca_file.as_deref(),
            env,
            error_message,
        };
        Ok(CloudController {
            client: Arc::new(ApiClient::new(settings, token.secrets())?),
            token: Arc::new(token),
            scope,
            flags,
        })
    }

    /// One call, fetching a new token once if CC refuses the current one.
    async fn call(&self, cx: &Cx, method: Method, target: &str, body: Option<&Value>) -> Result<Answer> {
        let body = body
            .map(|b| serde_json::to_vec(b).map(|v| (Bytes::from(v), "application/json")))
            .transpose()
            .map_err(|e| BackendError::new(ErrorKind::Upstream, format!("cannot encode request: {e}")))?;
        let auth = self.token.header(false).await?;
        match self.client.call(cx, method.clone(), target, &auth, body.clone()).await {
            Err(e) if e.status == Some(401) => {
                let auth = self.token.header(true).await?;
                self.client.call(cx, method, target, &auth, body).await
            }
            other => other,
        }
    }

    fn rules_json(&self, rules: &[Rule]) -> Result<Vec<CfRule>> {
        cf::render::rules(rules, self.flags).map_err(|errs| {
            BackendError::new(
                ErrorKind::Invalid,
                format!("a rule CF cannot hold: rule number {}", errs.first().map_or(0, |e| e.0)),
            )
        })
    }

    fn ours(&self, scope: Scope) -> Result<()> {
        if scope == self.scope {
            Ok(())
        } else {
            Err(BackendError::not_found("Security group not found"))
        }
    }

    /// Changes the spaces bound in one lifecycle from `now` to `want`.
    async fn rebind(
        &self,
        cx: &Cx,
        id: &GroupId,
        lifecycle: Lifecycle,
        now: &BTreeSet<Uuid>,
        want: &BTreeSet<Uuid>,
    ) -> Result<()> {
        let added: Vec<&str> = want.difference(now).map(Uuid::as_str).collect();
        let path = format!("/v3/security_groups/{id}/relationships/{}", rel(lifecycle));
        if !added.is_empty() {
            self.call(cx, Method::POST, &path, Some(&json!({ "data": guids(added) })))
                .await?;
        }
        for gone in now.difference(want) {
            self.call(cx, Method::DELETE, &format!("{path}/{gone}"), None).await?;
        }
        Ok(())
    }

    /// Waits until CC's delete job completes.
    async fn wait_job(&self, cx: &Cx, location: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + JOB_WAIT;
        loop {
            let answer = self.call(cx, Method::GET, location, None).await?;
            let job: Job = self.client.parse(&answer, "GET /v3/jobs")?;
            match job.state.as_str() {
                "COMPLETE" => return Ok(()),
                "FAILED" => {
                    let detail: Vec<String> = job.errors.into_iter().map(|e| e.detail).collect();
                    return Err(BackendError::new(
                        ErrorKind::Upstream,
                        format!("the Cloud Controller's delete job failed: {}", detail.join(", ")),
                    ));
                }
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(BackendError::new(
                        ErrorKind::Timeout,
                        format!("the Cloud Controller's delete job {} did not finish in time", job.guid),
                    )
                    .uncertain())
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
}

#[derive(Serialize)]
struct ToManyBody {
    data: Vec<crate::dialect::cf::v3::wire::Guid>,
}

#[async_trait]
impl Backend for CloudController {
    fn name(&self) -> &'static str {
        "cf"
    }

    fn shape(&self) -> Shape {
        Shape::Compact
    }

    fn serves(&self, scope: Scope) -> bool {
        scope == self.scope
    }

    async fn list(&self, cx: &Cx, scope: Scope, name: Option<&str>) -> Result<Vec<Group>> {
        if scope != self.scope {
            return Ok(Vec::new());
        }
        let mut target = "/v3/security_groups?per_page=5000".to_string();
        if let Some(n) = name {
            // CC splits `names` on commas: a name holding one cannot be asked for exactly.
            if !n.contains(',') {
                target.push_str(&format!("&names={}", crate::urlenc::encode(n)));
            }
        }
        let mut out = Vec::new();
        let mut next = Some(target);
        while let Some(t) = next.take() {
            let answer = self.call(cx, Method::GET, &t, None).await?;
            let page: Page<Box<RawValue>> = self.client.parse(&answer, "GET /v3/security_groups")?;
            for object in &page.resources {
                out.push(to_group(object)?);
            }
            next = page.pagination.next.map(|l| l.href);
        }
        if let Some(n) = name {
            out.retain(|g| g.name() == n);
        }
        Ok(out)
    }

    async fn get(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<Group> {
        self.ours(scope)?;
        let answer = self
            .call(cx, Method::GET, &format!("/v3/security_groups/{id}"), None)
            .await?;
        let raw: Box<RawValue> = self.client.parse(&answer, "GET /v3/security_groups/:guid")?;
        to_group(&raw)
    }

    async fn create(&self, cx: &Cx, scope: Scope, group: NewGroup) -> Result<Write> {
        self.ours(scope)?;
        let NewContent::Compact { rules, attrs } = &group.content else {
            return Err(wrong_shape());
        };
        let mut body = json!({
            "name": group.name,
            "rules": self.rules_json(rules)?,
            "globally_enabled": GloballyEnabled { running: attrs.running_default, staging: attrs.staging_default },
        });
        let mut relationships = serde_json::Map::new();
        for (lifecycle, set) in [
            (Lifecycle::Running, &attrs.spaces),
            (Lifecycle::Staging, &attrs.staging_spaces),
        ] {
            if !set.is_empty() {
                let data = ToManyBody {
                    data: guids(set.iter().map(Uuid::as_str)),
                };
                relationships.insert(rel(lifecycle).into(), json!(data));
            }
        }
        if !relationships.is_empty() {
            body["relationships"] = Value::Object(relationships);
        }
        let answer = self.call(cx, Method::POST, "/v3/security_groups", Some(&body)).await?;
        let raw: Box<RawValue> = self.client.parse(&answer, "POST /v3/security_groups")?;
        Ok(Write::Done(Some(to_group(&raw)?.meta.id)))
    }

    async fn update(&self, cx: &Cx, scope: Scope, id: &GroupId, patch: GroupPatch) -> Result<Write> {
        let PatchContent::Compact { rules, attrs } = &patch.content else {
            return Err(wrong_shape());
        };
        let current = self.get(cx, scope, id).await?;
        let Content::Compact(now) = &current.content else {
            return Err(wrong_shape());
        };
        let mut body = serde_json::Map::new();
        if let Some(name) = &patch.name {
            body.insert("name".into(), json!(name));
        }
        if let Some(rules) = rules {
            body.insert("rules".into(), json!(self.rules_json(rules)?));
        }
        if let Some(a) = attrs {
            if (a.running_default, a.staging_default) != (now.attrs.running_default, now.attrs.staging_default) {
                body.insert(
                    "globally_enabled".into(),
                    json!(GloballyEnabled {
                        running: a.running_default,
                        staging: a.staging_default
                    }),
                );
            }
        }
        if !body.is_empty() {
            self.call(
                cx,
                Method::PATCH,
                &format!("/v3/security_groups/{id}"),
                Some(&Value::Object(body)),
            )
            .await?;
        }
        if let Some(a) = attrs {
            for lifecycle in [Lifecycle::Running, Lifecycle::Staging] {
                self.rebind(cx, id, lifecycle, now.attrs.spaces(lifecycle), a.spaces(lifecycle))
                    .await
                    .map_err(|e| BackendError {
                        message: format!(
                            "the group was changed, but its {} could not be: {}",
                            rel(lifecycle),
                            e.message
                        ),
                        ..e
                    })?;
            }
        }
        Ok(Write::Done(None))
    }

    async fn delete(&self, cx: &Cx, scope: Scope, id: &GroupId) -> Result<()> {
        self.ours(scope)?;
        let answer = self
            .call(cx, Method::DELETE, &format!("/v3/security_groups/{id}"), None)
            .await?;
        match answer.headers.get(http::header::LOCATION).and_then(|v| v.to_str().ok()) {
            Some(location) => self.wait_job(cx, location).await,
            None => Ok(()),
        }
    }

    /// Reachable and accepting the gateway's credentials.
    async fn ready(&self, cx: &Cx) -> Result<()> {
        self.call(cx, Method::GET, "/v3/security_groups?per_page=1", None)
            .await
            .map(|_| ())
    }
}
