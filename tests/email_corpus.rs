//! Golden corpus for the email parser: every `tests/email_corpus/<name>.eml` is parsed (no
//! envelope sender) and compared with `<name>.json`, the `InboundEmail` an agent should get.
//!
//! The `.json` files state what is right, not what the parser happened to say the day they
//! were written. On a mismatch the parse is written to `<name>.actual` beside them, so
//! `diff tests/email_corpus/<name>.json tests/email_corpus/<name>.actual` shows what changed.
//! To add a case, drop in an `.eml`, run this test, read the `.actual` it writes against the
//! message, and save it as the `.json` once it says what a mail client would show.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use switchboard::channels::email::parse::parse;

/// Cases whose `.json` is right and the parser is not, yet. They are still parsed (a panic or
/// an error fails the test) and their `.actual` is written, but a mismatch does not fail the
/// suite. Once the parser gets one right, the test fails until it is taken off this list.
const KNOWN_BAD: &[(&str, &str)] = &[
    // Empty since the second session: html_only (block elements), shift_jis (full_encoding),
    // malformed_no_blank_line, malformed_unterminated_multipart and text_attachment_cp1252
    // (attachment sizes) were listed here until channels::email::parse handled them.
];

/// Fewer cases than this means the corpus went missing, not that the parser got better.
const MIN_CASES: usize = 12;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/email_corpus")
}

/// The parse of one message as pretty JSON, the form the `.json` files are written in.
fn parse_to_json(raw: &[u8]) -> Result<Value, String> {
    let email = parse(raw, None).map_err(|e| format!("refused: {e}"))?;
    serde_json::to_value(&email).map_err(|e| format!("does not serialize: {e}"))
}

#[test]
fn every_message_in_the_corpus_parses_to_its_expected_json() {
    let dir = corpus_dir();
    let mut messages: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    messages.sort();

    let mut failures = Vec::new();
    let mut still_bad = Vec::new();
    for eml in &messages {
        let name = eml
            .file_name()
            .and_then(|n| n.to_str())
            .expect("corpus file names are UTF-8");
        let known_bad = KNOWN_BAD.iter().any(|(bad, _)| *bad == name);
        let expected_path = eml.with_extension("json");
        let actual_path = eml.with_extension("actual");
        let raw = fs::read(eml).unwrap_or_else(|e| panic!("cannot read {}: {e}", eml.display()));

        let actual = match parse_to_json(&raw) {
            Ok(actual) => actual,
            Err(why) => {
                failures.push(format!("{name}: {why}"));
                continue;
            }
        };
        let pretty = serde_json::to_string_pretty(&actual).expect("a Value serializes") + "\n";

        let expected = match fs::read_to_string(&expected_path) {
            Ok(text) => serde_json::from_str::<Value>(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", expected_path.display())),
            Err(_) => {
                fs::write(&actual_path, &pretty).expect("write .actual");
                failures.push(format!(
                    "{name}: no {} (the parse is in {}; check it and rename it)",
                    expected_path.display(),
                    actual_path.display()
                ));
                continue;
            }
        };

        if actual == expected {
            let _ = fs::remove_file(&actual_path);
            if known_bad {
                failures.push(format!(
                    "{name}: now parses as expected; take it off KNOWN_BAD"
                ));
            }
            continue;
        }
        fs::write(&actual_path, &pretty).expect("write .actual");
        if known_bad {
            still_bad.push(name.to_owned());
        } else {
            failures.push(format!(
                "{name}: differs from its .json (diff {} {})",
                expected_path.display(),
                actual_path.display()
            ));
        }
    }

    for (bad, why) in KNOWN_BAD {
        if !messages
            .iter()
            .any(|m| m.file_name().is_some_and(|n| n == *bad))
        {
            failures.push(format!("KNOWN_BAD names {bad}, which is not in the corpus"));
        } else if still_bad.iter().any(|s| s == bad) {
            eprintln!("known parser bug, skipped: {bad}: {why}");
        }
    }
    assert!(
        messages.len() >= MIN_CASES,
        "the corpus in {} has {} messages; expected at least {MIN_CASES}",
        dir.display(),
        messages.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus messages failed:\n  {}",
        failures.len(),
        messages.len(),
        failures.join("\n  ")
    );
}
