//! The issuer's RSA signing key: read from `signing_key_file` (PEM, PKCS#1
//! or PKCS#8), or generated at start. Its public half is served as UAA
//! serves its own (`/token_keys`, `/token_key`) and verifies the tokens the
//! gateway issued, through the same check as a UAA's tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use serde_json::{json, Value};
use std::path::Path;

pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The public key as UAA's `/token_keys` lists it.
    pub jwk: Value,
}

impl SigningKey {
    /// The key in a PEM file.
    pub fn load(path: &Path) -> Result<SigningKey, String> {
        let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_pem(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A new 2048-bit key as PKCS#8 PEM (kept in a store for every replica).
    pub fn generate_pem() -> Result<String, String> {
        use rsa::pkcs8::EncodePrivateKey;
        use rsa::Generate;
        let pem = rsa::PrivateKey::generate()
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|e| e.to_string())?;
        Ok(pem.to_string())
    }

    /// The key in PEM text (PKCS#1 or PKCS#8).
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, String> {
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("no RSA private key in PEM: {e}"))?;
        let not_rsa = || "not an RSA private key (PKCS#1 or PKCS#8)".to_string();
        let key = match &der {
            PrivateKeyDer::Pkcs1(k) => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                rsa::PrivateKey::from_pkcs1_der(k.secret_pkcs1_der()).map_err(|_| not_rsa())?
            }
            PrivateKeyDer::Pkcs8(k) => rsa::PrivateKey::from_pkcs8_der(k.secret_pkcs8_der()).map_err(|_| not_rsa())?,
            _ => return Err(not_rsa()),
        };
        Self::from_key(&key)
    }

    /// A new 2048-bit key.
    pub fn generate() -> Result<SigningKey, String> {
        use rsa::Generate;
        Self::from_key(&rsa::PrivateKey::generate())
    }

    fn from_key(key: &rsa::PrivateKey) -> Result<SigningKey, String> {
        let der = key.to_pkcs1_der().map_err(|e| e.to_string())?;
        let public = key.to_public_key();
        let n = URL_SAFE_NO_PAD.encode(public.n_bytes());
        let e = URL_SAFE_NO_PAD.encode(public.e_bytes());
        // The key id names the key: a hash of its modulus, stable across
        // restarts and replicas that load the same file.
        let digest = <sha2::Sha256 as sha2::Digest>::digest(n.as_bytes());
        let kid = format!("sgbridge-{}", URL_SAFE_NO_PAD.encode(&digest[..9]));
        let decoding = DecodingKey::from_rsa_components(&n, &e).map_err(|e| e.to_string())?;
        Ok(SigningKey {
            jwk: json!({"kty": "RSA", "e": e, "use": "sig", "kid": kid, "alg": "RS256", "n": n}),
            kid,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            decoding,
        })
    }
}
