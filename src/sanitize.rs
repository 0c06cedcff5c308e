//! Text from elsewhere (a backend's error page, a proxy's answer) made safe to
//! show a caller or write to a log: bounded, plain, and without credentials.

/// Longest piece of foreign text passed on, in characters.
pub const MAX_TEXT: usize = 300;

/// Words after which a header or body usually carries a credential.
const SCHEMES: [&str; 4] = ["apikey", "bearer", "basic", "token"];

/// `text` bounded to [`MAX_TEXT`] characters, control characters replaced,
/// each of `secrets` and every credential-looking word after an
/// authorization scheme redacted. An HTML page is not passed on at all.
pub fn foreign_text(text: &str, secrets: &[&str]) -> String {
    let trimmed = text.trim();
    let lower_start: String = trimmed.chars().take(64).collect::<String>().to_ascii_lowercase();
    if lower_start.starts_with("<!doctype") || lower_start.starts_with("<html") || lower_start.contains("<body") {
        return "(an HTML page, not shown)".to_string();
    }
    let mut out = trimmed.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "[redacted]");
    }
    let out = redact_after_schemes(&out);
    let mut bounded: String = out
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_TEXT)
        .collect();
    if out.chars().count() > MAX_TEXT {
        bounded.push('…');
    }
    bounded
}

/// Replace the word after `APIKey`, `Bearer`, `Basic` or `token` (any case,
/// followed by a space, `=` or `:`) with `[redacted]`.
fn redact_after_schemes(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let hit = SCHEMES
            .iter()
            .find(|s| lower[i..].starts_with(*s) && !prev_is_word(bytes, i));
        if let Some(scheme) = hit {
            let mut j = i + scheme.len();
            let sep_start = j;
            while j < bytes.len() && matches!(bytes[j], b' ' | b'=' | b':' | b'"' | b'\'') {
                j += 1;
            }
            if j > sep_start && j < bytes.len() {
                let word_end = bytes[j..]
                    .iter()
                    .position(|b| b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b',' | b';' | b'}'))
                    .map_or(bytes.len(), |p| j + p);
                out.push_str(&text[i..j]);
                out.push_str("[redacted]");
                i = word_end;
                continue;
            }
        }
        let ch = text[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn prev_is_word(bytes: &[u8], i: usize) -> bool {
    i > 0 && bytes[i - 1].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_html_never_pass() {
        let echoed = "Bad request. Headers: Authorization: APIKey 1234$secretkey, Host: x";
        let out = foreign_text(echoed, &[]);
        assert!(!out.contains("1234$secretkey"), "{out}");
        assert!(out.contains("APIKey [redacted]"), "{out}");
        let out = foreign_text("key is 1234$secretkey here", &["1234$secretkey"]);
        assert_eq!(out, "key is [redacted] here");
        assert_eq!(foreign_text("<!DOCTYPE html><html>…", &[]), "(an HTML page, not shown)");
        let long = "x".repeat(10_000);
        assert_eq!(foreign_text(&long, &[]).chars().count(), MAX_TEXT + 1);
        assert_eq!(foreign_text("a\nb\u{1b}c", &[]), "a b c");
        assert_eq!(foreign_text("tokenizer works", &[]), "tokenizer works");
    }
}
