//! docs/metrics.md and src/metrics.rs cannot drift: every metric declared in src/metrics.rs has
//! exactly one row in the docs' table, with the type and label names `switchboard::metrics::ALL`
//! declares, and every metric name in the table's first column is declared. A metric name
//! spelled out anywhere else under src/ must be declared too, since src/metrics.rs is meant to
//! be the single source of names. The HTTP route templates the daemon counts are all listed in
//! the row of `switchboard_http_requests_total`.

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

/// One row of the metrics table: the cells after the first, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    name: String,
    kind: String,
    labels: String,
    meaning: String,
}

/// The rows of the metrics table in docs/metrics.md: the first table whose header's first cell
/// is `metric`, with columns metric, type, labels, meaning. Other tables (PromQL recipes,
/// alerts) are not read. Each first cell must be a metric name in backticks; anything else is
/// returned as an error.
fn documented_rows(markdown: &str) -> Result<Vec<Row>, String> {
    let cells = |line: &str| -> Option<Vec<String>> {
        let row = line.trim().strip_prefix('|')?;
        let row = row.strip_suffix('|').unwrap_or(row);
        Some(row.split('|').map(|c| c.trim().to_string()).collect())
    };
    let mut lines = markdown
        .lines()
        .skip_while(|line| cells(line).is_none_or(|c| !c[0].eq_ignore_ascii_case("metric")));
    let Some(header) = lines.next().and_then(cells) else {
        return Err("no table whose first column is headed `metric`".into());
    };
    let header: Vec<String> = header.iter().map(|c| c.to_ascii_lowercase()).collect();
    if header != ["metric", "type", "labels", "meaning"] {
        return Err(format!(
            "the metrics table's columns are {header:?}, not metric, type, labels, meaning"
        ));
    }
    let mut rows = Vec::new();
    let table = lines.map_while(|line| cells(line).map(|c| (line, c)));
    for (i, (line, cells)) in table.enumerate() {
        if i == 0 && cells[0].chars().all(|c| matches!(c, '-' | ':')) {
            continue; // the |---| separator
        }
        let name = match cells[0].strip_prefix('`').and_then(|c| c.strip_suffix('`')) {
            Some(name) if name.starts_with("switchboard_") => name.to_string(),
            _ => {
                return Err(format!(
                    "a row of the metrics table does not start with a metric name in backticks: \
                     {line:?}"
                ));
            }
        };
        let [_, kind, labels, meaning] = &cells[..] else {
            return Err(format!(
                "a row of the metrics table without 4 cells: {line:?}"
            ));
        };
        rows.push(Row {
            name,
            kind: kind.clone(),
            labels: labels.clone(),
            meaning: meaning.clone(),
        });
    }
    Ok(rows)
}

/// The label names of a labels cell: `none`, or names in backticks separated by commas.
fn label_names(cell: &str) -> Result<BTreeSet<String>, String> {
    if cell == "none" {
        return Ok(BTreeSet::new());
    }
    cell.split(',')
        .map(|name| {
            let name = name.trim();
            name.strip_prefix('`')
                .and_then(|n| n.strip_suffix('`'))
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("{name:?} is not a label name in backticks"))
        })
        .collect()
}

/// The metric names of the docs' table.
fn documented_metrics(markdown: &str) -> Result<Vec<String>, String> {
    Ok(documented_rows(markdown)?
        .into_iter()
        .map(|row| row.name)
        .collect())
}

#[test]
fn every_metric_constant_in_src_metrics_rs_is_declared_with_its_kind_and_labels() {
    let constants = declared_metrics(&read("src/metrics.rs"));
    assert!(
        constants.len() >= 10,
        "found only {} metric constants in src/metrics.rs; has the `pub const X: &str = \"...\";` \
         form changed? Update this test's parser.",
        constants.len()
    );
    let mut listed = BTreeSet::new();
    for metric in switchboard::metrics::ALL {
        assert!(
            listed.insert(metric.name),
            "metrics::ALL lists {} twice",
            metric.name
        );
    }
    let missing: Vec<String> = constants
        .iter()
        .filter(|(name, _)| !listed.contains(name.as_str()))
        .map(|(name, constant)| format!("{name} ({constant})"))
        .collect();
    let stray: Vec<&&str> = listed
        .iter()
        .filter(|name| !constants.contains_key(**name))
        .collect();
    assert!(
        missing.is_empty() && stray.is_empty(),
        "metric constants missing from metrics::ALL: {missing:?}; \
         in metrics::ALL without a constant: {stray:?}"
    );
}

#[test]
fn every_metric_in_src_metrics_rs_has_one_row_in_docs_metrics_md_and_no_other() {
    let declared = declared_metrics(&read("src/metrics.rs"));
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

#[test]
fn each_metric_row_has_the_type_and_labels_src_metrics_rs_declares() {
    let rows = documented_rows(&read("docs/metrics.md"))
        .unwrap_or_else(|e| panic!("docs/metrics.md: {e}"));
    let mut wrong = Vec::new();
    for metric in switchboard::metrics::ALL {
        let Some(row) = rows.iter().find(|r| r.name == metric.name) else {
            continue; // the test above names it
        };
        if row.kind != metric.kind.as_str() {
            wrong.push(format!(
                "{}: type {:?} in the docs, {:?} in src/metrics.rs",
                metric.name,
                row.kind,
                metric.kind.as_str()
            ));
        }
        let declared: BTreeSet<String> = metric.labels.iter().map(|l| l.to_string()).collect();
        match label_names(&row.labels) {
            Ok(documented) if documented == declared => {}
            Ok(documented) => wrong.push(format!(
                "{}: labels {documented:?} in the docs, {declared:?} in src/metrics.rs",
                metric.name
            )),
            Err(e) => wrong.push(format!("{}: labels cell: {e}", metric.name)),
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/metrics.md disagrees with src/metrics.rs:\n  {}",
        wrong.join("\n  ")
    );
}

/// The route templates of `.route("...", ...)` calls in a source file.
fn route_templates(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = rest[at + ".route(".len()..].trim_start();
        if let Some(tail) = rest.strip_prefix('"')
            && let Some(end) = tail.find('"')
        {
            found.push(tail[..end].to_string());
        }
    }
    found
}

#[test]
fn the_http_requests_row_lists_every_route_the_daemon_counts() {
    let mut files = Vec::new();
    rust_files(&root().join("src/http"), &mut files);
    files.sort();
    let routes: BTreeSet<String> = files
        .iter()
        .flat_map(|file| {
            let source = std::fs::read_to_string(file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            route_templates(&source)
        })
        .collect();
    assert!(
        routes.len() >= 10,
        "found only {routes:?} in src/http; has the `.route(\"...\"` form changed?"
    );
    let rows = documented_rows(&read("docs/metrics.md"))
        .unwrap_or_else(|e| panic!("docs/metrics.md: {e}"));
    let row = rows
        .iter()
        .find(|r| r.name == "switchboard_http_requests_total")
        .expect("a row for switchboard_http_requests_total");
    let missing: Vec<&String> = routes
        .iter()
        .filter(|route| !row.meaning.contains(&format!("`{route}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "routes the daemon counts in switchboard_http_requests_total but the docs' row does not \
         list (in backticks): {missing:?}"
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
    let markdown = "Intro with `switchboard_b`.\n\n| metric | type | labels | meaning |\n\
                    |---|---|---|---|\n\
                    | `switchboard_a_total` | counter | `queue`, `channel` | Things. |\n\
                    | `switchboard_c` | gauge | none | Now. |\n\n\
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
    assert!(documented_metrics("| metric | type | labels | meaning |\n|---|---|---|---|\n| `switchboard_a` | counter |\n").is_err());
    assert_eq!(
        documented_rows(markdown).expect("rows")[0],
        Row {
            name: "switchboard_a_total".into(),
            kind: "counter".into(),
            labels: "`queue`, `channel`".into(),
            meaning: "Things.".into(),
        }
    );
    assert_eq!(
        label_names("`queue`, `channel`"),
        Ok(["channel".to_string(), "queue".to_string()].into())
    );
    assert_eq!(label_names("none"), Ok(BTreeSet::new()));
    assert!(label_names("queue").is_err());
    assert_eq!(
        route_templates(".route(\"/a\", get(x))\n.route(\n  \"/b/{id}\",\n post(y))"),
        ["/a", "/b/{id}"]
    );
    assert_eq!(
        metric_literals("x(\"switchboard_x_seconds\"); y(\"switchboard_{}\"); \"switchboard_z\""),
        ["switchboard_x_seconds", "switchboard_z"]
    );
}
