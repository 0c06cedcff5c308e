//! `Idempotency-Key` on writes (IETF draft-ietf-httpapi-idempotency-key-
//! header): a POST, PUT or PATCH carrying a key is answered once; a replay
//! with the same key and the same request gets the stored status, headers
//! and body; the same key while the first is still being answered is a
//! 409, and with a different request a 422, each in the caller's dialect.
//!
//! Keys belong to the caller (principal), so two callers cannot collide or
//! read each other's answers. Answers are kept for `idempotency.ttl_s`, at
//! most `idempotency.max_keys` of them. A 5xx is not kept: nothing was
//! applied, or the protocols' own reconciliation (lost creates) decides,
//! so the caller's retry runs again. Records live in this process: behind
//! several replicas, route a client's retries to one replica or rely on
//! the write path's own guarantees (see the README).

use super::http::{Principal, Resp};
use super::layers::{answer_as, next};
use super::rescue;
use crate::config::IdempotencyConfig;
use crate::error::{Error, Kind};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::Full;
use moka::sync::Cache;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

pub const HEADER: &str = "idempotency-key";

/// The longest key taken (the draft leaves it to the server).
const MAX_KEY: usize = 255;

#[derive(Clone)]
enum Entry {
    InFlight { fingerprint: u64 },
    Done { fingerprint: u64, answer: Arc<Stored> },
}

struct Stored {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

pub struct Store {
    entries: Cache<(String, String), Entry>,
}

impl Store {
    pub fn new(cfg: &IdempotencyConfig) -> Store {
        Store {
            entries: Cache::builder()
                .max_capacity(cfg.max_keys)
                .time_to_live(Duration::from_secs(cfg.ttl_s))
                .build(),
        }
    }
}

/// What the request is, for telling a replay from a different request.
fn fingerprint(req: &Request<Bytes>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    req.method().as_str().hash(&mut h);
    req.uri().path().hash(&mut h);
    req.uri().query().hash(&mut h);
    req.body().hash(&mut h);
    h.finish()
}

/// The key, unquoted (the draft sends an sf-string; plain tokens are taken too).
fn key(req: &Request<Bytes>) -> Option<Result<String, ()>> {
    let raw = req.headers().get(HEADER)?;
    let text = raw.to_str().map_err(|_| ()).map(str::trim);
    Some(text.and_then(|t| {
        let t = t.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(t);
        if t.is_empty() || t.len() > MAX_KEY {
            Err(())
        } else {
            Ok(t.to_string())
        }
    }))
}

pub async fn idempotency<S>(store: Arc<Store>, req: Request<Bytes>, inner: S) -> Resp
where
    S: tower::Service<Request<Bytes>, Response = Resp, Error = std::convert::Infallible>,
{
    let writes = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH)
        && req.extensions().get::<super::dry_run::DryRun>().is_none();
    let Some(key) = key(&req).filter(|_| writes) else {
        return next(inner, req).await;
    };
    let (dialect, id) = answer_as(&req);
    let refuse = |kind: Kind, text: &str| rescue::render(dialect, &Error::new(kind, text), &id);
    let Ok(key) = key else {
        return refuse(
            Kind::KeyReused,
            "The Idempotency-Key header must hold 1 to 255 visible characters",
        );
    };
    let principal = req
        .extensions()
        .get::<Principal>()
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let slot = (principal, key);
    let fingerprint = fingerprint(&req);
    let entry = store
        .entries
        .entry(slot.clone())
        .or_insert_with(|| Entry::InFlight { fingerprint });
    if !entry.is_fresh() {
        return match entry.into_value() {
            Entry::Done { fingerprint: f, answer } if f == fingerprint => replay(&answer),
            Entry::InFlight { fingerprint: f } if f == fingerprint => refuse(
                Kind::KeyInFlight,
                "A request with this Idempotency-Key is still being answered; retry when it has finished",
            ),
            _ => refuse(Kind::KeyReused, "This Idempotency-Key was used for a different request"),
        };
    }
    let resp = next(inner, req).await;
    if resp.status().is_server_error() {
        store.entries.invalidate(&slot);
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let body = http_body_util::BodyExt::collect(body)
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer = Arc::new(Stored {
        status: parts.status,
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    store.entries.insert(slot, Entry::Done { fingerprint, answer });
    http::Response::from_parts(parts, Full::new(body))
}

fn replay(answer: &Stored) -> Resp {
    let mut resp = http::Response::new(Full::new(answer.body.clone()));
    *resp.status_mut() = answer.status;
    *resp.headers_mut() = answer.headers.clone();
    resp.headers_mut()
        .insert("idempotent-replayed", http::HeaderValue::from_static("true"));
    resp
}
