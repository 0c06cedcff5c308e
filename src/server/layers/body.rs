//! The request body, bounded: a declared length over the limit is refused
//! before a byte is read (413), a body that grows past it is cut off (413),
//! and one that does not arrive in time is a 408. Inner layers see the body
//! as bytes.

use super::{answer_as, next};
use crate::error::{Error, Kind};
use crate::server::http::Resp;
use crate::server::rescue;
use bytes::Bytes;
use http::header::HeaderValue;
use http::request::Parts;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Limited};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub fn read_body<S, B>(
    max: usize,
    limit: Duration,
    req: Request<B>,
    inner: S,
) -> impl std::future::Future<Output = Resp>
where
    S: crate::server::layers::Rest<Bytes>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    // Not an `async fn`: its future would keep two slots for the request
    // for the whole of a waiting write (see `observe`).
    let (dialect, id) = answer_as(&req);
    let too_large = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > max as u64);
    let (parts, body) = req.into_parts();
    async move {
        let fail = |kind: Kind, text: &str| rescue::render(dialect, &Error::new(kind, text), &id);
        if too_large {
            return fail(Kind::TooLarge, "The request body is too large");
        }
        let bytes = match tokio::time::timeout(limit, Limited::new(body, max).collect()).await {
            Err(_) => return fail(Kind::BodyTimeout, "The request body did not arrive in time"),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return fail(Kind::TooLarge, "The request body is too large")
            }
            Ok(Err(e)) => return fail(Kind::BodyTimeout, &format!("The request body could not be read: {e}")),
            Ok(Ok(c)) => c.to_bytes(),
        };
        // The request is built and handed on in one statement, so no slot
        // of this future keeps it through the handler's wait.
        let handler = next(
            inner,
            match parts.method {
                Method::GET | Method::HEAD => Request::from_parts(parts, bytes),
                _ => {
                    let (parts, bytes) = detach(parts, bytes);
                    Request::from_parts(parts, bytes)
                }
            },
        );
        handler.await
    }
}

/// Bodies up to this size are copied by [`detach`].
const DETACH_BODY_MAX: usize = 64 << 10;

/// Copies of a request's URI, header values and body that share nothing
/// with hyper's read buffer. hyper hands them out as slices of that buffer;
/// while one lives, the connection's next read needs a new buffer. A write
/// can wait seconds on its task, and 10,000 of them held a third 8 KB
/// buffer each.
fn detach(mut parts: Parts, body: Bytes) -> (Parts, Bytes) {
    let copy = |v: &HeaderValue| {
        let mut copied = HeaderValue::from_bytes(v.as_bytes()).unwrap_or_else(|_| v.clone());
        copied.set_sensitive(v.is_sensitive());
        copied
    };
    parts.headers = parts
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), copy(value)))
        .collect();
    if let Ok(uri) = Uri::try_from(parts.uri.to_string()) {
        parts.uri = uri;
    }
    // A small body is a slice of that buffer even when it is the last one
    // left; a large one came in several reads and was joined into a buffer
    // of its own size.
    let body = if body.len() <= DETACH_BODY_MAX {
        Bytes::copy_from_slice(&body)
    } else {
        body
    };
    (parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hyper's way: the URI, header values and body are slices of the one
    /// buffer the request was read into.
    #[test]
    fn a_detached_request_holds_nothing_of_the_read_buffer() {
        let read = Bytes::from(b"/v2/security_groups/abc?x=1|bearer t|{\"rules\":[]}".to_vec());
        let (path, token, body) = (read.slice(0..27), read.slice(28..36), read.slice(37..));
        let mut parts = Request::new(()).into_parts().0;
        parts.method = Method::PUT;
        parts.uri = Uri::from_maybe_shared(path).expect("uri");
        let mut secret = HeaderValue::from_maybe_shared(token).expect("header");
        secret.set_sensitive(true);
        parts.headers.insert(http::header::AUTHORIZATION, secret);
        let (parts, body) = detach(parts, body);
        assert!(read.is_unique(), "a copy still shares the read buffer");
        assert_eq!(parts.uri, "/v2/security_groups/abc?x=1");
        let token = parts.headers.get(http::header::AUTHORIZATION).expect("kept");
        assert_eq!(token, "bearer t");
        assert!(token.is_sensitive());
        assert_eq!(body, &b"{\"rules\":[]}"[..]);
    }

    /// A small body keeps the whole buffer alive even as its only user.
    #[test]
    fn a_small_body_is_copied_even_when_it_is_the_last_slice() {
        let read = Bytes::from(vec![b'x'; 8192]);
        let span = read.as_ptr_range();
        let span = (span.start as usize)..(span.end as usize);
        let body = read.slice(0..100);
        drop(read);
        let mut parts = Request::new(()).into_parts().0;
        parts.method = Method::PUT;
        let (_, body) = detach(parts, body);
        assert!(
            !span.contains(&(body.as_ptr() as usize)),
            "the body still points into the read buffer"
        );
        assert_eq!(body.len(), 100);
    }
}
