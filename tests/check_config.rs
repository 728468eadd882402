//! `switchboard check-config` as a user runs it: the built binary, real files, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

/// A config file in a temp directory of its own, beside copies of the shipped rules and
/// intents it names; removed when dropped (also when the test fails).
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(name: &str, text: &str) -> Self {
        let shipped_rules =
            std::fs::read_to_string(shipped("rules.toml")).expect("read shipped rules");
        TempConfig::with_rules(name, text, &shipped_rules)
    }

    /// The config beside `rules` as its rules.toml.
    fn with_rules(name: &str, text: &str, rules: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("switchboard-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp config dir");
        std::fs::write(dir.join("rules.toml"), rules).expect("write rules");
        std::fs::copy(shipped("intents.csv"), dir.join("intents.csv")).expect("copy intents");
        let path = dir.join("switchboard.toml");
        std::fs::write(&path, text).expect("write temp config");
        TempConfig(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

fn check_config(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("check-config")
        .arg("--config")
        .arg(path)
        .output()
        .expect("run switchboard")
}

fn shipped_config() -> PathBuf {
    shipped("switchboard.toml")
}

#[test]
fn the_shipped_config_is_ok() {
    let out = check_config(&shipped_config());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ok"), "{stdout}");
    assert!(stdout.contains("4 queues"), "{stdout}");
}

#[test]
fn the_default_path_is_the_shipped_config() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("check-config")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run switchboard");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok"));
}

#[test]
fn every_problem_is_printed_with_its_path() {
    let shipped = std::fs::read_to_string(shipped_config()).expect("read shipped config");
    // Two mistakes far apart: an unknown SLA policy and an agent level out of range.
    let broken = shipped
        .replacen("sla = \"vip\"", "sla = \"gold\"", 1)
        .replacen("technical = 9 }", "technical = 12 }", 1);
    assert_ne!(broken, shipped, "the edits must apply");
    let file = TempConfig::new("two-problems", &broken);

    let out = check_config(&file.0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout when invalid");
    let problem_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("queues.") || l.contains("agents["))
        .collect();
    assert_eq!(problem_lines.len(), 2, "{stderr}");
    assert!(
        stderr.contains("queues.vip.sla: unknown SLA policy \"gold\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("agents[2].skills.technical: level 12 out of range 1-10"),
        "{stderr}"
    );
}

#[test]
fn an_unparseable_file_exits_2_with_the_line() {
    let file = TempConfig::new("unparseable", "skills = [\"english\"\n[routing\n");
    let out = check_config(&file.0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("line"), "{stderr}");
}

#[test]
fn a_missing_file_exits_2_naming_it() {
    let path = std::env::temp_dir().join("switchboard-no-such-config.toml");
    let out = check_config(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("switchboard-no-such-config.toml"),
        "{stderr}"
    );
}

#[test]
fn a_rule_that_does_not_compile_is_reported_with_its_name_and_every_other_problem() {
    let shipped_text = std::fs::read_to_string(shipped_config()).expect("read shipped config");
    let rules = r#"
[[rules]]
name = "fine"
when = 'keyword("refund")'
queue = "billing"

[[rules]]
name = "typo-in-condition"
when = 'channel == "email" &&'

[[rules]]
name = "unknown-queue"
when = "true"
queue = "platinum"
skills = { klingon = 3 }
"#;
    let file = TempConfig::with_rules("bad-rules", &shipped_text, rules);
    let out = check_config(&file.0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    for expected in [
        "classify.rules[1] (typo-in-condition).when:",
        "classify.rules[2] (unknown-queue).queue: unknown queue \"platinum\"",
        "classify.rules[2] (unknown-queue).skills.klingon: unknown skill",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(!stderr.contains("(fine)"), "{stderr}");
}

#[test]
fn eval_reports_the_configured_classifier_on_a_labeled_file() {
    let labeled = TempConfig::new("eval-config", "");
    let test_file = labeled.0.with_file_name("holdout.csv");
    std::fs::write(
        &test_file,
        "text,intent\n\"I was charged twice for my invoice\",billing\n\"The app crashes when I log in\",technical\n",
    )
    .expect("write test csv");
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["check-config", "--config"])
        .arg(shipped_config())
        .arg("--eval")
        .arg(&test_file)
        .args(["--format", "json"])
        .output()
        .expect("run switchboard");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json report");
    for key in ["accuracy", "macro_f1", "train_seconds", "per_second"] {
        assert!(report[key].is_number(), "{key} in {stdout}");
    }
    assert_eq!(report["examples"], 2, "{stdout}");
}
