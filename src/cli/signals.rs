//! The signals `serve` answers: SIGTERM (or Ctrl-C) starts the drain and a
//! second one ends the process at once; SIGHUP reloads the config.

/// Resolves on the first SIGTERM or SIGINT; from then on, the next one
/// exits the process at once.
pub async fn first_sigterm() {
    terminate().await;
    tracing::info!("SIGTERM: draining (a second SIGTERM exits at once)");
    tokio::spawn(async {
        terminate().await;
        tracing::warn!("second SIGTERM: exiting now");
        std::process::exit(1);
    });
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(not(unix))]
async fn terminate() {
    let _ = tokio::signal::ctrl_c().await;
}

/// SIGHUP deliveries (`None` where there are none).
#[cfg(unix)]
pub fn hangups() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
pub fn hangups() -> Option<Never> {
    None
}

#[cfg(not(unix))]
pub struct Never;

#[cfg(not(unix))]
impl Never {
    pub async fn recv(&mut self) -> Option<()> {
        std::future::pending().await
    }
}
