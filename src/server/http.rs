//! HTTP plumbing shared by both front ends: the request context, bounded body
//! reading, JSON responses and query strings.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use serde::Serialize;

pub type Body = Full<Bytes>;
pub type Resp = Response<Body>;

/// What a handler knows about its request besides the body.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub request_id: String,
}

impl Ctx {
    /// All values of one query parameter, in order.
    pub fn params<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn param<'a>(&'a self, key: &'a str) -> Option<&'a str> {
        self.params(key).next()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    Broken(String),
}

/// Read a body of at most `max` bytes (a declared larger length is refused
/// earlier, before routing).
pub async fn read_body<B>(body: B, max: usize) -> Result<Bytes, BodyError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(e) => Err(BodyError::Broken(e.to_string())),
    }
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Resp {
    match serde_json::to_vec(value) {
        Ok(bytes) => raw(status, "application/json", Bytes::from(bytes)),
        Err(_) => raw(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            Bytes::from_static(b"encoding error"),
        ),
    }
}

/// CC answers `application/json;charset=utf-8`.
pub fn cf_json<T: Serialize>(status: StatusCode, value: &T) -> Resp {
    let mut r = json(status, value);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json;charset=utf-8"));
    r
}

pub fn raw(status: StatusCode, content_type: &'static str, body: Bytes) -> Resp {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

pub fn with_header(mut r: Resp, name: &'static str, value: &str) -> Resp {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(HeaderName::from_static(name), v);
    }
    r
}

/// Decode a query string into pairs (`+` is a space, `%XX` a byte).
pub fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

pub use crate::urlenc::{decode, encode};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trip() {
        let q = parse_query(Some("q=name%3Aweb+1&q=x&page=2&flag&bad=%zz&end=%4&u=%é"));
        assert_eq!(
            q,
            vec![
                ("q".into(), "name:web 1".into()),
                ("q".into(), "x".into()),
                ("page".into(), "2".into()),
                ("flag".into(), "".into()),
                ("bad".into(), "%zz".into()),
                ("end".into(), "%4".into()),
                ("u".into(), "%é".into()),
            ]
        );
    }
}
