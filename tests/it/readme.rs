//! What the README claims, checked: its configuration table names every key
//! of `config/sgbridge.toml` (the shipped defaults, the keys set there and
//! the ones shown commented out), so a key added to the file without a line
//! in the table fails here.

use std::collections::BTreeSet;
use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// `a = 1` or a commented example `#   a = 1`: the key.
fn assignment(line: &str) -> Option<(&str, bool)> {
    let (text, commented) = match line.strip_prefix('#') {
        // Examples are indented after the `#`; prose is not an assignment.
        Some(rest) if rest.starts_with(' ') => (rest.trim_start(), true),
        Some(_) => return None,
        None => (line.trim_start(), false),
    };
    let (key, _) = text.split_once(" = ")?;
    key.chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        .then_some((key, commented))
}

/// `[a.b]` / `[[a.b]]`, live or commented: (name, an array of tables).
fn header(line: &str) -> Option<(&str, bool)> {
    let text = line.trim_start_matches('#').trim();
    let array = text.starts_with("[[");
    let name = text.trim_start_matches('[').split(']').next()?;
    (text.starts_with('[') && !name.contains(' ') && !name.is_empty()).then_some((name, array))
}

/// Every key the shipped file sets or shows, dotted (`server.listen`); an
/// array of tables counts once, by its own name.
fn file_keys() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let (mut section, mut array) = (String::new(), false);
    for line in read("config/sgbridge.toml").lines() {
        if let Some((name, is_array)) = header(line) {
            (section, array) = (name.to_string(), is_array);
            if array {
                keys.insert(section.clone());
            }
        } else if let Some((key, _)) = assignment(line) {
            if !array {
                keys.insert(format!("{section}.{key}"));
            }
        }
    }
    keys
}

/// The keys the README's configuration table names: a cell's first dotted
/// name gives the section for the bare names after it
/// (`` `server.header_timeout_s`, `body_timeout_s` ``).
fn readme_keys() -> BTreeSet<String> {
    let readme = read("README.md");
    let start = readme
        .find("| key | default | meaning |")
        .expect("the README's configuration table");
    let mut keys = BTreeSet::new();
    for row in readme[start..].lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cell = row.trim_start_matches('|').split(" | ").next().unwrap_or("");
        let mut section = String::new();
        for name in cell.split('`').skip(1).step_by(2) {
            match name.rsplit_once('.') {
                Some((s, _)) => {
                    section = s.to_string();
                    keys.insert(name.to_string());
                }
                None => {
                    keys.insert(format!("{section}.{name}"));
                }
            }
        }
    }
    keys
}

#[test]
fn the_configuration_table_names_every_key_of_the_shipped_file() {
    let table = readme_keys();
    let missing: Vec<String> = file_keys().into_iter().filter(|k| !table.contains(k)).collect();
    assert!(missing.is_empty(), "README's configuration table lacks: {missing:?}");
}

#[test]
fn the_key_readers_see_sections_examples_and_arrays() {
    assert_eq!(assignment("listen = \"x\""), Some(("listen", false)));
    assert_eq!(assignment("#   admin_listen = \"x\""), Some(("admin_listen", true)));
    assert_eq!(
        assignment("# A tracing filter; the RUST_LOG environment variable wins."),
        None
    );
    assert_eq!(header("#   [[auth.clients]]"), Some(("auth.clients", true)));
    assert_eq!(header("[backend.gcore]"), Some(("backend.gcore", false)));
    assert!(
        file_keys().contains("server.admin_listen"),
        "a commented example counts"
    );
    assert!(
        readme_keys().contains("server.body_timeout_s"),
        "a bare name takes its cell's section"
    );
}
