//! The cf CLI v6's own request sequences (reference/cf-api.md §4), replayed
//! over HTTP with the headers it sends (`Authorization: bearer <JWT>`,
//! `Content-Type: application/json`), asserting the fields it reads.

use crate::support::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use sgbridge::config::{Config, OrgEntry, SpaceEntry};

/// An unsigned JWT, as the CLI stores it (it never verifies signatures).
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX25hbWUiOiJhZG1pbiIsInVzZXJfaWQiOiJ1LTEiLCJvcmlnaW4iOiJ1YWEiLCJleHAiOjQxMDI0NDQ4MDB9.c2ln";
const ORG: &str = "0a0a0a0a-1111-4222-8333-444444444444";
const DEV: &str = "d0d0d0d0-1111-4222-8333-444444444444";
const PROD: &str = "e0e0e0e0-1111-4222-8333-444444444444";

fn config() -> Config {
    let mut c = quick_config();
    c.auth.cf_bearer_tokens = vec![JWT.into()];
    c.cf.orgs = vec![OrgEntry {
        guid: ORG.into(),
        name: "acme".into(),
    }];
    c.cf.spaces = vec![
        SpaceEntry {
            guid: DEV.into(),
            name: "dev".into(),
            org_guid: ORG.into(),
        },
        SpaceEntry {
            guid: PROD.into(),
            name: "prod".into(),
            org_guid: ORG.into(),
        },
    ];
    c
}

struct Cli<'a> {
    http: Http,
    gw: &'a Gateway,
}

impl Cli<'_> {
    async fn call(&self, method: Method, path: &str, body: &str) -> Reply {
        let auth = format!("bearer {JWT}");
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            self.gw.url(path)
        };
        self.http
            .send(
                method,
                &url,
                &[("authorization", auth.as_str()), ("content-type", "application/json")],
                body.to_string(),
            )
            .await
    }

    /// What refactored commands do first: `/v2/info`, `/`, then `<authorization_endpoint>/login`.
    async fn target(&self) {
        let info = self.http.send(Method::GET, &self.gw.url("/v2/info"), &[], "").await;
        assert_eq!(info.status, StatusCode::OK);
        let info = info.json();
        let version: Vec<u32> = info["api_version"]
            .as_str()
            .unwrap()
            .split('.')
            .map(|p| p.parse().unwrap())
            .collect();
        assert!(version >= vec![2, 128, 0], "the CLI warns below 2.128.0");
        for key in ["authorization_endpoint", "name"] {
            assert!(info[key].is_string(), "{key}");
        }
        let root = self.http.send(Method::GET, &self.gw.url("/"), &[], "").await.json();
        assert!(root["links"]["cloud_controller_v2"]["href"]
            .as_str()
            .unwrap()
            .ends_with("/v2"));
        let login_url = format!("{}/login", info["authorization_endpoint"].as_str().unwrap());
        let login = self.http.send(Method::GET, &login_url, &[], "").await;
        assert_eq!(login.status, StatusCode::OK);
        let login = login.json();
        assert!(
            login["app"]["version"].is_string() && login["links"]["uaa"].is_string() && login["prompts"].is_object()
        );
    }

    /// `Read(name)`: the group by name, then its spaces inline with their orgs.
    async fn read(&self, name: &str) -> Option<(Value, Value)> {
        let list = self
            .call(Method::GET, &format!("/v2/security_groups?q=name%3A{name}"), "")
            .await;
        assert_eq!(list.status, StatusCode::OK);
        let group = list.json()["resources"].get(0)?.clone();
        let spaces_url = group["entity"]["spaces_url"].as_str().unwrap().to_string();
        let spaces = self
            .call(Method::GET, &format!("{spaces_url}?inline-relations-depth=1"), "")
            .await;
        assert_eq!(spaces.status, StatusCode::OK);
        Some((group, spaces.json()))
    }

    /// Follow `next_url` until the last page, as `ListPaginatedResources` does.
    async fn all(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(p) = next {
            let page = self.call(Method::GET, &p, "").await.json();
            out.extend(page["resources"].as_array().unwrap().iter().cloned());
            next = page["next_url"].as_str().map(str::to_string);
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cf_cli_sequences() {
    let gw = start(config()).await;
    let cli = Cli {
        http: Http::default(),
        gw: &gw,
    };

    // cf create-security-group web rules.json (keys re-serialised alphabetically).
    let rules = r#"[{"destination":"10.0.0.0/8","ports":"443","protocol":"tcp"}]"#;
    let r = cli
        .call(
            Method::POST,
            "/v2/security_groups",
            &format!(r#"{{"name":"web","rules":{rules}}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let guid = r.json()["metadata"]["guid"].as_str().unwrap().to_string();
    // ... run again: 300005, which the CLI reports as "already exists" and exits 0.
    let r = cli
        .call(
            Method::POST,
            "/v2/security_groups",
            &format!(r#"{{"name":"web","rules":{rules}}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["code"], 300005);

    // cf update-security-group web rules.json: Read, then PUT with rules only.
    let (group, _) = cli.read("web").await.unwrap();
    assert_eq!(group["metadata"]["guid"], guid.as_str());
    let r = cli
        .call(
            Method::PUT,
            &format!("/v2/security_groups/{guid}"),
            r#"{"rules":[{"destination":"10.0.0.1-10.0.0.9","ports":"443,8443","protocol":"tcp"}]}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["entity"]["rules"][0]["destination"], "10.0.0.1-10.0.0.9");

    // cf bind-security-group web acme dev [--lifecycle staging].
    cli.target().await;
    let found = cli
        .call(Method::GET, "/v2/security_groups?q=name%3Aweb", "")
        .await
        .json();
    let sg = found["resources"][0]["metadata"]["guid"].as_str().unwrap().to_string();
    let orgs = cli
        .call(Method::GET, "/v2/organizations?order-by=name&q=name%3Aacme", "")
        .await
        .json();
    assert_eq!(orgs["resources"][0]["entity"]["name"], "acme");
    let org = orgs["resources"][0]["metadata"]["guid"].as_str().unwrap().to_string();
    let spaces = cli
        .call(
            Method::GET,
            &format!("/v2/spaces?order-by=name&q=name%3Adev&q=organization_guid%3A{org}"),
            "",
        )
        .await
        .json();
    assert_eq!(spaces["total_results"], 1);
    let space = spaces["resources"][0]["metadata"]["guid"].as_str().unwrap().to_string();
    let r = cli
        .call(Method::PUT, &format!("/v2/security_groups/{sg}/spaces/{space}"), "")
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = cli
        .call(
            Method::PUT,
            &format!("/v2/security_groups/{sg}/staging_spaces/{PROD}"),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Without SPACE, the CLI binds every space of the org.
    let all = cli
        .call(
            Method::GET,
            &format!("/v2/spaces?order-by=name&q=organization_guid%3A{org}"),
            "",
        )
        .await
        .json();
    let names: Vec<&str> = all["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["entity"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dev", "prod"]);
    // An org the gateway does not know: an empty list, which the CLI reports as not found.
    let none = cli
        .call(Method::GET, "/v2/organizations?order-by=name&q=name%3Aother", "")
        .await
        .json();
    assert_eq!(none["total_results"], 0);

    // cf security-group web: the spaces with their org names inline.
    let (_, spaces) = cli.read("web").await.unwrap();
    let bound = &spaces["resources"][0]["entity"];
    assert_eq!(bound["name"], "dev");
    assert_eq!(bound["organization"]["entity"]["name"], "acme");

    // cf security-groups: every group, its spaces and staging spaces, then each distinct org.
    for n in ["a", "b", "c"] {
        cli.call(Method::POST, "/v2/security_groups", &format!(r#"{{"name":"{n}"}}"#))
            .await;
    }
    let groups = cli.all("/v2/security_groups?results-per-page=2").await;
    assert_eq!(groups.len(), 4);
    let mut orgs_seen = std::collections::BTreeSet::new();
    for g in &groups {
        for url in [&g["entity"]["spaces_url"], &g["entity"]["staging_spaces_url"]] {
            for s in cli.all(url.as_str().unwrap()).await {
                orgs_seen.insert(s["entity"]["organization_guid"].as_str().unwrap().to_string());
            }
        }
    }
    assert_eq!(orgs_seen.len(), 1);
    for o in orgs_seen {
        let org = cli.call(Method::GET, &format!("/v2/organizations/{o}"), "").await;
        assert_eq!(org.status, StatusCode::OK);
        assert_eq!(org.json()["entity"]["name"], "acme");
    }

    // cf unbind-security-group web acme dev: is it bound (running)? then DELETE.
    let bound = cli
        .call(
            Method::GET,
            &format!("/v2/spaces/{DEV}/security_groups?q=name%3Aweb"),
            "",
        )
        .await
        .json();
    assert_eq!(bound["total_results"], 1);
    let r = cli
        .call(Method::DELETE, &format!("/v2/security_groups/{sg}/spaces/{DEV}"), "")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let staged = cli
        .call(
            Method::GET,
            &format!("/v2/spaces/{PROD}/staging_security_groups?q=name%3Aweb"),
            "",
        )
        .await
        .json();
    assert_eq!(staged["total_results"], 1);

    // cf bind-running-security-group web: Read, then PUT with the JSON string "".
    cli.read("web").await.unwrap();
    let r = cli
        .call(
            Method::PUT,
            &format!("/v2/config/running_security_groups/{sg}"),
            r#""""#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["entity"]["running_default"], true);
    // cf running-security-groups: prints the names.
    let running = cli.all("/v2/config/running_security_groups").await;
    assert_eq!(
        running.iter().map(|g| g["entity"]["name"].clone()).collect::<Vec<_>>(),
        vec![json!("web")]
    );
    // cf unbind-running-security-group web: Read, then DELETE ?async=true.
    let r = cli
        .call(
            Method::DELETE,
            &format!("/v2/config/running_security_groups/{sg}?async=true"),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(cli.all("/v2/config/running_security_groups").await.is_empty());

    // cf delete-security-group web -f: Read, DELETE ?async=true, poll the job.
    cli.read("web").await.unwrap();
    let r = cli
        .call(Method::DELETE, &format!("/v2/security_groups/{sg}?async=true"), "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let url = r.json()["metadata"]["url"].as_str().unwrap().to_string();
    assert!(url.contains("/jobs/"));
    let job = cli.call(Method::GET, &url, "").await.json();
    assert_eq!(job["entity"]["status"], "finished");
    // Deleting it again: Read finds nothing (the CLI warns "does not exist").
    assert!(cli.read("web").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_the_gateway_cannot_answer_are_cc_errors() {
    let gw = start(config()).await;
    let cli = Cli {
        http: Http::default(),
        gw: &gw,
    };
    let missing = "99999999-1111-4222-8333-444444444444";
    let r = cli.call(Method::GET, &format!("/v2/organizations/{missing}"), "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error_code"], "CF-OrganizationNotFound");
    let r = cli.call(Method::GET, &format!("/v2/spaces/{missing}"), "").await;
    assert_eq!(r.json()["error_code"], "CF-SpaceNotFound");
    let created = cli
        .call(Method::POST, "/v2/security_groups", r#"{"name":"x"}"#)
        .await
        .json();
    let sg = created["metadata"]["guid"].as_str().unwrap();
    // With a directory configured, only its spaces can be bound.
    let r = cli
        .call(Method::PUT, &format!("/v2/security_groups/{sg}/spaces/{missing}"), "")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json()["description"],
        format!("Could not find VCAP::CloudController::Space with guid: {missing}")
    );
    // ... and so do `space_guids` in a body.
    let r = cli
        .call(
            Method::POST,
            "/v2/security_groups",
            &format!(r#"{{"name":"y","space_guids":["{missing}"]}}"#),
        )
        .await;
    assert_eq!(r.json()["error_code"], "CF-InvalidRelation");
    let r = cli
        .call(
            Method::POST,
            "/v2/security_groups",
            &format!(r#"{{"name":"y","space_guids":["{DEV}"]}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // The v6 CLI's token must be accepted whatever the scheme's case; a JWT not configured is 1000.
    let r = cli
        .http
        .send(
            Method::GET,
            &gw.url("/v2/security_groups"),
            &[("authorization", "bearer eyJ.other.jwt")],
            "",
        )
        .await;
    assert_eq!(r.json()["code"], 1000);
}
