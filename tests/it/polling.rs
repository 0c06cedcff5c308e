//! Coalesced task polling through a gcore backend (issue 12): many CF
//! writes waiting at once cost the backend list pages per round, not one
//! request per task — pending tasks come from the pending list, and those
//! that ended from one list of ended tasks, never one GET each.
//!
//! Gateway B (Gcore front end, embedded backend, tasks of 300 ms) stands in
//! for the Gcore API; gateway A (CF front end) waits on B's tasks. Real time
//! on loopback (B's tasks run on the wall clock); nothing is asserted about
//! timings, only about B's request counts from its `/metrics`.

use crate::support::*;
use http::{Method, StatusCode};

/// B's requests on one route, from its metrics.
async fn requests(http: &Http, b: &Gateway, route: &str) -> f64 {
    let text = String::from_utf8_lossy(&http.send(Method::GET, &b.url("/metrics"), &[], "").await.body).to_string();
    text.lines()
        .filter(|l| l.starts_with("sgbridge_http_requests_total{") && l.contains(&format!("route=\"{route}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_tasks_are_read_from_one_list_not_one_by_one() {
    let mut b_cfg = quick_config();
    b_cfg.backend.embedded.task_delay_ms = 300;
    let b = start(b_cfg).await;
    let a = start_gcore_backed(&b.url(""), quick_config()).await;
    let http = Http::default();

    let creates: Vec<_> = (0..20)
        .map(|i| {
            let url = a.url("/v2/security_groups");
            tokio::spawn(async move {
                Http::default()
                    .cf(Method::POST, &url, &format!(r#"{{"name":"poll-{i}"}}"#))
                    .await
            })
        })
        .collect();
    let mut guids = Vec::new();
    for c in creates {
        let r = c.await.unwrap();
        assert_eq!(r.status, StatusCode::CREATED);
        guids.push(r.json()["metadata"]["guid"].as_str().unwrap().to_string());
    }
    let singles_before = requests(&http, &b, "/cloud/v1/tasks/:task_id").await;
    let lists_before = requests(&http, &b, "/cloud/v1/tasks").await;

    // 20 PUTs at once, each waiting on its own 300 ms task.
    let mut puts = Vec::new();
    for g in &guids {
        let url = a.url(&format!("/v2/security_groups/{g}"));
        puts.push(tokio::spawn(async move {
            Http::default()
                .cf(
                    Method::PUT,
                    &url,
                    r#"{"rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443"}]}"#,
                )
                .await
                .status
        }));
    }
    for p in puts {
        assert_eq!(p.await.unwrap(), StatusCode::CREATED);
    }
    let singles = requests(&http, &b, "/cloud/v1/tasks/:task_id").await - singles_before;
    let lists = requests(&http, &b, "/cloud/v1/tasks").await - lists_before;
    assert!(lists > 0.0, "the poller lists tasks");
    // Tasks seen pending are found in the ended list once they end; only one
    // that ended before any round saw it may be read by itself.
    assert!(
        singles <= 2.0,
        "{singles} single-task reads for 20 waiters ({lists} list requests)"
    );
}
