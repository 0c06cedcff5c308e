//! `sgbridge healthcheck`: asks a running gateway's `/healthz` over
//! loopback, for a container HEALTHCHECK (no curl in the image).

use crate::config::Config;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub fn run(config: Option<PathBuf>, addr: Option<SocketAddr>, timeout_s: u64) -> ExitCode {
    match target(config, addr).and_then(|a| ask(a, Duration::from_secs(timeout_s.max(1)))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sgbridge healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The admin address if there is one, else the API's (plain HTTP only);
/// an unspecified address is asked on loopback.
fn target(config: Option<PathBuf>, addr: Option<SocketAddr>) -> Result<SocketAddr, String> {
    let mut a = match addr {
        Some(a) => a,
        None => {
            let cfg = match config {
                Some(p) => Config::load(&p).map_err(|e| e.to_string())?,
                None => Config::default(),
            };
            match cfg.server.admin_listen {
                Some(a) => a,
                None if cfg.server.tls.is_some() => {
                    return Err("the API serves HTTPS: set server.admin_listen (plain HTTP) for health checks".into())
                }
                None => cfg.server.listen,
            }
        }
    };
    if a.ip().is_unspecified() {
        a.set_ip(match a.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Ok(a)
}

fn ask(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    write!(s, "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).map_err(|e| format!("{addr}: {e}"))?;
    let line = String::from_utf8_lossy(&head[..n]);
    if line.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("{addr} answered {:?}", line.lines().next().unwrap_or("")))
    }
}
