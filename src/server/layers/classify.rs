//! Classifies the route (a closed set) and assigns the request id: an
//! incoming `X-Request-Id` or `X-Vcap-Request-Id` when it is well formed, else
//! a new one. The id is echoed in the dialect's own header(s); a 503 gets a
//! `Retry-After`, whichever layer or handler answered it.

use super::next;
use crate::server::http::{with_header, RequestId, Resp};
use crate::server::route::{self, Dialect};
use http::Request;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An incoming id is kept if it is short and plain (no header or log injection).
fn incoming(req: &Request<impl Sized>) -> Option<Arc<str>> {
    ["x-request-id", "x-vcap-request-id"].iter().find_map(|h| {
        let v = req.headers().get(*h)?.to_str().ok()?;
        let ok = !v.is_empty()
            && v.len() <= 128
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        ok.then(|| Arc::from(v))
    })
}

/// A new id: a per-process random prefix and a counter, no syscall per request.
fn fresh() -> Arc<str> {
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| fastrand::u64(..));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let p = prefix.to_be_bytes();
    Arc::from(format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
        u16::from_be_bytes([p[4], p[5]]),
        u16::from_be_bytes([p[6], p[7]]) & 0xfff,
        (n >> 48) & 0xfff,
        n & 0xffff_ffff_ffff
    ))
}

pub fn classify<S, B>(mut req: Request<B>, inner: S) -> impl std::future::Future<Output = Resp>
where
    S: crate::server::layers::Rest<B>,
{
    // Not an `async fn`: its future would keep two slots for the request
    // for the whole of a waiting write (see `observe`).
    let route = route::classify(req.uri().path());
    let dialect = route.dialect();
    let id = incoming(&req).unwrap_or_else(fresh);
    req.extensions_mut().insert(route);
    req.extensions_mut().insert(RequestId(id.clone()));
    let handler = next(inner, req);
    async move {
        let mut resp = handler.await;
        if resp.status() == http::StatusCode::SERVICE_UNAVAILABLE && !resp.headers().contains_key("retry-after") {
            resp = with_header(resp, "retry-after", "1");
        }
        let resp = with_header(resp, "x-request-id", &id);
        match dialect {
            Dialect::Cf | Dialect::CfV3 => with_header(resp, "x-vcap-request-id", &id),
            Dialect::Gcore => with_header(resp, "request_id", &id),
            Dialect::Ops | Dialect::Emulator | Dialect::Ui => resp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kept_only_when_plain() {
        let req = |v: &str| Request::builder().header("x-vcap-request-id", v).body(()).unwrap();
        assert_eq!(incoming(&req("abc-123")).as_deref(), Some("abc-123"));
        assert_eq!(incoming(&req("bad id")), None);
        assert_eq!(incoming(&req(&"x".repeat(200))), None);
        let a = fresh();
        let b = fresh();
        assert_ne!(a, b);
        assert!(crate::model::Uuid::parse(&a).is_some(), "{a}");
    }
}
