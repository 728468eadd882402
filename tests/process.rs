//! The real `switchboard serve` binary as an operator runs it: killed with SIGKILL it loses no
//! acknowledged contact; sent SIGTERM it shuts down cleanly with exit status 0.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{TempDir, http};
use serde_json::{Value, json};

/// A running daemon process and the address it listens on.
struct Serving {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on port 0 and reads the bound address from its log.
fn serve(dir: &TempDir) -> Serving {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .env("SWITCHBOARD_HTTP_ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD_DATA_DIR", &dir.0)
        .env("SWITCHBOARD_ADMIN_TOKEN", "admin-secret")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("listening")
                && let Some(addr) = line
                    .split("addr=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
            {
                let _ = tx.send(
                    addr.parse::<SocketAddr>()
                        .expect("a socket address in the log"),
                );
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the daemon logs where it listens");
    Serving { child, addr }
}

fn waiting_total(queues: &Value) -> u64 {
    queues["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| q["waiting"].as_u64().unwrap_or(0))
        .sum()
}

const JSON: (&str, &str) = ("Content-Type", "application/json");
const ADMIN: (&str, &str) = ("Authorization", "Bearer admin-secret");

#[tokio::test]
async fn a_killed_daemon_loses_no_acknowledged_contact() {
    let dir = TempDir::new("kill9");
    let first = serve(&dir);
    let mut ids = Vec::new();
    for n in 0..25 {
        let body = json!({"channel": "email", "body": format!("message {n}"), "queue": "billing"});
        let (status, answer) = http(
            first.addr,
            "POST",
            "/v1/contacts",
            &[JSON],
            &body.to_string(),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        ids.push(answer["id"].as_str().expect("id").to_string());
    }
    drop(first); // SIGKILL: no shutdown, no flush beyond what was acknowledged

    let second = serve(&dir);
    let (_, queues) = http(second.addr, "GET", "/v1/queues", &[ADMIN], "").await;
    assert_eq!(waiting_total(&queues), 25, "{queues}");
    for id in &ids {
        let (status, view) = http(
            second.addr,
            "GET",
            &format!("/v1/contacts/{id}"),
            &[ADMIN],
            "",
        )
        .await;
        assert_eq!(
            (status, view["status"].as_str()),
            (200, Some("queued")),
            "{view}"
        );
    }
}

#[tokio::test]
async fn sigterm_shuts_the_daemon_down_cleanly() {
    let dir = TempDir::new("sigterm");
    let mut serving = serve(&dir);
    let (status, _) = http(serving.addr, "GET", "/healthz", &[], "").await;
    assert_eq!(status, 200);
    let pid = serving.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = serving.child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit:?}");
}
