//! A connection's socket with two owners: hyper drives it, and the listener
//! keeps a handle to answer 408 once hyper has given up on slow headers.
//! (A `dup` of the socket did this before: two file descriptors for every
//! connection, so 10,000 connections ran out of a `ulimit -n` of 20,000.)

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One owner's handle. Only one side polls at a time (hyper while it
/// serves, the listener after), so the lock is never contended.
pub(super) struct Shared<S>(Arc<Mutex<S>>);

impl<S> Shared<S> {
    /// Two handles on `socket`.
    pub(super) fn pair(socket: S) -> (Shared<S>, Shared<S>) {
        let one = Arc::new(Mutex::new(socket));
        (Shared(one.clone()), Shared(one))
    }

    /// The socket itself, once the other handle is gone.
    pub(super) fn into_inner(self) -> Option<S> {
        let mutex = Arc::into_inner(self.0)?;
        Some(mutex.into_inner().unwrap_or_else(PoisonError::into_inner))
    }

    fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Shared<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.with(|s| Pin::new(s).poll_read(cx, buf))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Shared<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.with(|s| Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.with(|s| Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.with(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| Pin::new(s).poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_second_handle_gets_the_socket_when_the_first_is_gone() {
        let (mut near, far) = tokio::io::duplex(64);
        let (mut served, kept) = Shared::pair(far);
        assert!(Shared::pair(0u8).1.into_inner().is_none(), "taken while shared");
        served.write_all(b"one ").await.expect("write");
        drop(served);
        let mut socket = kept.into_inner().expect("the last handle");
        socket.write_all(b"two").await.expect("write");
        drop(socket);
        let mut got = String::new();
        near.read_to_string(&mut got).await.expect("read");
        assert_eq!(got, "one two");
    }
}
