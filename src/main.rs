//! The `sgbridge` binary.

use clap::{Parser, Subcommand};
use sgbridge::cli::healthcheck;
use sgbridge::cli::signals;
use sgbridge::cli::translate::{self, TranslateArgs};
use sgbridge::config::{Config, LogFormat};
use sgbridge::server::{self, live::Live, App};
use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// mimalloc gives memory back after a burst (glibc's arenas keep a burst's
/// peak resident; see BENCHMARKS.md) and is faster for small allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sgbridge",
    version = sgbridge::build::VERSION,
    long_version = LONG_VERSION.as_str(),
    about = "Gateway between the Cloud Foundry and Gcore Cloud security-group APIs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

static LONG_VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(sgbridge::build::long_version);

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (embedded backend on 127.0.0.1:8080 without --config).
    Serve {
        /// TOML config file (see config/sgbridge.toml); SIGHUP reloads it.
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
    /// Ask a running gateway's /healthz (the container HEALTHCHECK): exit 0
    /// when it answers 200 within --timeout seconds.
    Healthcheck {
        /// The gateway's config, to find its admin (else API) address.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The address to ask, overriding the config.
        #[arg(long)]
        addr: Option<SocketAddr>,
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// Translate a JSON array of rules from one dialect to the other (stdin → stdout).
    Translate(TranslateArgs),
    /// Read a password from stdin and print its argon2id hash for [[auth.users]].
    HashPassword,
    /// Copy a durable store's contents out (stdout) or in (stdin), as JSON lines.
    Store {
        #[command(subcommand)]
        action: StoreCommand,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Write every group, task and idempotency answer of the configured store to stdout.
    Export {
        #[arg(long)]
        config: PathBuf,
    },
    /// Read an export from stdin into the configured store (with the gateway
    /// on a SQLite store stopped; PostgreSQL replicas take it in as they run).
    Import {
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Translate(args) => run_translate(&args),
        Command::HashPassword => sgbridge::cli::hash_password::run(),
        Command::Store { action } => {
            use sgbridge::cli::store::{run, Action};
            match action {
                StoreCommand::Export { config } => run(Action::Export, &config),
                StoreCommand::Import { config } => run(Action::Import, &config),
            }
        }
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(cfg) => {
                println!("{}: ok", config.display());
                for what in cfg.untried() {
                    println!("not tried (needs the network): {what}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sgbridge: invalid config: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Healthcheck { config, addr, timeout } => healthcheck::run(config, addr, timeout),
        Command::Serve { config, listen } => run_serve(config, listen),
    }
}

fn load(path: Option<&PathBuf>, listen: Option<SocketAddr>) -> Result<Config, String> {
    let mut cfg = match path {
        Some(p) => Config::load(p).map_err(|e| format!("invalid config: {e}"))?,
        None => Config::default(),
    };
    if let Some(addr) = listen {
        cfg.server.listen = addr;
        cfg.validate().map_err(|e| format!("invalid config: {e}"))?;
    }
    Ok(cfg)
}

/// Logs to stderr as text (colour only on a terminal) or JSON lines,
/// written by their own thread (`server::log_writer`); the guard writes
/// what is queued when it is dropped.
fn init_logs(cfg: &Config) -> Result<server::log_writer::LogGuard, String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    let queue = usize::try_from(cfg.log.queue_lines).unwrap_or(usize::MAX);
    let (writer, guard) =
        server::log_writer::start(std::io::stderr(), queue).map_err(|e| format!("cannot start the log writer: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match cfg.log.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    Ok(guard)
}

fn run_serve(path: Option<PathBuf>, listen: Option<SocketAddr>) -> ExitCode {
    let cfg = match load(path.as_ref(), listen) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sgbridge: {e}");
            return ExitCode::FAILURE;
        }
    };
    let logs = match init_logs(&cfg) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("sgbridge: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            drop(logs);
            eprintln!("sgbridge: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(serve(cfg, path));
    // The queued log lines first, then the last word.
    drop(logs);
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sgbridge: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cfg: Config, path: Option<PathBuf>) -> Result<(), String> {
    let (addr, admin_addr) = (cfg.server.listen, cfg.server.admin_listen);
    let baseline = server::watch::Baseline::now(path.as_ref(), &cfg);
    let app = App::open(cfg).await?;
    let backlog = app.cfg.server.listen_backlog;
    let bind = |a: SocketAddr| async move {
        server::listen::bind(a, backlog)
            .await
            .map_err(|e| format!("cannot listen on {a}: {e}"))
    };
    let listener = bind(addr).await?;
    let admin = match admin_addr {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let local = |l: &tokio::net::TcpListener| l.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let scheme = if app.cfg.server.tls.is_some() { "https" } else { "http" };
    let backend = app.service.backend().name();
    if let Some(a) = &admin {
        eprintln!("sgbridge: admin endpoints on http://{}", local(a));
    }
    eprintln!(
        "sgbridge: listening on {scheme}://{} (backend: {backend}, version {})",
        local(&listener),
        sgbridge::build::long_version()
    );
    if backend == "embedded" && app.stores.kind == sgbridge::config::StoreKind::Memory {
        tracing::warn!(
            "the embedded backend keeps every group in memory: a restart loses them all (use backend.kind = \"gcore\" or \"cf\" to keep them)"
        );
    }
    let live = Arc::new(Live::new(app, path));
    tokio::spawn(reload_on_sighup(live.clone()));
    let every = live.app().cfg.server.watch_config_s;
    if live.path().is_some() && every > 0 {
        tokio::spawn(baseline.run(live.clone(), std::time::Duration::from_secs(every)));
    }
    let served = server::serve_live(live.clone(), listener, admin, signals::first_sigterm())
        .await
        .map_err(|e| e.to_string());
    live.app().audit.flush(AUDIT_DRAIN).await;
    served
}

/// How long the exit waits for queued audit records to be written (a
/// blocked stdout: past this, how many wait is logged and the exit goes on).
const AUDIT_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// SIGHUP: reload the config file; a bad one changes nothing.
async fn reload_on_sighup(live: Arc<Live>) {
    let Some(mut hup) = signals::hangups() else { return };
    while hup.recv().await.is_some() {
        live.reload_logged("SIGHUP");
    }
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
