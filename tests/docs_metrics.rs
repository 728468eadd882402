//! docs/metrics.md and src/metrics.rs cannot drift: every metric declared in src/metrics.rs has
//! exactly one row in the docs' table, and every metric name in the table's first column is
//! declared. A metric name spelled out anywhere else under src/ must be declared too, since
//! src/metrics.rs is meant to be the single source of names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `pub const NAME: &str = "switchboard_...";` from src/metrics.rs, as name -> constant.
fn declared_metrics(source: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for line in source.lines() {
        let Some(rest) = line.trim().strip_prefix("pub const ") else {
            continue;
        };
        let Some((constant, value)) = rest.split_once(": &str = \"") else {
            continue;
        };
        let Some(value) = value.strip_suffix("\";") else {
            continue;
        };
        if value.starts_with("switchboard_") {
            let previous = found.insert(value.to_string(), constant.trim().to_string());
            assert!(
                previous.is_none(),
                "src/metrics.rs declares {value:?} twice ({} and {constant})",
                previous.unwrap_or_default()
            );
        }
    }
    found
}

/// The first column of the metrics table in docs/metrics.md: the first table whose header's
/// first cell is `metric`. Other tables (PromQL recipes, alerts) are not read. Each cell must be
/// a metric name in backticks; anything else is returned as an error.
fn documented_metrics(markdown: &str) -> Result<Vec<String>, String> {
    let first_cell = |line: &str| -> Option<String> {
        let row = line.trim().strip_prefix('|')?;
        Some(row.split('|').next().unwrap_or_default().trim().to_string())
    };
    let mut lines = markdown.lines().skip_while(|line| {
        first_cell(line).is_none_or(|cell| !cell.eq_ignore_ascii_case("metric"))
    });
    if lines.next().is_none() {
        return Err("no table whose first column is headed `metric`".into());
    }
    let mut names = Vec::new();
    let rows = lines.map_while(|line| first_cell(line).map(|cell| (line, cell)));
    for (i, (line, cell)) in rows.enumerate() {
        if i == 0 && cell.chars().all(|c| matches!(c, '-' | ':')) {
            continue; // the |---| separator
        }
        match cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')) {
            Some(name) if name.starts_with("switchboard_") => names.push(name.to_string()),
            _ => {
                return Err(format!(
                    "a row of the metrics table does not start with a metric name in backticks: \
                     {line:?}"
                ));
            }
        }
    }
    Ok(names)
}

#[test]
fn every_metric_in_src_metrics_rs_has_one_row_in_docs_metrics_md_and_no_other() {
    let declared = declared_metrics(&read("src/metrics.rs"));
    assert!(
        declared.len() >= 10,
        "found only {} metric constants in src/metrics.rs; has the `pub const X: &str = \"...\";` \
         form changed? Update this test's parser.",
        declared.len()
    );
    let rows = documented_metrics(&read("docs/metrics.md"))
        .unwrap_or_else(|e| panic!("docs/metrics.md: {e}"));
    let mut seen = BTreeSet::new();
    let twice: Vec<&String> = rows.iter().filter(|n| !seen.insert(*n)).collect();
    let documented: BTreeSet<&String> = rows.iter().collect();

    let undocumented: Vec<String> = declared
        .iter()
        .filter(|(name, _)| !documented.contains(name))
        .map(|(name, constant)| format!("{name} ({constant})"))
        .collect();
    let unknown: Vec<&&String> = documented
        .iter()
        .filter(|name| !declared.contains_key(name.as_str()))
        .collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty() && twice.is_empty(),
        "docs/metrics.md and src/metrics.rs disagree:\n  \
         declared in src/metrics.rs but without a row in docs/metrics.md: {undocumented:?}\n  \
         in the docs' table but not declared in src/metrics.rs: {unknown:?}\n  \
         with more than one row in the docs' table: {twice:?}"
    );
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// String literals that look like metric names: `"switchboard_` then `[a-z0-9_]+` then `"`.
fn metric_literals(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("\"switchboard_") {
        let tail = &rest[at + 1..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        if tail[end..].starts_with('"') {
            found.push(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    found
}

#[test]
fn metric_names_spelled_out_elsewhere_in_src_are_declared_in_src_metrics_rs() {
    let declared = declared_metrics(&read("src/metrics.rs"));
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files.sort();
    let mut stray = Vec::new();
    for file in files.iter().filter(|f| !f.ends_with("src/metrics.rs")) {
        let source = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        for name in metric_literals(&source) {
            if !declared.contains_key(&name) {
                let shown = file.strip_prefix(root()).unwrap_or(file);
                stray.push(format!("{}: {name}", shown.display()));
            }
        }
    }
    assert!(
        stray.is_empty(),
        "metric names used in src/ but not declared (nor documented) in src/metrics.rs: {stray:?}"
    );
}

#[test]
fn the_parsers_find_what_they_should() {
    let source = "/// Doc.\npub const A: &str = \"switchboard_a_total\";\n\
                  const B: &str = \"switchboard_private\";\npub const C: &str = \"other\";\n";
    let declared = declared_metrics(source);
    assert_eq!(declared.keys().collect::<Vec<_>>(), ["switchboard_a_total"]);
    let markdown = "Intro with `switchboard_b`.\n\n| metric | type |\n|---|---|\n\
                    | `switchboard_a_total` | counter |\n| `switchboard_c` | gauge |\n\n\
                    | panel | query |\n|---|---|\n| `switchboard_d` | `rate(x[5m])` |\n";
    assert_eq!(
        documented_metrics(markdown),
        Ok(vec![
            "switchboard_a_total".to_string(),
            "switchboard_c".to_string()
        ])
    );
    assert!(documented_metrics("| name |\n|---|\n| `switchboard_a` |\n").is_err());
    assert!(documented_metrics("| metric |\n|---|\n| switchboard_a |\n").is_err());
    assert_eq!(
        metric_literals("x(\"switchboard_x_seconds\"); y(\"switchboard_{}\"); \"switchboard_z\""),
        ["switchboard_x_seconds", "switchboard_z"]
    );
}
