//! A UAA stand-in on a loopback port: `GET /token_keys` serves a JWK set of
//! RSA keys generated in the test, and tokens are signed with them. It can
//! be taken down, and counts the key fetches.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::Generate;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

/// A signing key and its JWK.
#[derive(Clone)]
pub struct Key {
    pub kid: String,
    encoding: EncodingKey,
    pub jwk: Value,
}

/// Generating RSA keys takes a moment: the tests share a few.
fn keys() -> &'static [Key; 3] {
    static KEYS: OnceLock<[Key; 3]> = OnceLock::new();
    KEYS.get_or_init(|| ["key-1", "key-2", "key-3"].map(Key::generate))
}

impl Key {
    fn generate(kid: &str) -> Key {
        let private = rsa::PrivateKey::generate();
        let der = private.to_pkcs1_der().expect("encode");
        let public = private.to_public_key();
        Key {
            kid: kid.to_string(),
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(public.n_bytes()), "e": "AQAB",
                "value": "-----BEGIN PUBLIC KEY-----\n(not read)\n-----END PUBLIC KEY-----"}),
        }
    }

    pub fn first() -> Key {
        keys()[0].clone()
    }

    pub fn second() -> Key {
        keys()[1].clone()
    }

    pub fn third() -> Key {
        keys()[2].clone()
    }

    /// This key's material under another key's id (a forged signature).
    pub fn posing_as(&self, kid: &str) -> Key {
        Key {
            kid: kid.to_string(),
            ..self.clone()
        }
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        encode(&header, claims, &self.encoding).expect("sign")
    }
}

#[derive(Default)]
pub struct State {
    pub keys: Vec<Value>,
    pub down: bool,
    pub fetches: u64,
    /// Tokens handed out by `POST /oauth/token` (client credentials), in turn.
    pub grant_tokens: Vec<String>,
    pub grants: u64,
    /// The client the grant accepts: (id, secret).
    pub client: (String, String),
}

pub struct Uaa {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl Uaa {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn issuer(&self) -> String {
        format!("{}/oauth/token", self.url())
    }

    pub fn serve_keys(&self, keys: &[&Key]) {
        self.state.lock().unwrap().keys = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    pub fn fetches(&self) -> u64 {
        self.state.lock().unwrap().fetches
    }

    /// Claims of a valid admin token from this UAA.
    pub fn claims(&self, scopes: &[&str]) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({"jti": "7f3a-token", "sub": "u-1", "user_id": "u-1", "user_name": "alice", "origin": "uaa",
            "client_id": "cf", "scope": scopes, "iat": now, "nbf": now - 5, "exp": now + 600,
            "iss": self.issuer(), "aud": ["cloud_controller", "openid", "cf"], "zid": "uaa"})
    }
}

pub async fn start() -> Uaa {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state: Arc<Mutex<State>> = Arc::default();
    let shared = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let state = shared.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    async move {
                        let mut s = state.lock().unwrap();
                        let resp = if req.uri().path() == "/oauth/token" {
                            drop(s);
                            let body = http_body_util::BodyExt::collect(req.into_body())
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
                            let mut s = state.lock().unwrap();
                            let field = |k: &str| {
                                form.iter()
                                    .find(|(key, _)| key == k)
                                    .map(|(_, v)| v.clone())
                                    .unwrap_or_default()
                            };
                            if field("grant_type") != "client_credentials"
                                || (field("client_id"), field("client_secret")) != s.client
                            {
                                reply(StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}).to_string())
                            } else {
                                let i = (s.grants as usize).min(s.grant_tokens.len().saturating_sub(1));
                                let token = s.grant_tokens.get(i).cloned().unwrap_or_default();
                                s.grants += 1;
                                reply(
                                    StatusCode::OK,
                                    json!({"access_token": token, "token_type": "bearer", "expires_in": 3600})
                                        .to_string(),
                                )
                            }
                        } else if req.uri().path() != "/token_keys" {
                            reply(StatusCode::NOT_FOUND, "{}".into())
                        } else if s.down {
                            reply(StatusCode::SERVICE_UNAVAILABLE, "down".into())
                        } else {
                            s.fetches += 1;
                            reply(StatusCode::OK, json!({"keys": s.keys}).to_string())
                        };
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Uaa { addr, state }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}
