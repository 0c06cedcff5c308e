//! Inbound credentials, static mode: CF bearer tokens and Gcore API keys from
//! the config, compared in constant time. Credentials never reach a log line
//! or an error body.

use http::HeaderMap;

/// Why a request is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Invalid,
}

fn credential<'a>(headers: &'a HeaderMap, scheme: &str) -> Result<&'a str, AuthError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::Invalid)?;
    let (given, rest) = value.trim().split_once(' ').ok_or(AuthError::Invalid)?;
    if !given.eq_ignore_ascii_case(scheme) {
        return Err(AuthError::Invalid);
    }
    Ok(rest.trim())
}

fn accepted(given: &str, allowed: &[String]) -> bool {
    // Check every entry so the time taken does not depend on which one matched.
    allowed
        .iter()
        .fold(false, |ok, a| constant_time_eq(given.as_bytes(), a.as_bytes()) | ok)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `Authorization: bearer <token>` (any case of the scheme, as the cf CLI sends it).
pub fn cf(headers: &HeaderMap, tokens: &[String]) -> Result<(), AuthError> {
    let token = credential(headers, "bearer")?;
    accepted(token, tokens).then_some(()).ok_or(AuthError::Invalid)
}

/// `Authorization: APIKey <key>` (Gcore documents `apikey` too).
pub fn gcore(headers: &HeaderMap, keys: &[String]) -> Result<(), AuthError> {
    let key = credential(headers, "apikey")?;
    accepted(key, keys).then_some(()).ok_or(AuthError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn schemes_and_tokens() {
        let tokens = vec!["t1".to_string(), "t2".to_string()];
        assert_eq!(cf(&HeaderMap::new(), &tokens), Err(AuthError::Missing));
        assert_eq!(cf(&headers("bearer t2"), &tokens), Ok(()));
        assert_eq!(cf(&headers("Bearer t1"), &tokens), Ok(()));
        assert_eq!(cf(&headers("bearer t3"), &tokens), Err(AuthError::Invalid));
        assert_eq!(cf(&headers("APIKey t1"), &tokens), Err(AuthError::Invalid));
        assert_eq!(gcore(&headers("APIKey t1"), &tokens), Ok(()));
        assert_eq!(gcore(&headers("apikey t1"), &tokens), Ok(()));
        assert_eq!(gcore(&headers("APIKey"), &tokens), Err(AuthError::Invalid));
    }
}
