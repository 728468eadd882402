//! `switchboard check-config` as a user runs it: the built binary, real files, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

/// A config file in the temp directory, removed when dropped (also when the test fails).
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(name: &str, text: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "switchboard-{name}-{}-{nanos}.toml",
            std::process::id()
        ));
        std::fs::write(&path, text).expect("write temp config");
        TempConfig(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
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
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.toml")
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
