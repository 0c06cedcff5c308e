//! The `sgbridge` binary.

use clap::{Parser, Subcommand};
use sgbridge::cli::translate::{self, TranslateArgs};
use sgbridge::config::Config;
use sgbridge::server::{self, App};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "sgbridge",
    version,
    about = "Gateway between the Cloud Foundry v2 and Gcore Cloud security-group APIs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (embedded backend on 127.0.0.1:8080 without --config).
    Serve {
        /// TOML config file (see config/sgbridge.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address, overriding server.listen (port 0 picks a free port).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Check a config file and exit non-zero with a clear message if it is invalid.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
    },
    /// Translate a JSON array of rules from one dialect to the other (stdin → stdout).
    Translate(TranslateArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Translate(args) => run_translate(&args),
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sgbridge: invalid config: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Serve { config, listen } => run_serve(config, listen),
    }
}

fn run_serve(path: Option<PathBuf>, listen: Option<SocketAddr>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let mut cfg = match path {
        Some(p) => match Config::load(&p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("sgbridge: invalid config: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => Config::default(),
    };
    if let Some(addr) = listen {
        cfg.server.listen = addr;
        if let Err(e) = cfg.validate() {
            eprintln!("sgbridge: invalid config: {e}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sgbridge: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let addr = cfg.server.listen;
        let app = match App::new(cfg) {
            Ok(a) => Arc::new(a),
            Err(e) => {
                eprintln!("sgbridge: {e}");
                return ExitCode::FAILURE;
            }
        };
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("sgbridge: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let bound = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| addr.to_string());
        eprintln!(
            "sgbridge: listening on http://{bound} (backend: {})",
            app.service.backend().name()
        );
        match server::serve(listener, app, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sgbridge: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("sgbridge: shutting down");
}

fn run_translate(args: &TranslateArgs) -> ExitCode {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("sgbridge: cannot read stdin: {e}");
        return ExitCode::from(2);
    }
    match translate::run(args, &input) {
        Ok(out) => {
            for w in &out.warnings {
                eprintln!("warning: {w}");
            }
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(out.stdout.as_bytes())
                .and_then(|_| stdout.flush())
                .is_err()
            {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Err(stderr) => {
            eprint!("{stderr}");
            ExitCode::FAILURE
        }
    }
}
