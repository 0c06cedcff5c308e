//! CF security-group name rules (CC `SecurityGroup#validate`): presence, then
//! the format `\A[[:alnum:][:punct:][:print:]]+\Z`.

/// CC's `name` column holds 255 characters; a longer name fails in CC's
/// database (a 500 there), and is refused here as invalid.
pub const MAX_NAME: usize = 255;

/// Sequel full messages for `name`, in CC's order (empty when valid).
pub fn errors(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if name.chars().all(char::is_whitespace) {
        out.push("name is not present".to_string());
    }
    if !printable(name) {
        out.push("name is invalid".to_string());
    }
    if name.chars().count() > MAX_NAME {
        out.push(format!("name is too long (maximum is {MAX_NAME} characters)"));
    }
    out
}

/// Onigmo's `[[:print:]]` is every character but controls, surrogates and
/// unassigned ones, and the line/paragraph separators; `\Z` also lets one
/// trailing newline through.
fn printable(name: &str) -> bool {
    let body = name.strip_suffix('\n').unwrap_or(name);
    !body.is_empty()
        && body
            .chars()
            .all(|c| !c.is_control() && c != '\u{2028}' && c != '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cc_name_rules() {
        assert!(errors("my_super_sec_group").is_empty());
        assert!(errors("группа безопасности ☃").is_empty());
        assert!(errors("trailing newline\n").is_empty());
        assert_eq!(errors(""), ["name is not present", "name is invalid"]);
        assert_eq!(errors("   "), ["name is not present"]);
        assert_eq!(errors("a\nb"), ["name is invalid"]);
        assert_eq!(errors("tab\there"), ["name is invalid"]);
        assert_eq!(errors("esc\u{1b}"), ["name is invalid"]);
    }
}
