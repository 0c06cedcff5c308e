//! The `sgbridge` binary.

use clap::{Parser, Subcommand};
use sgbridge::cli::translate::{self, TranslateArgs};
use std::io::{Read, Write};
use std::process::ExitCode;

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
    /// Translate a JSON array of rules from one dialect to the other (stdin → stdout).
    Translate(TranslateArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Translate(args) => run_translate(&args),
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
