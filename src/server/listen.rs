//! Accepting connections: plain TCP or TLS (rustls), each connection served
//! by hyper with the router. A client that sends its headers too slowly gets
//! a 408 and a close (plain TCP); a client that does not read its response
//! for `server.write_timeout_s` is cut off, so slow readers cannot pin
//! memory. In-flight requests finish on shutdown, up to the grace period.

use super::layers::observe::ClientAddr;
use super::{router, App};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt;

const TIMEOUT_408: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 25\r\nconnection: close\r\n\r\nrequest headers timed out";

/// The TLS acceptor for `server.tls`, when configured.
pub fn tls_acceptor(app: &App) -> Result<Option<tokio_rustls::TlsAcceptor>, String> {
    let Some(tls) = &app.cfg.server.tls else {
        return Ok(None);
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|it| it.collect())
        .map_err(|e| format!("server.tls.cert_file {}: {e}", tls.cert_file.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|e| format!("server.tls.key_file {}: {e}", tls.key_file.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("server.tls: {e}"))?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

/// Serve connections from `listener` until `shutdown` resolves, then let
/// in-flight requests finish (up to the request timeout).
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        let _ = app.bound.set(addr);
    }
    let tls = tls_acceptor(&app).map_err(std::io::Error::other)?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, peer, app.clone(), tls.clone(), graceful.watcher()));
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let grace = Duration::from_secs(app.cfg.server.request_timeout_s);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the grace period; closing");
    }
    Ok(())
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Arc<App>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    graceful: Watcher,
) {
    let write_timeout = Duration::from_secs(app.cfg.server.write_timeout_s);
    let header_timeout = Duration::from_secs(app.cfg.server.header_timeout_s);
    match tls {
        None => {
            // A second handle on the socket answers 408 to slow headers, after
            // hyper has given the connection up.
            let spare = stream.into_std().and_then(|s| {
                let spare = s.try_clone()?;
                Ok((TcpStream::from_std(s)?, spare))
            });
            let Ok((stream, spare)) = spare else { return };
            let timed_out = serve_io(stream, peer, app, write_timeout, graceful).await;
            if timed_out {
                if let Ok(mut spare) = TcpStream::from_std(spare) {
                    let _ = tokio::time::timeout(Duration::from_secs(1), spare.write_all(TIMEOUT_408)).await;
                    let _ = spare.shutdown().await;
                }
            }
        }
        Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls_stream)) => {
                serve_io(tls_stream, peer, app, write_timeout, graceful).await;
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!("TLS handshake timed out"),
        },
    }
}

/// Serves one connection; `true` when it ended because the headers of a
/// request did not arrive in time.
async fn serve_io<S>(io: S, peer: SocketAddr, app: Arc<App>, write_timeout: Duration, graceful: Watcher) -> bool
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut io = TimeoutStream::new(io);
    io.set_write_timeout(Some(write_timeout));
    let header_timeout = Duration::from_secs(app.cfg.server.header_timeout_s);
    let svc = router::<Incoming>(app);
    let svc = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(ClientAddr(peer));
        svc.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(Box::pin(io)), svc);
    match graceful.watch(conn).await {
        Ok(()) => false,
        Err(e) => {
            tracing::debug!(error = %e, "connection ended with an error");
            e.is_timeout()
        }
    }
}
