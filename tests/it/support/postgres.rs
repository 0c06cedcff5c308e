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
        let pg = Postgres::init(name);
        pg.up();
        pg
    }

    /// A server that takes TLS only (`ssl = on`; `pg_hba.conf` refuses
    /// plaintext over TCP) with this certificate and key (PEM); `url` names
    /// the host `localhost`.
    pub fn start_tls(name: &str, cert_pem: &str, key_pem: &str) -> Postgres {
        let mut pg = Postgres::init(name);
        let data = pg.dir.join("data");
        std::fs::write(data.join("server.crt"), cert_pem).unwrap();
        std::fs::write(data.join("server.key"), key_pem).unwrap();
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        conf.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(data.join("postgresql.conf"), conf).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        let _ = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(&pg.dir)
            .status();
        // The server refuses a key others can read.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
        pg.url = format!("postgres://postgres@localhost:{}/postgres", pg.port);
        pg.up();
        pg
    }

    fn init(name: &str) -> Postgres {
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
        Postgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            port,
        }
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
