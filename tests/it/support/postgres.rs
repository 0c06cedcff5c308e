//! A throwaway PostgreSQL for tests: `initdb` + `pg_ctl` from the Debian
//! package (which `.ci/run` installs) in a temp dir, on a free loopback
//! port; as root they run as `nobody`. It can be stopped and started again
//! on the same port (store outages), and is removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn pg_bin(name: &str) -> PathBuf {
    let dirs = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("PostgreSQL's {name} is not installed (apt-get install postgresql; .ci/run does)"))
}

fn as_postgres_user(bin: &Path) -> Command {
    // initdb and postgres refuse to run as root.
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

pub struct Postgres {
    dir: PathBuf,
    port: u16,
    pub url: String,
}

impl Postgres {
    pub fn start(name: &str) -> Postgres {
        let dir = std::env::temp_dir().join(format!("sgbridge-pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown").args(["-R", "nobody:nogroup"]).arg(&dir).status();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ok = as_postgres_user(&pg_bin("initdb"))
            .args(["--auth=trust", "-U", "postgres", "-D"])
            .arg(dir.join("data"))
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "initdb failed");
        let pg = Postgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            port,
        };
        pg.up();
        pg
    }

    /// Starts the server (again, on the same port and data).
    pub fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let ok = as_postgres_user(&pg_bin("pg_ctl"))
            .args(["-w", "-D"])
            .arg(self.dir.join("data"))
            .args(["-o", &opts, "-l"])
            .arg(self.dir.join("log"))
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "pg_ctl start failed");
    }

    /// Runs SQL with `psql` (the package's client), failing on any error.
    pub fn psql(&self, sql: &str) {
        let out = Command::new(pg_bin("psql"))
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-d", &self.url, "-c", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Stops the server, closing every connection (`-m fast`).
    pub fn down(&self) {
        let ok = as_postgres_user(&pg_bin("pg_ctl"))
            .args(["-w", "-m", "fast", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "pg_ctl stop failed");
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres_user(&pg_bin("pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
