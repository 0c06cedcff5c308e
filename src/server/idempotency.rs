//! `Idempotency-Key` on writes (IETF draft-ietf-httpapi-idempotency-key-
//! header): a POST, PUT or PATCH carrying a key is answered once; a replay
//! with the same key and the same request gets the stored status, headers
//! and body; the same key while the first is still being answered is a
//! 409, and with a different request a 422, each in the caller's dialect.
//!
//! Keys belong to the credential ([`Principal::id`]: a UAA user's issuer,
//! zone, origin and user id; a static credential's own entry), never to a
//! display name, so two callers cannot collide or read each other's
//! answers. A caller the route itself would refuse (a read-only token on a
//! write, a key on another project's path) never reaches the records: the
//! handler refuses it, and that refusal is not kept. Nor is any answer a
//! retry may change (401, 403, 408, 409, 429, 5xx: nothing was applied, or
//! the protocols' own reconciliation of lost creates decides). An answer
//! larger than `idempotency.max_answer_bytes` is kept as "answered, too
//! large to keep": a replay answers 409 saying so, and never runs the
//! request again. Records live for `idempotency.ttl_s` in the configured
//! store, within per-credential and total bounds (see
//! [`crate::store::RecordLimits`]).

use super::http::{Principal, Resp};
use super::layers::{answer_as, next};
use super::route::Route;
use super::{rescue, App};
use crate::error::{Error, Kind};
use crate::store::{Answer, Begin, Records};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

pub const HEADER: &str = "idempotency-key";

/// The longest key taken (the draft leaves it to the server).
const MAX_KEY: usize = 255;

/// The header that marks a kept answer whose body was too large to keep
/// (its value: the body's size); never sent to a caller.
const NOT_KEPT: &str = "sgbridge-answer-not-kept";

/// The records and how long they last.
#[derive(Clone)]
pub struct Keys {
    records: Arc<dyn Records>,
    ttl: Duration,
    /// A claim whose request never answered lapses after this long.
    in_flight: Duration,
    max_answer: u64,
}

impl Keys {
    pub fn new(app: &App) -> Keys {
        Keys {
            records: app.stores.records.clone(),
            ttl: Duration::from_secs(app.cfg.idempotency.ttl_s),
            in_flight: Duration::from_secs(app.cfg.server.request_timeout_s + 10),
            max_answer: app.cfg.idempotency.max_answer_bytes,
        }
    }
}

/// Whether an answer is kept for its key: not a refusal of the caller's
/// credentials, nor anything a retry of the same request may change.
fn keeps(status: http::StatusCode) -> bool {
    !(status.is_server_error() || matches!(status.as_u16(), 401 | 403 | 407 | 408 | 409 | 425 | 429))
}

/// What the request is, for telling a replay from a different request
/// (stable across processes: the same request has the same fingerprint on
/// every replica).
fn fingerprint(req: &Request<Bytes>) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    req.method().as_str().hash(&mut h);
    req.uri().path().hash(&mut h);
    req.uri().query().hash(&mut h);
    req.body().as_ref().hash(&mut h);
    h.finish()
}

/// FNV-1a: a hash with no per-process random key.
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
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

pub fn idempotency<S>(keys: Keys, req: Request<Bytes>, inner: S) -> impl std::future::Future<Output = Resp>
where
    S: crate::server::layers::Rest<Bytes> + Send + 'static,
{
    use futures_util::future::Either;
    let writes = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH)
        && req.extensions().get::<super::dry_run::DryRun>().is_none();
    // A request without a key (nearly all) holds only the handler's future,
    // not room for a keyed one's state (1,248 bytes, for the whole of a
    // waiting write): that is boxed on its own.
    match key(&req).filter(|_| writes) {
        None => Either::Left(next(inner, req)),
        Some(key) => Either::Right(Box::pin(keyed(keys, key, req, inner))),
    }
}

/// A write with an `Idempotency-Key`: claimed, answered once, its answer kept.
async fn keyed<S>(keys: Keys, key: Result<String, ()>, req: Request<Bytes>, inner: S) -> Resp
where
    S: crate::server::layers::Rest<Bytes>,
{
    let (dialect, id) = answer_as(&req);
    let refuse = |kind: Kind, text: &str| rescue::render(dialect, &Error::new(kind, text), &id);
    let Ok(key) = key else {
        return refuse(
            Kind::KeyReused,
            "The Idempotency-Key header must hold 1 to 255 visible characters",
        );
    };
    let Some(principal) = req.extensions().get::<Principal>() else {
        return next(inner, req).await;
    };
    let allowed = req
        .extensions()
        .get::<Route>()
        .is_some_and(|route| super::authorize::passes(principal, route, req.method()));
    if !allowed {
        // The handler refuses it in its own words; nothing is claimed or kept.
        return next(inner, req).await;
    }
    let principal = principal.id.clone();
    let fingerprint = fingerprint(&req);
    let begun = keys.records.begin(&principal, &key, fingerprint, keys.in_flight).await;
    match begun {
        Err(e) => return refuse(Kind::Unavailable, &e.to_string()),
        Ok(Begin::Fresh) => {}
        Ok(Begin::Done { fingerprint: f, answer }) if f == fingerprint => {
            return replay(answer).unwrap_or_else(|size| {
                refuse(
                    Kind::KeyAnswerNotKept,
                    &format!(
                        "The request with this Idempotency-Key was answered, but its answer ({size} bytes) was too large to keep; read the resource for its state"
                    ),
                )
            })
        }
        Ok(Begin::InFlight { fingerprint: f }) if f == fingerprint => {
            return refuse(
                Kind::KeyInFlight,
                "A request with this Idempotency-Key is still being answered; retry when it has finished",
            )
        }
        Ok(_) => return refuse(Kind::KeyReused, "This Idempotency-Key was used for a different request"),
    }
    let resp = next(inner, req).await;
    if !keeps(resp.status()) {
        if let Err(e) = keys.records.abandon(&principal, &key).await {
            tracing::warn!(error = %e, "an idempotency claim was not released; it lapses on its own");
        }
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let body = http_body_util::BodyExt::collect(body)
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer = kept_answer(&parts, &body, keys.max_answer);
    if let Err(e) = keys
        .records
        .finish(&principal, &key, fingerprint, answer, keys.ttl)
        .await
    {
        tracing::warn!(error = %e, "an answer was not kept for its Idempotency-Key");
    }
    http::Response::from_parts(parts, Full::new(body))
}

/// What is kept of an answer: all of it, or (past `max` bytes) its status
/// and size only.
fn kept_answer(parts: &http::response::Parts, body: &Bytes, max: u64) -> Answer {
    let mut answer = Answer {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
            .collect(),
        body: Vec::new(),
    };
    let size = answer.size() + body.len() as u64;
    if size <= max {
        answer.body = body.to_vec();
    } else {
        answer.headers = vec![(NOT_KEPT.to_string(), size.to_string().into_bytes())];
    }
    answer
}

/// The stored answer, or (`Err`) the size of one that was not kept.
fn replay(answer: Answer) -> Result<Resp, String> {
    if let Some((_, size)) = answer.headers.iter().find(|(k, _)| k == NOT_KEPT) {
        return Err(String::from_utf8_lossy(size).into_owned());
    }
    let mut resp = http::Response::new(Full::new(Bytes::from(answer.body)));
    *resp.status_mut() = http::StatusCode::from_u16(answer.status).unwrap_or(http::StatusCode::OK);
    for (k, v) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_bytes(&v),
        ) {
            resp.headers_mut().append(name, value);
        }
    }
    resp.headers_mut()
        .insert("idempotent-replayed", http::HeaderValue::from_static("true"));
    Ok(resp)
}

/// For the fuzz target ([`crate::fuzzing::idempotency`]): the key parser
/// takes any header bytes and yields 1 to 255 characters or a refusal; an
/// answer kept within its bound replays as it was, one past it as its size.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        let mut req = Request::new(Bytes::new());
        req.headers_mut().insert(HEADER, value);
        if let Some(Ok(k)) = key(&req) {
            assert!(!k.is_empty() && k.len() <= MAX_KEY, "{k:?}");
        }
    }
    let status = http::StatusCode::from_u16(200 + u16::from(data.first().copied().unwrap_or(0)) % 400)
        .unwrap_or(http::StatusCode::OK);
    let mut resp = http::Response::new(());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", http::HeaderValue::from_static("application/json"));
    let (parts, ()) = resp.into_parts();
    let body = Bytes::copy_from_slice(data);
    let max = u64::from(data.get(1).copied().unwrap_or(0)) * 4;
    let kept = kept_answer(&parts, &body, max);
    let size = (body.len() + "content-type".len() + "application/json".len()) as u64;
    match replay(kept) {
        Ok(r) => {
            assert!(size <= max, "a {size}-byte answer kept whole past a {max}-byte bound");
            assert_eq!(r.status(), status);
            assert_eq!(
                r.headers().get("idempotent-replayed").map(|v| v.as_bytes()),
                Some(&b"true"[..])
            );
            assert!(r.headers().get(NOT_KEPT).is_none());
        }
        Err(told) => {
            assert!(size > max);
            assert_eq!(told, size.to_string());
        }
    }
}
