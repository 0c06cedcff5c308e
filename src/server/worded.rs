//! hyper answers a request it cannot parse itself — a URI over 65,534
//! bytes (414), a header section past its buffer or over 100 lines (431),
//! bytes that are not HTTP (400) — with an empty body, before any service
//! sees the request, and offers no hook to word it (hyper 1.x). This
//! wrapper around a connection's IO rewrites exactly that answer, a head
//! with no `content-type` and a zero length, into the error body of the
//! caller's dialect; the dialect is read from the first bytes of the
//! request (its path). Every other byte passes through untouched.

use super::route::Dialect;
use crate::error::{Error, Kind};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much of a request's start is kept to tell its dialect.
const HEAD: usize = 32;

pub struct Worded<S> {
    inner: S,
    /// The start of the request being read.
    head: [u8; HEAD],
    head_len: usize,
    /// The next bytes read start a request (none read yet, or an answer was
    /// written since).
    fresh: bool,
    /// A rewritten answer being written, and the length hyper gave.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<S> Worded<S> {
    pub fn new(inner: S) -> Self {
        Worded {
            inner,
            head: [0; HEAD],
            head_len: 0,
            fresh: true,
            pending: None,
        }
    }

    fn dialect(&self) -> Dialect {
        let head = &self.head[..self.head_len];
        let path = head.iter().position(|&b| b == b' ').map_or(&[][..], |i| &head[i + 1..]);
        if path.starts_with(b"/v3") {
            Dialect::CfV3
        } else if path.starts_with(b"/cloud") {
            Dialect::Gcore
        } else if [&b"/healthz"[..], b"/readyz", b"/metrics"]
            .iter()
            .any(|p| path.starts_with(p))
        {
            Dialect::Ops
        } else {
            Dialect::Cf
        }
    }
}

/// hyper's own answer to a request it could not parse: its status, when
/// `buf` is exactly such a head (no body, no content type).
fn bare_error(buf: &[u8]) -> Option<u16> {
    let status = match buf.get(..13)? {
        b"HTTP/1.1 400 " | b"HTTP/1.0 400 " => 400,
        b"HTTP/1.1 414 " | b"HTTP/1.0 414 " => 414,
        b"HTTP/1.1 431 " | b"HTTP/1.0 431 " => 431,
        _ => return None,
    };
    let text = std::str::from_utf8(buf).ok()?;
    let head = text.strip_suffix("\r\n\r\n")?;
    let lower = head.to_ascii_lowercase();
    (!head.contains("\r\n\r\n") && lower.contains("\r\ncontent-length: 0") && !lower.contains("\r\ncontent-type:"))
        .then_some(status)
}

fn what_failed(status: u16) -> &'static str {
    match status {
        414 => "the request URI is longer than 65534 bytes, the longest this server reads",
        431 => "the request's header section is too large (more than 100 header lines, or larger than about 400 KiB)",
        _ => "the request line or a header is not valid HTTP/1.1",
    }
}

/// The whole answer, in the dialect's words, with hyper's status.
fn worded(dialect: Dialect, status: u16, hyper_head: &str) -> Vec<u8> {
    use futures_util::FutureExt;
    use http_body_util::BodyExt;
    let resp = super::rescue::render(dialect, &Error::new(Kind::Malformed, what_failed(status)), "");
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let body = resp
        .into_body()
        .collect()
        .now_or_never()
        .and_then(Result::ok)
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Bad Request");
    let date = hyper_head
        .split("\r\n")
        .find(|l| l.len() > 5 && l[..5].eq_ignore_ascii_case("date:"))
        .map(|l| format!("{l}\r\n"))
        .unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n{date}\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

impl<S: AsyncRead + Unpin> AsyncRead for Worded<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let this = &mut *self;
        if this.fresh {
            let new = &buf.filled()[before..];
            let take = new.len().min(HEAD - this.head_len);
            this.head[this.head_len..this.head_len + take].copy_from_slice(&new[..take]);
            this.head_len += take;
            this.fresh = this.head_len < HEAD && !new.is_empty();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> Worded<S> {
    /// Writes the rewritten answer; done when all of it is out.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, written, reported)) = &mut self.pending {
            if *written == bytes.len() {
                let reported = *reported;
                self.pending = None;
                return Poll::Ready(Ok(reported));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(0))
    }

    fn start_answer(&mut self, buf: &[u8]) {
        if let Some(status) = bare_error(buf) {
            let head = std::str::from_utf8(buf).unwrap_or_default();
            self.pending = Some((worded(self.dialect(), status, head), 0, buf.len()));
        }
        // The next request starts after this answer.
        self.fresh = true;
        self.head_len = 0;
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Worded<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            this.start_answer(buf);
        }
        if this.pending.is_some() {
            return this.poll_pending(cx);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let mut rest = bufs.iter().filter(|b| !b.is_empty());
        let first = rest.next();
        let alone = rest.next().is_none();
        if this.pending.is_none() {
            match first {
                Some(first) if alone => this.start_answer(first),
                _ => {
                    this.fresh = true;
                    this.head_len = 0;
                }
            }
        }
        if this.pending.is_some() {
            return this.poll_pending(cx);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bare_answers_are_rewritten() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(bare_error(bare), Some(431));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(bare_error(ours), None);
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}";
        assert_eq!(bare_error(with_body), None);
        assert_eq!(bare_error(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), None);
    }

    #[tokio::test]
    async fn a_bare_414_is_answered_in_the_dialect_of_the_path() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(4096);
        let mut worded = Worded::new(server);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write
            .write_all(b"GET /v3/security_groups?guids=aaaa")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = worded.read(&mut buf).await.unwrap();
        assert!(n > 0);
        let bare = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Mon, 07 Dec 2026 06:00:00 GMT\r\n\r\n";
        assert_eq!(worded.write(bare).await.unwrap(), bare.len());
        drop(worded);
        let mut answer = String::new();
        client_read.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{answer}");
        assert!(answer.contains("date: Mon, 07 Dec 2026"), "{answer}");
        assert!(answer.contains(r#""title":"CF-InvalidRequest""#), "{answer}");
        assert!(answer.contains("65534"), "{answer}");
    }
}
