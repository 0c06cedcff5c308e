//! URL query strings: percent-encoding of components (RFC 3986 unreserved
//! characters pass) and `application/x-www-form-urlencoded` decoding, through
//! the `percent-encoding` and `form_urlencoded` crates.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encode a query component.
pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// A query string as pairs, in order (`+` is a space, `%XX` a byte;
/// malformed escapes stay as written).
pub fn parse_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_round_trip() {
        assert_eq!(encode("name:web 1/é"), "name%3Aweb%201%2F%C3%A9");
        assert_eq!(encode("a-b.c_d~e"), "a-b.c_d~e");
        let pairs = parse_pairs(&format!("q={}&x", encode("name:web 1/é")));
        assert_eq!(
            pairs,
            vec![("q".into(), "name:web 1/é".into()), ("x".into(), "".into())]
        );
    }
}
