//! The gateway's outbound HTTPS client: rustls with Mozilla's roots plus any
//! CA file the operator gives; plain HTTP only where the config allows it
//! (loopback). Certificate verification cannot be switched off. HTTPS goes
//! through the proxy `HTTPS_PROXY`/`ALL_PROXY` name (an HTTP CONNECT
//! tunnel; `NO_PROXY` honoured), read once when the client is made.

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

pub type HttpsClient = Client<HttpsConnector<ProxyConnector>, Full<Bytes>>;

/// Connects directly, or through a CONNECT tunnel where the environment
/// names a proxy for the destination.
#[derive(Clone)]
pub struct ProxyConnector {
    direct: HttpConnector,
    proxies: Arc<Matcher>,
}

impl ProxyConnector {
    fn from_env() -> Self {
        let mut direct = HttpConnector::new();
        // hyper-rustls decides the scheme; this connector only opens sockets.
        direct.enforce_http(false);
        direct.set_nodelay(true);
        ProxyConnector {
            direct,
            proxies: Arc::new(Matcher::from_env()),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<Uri> for ProxyConnector {
    type Response = TokioIo<TcpStream>;
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
        Box::pin(async move {
            match proxy {
                None => direct.call(dst).await.map_err(Into::into),
                Some(via) => {
                    let mut tunnel = Tunnel::new(via.uri().clone(), direct);
                    if let Some(auth) = via.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    tunnel.call(dst).await.map_err(Into::into)
                }
            }
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

/// A pooled keep-alive client.
pub fn client(ca_file: Option<&Path>, max_idle_per_host: usize) -> Result<HttpsClient, String> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(ca_file)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(ProxyConnector::from_env());
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(max_idle_per_host)
        .build(https))
}
