//! The TLS parameters of a PostgreSQL connection string, as libpq reads
//! them: `sslmode` (`disable`, `allow`, `prefer` — libpq's default —,
//! `require`, `verify-ca`, `verify-full`), `sslrootcert`, `sslcert`,
//! `sslkey`. tokio-postgres knows only disable/prefer/require and no file
//! parameters, so they are taken out here; the store builds the TLS client
//! from them (`store::pg_tls`), and `check-config` reads the files now.
//! Differences from libpq, on purpose: `allow` is taken as `prefer` (TLS
//! first); without `sslrootcert`, `verify-ca`/`verify-full` trust Mozilla's
//! roots (libpq's `sslrootcert=system`) rather than `~/.postgresql`.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The TLS parameters of a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    pub root_cert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Splits a connection string — a URL (`postgres://…?sslmode=verify-full&
/// sslrootcert=…`) or libpq's `key=value` form (unquoted values) — into what
/// tokio-postgres reads and the TLS settings. Errors name the parameter,
/// never the string (it may hold a password).
pub fn split(url: &str) -> Result<(String, Settings), String> {
    let mut settings = Settings {
        mode: Mode::Prefer,
        root_cert: None,
        cert: None,
        key: None,
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        // Pairs not ours are kept byte for byte (tokio-postgres percent-
        // decodes them itself; a form re-encoding would turn `%20` into `+`).
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |t: &str| percent_encoding::percent_decode_str(t).decode_utf8_lossy().into_owned();
            if !settings.take(&decode(name), &decode(value))? {
                kept.push(pair);
            }
        }
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        let mut kept = Vec::new();
        for pair in url.split_whitespace() {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !settings.take(name, value)? {
                kept.push(pair);
            }
        }
        kept.join(" ")
    };
    if settings.cert.is_some() != settings.key.is_some() {
        return Err("sslcert and sslkey go together (a client certificate and its key)".into());
    }
    Ok((rest, settings))
}

impl Settings {
    /// Takes one parameter if it is a TLS one (whether it was).
    fn take(&mut self, name: &str, value: &str) -> Result<bool, String> {
        match name {
            "sslmode" => {
                self.mode = match value {
                    "disable" => Mode::Disable,
                    "allow" | "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                        ))
                    }
                }
            }
            // libpq's `system`: the platform's roots (here Mozilla's).
            "sslrootcert" if value == "system" => self.root_cert = None,
            "sslrootcert" => self.root_cert = Some(PathBuf::from(value)),
            "sslcert" => self.cert = Some(PathBuf::from(value)),
            "sslkey" => self.key = Some(PathBuf::from(value)),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Reads the files it names: a missing or unreadable one is an error
    /// at start (and in `check-config`), not at the first connect.
    pub fn check_files(&self) -> Result<(), String> {
        if let Some(root) = &self.root_cert {
            certificates(root, "sslrootcert")?;
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            certificates(cert, "sslcert")?;
            PrivateKeyDer::from_pem_file(key).map_err(|e| format!("sslkey {}: {e}", key.display()))?;
        }
        Ok(())
    }
}

/// The certificates of a PEM file (at least one).
pub fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{what} {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{what} {}: no certificate in it", path.display()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_parameters_leave_the_url_and_the_rest_stays() {
        let (rest, s) = split(
            "postgres://u:pw@db.example.com:5432/app?application_name=x&sslmode=verify-full&sslrootcert=/etc/ca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:pw@db.example.com:5432/app?application_name=x");
        assert_eq!(s.mode, Mode::VerifyFull);
        assert_eq!(s.root_cert.as_deref(), Some(Path::new("/etc/ca.pem")));
        let (rest, s) = split("postgres://u@h/db").unwrap();
        assert_eq!(
            (rest.as_str(), s.mode),
            ("postgres://u@h/db", Mode::Prefer),
            "libpq's default"
        );
        assert_eq!(split("postgres://h/db?sslmode=allow").unwrap().1.mode, Mode::Prefer);
        let e = split("postgres://u:s3cret@h/db?sslmode=verify").unwrap_err();
        assert!(
            e.contains("sslmode=verify is not one of") && !e.contains("s3cret"),
            "{e}"
        );
        assert!(split("postgres://h/db?sslcert=/c.pem")
            .unwrap_err()
            .contains("go together"));
        let (rest, _) = split("postgres://u@h/db?application_name=a%20b+c&sslmode=require&options=-c%20x%3Dy").unwrap();
        assert_eq!(
            rest, "postgres://u@h/db?application_name=a%20b+c&options=-c%20x%3Dy",
            "kept byte for byte"
        );
        let (_, s) = split("postgres://h/db?sslmode=verify-full&sslrootcert=system").unwrap();
        assert_eq!(s.root_cert, None, "libpq's system roots");
        let (rest, s) = split("host=db user=app sslmode=verify-ca sslrootcert=/ca.pem").unwrap();
        assert_eq!((rest.as_str(), s.mode), ("host=db user=app", Mode::VerifyCa));
        let e = split("postgres://h/db?sslmode=verify-full&sslrootcert=/nowhere.pem")
            .unwrap()
            .1
            .check_files()
            .unwrap_err();
        assert!(e.starts_with("sslrootcert /nowhere.pem"), "{e}");
    }
}
