//! `sgbridge hash-password`: reads a password from standard input (never
//! the command line, which `ps` and shell histories show) and prints the
//! argon2id PHC string for `[[auth.users]] password_hash`.

use std::io::{BufRead, Write};
use std::process::ExitCode;

pub fn run() -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
        eprintln!("sgbridge: cannot read the password from standard input: {e}");
        return ExitCode::FAILURE;
    }
    let password = line
        .strip_suffix('\n')
        .map_or(line.as_str(), |l| l.strip_suffix('\r').unwrap_or(l));
    if password.is_empty() {
        eprintln!("sgbridge: no password on standard input (echo -n … | sgbridge hash-password)");
        return ExitCode::FAILURE;
    }
    match crate::crypto::password::hash(password) {
        Ok(phc) => {
            let _ = writeln!(std::io::stdout(), "{phc}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sgbridge: {e}");
            ExitCode::FAILURE
        }
    }
}
