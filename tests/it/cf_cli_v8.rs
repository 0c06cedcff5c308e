//! The cf CLI v8's own request sequences for the security-group commands
//! (notes/cf-cli-v8.md §1–§2), replayed over HTTP with the headers it sends
//! (`Authorization: bearer <JWT>`, `Content-Type: application/json`,
//! `User-Agent: cf/8…`) and the query strings it builds (Go's
//! `url.Values.Encode`: keys sorted, a space as `+`, a comma inside a name as
//! `%252C`), asserting every field the CLI reads. Also: `cf api`'s root, the
//! v7 CLI's setup and name look-ups, and the directory endpoints
//! (`/v3/organizations`, `/v3/spaces`) as CC validates and pages them.

use crate::support::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use sgbridge::config::{Config, OrgEntry, SpaceEntry, UaaConfig};
use std::collections::BTreeMap;

/// An unsigned JWT (`alg: none`), as a hand-written config holds it; the CLI
/// never verifies it, and the gateway is configured to accept it.
const JWT: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ1c2VyX25hbWUiOiJhZG1pbiIsInVzZXJfaWQiOiJhZG1pbi1ndWlkIiwib3JpZ2luIjoidWFhIiwiY2xpZW50X2lkIjoiY2YiLCJleHAiOjQxMDI0NDQ4MDAsInNjb3BlIjpbImNsb3VkX2NvbnRyb2xsZXIuYWRtaW4iXX0.";
const USER_AGENT: &str = "cf/8.18.4+7a1c05b.2025-10-01 (go1.24.6; amd64 linux)";
const ACME: &str = "0a0a0a0a-1111-4222-8333-444444444444";
const BIG: &str = "0b0b0b0b-1111-4222-8333-444444444444";
const EMPTY: &str = "0c0c0c0c-1111-4222-8333-444444444444";
const DEV: &str = "d0d0d0d0-1111-4222-8333-444444444444";
const PROD: &str = "e0e0e0e0-1111-4222-8333-444444444444";
const MY_SPACE: &str = "f0f0f0f0-1111-4222-8333-444444444444";
/// The spaces of org `big`: more than one page of 50.
const BIG_SPACES: usize = 55;

fn big_space(i: usize) -> String {
    format!("b{i:07x}-1111-4222-8333-444444444444")
}

fn org(guid: &str, name: &str) -> OrgEntry {
    OrgEntry {
        guid: guid.into(),
        name: name.into(),
    }
}

fn space(guid: &str, name: &str, org_guid: &str) -> SpaceEntry {
    SpaceEntry {
        guid: guid.into(),
        name: name.into(),
        org_guid: org_guid.into(),
    }
}

/// Orgs `acme` (spaces `prod`, `dev`, `my space`), `big` (55 spaces, listed
/// out of name order) and `empty` (none).
fn config() -> Config {
    let mut c = quick_config();
    c.auth.cf_bearer_tokens = vec![JWT.into()];
    c.cf.orgs = vec![org(ACME, "acme"), org(BIG, "big"), org(EMPTY, "empty")];
    c.cf.spaces = vec![
        space(PROD, "prod", ACME),
        space(DEV, "dev", ACME),
        space(MY_SPACE, "my space", ACME),
    ];
    c.cf.spaces.extend(
        (0..BIG_SPACES)
            .rev()
            .map(|i| space(&big_space(i), &format!("s{i:02}"), BIG)),
    );
    c
}

/// Go's `url.QueryEscape`.
fn go_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The CLI's query string (`ccv3.FormatQueryParameters`, then
/// `url.Values.Encode`): keys sorted, values joined by `,`, a comma inside
/// a `names` value pre-escaped to `%2C`.
fn cli_query(pairs: &[(&str, &[&str])]) -> String {
    let mut sorted: Vec<(&str, String)> = pairs
        .iter()
        .map(|(k, values)| {
            let escaped: Vec<String> = values
                .iter()
                .map(|v| match *k {
                    "names" => v.replace(',', "%2C"),
                    _ => v.to_string(),
                })
                .collect();
            (*k, escaped.join(","))
        })
        .collect();
    sorted.sort();
    let parts: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{}={}", go_escape(k), go_escape(v)))
        .collect();
    parts.join("&")
}

/// One string field of each item (a missing one as "").
fn field(items: &[Value], key: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[key].as_str().unwrap_or_default().to_string())
        .collect()
}

fn names(resources: &[Value]) -> Vec<String> {
    field(resources, "name")
}

/// `relationships.<rel>.data[].guid`, as the CLI's `RelationshipList` reads it.
fn related(group: &Value, rel: &str) -> Vec<String> {
    let data = group["relationships"][rel]["data"].as_array();
    field(data.unwrap_or_else(|| panic!("{rel} in {group}")), "guid")
}

/// A row of `cf security-group(s)`: org, space, lifecycle.
type Row = (String, String, String);

fn row(org: &str, space: &str, lifecycle: &str) -> Row {
    (org.into(), space.into(), lifecycle.into())
}

struct Cli<'a> {
    http: Http,
    gw: &'a Gateway,
}

impl Cli<'_> {
    /// One CC request with the v8 CLI's headers; `target` is a path or, for
    /// links and job URLs, an absolute URL used verbatim.
    async fn call(&self, method: Method, target: &str, body: &str) -> Reply {
        let auth = format!("bearer {JWT}");
        let url = if target.starts_with("http") {
            target.to_string()
        } else {
            self.gw.url(target)
        };
        let headers = [
            ("authorization", auth.as_str()),
            ("accept", "application/json"),
            ("content-type", "application/json"),
            ("user-agent", USER_AGENT),
            ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ];
        self.http.send(method, &url, &headers, body.to_string()).await
    }

    /// A GET the CLI decodes: 200 with a JSON body.
    async fn get(&self, target: &str) -> Value {
        let r = self.call(Method::GET, target, "").await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{target}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    /// `MakeListRequest`: the resources and `included.organizations` of every
    /// page, following `pagination.next.href` verbatim (it must be absolute)
    /// unless the query names a `page`.
    async fn list(&self, path: &str) -> (Vec<Value>, Vec<Value>) {
        let specific_page = path.split(['?', '&']).any(|p| p.starts_with("page="));
        let (mut resources, mut orgs) = (Vec::new(), Vec::new());
        let mut next = Some(path.to_string());
        while let Some(target) = next.take() {
            let page = self.get(&target).await;
            resources.extend(page["resources"].as_array().expect("resources").iter().cloned());
            if let Some(o) = page["included"]["organizations"].as_array() {
                orgs.extend(o.iter().cloned());
            }
            if let Some(href) = page["pagination"]["next"]["href"].as_str().filter(|_| !specific_page) {
                assert!(href.starts_with(&self.gw.url("/")), "absolute next: {href}");
                next = Some(href.to_string());
            }
        }
        (resources, orgs)
    }

    /// A v8 name look-up (`?names=X&page=1&per_page=1`; only `resources[0]`).
    async fn by_name(&self, path: &str, name: &str, more: &[(&str, &[&str])]) -> Option<Value> {
        let name = [name];
        let mut pairs: Vec<(&str, &[&str])> = vec![("names", &name), ("page", &["1"]), ("per_page", &["1"])];
        pairs.extend_from_slice(more);
        let (found, _) = self.list(&format!("{path}?{}", cli_query(&pairs))).await;
        found.into_iter().next()
    }

    /// `SG?name`.
    async fn group(&self, name: &str) -> Option<Value> {
        self.by_name("/v3/security_groups", name, &[]).await
    }

    /// `SG?name` where the command needs the group: its guid.
    async fn group_guid(&self, name: &str) -> String {
        let g = self.group(name).await.unwrap_or_else(|| panic!("group {name}"));
        g["guid"].as_str().expect("guid").to_string()
    }

    /// `ORG?name`: the CLI reads `guid` and `name`.
    async fn org(&self, name: &str) -> Option<String> {
        let o = self.by_name("/v3/organizations", name, &[]).await?;
        assert_eq!(o["name"], name);
        Some(o["guid"].as_str().expect("guid").to_string())
    }

    /// `SPACE?name` in an org: the CLI reads `guid` and `name`.
    async fn space(&self, name: &str, org: &str) -> Option<String> {
        let s = self
            .by_name("/v3/spaces", name, &[("organization_guids", &[org][..])])
            .await?;
        assert_eq!(s["name"], name);
        Some(s["guid"].as_str().expect("guid").to_string())
    }

    /// Every space of an org, by name (`bind-security-group` without `--space`).
    async fn org_spaces(&self, org: &str) -> Vec<Value> {
        let q = cli_query(&[("order_by", &["name"]), ("organization_guids", &[org])]);
        self.list(&format!("/v3/spaces?{q}")).await.0
    }

    /// `getSecurityGroupSpaces`: the spaces of a group's relationships (in
    /// batches of 200 guids, with their orgs), one row per running space,
    /// then per staging space; a guid not returned gives empty names.
    async fn group_spaces(&self, group: &Value) -> Vec<Row> {
        let (running, staging) = (related(group, "running_spaces"), related(group, "staging_spaces"));
        let all: Vec<&str> = running.iter().chain(&staging).map(String::as_str).collect();
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        // The CLI's look-up tables: space guid → (name, org guid); org guid → name.
        let (mut spaces, mut orgs) = (BTreeMap::new(), BTreeMap::new());
        for batch in all.chunks(200) {
            let q = cli_query(&[("guids", batch), ("include", &["organization"])]);
            let (found, included) = self.list(&format!("/v3/spaces?{q}")).await;
            for s in found {
                let org = text(&s["relationships"]["organization"]["data"]["guid"]);
                spaces.insert(text(&s["guid"]), (text(&s["name"]), org));
            }
            for o in included {
                orgs.insert(text(&o["guid"]), text(&o["name"]));
            }
        }
        let rows = |guids: &[String], lifecycle: &str| -> Vec<Row> {
            guids
                .iter()
                .map(|g| {
                    let (name, org) = spaces.get(g).cloned().unwrap_or_default();
                    let org_name = orgs.get(&org).cloned().unwrap_or_default();
                    (org_name, name, lifecycle.to_string())
                })
                .collect()
        };
        let mut out = rows(&running, "running");
        out.extend(rows(&staging, "staging"));
        out
    }

    /// `cf security-groups`: every group with its rows (`<all>` first).
    /// The CLI dereferences `globally_enabled.{staging,running}` unchecked.
    async fn security_groups(&self) -> BTreeMap<String, Vec<Row>> {
        let (groups, _) = self.list("/v3/security_groups").await;
        let mut out = BTreeMap::new();
        for g in groups {
            let enabled = |k: &str| {
                g["globally_enabled"][k]
                    .as_bool()
                    .unwrap_or_else(|| panic!("globally_enabled.{k} (the CLI panics): {g}"))
            };
            let mut rows = Vec::new();
            if enabled("staging") {
                rows.push(row("<all>", "<all>", "staging"));
            }
            if enabled("running") {
                rows.push(row("<all>", "<all>", "running"));
            }
            rows.extend(self.group_spaces(&g).await);
            out.insert(g["name"].as_str().expect("name").to_string(), rows);
        }
        out
    }

    /// `cf security-group NAME`: its rules, then its rows.
    async fn security_group(&self, name: &str) -> Option<(Value, Vec<Row>)> {
        let g = self.group(name).await?;
        let rows = self.group_spaces(&g).await;
        Some((g["rules"].clone(), rows))
    }

    /// `create-security-group NAME FILE`: the body as jsonry writes it.
    async fn create(&self, name: &str, rules: Option<Value>) -> Reply {
        let mut body = json!({"name": name});
        if let Some(r) = rules {
            body["rules"] = r;
        }
        self.call(Method::POST, "/v3/security_groups", &body.to_string()).await
    }

    /// `update-security-group NAME FILE`: `SG?name`, then PATCH `{"rules":…}`
    /// (`{}` when the file holds `[]`). The response is decoded, then ignored.
    async fn update(&self, name: &str, body: Value) -> Value {
        let guid = self.group_guid(name).await;
        let r = self
            .call(Method::PATCH, &format!("/v3/security_groups/{guid}"), &body.to_string())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    /// `bind-security-group SG ORG [--space S] [--lifecycle L]`: SG, org,
    /// space(s), then one POST with every space; none: "No spaces in org".
    async fn bind(&self, group: &str, org: &str, space: Option<&str>, lifecycle: &str) -> Option<Value> {
        let sg = self.group_guid(group).await;
        let org = self.org(org).await.expect("org");
        let spaces: Vec<String> = match space {
            Some(name) => vec![self.space(name, &org).await.expect("space")],
            None => field(&self.org_spaces(&org).await, "guid"),
        };
        if spaces.is_empty() {
            return None;
        }
        let data: Vec<Value> = spaces.iter().map(|g| json!({"guid": g})).collect();
        let path = format!("/v3/security_groups/{sg}/relationships/{lifecycle}_spaces");
        let r = self.call(Method::POST, &path, &json!({"data": data}).to_string()).await;
        assert!(r.status.is_success(), "{}", String::from_utf8_lossy(&r.body));
        Some(r.json())
    }

    /// `unbind-security-group SG ORG SPACE [--lifecycle L]`: org, space, SG, DELETE.
    async fn unbind(&self, group: &str, org: &str, space: &str, lifecycle: &str) -> Reply {
        let org = self.org(org).await.expect("org");
        let space = self.space(space, &org).await.expect("space");
        let sg = self.group_guid(group).await;
        let path = format!("/v3/security_groups/{sg}/relationships/{lifecycle}_spaces/{space}");
        self.call(Method::DELETE, &path, "").await
    }

    /// `(un)bind-{running,staging}-security-group SG`: `SG?name`, then PATCH.
    async fn set_global(&self, group: &str, lifecycle: &str, on: bool) -> Value {
        let body = json!({"globally_enabled": {lifecycle: on}});
        self.update(group, body).await
    }

    /// `{running,staging}-security-groups`: the names only.
    async fn globals(&self, lifecycle: &str) -> Vec<String> {
        let (groups, _) = self
            .list(&format!("/v3/security_groups?globally_enabled_{lifecycle}=true"))
            .await;
        names(&groups)
    }
}

fn detail(r: &Reply) -> String {
    r.json()["errors"][0]["detail"].as_str().unwrap_or_default().to_string()
}

/// A CC v3 error as the CLI decodes it: `errors[{code:int, title, detail}]`.
fn cc_error(r: &Reply, status: StatusCode, title: &str) -> String {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    let e = &r.json()["errors"][0];
    assert!(e["code"].is_u64(), "{e}");
    assert_eq!(e["title"], title);
    detail(r)
}

fn semver(text: &str) -> Vec<u64> {
    text.split('.').map(|p| p.parse().expect("semver part")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cf_api_reads_the_root() {
    let gw = start(config()).await;
    let http = Http::default();
    // No Authorization: `cf api` and the first request of `cf login`.
    let r = http
        .send(Method::GET, &gw.url("/"), &[("user-agent", USER_AGENT)], "")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let root = r.json();
    let links = &root["links"];
    let version = links["cloud_controller_v3"]["meta"]["version"]
        .as_str()
        .expect("v3 version");
    assert!(semver(version) >= vec![3, 99, 0], "v8 warns below 3.99.0: {version}");
    assert!(semver(version) >= vec![3, 160, 0], "v9 warns below 3.160.0: {version}");
    for key in ["login", "uaa", "cloud_controller_v3"] {
        let href = links[key]["href"].as_str().unwrap_or_else(|| panic!("links.{key}"));
        assert!(href.starts_with("http"), "{key}: {href}");
    }
    assert_ne!(root["cf_on_k8s"], true, "true switches the CLI to Kubernetes auth");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cf_cli_v8_sequences() {
    let gw = start(config()).await;
    let cli = Cli {
        http: Http::default(),
        gw: &gw,
    };

    // cf login (after the token): with -o/-s, ORG?name and SPACE?name; without, every org by name.
    assert_eq!(cli.org("acme").await.as_deref(), Some(ACME));
    assert_eq!(cli.space("my space", ACME).await.as_deref(), Some(MY_SPACE));
    let (orgs, _) = cli.list("/v3/organizations?order_by=name").await;
    assert_eq!(names(&orgs), ["acme", "big", "empty"]);
    assert_eq!(
        names(&cli.org_spaces(ACME).await),
        ["dev", "my space", "prod"],
        "spaces of the targeted org, by name"
    );

    // cf create-security-group web rules.json: 201, decoded and ignored.
    let rules =
        json!([{"protocol": "tcp", "destination": "10.0.0.0/8", "ports": "443", "description": "web", "log": true}]);
    let r = cli.create("web", Some(rules.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["name"], "web");
    // ... again: the 422 the CLI turns into a warning (exit 0).
    let again = cli.create("web", Some(rules.clone())).await;
    let text = cc_error(&again, StatusCode::UNPROCESSABLE_ENTITY, "CF-UnprocessableEntity");
    assert_eq!(text, "Security group with name 'web' already exists.");
    // A rules file holding `[]` sends no `rules`; names with a space, a comma and a `+`.
    for name in ["empty", "db access,v2", "db access", "c++ builds"] {
        let r = cli.create(name, None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}");
        assert_eq!(r.json()["rules"], json!([]), "{name}");
    }

    // Name look-ups as the CLI escapes them.
    assert_eq!(
        cli_query(&[("names", &["db access,v2"]), ("page", &["1"]), ("per_page", &["1"])]),
        "names=db+access%252Cv2&page=1&per_page=1"
    );
    for name in ["web", "db access,v2", "db access", "c++ builds"] {
        let g = cli.group(name).await.unwrap_or_else(|| panic!("{name}"));
        assert_eq!(g["name"], name);
    }
    let page = cli
        .get("/v3/security_groups?names=db+access%252Cv2&page=1&per_page=1")
        .await;
    assert_eq!(page["pagination"]["total_results"], 1);
    assert_eq!(
        page["pagination"]["first"]["href"],
        gw.url("/v3/security_groups?names=db+access%252Cv2&page=1&per_page=1"),
        "the name written back as CC does"
    );
    assert!(cli.group("nope").await.is_none(), "Security group 'nope' not found.");

    // cf security-groups with nothing bound: name-only rows, no /v3/spaces call.
    let all = cli.security_groups().await;
    assert_eq!(all.len(), 5);
    assert!(all.values().all(Vec::is_empty));

    // cf update-security-group web rules.json, then with a file holding `[]` (`{}`: unchanged).
    let new_rules = json!([{"protocol": "icmp", "destination": "10.0.0.1-10.0.0.9", "type": 8, "code": 0},
                           {"protocol": "udp", "destination": "0.0.0.0/0", "ports": "53"}]);
    let g = cli.update("web", json!({"rules": new_rules})).await;
    assert_eq!(g["rules"], new_rules);
    let g = cli.update("web", json!({})).await;
    assert_eq!(g["rules"], new_rules);

    // cf bind-security-group web acme --space dev (running by default).
    let bound = cli.bind("web", "acme", Some("dev"), "running").await.expect("posted");
    assert_eq!(field(bound["data"].as_array().unwrap(), "guid"), [DEV]);
    // ... --space prod --lifecycle staging, and without --space: every space of acme.
    cli.bind("web", "acme", Some("prod"), "staging").await.expect("posted");
    let bound = cli.bind("db access,v2", "acme", None, "staging").await.expect("posted");
    assert_eq!(bound["data"].as_array().unwrap().len(), 3);
    // An org with no spaces: no POST ("No spaces in org empty.").
    assert!(cli.bind("web", "empty", None, "running").await.is_none());
    // Unknown org or space: the look-ups find nothing (OrganizationNotFoundError, SpaceNotFoundError).
    assert!(cli.org("nowhere").await.is_none());
    assert!(cli.space("nowhere", ACME).await.is_none());
    assert!(cli.space("s01", ACME).await.is_none(), "a space of another org");
    // Without --space on an org of 55 spaces: the list follows `next` (absolute) to page 2.
    let q = cli_query(&[("order_by", &["name"]), ("organization_guids", &[BIG])]);
    let first = cli.get(&format!("/v3/spaces?{q}")).await;
    assert_eq!(first["pagination"]["total_results"], BIG_SPACES);
    assert_eq!(
        first["pagination"]["next"]["href"],
        gw.url(&format!(
            "/v3/spaces?order_by=%2Bname&organization_guids={BIG}&page=2&per_page=50"
        ))
    );
    let bound = cli.bind("c++ builds", "big", None, "running").await.expect("posted");
    assert_eq!(bound["data"].as_array().unwrap().len(), BIG_SPACES);

    // cf security-group web: rules and rows, running spaces first.
    let (shown, rows) = cli.security_group("web").await.expect("found");
    assert_eq!(shown, new_rules);
    assert_eq!(rows, [row("acme", "dev", "running"), row("acme", "prod", "staging")]);
    let (_, rows) = cli.security_group("empty").await.expect("found");
    assert!(rows.is_empty(), "No spaces assigned");

    // cf security-groups: the spaces of every bound group, with their orgs
    // (55 guids: two pages of /v3/spaces, `included` merged).
    cli.set_global("empty", "running", true).await;
    let all = cli.security_groups().await;
    assert_eq!(
        all["web"],
        [row("acme", "dev", "running"), row("acme", "prod", "staging")]
    );
    assert_eq!(
        all["db access,v2"],
        [
            row("acme", "dev", "staging"),
            row("acme", "prod", "staging"),
            row("acme", "my space", "staging")
        ],
        "in the relationship's order (by guid)"
    );
    let big: Vec<Row> = (0..BIG_SPACES)
        .map(|i| row("big", &format!("s{i:02}"), "running"))
        .collect();
    assert_eq!(all["c++ builds"], big);
    assert_eq!(all["empty"], [row("<all>", "<all>", "running")]);
    assert!(all["db access"].is_empty());
    cli.set_global("empty", "running", false).await;

    // cf unbind-security-group web acme dev: org, space, SG, DELETE → 204.
    let r = cli.unbind("web", "acme", "dev", "running").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // ... again: the 422 the CLI turns into "not bound" (exit 0).
    let r = cli.unbind("web", "acme", "dev", "running").await;
    let text = cc_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "CF-UnprocessableEntity");
    assert!(
        text.contains("Ensure the space is bound to this security group."),
        "{text}"
    );
    let r = cli.unbind("web", "acme", "prod", "staging").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (_, rows) = cli.security_group("web").await.expect("found");
    assert!(rows.is_empty());

    // cf bind-running-security-group web / running-security-groups / unbind-running-security-group web.
    let g = cli.set_global("web", "running", true).await;
    assert_eq!(g["globally_enabled"], json!({"running": true, "staging": false}));
    assert_eq!(cli.globals("running").await, ["web"]);
    assert!(cli.globals("staging").await.is_empty());
    cli.set_global("web", "running", false).await;
    assert!(
        cli.globals("running").await.is_empty(),
        "No global running security groups found."
    );
    // The staging pair.
    let g = cli.set_global("db access", "staging", true).await;
    assert_eq!(g["globally_enabled"], json!({"running": false, "staging": true}));
    assert_eq!(cli.globals("staging").await, ["db access"]);
    cli.set_global("db access", "staging", false).await;
    assert!(cli.globals("staging").await.is_empty());
    // A group that does not exist: the look-up is empty (an error for bind, a warning for unbind).
    assert!(cli.group("ghost").await.is_none());

    // cf delete-security-group web -f: SG?name, DELETE, then GET the absolute Location.
    let guid = cli.group_guid("web").await;
    let r = cli
        .call(Method::DELETE, &format!("/v3/security_groups/{guid}"), "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let location = r.header("location").expect("Location").to_string();
    assert!(location.starts_with(&gw.url("/v3/jobs/")), "{location}");
    let job = cli.get(&location).await;
    assert_eq!(job["state"], "COMPLETE");
    assert_eq!(job["errors"], json!([]));
    assert!(job["warnings"].is_array());
    // ... again: "Security group 'web' does not exist." (exit 0).
    assert!(cli.group("web").await.is_none());
}

/// A space guid the gateway lists no space for (an empty directory binds
/// any guid): the CLI prints empty names, no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_guid_outside_the_directory_has_empty_names() {
    let mut cfg = config();
    cfg.cf.orgs.clear();
    cfg.cf.spaces.clear();
    let gw = start(cfg).await;
    let cli = Cli {
        http: Http::default(),
        gw: &gw,
    };
    let r = cli.create("web", None).await;
    let guid = r.json()["guid"].as_str().unwrap().to_string();
    let path = format!("/v3/security_groups/{guid}/relationships/running_spaces");
    let r = cli
        .call(Method::POST, &path, &json!({"data": [{"guid": DEV}]}).to_string())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let (_, rows) = cli.security_group("web").await.expect("found");
    assert_eq!(rows, [row("", "", "running")]);
    assert!(cli.org("acme").await.is_none());
}

/// The v7 CLI: root, the `/v3` document (its routes), the UAA bootstrap
/// `/login`, then name look-ups without `page`/`per_page`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cf_cli_v7_setup_and_lookups() {
    let gw = start(config()).await;
    let cli = Cli {
        http: Http::default(),
        gw: &gw,
    };
    let root = cli.http.send(Method::GET, &gw.url("/"), &[], "").await.json();
    let v3 = root["links"]["cloud_controller_v3"]["href"].as_str().expect("v3 href");
    let doc = cli.http.send(Method::GET, v3, &[], "").await;
    assert_eq!(doc.status, StatusCode::OK);
    let links = doc.json()["links"].clone();
    let route = |k: &str| {
        links[k]["href"]
            .as_str()
            .unwrap_or_else(|| panic!("links.{k}"))
            .to_string()
    };
    let login = root["links"]["login"]["href"].as_str().expect("login");
    let bootstrap = cli.http.send(Method::GET, &format!("{login}/login"), &[], "").await;
    assert_eq!(bootstrap.status, StatusCode::OK);
    assert!(bootstrap.json().is_object());

    cli.create("web", None).await;
    let (found, _) = cli.list(&format!("{}?names=web", route("security_groups"))).await;
    assert_eq!(names(&found), ["web"]);
    let (found, _) = cli.list(&format!("{}?names=acme", route("organizations"))).await;
    assert_eq!(found[0]["guid"], ACME);
    let q = cli_query(&[("names", &["dev"]), ("organization_guids", &[ACME])]);
    let (found, _) = cli.list(&format!("{}?{q}", route("spaces"))).await;
    assert_eq!(found[0]["guid"], DEV);
}

/// The directory endpoints as CC renders, validates and pages them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizations_and_spaces_as_cc_serves_them() {
    let gw = start(config()).await;
    let cli = Cli {
        http: Http::default(),
        gw: &gw,
    };
    let base = gw.url("");

    // An org, with CC's keys in CC's order.
    let o = cli.get(&format!("/v3/organizations/{ACME}")).await;
    let created = o["created_at"].as_str().unwrap().to_string();
    assert_eq!(
        o,
        json!({"guid": ACME, "created_at": created, "updated_at": created, "name": "acme", "suspended": false,
               "relationships": {"quota": {"data": null}},
               "metadata": {"labels": {}, "annotations": {}},
               "links": {"self": {"href": format!("{base}/v3/organizations/{ACME}")}}})
    );
    assert!(chrono::DateTime::parse_from_rfc3339(&created).is_ok() && created.ends_with('Z'));
    let raw = cli.call(Method::GET, &format!("/v3/organizations/{ACME}"), "").await;
    let text = String::from_utf8_lossy(&raw.body).to_string();
    let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("{k}"));
    let keys = [
        "guid",
        "created_at",
        "updated_at",
        "name",
        "suspended",
        "relationships",
        "metadata",
        "links",
    ];
    assert!(keys.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");

    // A space, with its org relationship and, on request, its org included.
    let s = cli.get(&format!("/v3/spaces/{DEV}?include=org")).await;
    assert_eq!(s["relationships"]["organization"]["data"]["guid"], ACME);
    assert_eq!(s["relationships"]["quota"], json!({"data": null}));
    assert_eq!(s["links"]["self"]["href"], format!("{base}/v3/spaces/{DEV}"));
    assert_eq!(
        s["links"]["organization"]["href"],
        format!("{base}/v3/organizations/{ACME}")
    );
    assert_eq!(names(s["included"]["organizations"].as_array().unwrap()), ["acme"]);
    let plain = cli.get(&format!("/v3/spaces/{DEV}")).await;
    assert!(plain.get("included").is_none());

    // Not found: CC's 404s; a bad show query: 422.
    let missing = "99999999-1111-4222-8333-444444444444";
    let r = cli.call(Method::GET, &format!("/v3/organizations/{missing}"), "").await;
    assert_eq!(
        cc_error(&r, StatusCode::NOT_FOUND, "CF-ResourceNotFound"),
        "Organization not found"
    );
    let r = cli.call(Method::GET, &format!("/v3/spaces/{missing}?foo=1"), "").await;
    assert_eq!(
        cc_error(&r, StatusCode::NOT_FOUND, "CF-ResourceNotFound"),
        "Space not found"
    );
    let r = cli
        .call(Method::GET, &format!("/v3/spaces/{DEV}?foo=1&include=space"), "")
        .await;
    assert_eq!(
        cc_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "CF-UnprocessableEntity"),
        "Unknown query parameter(s): 'foo'. Valid parameters are: 'include', Invalid included resource: 'space'. Valid included resources are: 'org', 'organization'"
    );
    let r = cli.call(Method::POST, "/v3/organizations", "{}").await;
    assert_eq!(cc_error(&r, StatusCode::NOT_FOUND, "CF-NotFound"), "Unknown request");

    // Filters: names, guids (any case; written back lower case), organization_guids, timestamps.
    let (found, _) = cli
        .list(&format!("/v3/organizations?guids={},{EMPTY}", BIG.to_uppercase()))
        .await;
    assert_eq!(names(&found), ["big", "empty"]);
    assert_eq!(found[0]["guid"], BIG);
    let (found, _) = cli.list("/v3/spaces?names=dev,prod,s07").await;
    assert_eq!(
        names(&found),
        ["prod", "dev", "s07"],
        "the config's order without order_by"
    );
    let (found, _) = cli
        .list("/v3/organizations?created_ats%5Blt%5D=2000-01-01T00:00:00Z")
        .await;
    assert!(found.is_empty());
    let (found, _) = cli
        .list("/v3/organizations?updated_ats%5Bgt%5D=2000-01-01T00:00:00Z")
        .await;
    assert_eq!(found.len(), 3);

    // Ordering: by name either way; by a timestamp (all equal), by guid.
    let (found, _) = cli.list("/v3/organizations?order_by=-name").await;
    assert_eq!(names(&found), ["empty", "big", "acme"]);
    let (found, _) = cli
        .list(&format!("/v3/spaces?order_by=%2Bcreated_at&organization_guids={ACME}"))
        .await;
    assert_eq!(names(&found), ["dev", "prod", "my space"]);

    // Paging: absolute links, keys sorted, filters and `include` written back.
    let page = cli
        .get(&format!(
            "/v3/spaces?per_page=2&page=2&include=organization&guids={DEV},{PROD},{MY_SPACE}"
        ))
        .await;
    let p = &page["pagination"];
    assert_eq!(
        (p["total_results"].clone(), p["total_pages"].clone()),
        (json!(3), json!(2))
    );
    let link =
        |n: u32| format!("{base}/v3/spaces?guids={DEV}%2C{PROD}%2C{MY_SPACE}&include=organization&page={n}&per_page=2");
    assert_eq!(p["first"]["href"], link(1));
    assert_eq!(p["last"]["href"], link(2));
    assert_eq!(p["previous"]["href"], link(1));
    assert_eq!(p["next"], Value::Null);
    assert_eq!(names(page["resources"].as_array().unwrap()), ["my space"]);
    assert_eq!(names(page["included"]["organizations"].as_array().unwrap()), ["acme"]);
    let page = cli.get("/v3/organizations?per_page=1").await;
    assert_eq!(
        page["pagination"]["next"]["href"],
        format!("{base}/v3/organizations?page=2&per_page=1")
    );
    assert!(page.get("included").is_none());
    // `included` holds each org of the page once, in guid order.
    let page = cli
        .get(&format!(
            "/v3/spaces?include=organization&guids={},{DEV},{PROD}",
            big_space(3)
        ))
        .await;
    assert_eq!(
        names(page["included"]["organizations"].as_array().unwrap()),
        ["acme", "big"]
    );

    // Validation: CC's messages, in CC's order, in one 422.
    let cases = [
        (
            "/v3/organizations?order_by=size",
            "Order by can only be: 'created_at', 'updated_at', 'name'".to_string(),
        ),
        (
            "/v3/organizations?label_selector=env",
            "Unknown query parameter(s): 'label_selector'. Valid parameters are: 'page', 'per_page', 'order_by', 'created_ats', 'updated_ats', 'guids', 'names'".to_string(),
        ),
        (
            "/v3/spaces?include=organization,organization",
            "Duplicate included resource: 'organization'".to_string(),
        ),
        (
            "/v3/spaces?page=0&order_by=+name&include=space&foo=1",
            "Page must be a positive integer, Order by can only be: 'created_at', 'updated_at', 'name', Unknown query parameter(s): 'foo'. Valid parameters are: 'page', 'per_page', 'order_by', 'created_ats', 'updated_ats', 'guids', 'names', 'organization_guids', 'include', Invalid included resource: 'space'. Valid included resources are: 'org', 'organization'".to_string(),
        ),
        (
            "/v3/security_groups?include=organization",
            "Unknown query parameter(s): 'include'. Valid parameters are: 'page', 'per_page', 'order_by', 'created_ats', 'updated_ats', 'guids', 'names', 'running_space_guids', 'staging_space_guids', 'globally_enabled_running', 'globally_enabled_staging'".to_string(),
        ),
        (
            "/v3/security_groups?order_by=name",
            "Order by can only be: 'created_at', 'updated_at'".to_string(),
        ),
    ];
    for (path, want) in cases {
        let r = cli.call(Method::GET, path, "").await;
        assert_eq!(
            cc_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "CF-UnprocessableEntity"),
            want,
            "{path}"
        );
    }

    // No token: v3's 401.
    let r = cli.http.send(Method::GET, &gw.url("/v3/organizations"), &[], "").await;
    assert_eq!(
        cc_error(&r, StatusCode::UNAUTHORIZED, "CF-NotAuthenticated"),
        "Authentication error"
    );
}

/// Who may list the directory: global readers see everything; a token with
/// only `cloud_controller.read` is refused, as on every v3 route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_readers_list_the_directory() {
    let uaa = crate::support::uaa::start().await;
    let key = crate::support::uaa::Key::first();
    uaa.serve_keys(&[&key]);
    let mut cfg = config();
    let uaa_cfg: UaaConfig = toml::from_str(&format!("url = \"{}\"", uaa.url())).expect("uaa config");
    cfg.auth.uaa = Some(uaa_cfg);
    let gw = start(cfg).await;
    let http = Http::default();
    let as_user = |scopes: &[&str]| format!("bearer {}", key.sign(&uaa.claims(scopes)));
    for (scopes, status) in [
        (&["cloud_controller.global_auditor"][..], StatusCode::OK),
        (&["cloud_controller.admin_read_only"][..], StatusCode::OK),
        (&["cloud_controller.read"][..], StatusCode::FORBIDDEN),
    ] {
        let auth = as_user(scopes);
        for path in [
            "/v3/organizations",
            "/v3/spaces?include=organization",
            &format!("/v3/spaces/{DEV}"),
        ] {
            let r = http
                .send(Method::GET, &gw.url(path), &[("authorization", auth.as_str())], "")
                .await;
            assert_eq!(r.status, status, "{scopes:?} {path}");
            if status == StatusCode::FORBIDDEN {
                assert_eq!(r.json()["errors"][0]["title"], "CF-NotAuthorized");
            }
        }
    }
}
