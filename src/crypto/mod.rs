//! What the gateway's own token issuer (`server::auth::login`) keeps secret
//! and checks with, knowing no HTTP: password hashes (argon2id, checked on
//! threads of their own) and the RSA signing key with its public JWK. Kept
//! apart so `config` can check a hash or a key file without the server.

pub mod password;
pub mod signing;
