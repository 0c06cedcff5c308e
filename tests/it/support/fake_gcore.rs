//! A scripted stand-in for the Gcore API on a loopback port: enough of the v2
//! writes, v1 reads and tasks to drive sgbridge's Gcore backend, with faults
//! injected on demand (409 locks, task ERROR, tasks that never finish, 5xx,
//! slow answers, dropped connections).

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskFate {
    /// FINISHED after this many polls.
    FinishAfter(u32),
    /// ERROR at the first poll.
    Error,
    /// RUNNING forever.
    Never,
}

#[derive(Debug)]
pub struct Script {
    pub fate: TaskFate,
    /// Answer this many writes with 409 "locked" first.
    pub conflicts: u32,
    /// Answer every request with this status.
    pub fail_all: Option<StatusCode>,
    /// Close connections without answering.
    pub drop_connections: bool,
    /// Delay before answering.
    pub delay: Duration,
    /// Answer every request with an HTML error page that echoes the request
    /// headers (as some proxies do), credentials included.
    pub echo_headers: bool,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            fate: TaskFate::FinishAfter(1),
            conflicts: 0,
            fail_all: None,
            drop_connections: false,
            delay: Duration::ZERO,
            echo_headers: false,
        }
    }
}

#[derive(Default)]
pub struct State {
    pub script: Script,
    pub groups: Vec<Value>,
    /// task id → (polls so far, group id)
    tasks: HashMap<String, (u32, String)>,
    /// Every request seen: "METHOD path".
    pub log: Vec<String>,
    next: u64,
}

pub struct FakeGcore {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl FakeGcore {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.state.lock().unwrap().script);
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }
}

pub async fn start() -> FakeGcore {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(Mutex::new(State::default()));
    let shared = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = shared.clone();
            if state.lock().unwrap().script.drop_connections {
                drop(stream);
                continue;
            }
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(state, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    FakeGcore { addr, state }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

fn id(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn rules_out(group: &str, rules: &Value) -> Value {
    let list: Vec<Value> = rules
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r["id"] = json!(format!("10000000-0000-4000-8000-{i:012}"));
            r["security_group_id"] = json!(group);
            r["created_at"] = json!("2026-02-25T10:11:53+0000");
            r["updated_at"] = json!("2026-02-25T10:11:53+0000");
            r["revision_number"] = json!(0);
            for k in [
                "protocol",
                "port_range_min",
                "port_range_max",
                "remote_ip_prefix",
                "remote_group_id",
                "description",
            ] {
                if r.get(k).is_none() {
                    r[k] = Value::Null;
                }
            }
            r
        })
        .collect();
    json!(list)
}

fn tags_out(tags: &Value) -> Value {
    let list: Vec<Value> = tags
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| json!({"key": k, "value": v, "read_only": false}))
                .collect()
        })
        .unwrap_or_default();
    json!(list)
}

async fn answer(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if state.lock().unwrap().script.echo_headers {
        let echoed: Vec<String> = req
            .headers()
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
            .collect();
        let page = format!("<html><body>Bad Gateway. You sent: {}</body></html>", echoed.join("; "));
        let mut r = Response::new(Full::new(Bytes::from(page)));
        *r.status_mut() = StatusCode::BAD_GATEWAY;
        return r;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let body: Value = {
        let bytes = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    let delay = {
        let mut s = state.lock().unwrap();
        s.log.push(format!("{method} {path}"));
        s.script.delay
    };
    tokio::time::sleep(delay).await;
    let mut s = state.lock().unwrap();
    if let Some(status) = s.script.fail_all {
        return reply(
            status,
            json!({"exception_class": "HTTPError", "message": "scripted failure", "request_id": null}),
        );
    }
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let is_write =
        matches!(method, Method::POST | Method::PATCH) || (method == Method::DELETE && segs.get(1) == Some(&"v2"));
    if is_write && s.script.conflicts > 0 {
        s.script.conflicts -= 1;
        return reply(
            StatusCode::CONFLICT,
            json!({"exception_class": "ConflictError", "message": "Resource is already locked by another task. Please try again later.", "request_id": null}),
        );
    }
    let new_task = |s: &mut State, group: String| {
        s.next += 1;
        let t = id(900_000 + s.next);
        s.tasks.insert(t.clone(), (0, group));
        reply(StatusCode::OK, json!({"tasks": [t]}))
    };
    match (method.clone(), segs.as_slice()) {
        (Method::POST, ["cloud", "v2", "security_groups", p, r]) => {
            s.next += 1;
            let gid = id(s.next);
            let group = json!({
                "id": gid, "name": body["name"], "description": body.get("description").cloned().unwrap_or(json!("")),
                "project_id": p.parse::<u64>().unwrap(), "region_id": r.parse::<u64>().unwrap(), "region": "Fake-1",
                "created_at": "2026-02-25T10:11:50+0000", "updated_at": "2026-02-25T10:11:50+0000", "revision_number": 2,
                "security_group_rules": rules_out(&gid, &body["rules"]), "tags_v2": tags_out(&body["tags"]),
                "metadata": [], "tags": []
            });
            s.groups.push(group);
            new_task(&mut s, gid)
        }
        (Method::PATCH, ["cloud", "v2", "security_groups", _, _, g]) => {
            let g = g.to_string();
            let Some(group) = s.groups.iter_mut().find(|x| x["id"] == g) else {
                return reply(
                    StatusCode::NOT_FOUND,
                    json!({"exception_class": "NotFoundError", "message": "Security group not found", "request_id": null}),
                );
            };
            if let Some(n) = body.get("name") {
                group["name"] = n.clone();
            }
            if let Some(rules) = body.get("rules") {
                group["security_group_rules"] = rules_out(&g, rules);
            }
            if let Some(tags) = body.get("tags").and_then(Value::as_object) {
                let mut current: serde_json::Map<String, Value> = group["tags_v2"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| (t["key"].as_str().unwrap().to_string(), t["value"].clone()))
                    .collect();
                for (k, v) in tags {
                    if v.is_null() {
                        current.remove(k);
                    } else {
                        current.insert(k.clone(), v.clone());
                    }
                }
                group["tags_v2"] = tags_out(&Value::Object(current));
            }
            new_task(&mut s, g)
        }
        (Method::GET, ["cloud", "v1", "securitygroups", _, _]) => {
            let groups = s.groups.clone();
            reply(StatusCode::OK, json!({"count": groups.len(), "results": groups}))
        }
        (Method::GET, ["cloud", "v1", "securitygroups", _, _, g]) => match s.groups.iter().find(|x| x["id"] == *g) {
            Some(group) => reply(StatusCode::OK, group.clone()),
            None => reply(
                StatusCode::NOT_FOUND,
                json!({"exception_class": "NotFoundError", "message": "Security group not found", "request_id": null}),
            ),
        },
        (Method::DELETE, ["cloud", "v1", "securitygroups", _, _, g]) => {
            let before = s.groups.len();
            s.groups.retain(|x| x["id"] != *g);
            if s.groups.len() == before {
                return reply(
                    StatusCode::NOT_FOUND,
                    json!({"exception_class": "NotFoundError", "message": "Security group not found", "request_id": null}),
                );
            }
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
        (Method::GET, ["cloud", "v1", "tasks"]) => reply(StatusCode::OK, json!({"count": 0, "results": []})),
        (Method::GET, ["cloud", "v1", "tasks", t]) => {
            let fate = s.script.fate;
            let Some((polls, group)) = s.tasks.get_mut(*t) else {
                return reply(
                    StatusCode::NOT_FOUND,
                    json!({"exception_class": "NotFoundError", "message": "Task not found", "request_id": null}),
                );
            };
            *polls += 1;
            let (state, error) = match fate {
                TaskFate::FinishAfter(n) if *polls >= n => ("FINISHED", Value::Null),
                TaskFate::Error => ("ERROR", json!("Scripted failure: quota exceeded")),
                _ => ("RUNNING", Value::Null),
            };
            let created = if state == "FINISHED" {
                json!({"security_groups": [group.clone()]})
            } else {
                Value::Null
            };
            reply(
                StatusCode::OK,
                json!({"id": t, "task_type": "update_security_group", "state": state, "error": error,
                       "created_resources": created, "created_on": "2026-02-24T10:39:59", "updated_on": null, "finished_on": null}),
            )
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            json!({"exception_class": "NotFoundError", "message": "no such route", "request_id": null}),
        ),
    }
}
