//! Each page: what it reads (the same service, store and registries the
//! APIs use) and the template it fills.

use super::figures;
use super::{html, Person};
use crate::backend::Cx;
use crate::model::{Content, Group, Scope, Task, TaskQuery, TaskState, Uuid};
use crate::server::audit::{cf_rules, gcore_rules};
use crate::server::http::{Ctx, Resp};
use crate::server::App;
use crate::store::audit::{AuditEvent, EventQuery, OrderBy, Seconds};
use askama::Template;
use http::StatusCode;
use serde_json::Value;

/// A page's failure: its status and what to say.
pub(super) type Failed = (StatusCode, String);

/// How often a refreshing page reloads itself.
const REFRESH_S: u64 = 10;

fn refresh(ctx: &Ctx) -> Option<u64> {
    (ctx.param("refresh") == Some("1")).then_some(REFRESH_S)
}

fn param<'a>(ctx: &'a Ctx, key: &'a str) -> &'a str {
    ctx.param(key).map_or("", str::trim)
}

fn cx(ctx: &Ctx, person: &Person) -> Cx {
    Cx {
        principal: person.name.clone(),
        ..Cx::new(ctx.request_id.clone())
    }
}

fn unavailable(e: impl std::fmt::Display) -> Failed {
    (StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    crate::timefmt::write_utc(&t, "Z")
}

fn unix_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(String::new, time)
}

/// A duration for people: `45 s`, `3 min 20 s`, `2 h 5 min`.
fn age(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// A rule's wire JSON in one line: `key value` for each field it has.
fn summary(rule: &Value) -> String {
    let Some(fields) = rule.as_object() else {
        return rule.to_string();
    };
    fields
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k} {s}"),
            other => format!("{k} {other}"),
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

#[derive(Template)]
#[template(path = "ui/login.html")]
struct LoginPage<'a> {
    title: &'a str,
    user: &'a str,
    refresh: Option<u64>,
    error: Option<&'a str>,
    username: &'a str,
}

/// The sign-in form, with what went wrong and the name typed.
pub(super) fn login_form(error: Option<&str>, username: &str, status: StatusCode) -> Resp {
    let page = LoginPage {
        title: "Sign in",
        user: "",
        refresh: None,
        error,
        username,
    };
    html(status, &page)
}

#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    user: &'a str,
    refresh: Option<u64>,
    message: &'a str,
}

pub(super) fn error(status: StatusCode, message: &str, user: &str) -> Resp {
    let title = status.canonical_reason().unwrap_or("Error");
    html(
        status,
        &ErrorPage {
            title,
            user,
            refresh: None,
            message,
        },
    )
}

pub(crate) struct TaskRow {
    id: String,
    kind: String,
    state: String,
    age: String,
    scope: String,
    request: String,
    error: String,
}

fn task_row(t: &Task, now: chrono::DateTime<chrono::Utc>) -> TaskRow {
    let until = t.finished_on.unwrap_or(now);
    TaskRow {
        id: t.id.to_string(),
        kind: format!("{:?}", t.kind),
        state: format!("{:?}", t.state).to_uppercase(),
        age: age(until - t.created_on),
        scope: t.scope.to_string(),
        request: t.request_id.clone().unwrap_or_default(),
        error: t.error.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "ui/overview.html")]
struct Overview<'a> {
    title: &'a str,
    user: &'a str,
    refresh: Option<u64>,
    backend: &'a str,
    backend_state: String,
    backend_class: &'a str,
    backend_latency: String,
    store: &'a str,
    store_state: String,
    store_class: &'a str,
    store_latency: String,
    replicas: String,
    in_flight: i64,
    waits: i64,
    requests: u64,
    request_rate: String,
    errors: u64,
    error_rate: String,
    wait_p50: String,
    wait_p99: String,
    late_p50: String,
    late_p99: String,
    started: String,
    tasks: Vec<TaskRow>,
}

fn per_minute(count: f64, since: chrono::DateTime<chrono::Utc>) -> String {
    let minutes = (chrono::Utc::now() - since).num_seconds().max(1) as f64 / 60.0;
    format!("{:.1}/min", count / minutes)
}

pub(super) async fn overview(app: &App, ctx: &Ctx, person: &Person) -> Result<Resp, Failed> {
    let readiness = match app.readiness.now(crate::server::fresh(app)) {
        Some(r) => r,
        None => app.readiness.probe(&app.service, &app.stores).await,
    };
    let (backend_state, backend_class) = match readiness {
        Ok(()) => ("ready".to_string(), "ok"),
        Err(e) => (e, "down"),
    };
    let started = tokio::time::Instant::now();
    let ping = app.stores.ping().await;
    let ping_took = started.elapsed();
    let (store_state, store_class) = match &ping {
        Ok(()) => ("answering".to_string(), "ok"),
        Err(e) => (e.to_string(), "down"),
    };
    let replicas = match app.stores.replicas_alive().await {
        Ok(n) => n.to_string(),
        Err(e) => e.to_string(),
    };
    let text = app.metrics.render();
    let requests = figures::sum(&text, "sgbridge_http_requests_total", |_| true);
    let errors = figures::sum(&text, "sgbridge_http_requests_total", |l| l.contains("status=\"5"));
    let waits = "sgbridge_task_wait_duration_seconds";
    let late = "sgbridge_task_wait_lateness_seconds";
    let in_flight_query = TaskQuery {
        states: vec![TaskState::New, TaskState::Running],
        descending: true,
        limit: 50,
        ..TaskQuery::default()
    };
    let (_, tasks) = app
        .service
        .tasks(&cx(ctx, person), &in_flight_query)
        .await
        .unwrap_or_default();
    let now = chrono::Utc::now();
    let page = Overview {
        title: "Overview",
        user: &person.name,
        refresh: refresh(ctx),
        backend: app.service.backend().name(),
        backend_state,
        backend_class,
        backend_latency: format!(
            "{} mean per call",
            figures::seconds(figures::mean(&text, "sgbridge_backend_call_duration_seconds"))
        ),
        store: store_label(app),
        store_state,
        store_class,
        store_latency: format!("{} (a ping now)", figures::seconds(Some(ping_took.as_secs_f64()))),
        replicas,
        in_flight: app.metrics.in_flight.get(),
        waits: app.metrics.task_waits_in_flight.get(),
        requests: requests as u64,
        request_rate: per_minute(requests, app.started),
        errors: errors as u64,
        error_rate: per_minute(errors, app.started),
        wait_p50: figures::seconds(figures::quantile(&text, waits, 0.5)),
        wait_p99: figures::seconds(figures::quantile(&text, waits, 0.99)),
        late_p50: figures::seconds(figures::quantile(&text, late, 0.5)),
        late_p99: figures::seconds(figures::quantile(&text, late, 0.99)),
        started: time(app.started),
        tasks: tasks.iter().map(|t| task_row(t, now)).collect(),
    };
    Ok(html(StatusCode::OK, &page))
}

fn store_label(app: &App) -> &'static str {
    match app.stores.kind {
        crate::config::StoreKind::Memory => "memory",
        crate::config::StoreKind::Sqlite => "sqlite",
        crate::config::StoreKind::Postgres => "postgres",
    }
}

#[derive(Template)]
#[template(path = "ui/tasks.html")]
struct Tasks<'a> {
    title: &'a str,
    user: &'a str,
    refresh: Option<u64>,
    total: usize,
    tasks: Vec<TaskRow>,
}

pub(super) async fn tasks(app: &App, ctx: &Ctx, person: &Person) -> Result<Resp, Failed> {
    let query = TaskQuery {
        descending: true,
        limit: 200,
        ..TaskQuery::default()
    };
    let (total, mut tasks) = app
        .service
        .tasks(&cx(ctx, person), &query)
        .await
        .map_err(|e| unavailable(e.message()))?;
    // In flight first, each part newest first (a stable sort keeps that).
    tasks.sort_by_key(|t| t.state.is_terminal());
    let now = chrono::Utc::now();
    let page = Tasks {
        title: "Tasks",
        user: &person.name,
        refresh: refresh(ctx),
        total,
        tasks: tasks.iter().map(|t| task_row(t, now)).collect(),
    };
    Ok(html(StatusCode::OK, &page))
}

pub(crate) struct GroupRow {
    href: String,
    name: String,
    id: String,
    cf_rules: usize,
    gcore_rules: usize,
    updated: String,
}

#[derive(Template)]
#[template(path = "ui/groups.html")]
struct Groups<'a> {
    title: &'a str,
    user: &'a str,
    refresh: Option<u64>,
    q: &'a str,
    project: String,
    region: String,
    cf_project: u64,
    cf_region: u64,
    error: Option<String>,
    groups: Vec<GroupRow>,
}

/// The most groups a search shows.
const MOST_GROUPS: usize = 500;

fn group_href(scope: Scope, id: &str) -> String {
    format!("/ui/groups/{}/{}/{id}", scope.project_id, scope.region_id)
}

pub(super) async fn groups(app: &App, ctx: &Ctx, person: &Person) -> Result<Resp, Failed> {
    let cf = app.service.cf_scope();
    let number = |key: &str, default: u64| -> Result<u64, String> {
        match param(ctx, key) {
            "" => Ok(default),
            text => text.parse().map_err(|_| format!("{key} must be a number")),
        }
    };
    let (mut error, mut scope) = (None, cf);
    match (number("project", cf.project_id), number("region", cf.region_id)) {
        (Ok(project_id), Ok(region_id)) => scope = Scope { project_id, region_id },
        (Err(e), _) | (_, Err(e)) => error = Some(e),
    }
    let q = param(ctx, "q");
    let found = app
        .service
        .list(&cx(ctx, person), scope, None)
        .await
        .map_err(|e| unavailable(e.message()))?;
    let wanted = q.to_lowercase();
    let mapping = &app.service.settings().mapping;
    let groups = found
        .iter()
        .filter(|g| wanted.is_empty() || g.id().as_str() == wanted || g.name().to_lowercase().contains(&wanted))
        .take(MOST_GROUPS)
        .map(|g| GroupRow {
            href: group_href(scope, g.id().as_str()),
            name: g.name().to_string(),
            id: g.id().to_string(),
            cf_rules: mapping.cf_view(g).rules.len(),
            gcore_rules: mapping.gcore_view(g).rules.len(),
            updated: time(g.meta.updated_at),
        })
        .collect();
    let page = Groups {
        title: "Groups",
        user: &person.name,
        refresh: None,
        q,
        project: scope.project_id.to_string(),
        region: scope.region_id.to_string(),
        cf_project: cf.project_id,
        cf_region: cf.region_id,
        error,
        groups,
    };
    Ok(html(StatusCode::OK, &page))
}

pub(crate) struct RuleRow {
    cf: String,
    gcore: Vec<String>,
    why: String,
}

pub(crate) struct TagRow {
    key: String,
    value: String,
    read_only: bool,
}

#[derive(Template)]
#[template(path = "ui/group.html")]
struct GroupPage<'a> {
    title: &'a str,
    user: &'a str,
    refresh: Option<u64>,
    name: String,
    id: String,
    scope: String,
    shape: &'a str,
    /// `gcore.max_rules`: a CF write expanding past it is refused.
    cap: usize,
    running_default: bool,
    staging_default: bool,
    spaces: String,
    staging_spaces: String,
    rules: Vec<RuleRow>,
    foreign: Vec<String>,
    gcore: Vec<String>,
    tags: Vec<TagRow>,
    changes: Vec<ChangeRow>,
}

/// Each CF rule with the Gcore rules it becomes, and why there are as many.
fn rule_rows(app: &App, group: &Group) -> (Vec<RuleRow>, Vec<String>) {
    let mapping = &app.service.settings().mapping;
    let flags = crate::server::cf::v2::flags(app);
    let view = mapping.cf_view(group);
    let rows = view
        .rules
        .iter()
        .map(|rule| {
            let cf = cf_rules(std::slice::from_ref(rule), flags)
                .iter()
                .map(summary)
                .collect::<Vec<_>>()
                .join("; ");
            match crate::mapping::on_gcore::to_gcore(std::slice::from_ref(rule), mapping.gcore, 0) {
                Ok(expanded) => {
                    let mut why: Vec<String> = expanded.warnings.clone();
                    if expanded.atoms.len() > 1 {
                        why.push(format!(
                            "{} Gcore rules cover it: one per protocol, port range and CIDR the destination spans",
                            expanded.atoms.len()
                        ));
                    }
                    RuleRow {
                        cf,
                        gcore: gcore_rules(expanded.atoms.iter()).iter().map(summary).collect(),
                        why: why.join("; "),
                    }
                }
                Err(e) => RuleRow {
                    cf,
                    gcore: Vec::new(),
                    why: format!("not a Gcore rule: {e}"),
                },
            }
        })
        .collect();
    let foreign = gcore_rules(view.foreign.iter()).iter().map(summary).collect();
    (rows, foreign)
}

pub(super) async fn group(app: &App, ctx: &Ctx, person: &Person) -> Result<Resp, Failed> {
    let p = |i| ctx.route.param(i);
    let not_found = || (StatusCode::NOT_FOUND, "There is no such group.".to_string());
    let (Ok(project_id), Ok(region_id), Some(id)) = (p(0).parse(), p(1).parse(), Uuid::parse(p(2))) else {
        return Err(not_found());
    };
    let scope = Scope { project_id, region_id };
    let group = app.service.get(&cx(ctx, person), scope, &id).await.map_err(|e| {
        if e.is_not_found() {
            not_found()
        } else {
            unavailable(e.message())
        }
    })?;
    let mapping = &app.service.settings().mapping;
    let attrs = mapping.cf_attrs(&group);
    let gcore = mapping.gcore_view(&group);
    let (rules, foreign) = rule_rows(app, &group);
    let changes = recent_changes(
        app,
        EventQuery {
            target_guids: Some(vec![id.to_string()]),
            descending: true,
            limit: 10,
            ..EventQuery::default()
        },
    )
    .await?
    .1;
    let list = |s: &std::collections::BTreeSet<Uuid>| {
        let v: Vec<&str> = s.iter().map(Uuid::as_str).collect();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let page = GroupPage {
        title: "Group",
        user: &person.name,
        refresh: None,
        name: group.name().to_string(),
        id: id.to_string(),
        scope: scope.to_string(),
        shape: match group.content {
            Content::Atomic(_) => "Gcore rules (the backend's own shape)",
            Content::Compact(_) => "CF rules (a Cloud Controller backend)",
        },
        cap: mapping.gcore.max_rules,
        running_default: attrs.running_default,
        staging_default: attrs.staging_default,
        spaces: list(&attrs.spaces),
        staging_spaces: list(&attrs.staging_spaces),
        rules,
        foreign,
        gcore: gcore_rules(gcore.rules.iter().map(|r| &r.atom))
            .iter()
            .map(summary)
            .collect(),
        tags: gcore
            .tags
            .iter()
            .map(|t| TagRow {
                key: t.key.clone(),
                value: t.value.clone(),
                read_only: t.read_only,
            })
            .collect(),
        changes,
    };
    Ok(html(StatusCode::OK, &page))
}

pub(crate) struct DiffRow {
    dialect: &'static str,
    added: Vec<String>,
    removed: Vec<String>,
}

pub(crate) struct ChangeRow {
    at: String,
    kind: String,
    target: String,
    target_href: String,
    actor: String,
    actor_kind: String,
    outcome: String,
    dialect: String,
    request_id: String,
    diff: Vec<DiffRow>,
}

fn change_row(e: AuditEvent) -> ChangeRow {
    let data: Value = serde_json::from_str(&e.data).unwrap_or_default();
    let text = |key: &str| data[key].as_str().unwrap_or("").to_string();
    let rules = |dialect: &str, side: &str| -> Vec<String> {
        data[dialect][side]
            .as_array()
            .map(|a| a.iter().map(summary).collect())
            .unwrap_or_default()
    };
    let diff = [("cf", "CF"), ("gcore", "Gcore")]
        .into_iter()
        .map(|(key, dialect)| DiffRow {
            dialect,
            added: rules(key, "rules_added"),
            removed: rules(key, "rules_removed"),
        })
        .filter(|d| !d.added.is_empty() || !d.removed.is_empty())
        .collect();
    let target_href = match (data["scope"].as_str(), e.target.kind.as_str()) {
        (Some(scope), "security_group") if !e.target.guid.is_empty() => format!("/ui/groups/{scope}/{}", e.target.guid),
        _ => format!("/ui/changes?group={}", e.target.guid),
    };
    let target = if e.target.name.is_empty() {
        e.target.guid.clone()
    } else {
        e.target.name.clone()
    };
    ChangeRow {
        at: unix_time(e.created_at),
        kind: e.kind,
        target,
        target_href,
        actor: e.actor.name,
        actor_kind: e.actor.kind,
        outcome: text("outcome"),
        dialect: text("dialect"),
        request_id: text("request_id"),
        diff,
    }
}

async fn recent_changes(app: &App, query: EventQuery) -> Result<(u64, Vec<ChangeRow>), Failed> {
    let query = EventQuery {
        order: OrderBy::Written,
        ..query
    };
    let (total, events) = app.stores.audit.list(&query).await.map_err(unavailable)?;
    Ok((total, events.into_iter().map(change_row).collect()))
}

#[derive(Template)]
#[template(path = "ui/changes.html")]
struct Changes<'a> {
    title: &'a str,
    user: &'a str,
    refresh: Option<u64>,
    group: &'a str,
    actor: &'a str,
    kind: &'a str,
    since: &'a str,
    types: &'static [&'static str],
    error: Option<String>,
    total: u64,
    changes: Vec<ChangeRow>,
}

impl Changes<'_> {
    fn chosen(&self, t: &str) -> bool {
        t == self.kind
    }
}

pub(super) async fn changes(app: &App, ctx: &Ctx, person: &Person) -> Result<Resp, Failed> {
    let (group, actor, kind, since) = (
        param(ctx, "group"),
        param(ctx, "actor"),
        param(ctx, "type"),
        param(ctx, "since"),
    );
    let some = |v: &str| (!v.is_empty()).then(|| vec![v.to_string()]);
    let mut error = None;
    let created = match since {
        "" => None,
        text => match chrono::DateTime::parse_from_rfc3339(text) {
            Ok(t) => Some(Seconds::Gte(t.timestamp())),
            Err(_) => {
                error = Some(format!("{text:?} is not a time like 2026-12-07T10:00:00Z"));
                None
            }
        },
    };
    let (total, changes) = recent_changes(
        app,
        EventQuery {
            target_guids: some(group),
            actor_names: some(actor),
            types: some(kind),
            created,
            descending: true,
            limit: 100,
            ..EventQuery::default()
        },
    )
    .await?;
    let page = Changes {
        title: "Changes",
        user: &person.name,
        refresh: None,
        group,
        actor,
        kind,
        since,
        types: crate::server::ledger::TYPES,
        error,
        total,
        changes,
    };
    Ok(html(StatusCode::OK, &page))
}
