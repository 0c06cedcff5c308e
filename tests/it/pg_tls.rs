//! TLS to PostgreSQL as libpq configures it (issue 26), against a real
//! server with `ssl = on` whose `pg_hba.conf` refuses plaintext, its
//! certificate for `localhost` from a throwaway CA: verify-full and
//! verify-ca with that CA, and require, are served; another CA, another
//! name and plaintext are refused, each as one line without the password.

use crate::support::postgres::Postgres;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use sgbridge::config::{Env, IdempotencyConfig, StoreConfig, StoreKind};
use sgbridge::store::{NoStoreTelemetry, Stores};
use std::path::PathBuf;

struct Pki {
    dir: PathBuf,
    server_cert: String,
    server_key: String,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A CA, a server certificate for `localhost` it signed, and another CA.
fn pki() -> Pki {
    let dir = std::env::temp_dir().join(format!("sgbridge-pg-pki-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (ours, other) = (ca("sgbridge test CA"), ca("another CA"));
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ours)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ours.pem()).unwrap();
    std::fs::write(dir.join("other-ca.pem"), other.pem()).unwrap();
    Pki {
        dir,
        server_cert: cert.pem(),
        server_key: key.serialize_pem(),
    }
}

async fn open(url: &str) -> Result<Stores, String> {
    let cfg = StoreConfig {
        kind: StoreKind::Postgres,
        url_env: "SGBRIDGE_TEST_TLS_URL".into(),
        ..StoreConfig::default()
    };
    let env = Env::isolated().with("SGBRIDGE_TEST_TLS_URL", url);
    let stores = Stores::open(
        &cfg,
        &env,
        &IdempotencyConfig::default(),
        std::sync::Arc::new(NoStoreTelemetry),
    )
    .await?;
    stores.ping().await.map_err(|e| e.to_string())?;
    Ok(stores)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_as_libpq_configures_it() {
    let pki = pki();
    let pg = Postgres::start_tls("tls", &pki.server_cert, &pki.server_key);
    let ca = pki.dir.join("ca.pem").display().to_string();
    let other = pki.dir.join("other-ca.pem").display().to_string();
    let by_name = pg.url.replace("postgres@", "postgres:not-the-password@");
    let by_address = by_name.replace("localhost", "127.0.0.1");
    let with = |base: &str, query: &str| format!("{base}?{query}");

    for (what, url) in [
        (
            "verify-full, our CA",
            with(&by_name, &format!("sslmode=verify-full&sslrootcert={ca}")),
        ),
        (
            "verify-ca by address",
            with(&by_address, &format!("sslmode=verify-ca&sslrootcert={ca}")),
        ),
        ("require, unchecked", with(&by_name, "sslmode=require")),
        ("prefer (libpq's default) takes TLS", by_name.clone()),
    ] {
        if let Err(e) = open(&url).await {
            panic!("{what}: refused: {e}");
        }
    }
    for (what, url, says) in [
        (
            "verify-full, another CA",
            with(&by_name, &format!("sslmode=verify-full&sslrootcert={other}")),
            "UnknownIssuer",
        ),
        (
            "verify-full by address",
            with(&by_address, &format!("sslmode=verify-full&sslrootcert={ca}")),
            "not valid for name",
        ),
        ("plaintext", with(&by_name, "sslmode=disable"), "no encryption"),
    ] {
        let e = match open(&url).await {
            Ok(_) => panic!("{what}: served"),
            Err(e) => e,
        };
        assert!(e.contains(says), "{what}: {e}");
        assert!(!e.contains("not-the-password") && !e.contains('\n'), "{what}: {e}");
    }
    let _ = std::fs::remove_dir_all(&pki.dir);
}
