//! `sgbridge store export | import`: a durable store's contents as JSON
//! lines on stdout / from stdin (the format: `store::dump`), for backups,
//! restores and moves between SQLite and PostgreSQL.

use crate::config::Config;
use crate::store::{dump, NoStoreTelemetry, Stores};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// What to do with the store `--config` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Export,
    Import,
}

pub fn run(action: Action, config: &Path) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
        .and_then(|runtime| runtime.block_on(act(action, config)));
    match outcome {
        Ok(said) => {
            eprintln!("sgbridge: {said}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "sgbridge: store {}: {e}",
                if action == Action::Export { "export" } else { "import" }
            );
            ExitCode::FAILURE
        }
    }
}

async fn act(action: Action, config: &Path) -> Result<String, String> {
    let cfg = Config::load(config).map_err(|e| format!("invalid config: {e}"))?;
    let stores = Stores::open(&cfg.store, &cfg.env, &cfg.idempotency, Arc::new(NoStoreTelemetry)).await?;
    match action {
        Action::Export => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let counts = dump::export(&stores, &mut out).await?;
            out.flush().map_err(|e| e.to_string())?;
            Ok(format!("exported {counts}"))
        }
        Action::Import => {
            let counts = dump::import(&stores, std::io::stdin().lock()).await?;
            Ok(format!("imported {counts}"))
        }
    }
}
