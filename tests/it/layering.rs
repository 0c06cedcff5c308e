//! The crate's layering as a checked fact: `LAYERS` lists each top-level
//! module of `src/` with the modules it may name, lowest first, and every
//! `crate::…` path in the code is held to it. A module may name only
//! modules listed before it, so the table has no cycle, and a back edge
//! fails here with the file and line that added it. The README's module
//! table is checked against the same list.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each module and what it may depend on, lowest first.
const LAYERS: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("json", &[]),
    ("timefmt", &[]),
    ("urlenc", &[]),
    ("sanitize", &[]),
    ("build", &[]),
    ("crypto", &[]),
    ("dialect", &["model", "json", "timefmt", "urlenc"]),
    ("config", &["model", "crypto"]),
    ("journal", &["model"]),
    ("mapping", &["model", "dialect", "journal"]),
    ("coord", &["model"]),
    ("outbound", &["config"]),
    ("store", &["model", "config", "coord", "dialect", "sanitize"]),
    ("tasks", &["model", "store"]),
    (
        "backend",
        &[
            "model", "config", "dialect", "journal", "outbound", "sanitize", "store", "tasks", "timefmt", "urlenc",
        ],
    ),
    ("error", &["model", "backend", "coord", "mapping", "tasks"]),
    (
        "service",
        &[
            "model", "config", "backend", "coord", "dialect", "error", "journal", "mapping", "store", "tasks",
        ],
    ),
    (
        "server",
        &[
            "model", "json", "timefmt", "urlenc", "sanitize", "build", "crypto", "dialect", "config", "journal",
            "mapping", "coord", "outbound", "store", "tasks", "backend", "error", "service",
        ],
    ),
    (
        "cli",
        &[
            "model", "crypto", "dialect", "config", "mapping", "store", "backend", "server",
        ],
    ),
    (
        "fuzzing",
        &[
            "model", "json", "dialect", "config", "mapping", "store", "error", "server",
        ],
    ),
];

/// The crate's roots: they declare the modules and may name any.
const ROOTS: &[&str] = &["lib", "main"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/store/sqlite.rs`: `store`).
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The code of a file: comments blanked, lines kept (so offsets give lines).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The modules code names through `crate::` (plain paths and `use
/// crate::{a, b::{c, d}}` groups over several lines), with the offset of each.
fn named(code: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let after = &code[at + "crate::".len()..];
        let Some(group) = after.strip_prefix('{') else {
            out.push((ident(after), at));
            continue;
        };
        // The names at the group's own depth, up to its closing brace.
        let (mut depth, mut start) = (0usize, 0usize);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    out.push((ident(&group[start..i]), at));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.push((ident(&group[start..i]), at));
                    start = i + 1;
                }
                _ => {}
            }
        }
    }
    out.retain(|(n, _)| !n.is_empty());
    out
}

/// Every `crate::` edge that leaves its module: (from, to, file:line).
fn edges() -> Vec<(String, String, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let from = module_of(&file);
        let code = code(&std::fs::read_to_string(&file).unwrap());
        for (to, offset) in named(&code) {
            if to != from {
                let line = code[..offset].matches('\n').count() + 1;
                let rel = file
                    .strip_prefix(src().parent().unwrap())
                    .unwrap()
                    .display()
                    .to_string();
                out.push((from.clone(), to, format!("{rel}:{line}")));
            }
        }
    }
    out
}

fn allowed() -> BTreeMap<&'static str, &'static [&'static str]> {
    LAYERS.iter().copied().collect()
}

#[test]
fn the_table_lists_every_module_once_and_each_names_only_modules_below_it() {
    let mut seen = Vec::new();
    for (module, deps) in LAYERS {
        assert!(!seen.contains(module), "{module} is listed twice");
        for d in *deps {
            assert!(
                seen.contains(d),
                "{module} may depend on {d}, which is not listed before it"
            );
        }
        seen.push(module);
    }
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    for file in files {
        let m = module_of(&file);
        assert!(
            ROOTS.contains(&m.as_str()) || allowed().contains_key(m.as_str()),
            "src/{m} is not in the layering table (tests/it/layering.rs)"
        );
    }
}

#[test]
fn every_crate_path_points_down_the_table() {
    let table = allowed();
    let broken: Vec<String> = edges()
        .into_iter()
        .filter(|(from, to, _)| {
            !ROOTS.contains(&from.as_str())
                && table.contains_key(to.as_str())
                && !table.get(from.as_str()).is_some_and(|deps| deps.contains(&to.as_str()))
        })
        .map(|(from, to, at)| {
            let may = table.get(from.as_str()).map(|d| d.join(", ")).unwrap_or_default();
            format!("{at}: {from} names crate::{to} (it may name: {may})")
        })
        .collect();
    assert!(broken.is_empty(), "edges against the layering:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_module_table_is_the_layering_table() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut rows = BTreeMap::new();
    for line in readme.lines().filter(|l| l.starts_with("| `src/")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let module = cells[0]
            .trim_matches('`')
            .trim_start_matches("src/")
            .trim_end_matches('/');
        let module = module.trim_end_matches(".rs").to_string();
        let deps: Vec<String> = match cells.last().copied() {
            Some("nothing") | None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|d| d.trim().trim_matches('`').to_string())
                .collect(),
        };
        rows.insert(module, deps);
    }
    for (module, deps) in LAYERS {
        let row = rows
            .remove(*module)
            .unwrap_or_else(|| panic!("README: no row for `src/{module}`"));
        let want: Vec<String> = deps.iter().map(|d| d.to_string()).collect();
        assert_eq!(row, want, "README: `src/{module}` depends on");
    }
    assert!(
        rows.is_empty(),
        "README rows for modules not in the table: {:?}",
        rows.keys()
    );
}

#[test]
fn a_back_edge_is_named_with_its_file_and_line() {
    // What the check reads: paths, groups over lines, not comments.
    let names = |text: &str| named(&code(text)).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert_eq!(names("use crate::server::http::Ctx; // crate::ignored"), ["server"]);
    assert_eq!(
        names("use crate::{\n    model::{Rule, Port},\n    store::Records,\n};"),
        ["model", "store"]
    );
    assert_eq!(
        names("/// [`crate::server::http`] in a doc comment"),
        Vec::<String>::new()
    );
    let code = code("fn f() {}\nfn g() { crate::server::x() }");
    assert_eq!(
        code[..named(&code)[0].1].matches('\n').count() + 1,
        2,
        "the line is named"
    );
}
