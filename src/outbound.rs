//! The gateway's outbound HTTPS client: rustls with Mozilla's roots plus any
//! CA file the operator gives; plain HTTP only where the config allows it
//! (loopback). Certificate verification cannot be switched off. HTTPS goes
//! through the proxy `HTTPS_PROXY`/`ALL_PROXY` name (an HTTP CONNECT
//! tunnel; `NO_PROXY` honoured), read once when the client is made. At most
//! `max_connections` connections are open at once: each holds a permit for
//! its life (hyper's pool has no per-host cap of its own, and can open one
//! more while a finished connection is still on its way back to the pool).

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub type HttpsClient = Client<HttpsConnector<ProxyConnector>, Full<Bytes>>;

/// How long a new connection waits for a free place under the cap. A caller
/// that already holds one of the backend's request slots gets a pooled
/// connection back within moments; this bounds the connects hyper starts in
/// the background when the pool answers first.
const PLACE_WAIT: Duration = Duration::from_secs(2);

/// Connects directly, or through a CONNECT tunnel where the environment
/// names a proxy for the destination; never more than the cap at once.
#[derive(Clone)]
pub struct ProxyConnector {
    direct: HttpConnector,
    proxies: Arc<Matcher>,
    places: Arc<Semaphore>,
}

impl ProxyConnector {
    fn new(max_connections: usize, env: &crate::config::Env) -> Self {
        let mut direct = HttpConnector::new();
        // hyper-rustls decides the scheme; this connector only opens sockets.
        direct.enforce_http(false);
        direct.set_nodelay(true);
        ProxyConnector {
            direct,
            proxies: Arc::new(proxies(env)),
            places: Arc::new(Semaphore::new(max_connections.max(1))),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A connection holding its place under the cap until it is dropped.
pub struct Capped {
    io: TokioIo<TcpStream>,
    _place: OwnedSemaphorePermit,
}

impl hyper::rt::Read for Capped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Capped {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

impl Connection for Capped {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

impl tower::Service<Uri> for ProxyConnector {
    type Response = Capped;
    type Error = BoxError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut direct = self.direct.clone();
        // Only HTTPS is tunnelled: plain HTTP is allowed to loopback only.
        let proxy = self
            .proxies
            .intercept(&dst)
            .filter(|_| dst.scheme_str() == Some("https"));
        let places = self.places.clone();
        Box::pin(async move {
            let place = match tokio::time::timeout(PLACE_WAIT, places.acquire_owned()).await {
                Ok(Ok(place)) => place,
                _ => return Err("every connection of the pool is in use".into()),
            };
            let io = match proxy {
                None => direct.call(dst).await?,
                Some(via) => {
                    let mut tunnel = Tunnel::new(via.uri().clone(), direct);
                    if let Some(auth) = via.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    tunnel.call(dst).await?
                }
            };
            Ok(Capped { io, _place: place })
        })
    }
}

/// The TLS settings: Mozilla's roots, plus the certificates of `ca_file`.
pub fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certs =
            CertificateDer::pem_file_iter(path).map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("unusable certificate in {}: {e}", path.display()))?;
        }
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// The proxies `env` names, read as curl and hyper-util read them.
fn proxies(env: &crate::config::Env) -> Matcher {
    let var = |names: &[&str]| env.first(names).unwrap_or_default();
    Matcher::builder()
        .all(var(&["ALL_PROXY", "all_proxy"]))
        .http(var(&["HTTP_PROXY", "http_proxy"]))
        .https(var(&["HTTPS_PROXY", "https_proxy"]))
        .no(var(&["NO_PROXY", "no_proxy"]))
        .build()
}

/// A pooled keep-alive client with at most `max_connections` connections,
/// through the proxies `env` names.
pub fn client(ca_file: Option<&Path>, max_connections: usize, env: &crate::config::Env) -> Result<HttpsClient, String> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(ca_file)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(ProxyConnector::new(max_connections, env));
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(max_connections)
        .build(https))
}
