//! Accepting connections: plain TCP or TLS (rustls), each connection served
//! by hyper with the router. A client that sends its headers too slowly gets
//! a 408 and a close (plain TCP); a client that does not read its response
//! for `server.write_timeout_s` is cut off, so slow readers cannot pin
//! memory. Shutdown drains in steps (see [`serve_live`]).

use super::http::CloseWithoutAnswer;
use super::layers::observe::ClientAddr;
use super::live::Live;
use super::shared_socket::Shared;
use super::{AdminPort, App};
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

/// A listening socket on `addr` with room for `backlog` connections not yet
/// accepted. (`TcpListener::bind` always asks for 1,024: a burst of 10,000
/// connects overflowed it, and each dropped connect waited a second or more
/// for its SYN to be sent again.)
pub async fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // What `TcpListener::bind` does too: a restart can bind at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serve `app` on `listener` until `shutdown` resolves, then drain (tests
/// and embedders; the binary uses [`serve_live`]).
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let app = match Arc::try_unwrap(app) {
        Ok(app) => app,
        Err(shared) => shared.reconfigured(shared.cfg.clone()).map_err(std::io::Error::other)?,
    };
    serve_live(Arc::new(Live::new(app, None)), listener, None, shutdown).await
}

/// Serve the live gateway on the API listener (and the admin listener)
/// until `shutdown` resolves, then drain:
/// 1. `/readyz` answers 503 at once; connections are still accepted for
///    `server.shutdown_delay_s`, so load balancers notice;
/// 2. the listeners close; in-flight requests, waits included, get the
///    grace period ([`Config::shutdown_grace`]) to finish;
/// 3. whatever is still open is answered now, in its dialect (the deadline
///    layer), and given a moment to be written.
pub async fn serve_live(
    live: Arc<Live>,
    listener: TcpListener,
    admin: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let app = live.app();
    if let Ok(addr) = listener.local_addr() {
        let _ = app.bound.set(addr);
    }
    let tls = tls_acceptor(&app).map_err(std::io::Error::other)?;
    let prober = {
        let app = app.clone();
        let interval = Duration::from_secs(app.cfg.server.readiness_interval_s);
        tokio::spawn(async move {
            app.readiness
                .run(app.service.clone(), app.stores.clone(), interval, &app.lifecycle)
                .await
        })
    };
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let accepting = Accepting {
        live: live.clone(),
        tls,
        graceful: &graceful,
    };
    let (close_admin, admin_closing) = tokio::sync::watch::channel(false);
    let admin = admin.map(|l| spawn_admin(live.clone(), l, admin_closing)).transpose()?;
    tokio::pin!(shutdown);
    accepting.run(&listener, false, &mut shutdown).await;
    app.lifecycle.drain();
    tracing::info!("draining: /readyz answers 503; still accepting for server.shutdown_delay_s");
    let delay = tokio::time::sleep(Duration::from_secs(app.cfg.server.shutdown_delay_s));
    accepting.run(&listener, false, delay).await;
    drop(listener);
    let _ = close_admin.send(true);
    let grace = live.app().cfg.shutdown_grace();
    tracing::info!(
        grace_s = grace.as_secs(),
        "listeners closed; waiting for in-flight requests"
    );
    let drained = graceful.shutdown();
    tokio::pin!(drained);
    if tokio::time::timeout(grace, &mut drained).await.is_err() {
        tracing::warn!("requests still open at the end of the grace period: answering them now");
        app.lifecycle.stop_now();
        if tokio::time::timeout(Duration::from_secs(5), drained).await.is_err() {
            tracing::warn!("connections still open after their answers; closing");
        }
    }
    app.lifecycle.stop_now();
    prober.abort();
    if let Some(admin) = admin {
        let _ = tokio::task::spawn_blocking(move || admin.join()).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Accepting connections on one listener (the API's, or the admin's on its own thread).
struct Accepting<'a> {
    live: Arc<Live>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    graceful: &'a hyper_util::server::graceful::GracefulShutdown,
}

impl Accepting<'_> {
    /// Accepts on `listener` until `until` resolves; `on_admin` marks the
    /// admin port (plain HTTP; TLS is the API's).
    async fn run(&self, listener: &TcpListener, on_admin: bool, until: impl Future<Output = ()>) {
        tokio::pin!(until);
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = &mut until => return,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let tls = if on_admin { None } else { self.tls.clone() };
            let conn = Conn {
                live: self.live.clone(),
                peer,
                on_admin,
            };
            tokio::spawn(connection(stream, conn, tls, self.graceful.watcher()));
        }
    }
}

/// The admin listener on a thread and runtime of its own, as linkerd2-proxy
/// serves its admin endpoints: probes and scrapes are answered while the
/// API's workers are saturated (10,000 writes arriving within a second held
/// `/healthz` p99 near 50 ms on a shared worker). Accepts until `closing`
/// turns true, then gives open admin requests 5 s.
fn spawn_admin(
    live: Arc<Live>,
    listener: TcpListener,
    mut closing: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let listener = listener.into_std()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new()
        .name("sgbridge-admin".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => return tracing::error!(error = %e, "the admin listener could not be served"),
                };
                let graceful = hyper_util::server::graceful::GracefulShutdown::new();
                let accepting = Accepting {
                    live,
                    tls: None,
                    graceful: &graceful,
                };
                let closed = async move {
                    let _ = closing.wait_for(|closed| *closed).await;
                };
                accepting.run(&listener, true, closed).await;
                drop(listener);
                let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
            })
        })
}

/// One accepted connection.
#[derive(Clone)]
struct Conn {
    live: Arc<Live>,
    peer: SocketAddr,
    on_admin: bool,
}

async fn connection(stream: TcpStream, conn: Conn, tls: Option<tokio_rustls::TlsAcceptor>, graceful: Watcher) {
    match tls {
        None => plain(stream, conn, graceful).await,
        // A TLS session and its handshake take ~4 KB of future; out of line,
        // so a plain connection's task (one per open connection, 10,000 of
        // them under load) does not reserve room for it.
        Some(acceptor) => Box::pin(over_tls(stream, acceptor, conn, graceful)).await,
    }
}

async fn plain(stream: TcpStream, conn: Conn, graceful: Watcher) {
    let (write_timeout, header_timeout) = conn.timeouts();
    let (served, kept) = Shared::pair(stream);
    let timed_out = serve_io(served, conn, write_timeout, header_timeout, graceful).await;
    // hyper has dropped its handle by now: the socket is this one's.
    if let Some(mut socket) = kept.into_inner().filter(|_| timed_out) {
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.write_all(TIMEOUT_408)).await;
        let _ = socket.shutdown().await;
    }
}

async fn over_tls(stream: TcpStream, acceptor: tokio_rustls::TlsAcceptor, conn: Conn, graceful: Watcher) {
    let (write_timeout, header_timeout) = conn.timeouts();
    match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls_stream)) => {
            serve_io(tls_stream, conn, write_timeout, header_timeout, graceful).await;
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!("TLS handshake timed out"),
    }
}

impl Conn {
    /// The write and header timeouts of the config current at accept time.
    fn timeouts(&self) -> (Duration, Duration) {
        let cfg = &self.live.app().cfg.server;
        (
            Duration::from_secs(cfg.write_timeout_s),
            Duration::from_secs(cfg.header_timeout_s),
        )
    }
}

/// Serves one connection; `true` when it ended because the headers of a
/// request did not arrive in time. Each request is served by the config
/// current when it arrives.
async fn serve_io<S>(io: S, conn: Conn, write_timeout: Duration, header_timeout: Duration, graceful: Watcher) -> bool
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut io = TimeoutStream::new(io);
    io.set_write_timeout(Some(write_timeout));
    let svc = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(ClientAddr(conn.peer));
        if conn.on_admin {
            req.extensions_mut().insert(AdminPort);
        }
        let answered = conn.live.router().handle(req);
        async move {
            let resp = match answered.await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            // hyper closes a connection whose service fails, sending nothing.
            if resp.extensions().get::<CloseWithoutAnswer>().is_some() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "closed without an answer (an emulator fault)",
                ));
            }
            Ok(resp)
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(super::worded::Worded::new(Box::pin(io))), svc);
    match graceful.watch(served).await {
        Ok(()) => false,
        Err(e) => {
            tracing::debug!(error = %e, "connection ended with an error");
            e.is_timeout()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every open connection holds its task's future: a plain one must not
    /// reserve room for a TLS session (it was 5,280 bytes with the TLS
    /// branch inline, 1,320 of them hyper's connection).
    #[tokio::test]
    async fn a_plain_connection_holds_no_room_for_tls() {
        let app = App::new(crate::config::Config::default()).expect("default config");
        let conn = Conn {
            live: Arc::new(Live::new(app, None)),
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            on_admin: false,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _client = TcpStream::connect(addr).await.expect("connect");
        let (stream, _) = listener.accept().await.expect("accept");
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let serving = connection(stream, conn, None, graceful.watcher());
        let size = std::mem::size_of_val(&serving);
        assert!(size < 2048, "a connection's future is {size} bytes");
    }

    /// Connects that complete within `wait` while nobody accepts.
    async fn completed_connects(listener: &TcpListener, tries: usize, wait: Duration) -> usize {
        let addr = listener.local_addr().expect("addr");
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..tries {
            set.spawn(tokio::time::timeout(wait, TcpStream::connect(addr)));
        }
        let mut open = Vec::new();
        while let Some(joined) = set.join_next().await {
            if let Ok(Ok(Ok(stream))) = joined {
                open.push(stream);
            }
        }
        open.len()
    }

    /// The configured backlog is the one the kernel gets: with 4 places,
    /// connects beyond them are dropped (their SYN is sent again after a
    /// second, past the wait); with 64, all 24 complete at once.
    #[tokio::test]
    async fn the_listen_backlog_is_the_configured_one() {
        let wait = Duration::from_millis(500);
        let small = bind(SocketAddr::from(([127, 0, 0, 1], 0)), 4).await.expect("bind");
        let done = completed_connects(&small, 24, wait).await;
        assert!(done < 12, "{done} of 24 connects completed with a backlog of 4");
        let large = bind(SocketAddr::from(([127, 0, 0, 1], 0)), 64).await.expect("bind");
        assert_eq!(completed_connects(&large, 24, wait).await, 24);
    }

    fn get_healthz(addr: SocketAddr) -> std::io::Result<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_millis(1500)))?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")?;
        let mut reply = String::new();
        s.read_to_string(&mut reply)?;
        Ok(reply)
    }

    /// The admin port is served on its own thread: it answers while the
    /// API's only worker is held (it timed out when both shared it).
    #[test]
    fn the_admin_port_answers_while_the_api_workers_are_busy() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
        let (api, admin) = runtime.block_on(async { (bind(localhost, 16).await, bind(localhost, 16).await) });
        let (api, admin) = (api.expect("bind"), admin.expect("bind"));
        let admin_addr = admin.local_addr().expect("addr");
        let mut cfg = crate::config::Config::default();
        cfg.server.admin_listen = Some(admin_addr);
        cfg.server.shutdown_delay_s = 0;
        let live = Arc::new(Live::new(App::new(cfg).expect("config"), None));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = runtime.spawn(serve_live(live, api, Some(admin), async move {
            let _ = stopped.await;
        }));
        assert!(get_healthz(admin_addr).expect("idle").starts_with("HTTP/1.1 200"));
        let (held, holding) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        runtime.spawn(async move {
            let _ = held.send(());
            let _ = released.recv();
        });
        holding
            .recv_timeout(Duration::from_secs(5))
            .expect("the worker is held");
        let reply = get_healthz(admin_addr);
        let _ = release.send(());
        assert!(reply
            .expect("an answer while the worker is held")
            .starts_with("HTTP/1.1 200"));
        let _ = stop.send(());
        runtime.block_on(served).expect("served").expect("stopped");
    }
}
