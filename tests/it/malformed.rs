//! Malformed JSON, wrong types and oversized bodies sent to every write route
//! of both dialects: each gets a 4xx error body in its own dialect, nothing
//! panics, and the gateway keeps serving.

use crate::support::*;
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: usize = 4096;

#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    Cf,
    Gcore,
}

fn check(d: Dialect, r: &Reply, what: &str) {
    assert!(
        r.status.is_client_error(),
        "{what}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    let body = r.json();
    match d {
        Dialect::Cf => {
            assert!(
                body["code"].is_u64() && body["description"].is_string() && body["error_code"].is_string(),
                "{what}: {body}"
            );
            assert_eq!(body.as_object().unwrap().len(), 3, "{what}");
        }
        Dialect::Gcore => {
            assert!(
                body["exception_class"].is_string() && body["message"].is_string(),
                "{what}: {body}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_route_refuses_bad_bodies_in_its_dialect() {
    let mut cfg = quick_config();
    cfg.server.max_body_bytes = LIMIT;
    let gw = start(cfg).await;
    let http = Http::default();
    let guid = {
        let r = http
            .cf(Method::POST, &gw.url("/v2/security_groups"), r#"{"name":"target"}"#)
            .await;
        r.json()["metadata"]["guid"].as_str().unwrap().to_string()
    };
    let rule = "11111111-2222-4333-8444-555555555555";
    let routes: Vec<(Dialect, Method, String, bool)> = vec![
        (Dialect::Cf, Method::POST, "/v2/security_groups".into(), true),
        (Dialect::Cf, Method::PUT, format!("/v2/security_groups/{guid}"), true),
        (
            Dialect::Gcore,
            Method::POST,
            "/cloud/v2/security_groups/1/1".into(),
            true,
        ),
        (
            Dialect::Gcore,
            Method::PATCH,
            format!("/cloud/v2/security_groups/1/1/{guid}"),
            true,
        ),
        (
            Dialect::Gcore,
            Method::POST,
            format!("/cloud/v2/security_groups/1/1/{guid}/rules"),
            true,
        ),
        // Routes whose body CC and Gcore ignore still refuse oversized bodies.
        (
            Dialect::Cf,
            Method::PUT,
            format!("/v2/security_groups/{guid}/spaces/{rule}"),
            false,
        ),
        (
            Dialect::Cf,
            Method::PUT,
            format!("/v2/config/running_security_groups/{guid}"),
            false,
        ),
        (
            Dialect::Gcore,
            Method::DELETE,
            format!("/cloud/v2/security_groups/1/1/{guid}/rules/{rule}"),
            false,
        ),
    ];
    let malformed = [
        "{",
        "[",
        "nul",
        "{\"name\":",
        "\u{0}",
        "{\"rules\":[}",
        "\"just a string\"",
        "42",
        "[]",
        "null",
        "{\"name\":\"x\",}",
    ];
    let wrong_types = [
        r#"{"name":5}"#,
        r#"{"name":"x","rules":{}}"#,
        r#"{"name":"x","rules":"all"}"#,
        r#"{"name":"x","rules":[1,"a",null]}"#,
        r#"{"name":"x","rules":[{"protocol":7,"destination":[],"ports":{}}]}"#,
        r#"{"name":"x","rules":[{"direction":5,"protocol":true,"port_range_min":"a","port_range_max":-1,"remote_ip_prefix":3}]}"#,
        r#"{"name":"x","space_guids":[1]}"#,
        r#"{"name":["x"],"tags":[1]}"#,
    ];
    // Valid for a CF PUT (CC ignores unknown keys), wrong for every Gcore route.
    let gcore_only = [r#"{"direction":[],"protocol":{},"port_range_min":1e99}"#];
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(LIMIT));
    for (d, method, path, parses) in &routes {
        let url = gw.url(path);
        let send = |body: String| {
            let auth = if *d == Dialect::Cf { CF_AUTH } else { GCORE_AUTH };
            let http = &http;
            let url = url.clone();
            let method = method.clone();
            async move {
                http.send(
                    method,
                    &url,
                    &[("authorization", auth), ("content-type", "application/json")],
                    body,
                )
                .await
            }
        };
        if *parses {
            let extra: &[&str] = if *d == Dialect::Gcore { &gcore_only } else { &[] };
            for body in malformed.iter().chain(wrong_types.iter()).chain(extra) {
                let r = send(body.to_string()).await;
                check(*d, &r, &format!("{method} {path} with {body:?}"));
            }
        }
        let r = send(big.clone()).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{method} {path}");
        check(*d, &r, &format!("{method} {path} oversized"));
    }
    // Chunked, without a length: refused once the limit is crossed.
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let chunk = "y".repeat(LIMIT + 10);
    let req = format!(
        "POST /v2/security_groups HTTP/1.1\r\nhost: x\r\nauthorization: {CF_AUTH}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 413"), "{}", &out[..out.len().min(200)]);
    // Still serving.
    let r = http.cf(Method::GET, &gw.url("/v2/security_groups"), "").await;
    assert_eq!(r.status, StatusCode::OK);
}
