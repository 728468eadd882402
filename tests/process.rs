//! The real `switchboard serve` binary as an operator runs it: killed with SIGKILL it loses no
//! acknowledged contact (202 over HTTP, 250 over SMTP); sent SIGTERM it shuts down cleanly with
//! exit status 0; sent SIGHUP it reloads its configuration from disk.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{TempDir, http};
use serde_json::{Value, json};

/// A running daemon process and the addresses it listens on.
struct Serving {
    child: Child,
    addr: SocketAddr,
    smtp: SocketAddr,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on port 0 and reads the bound address from its log.
fn serve(dir: &TempDir) -> Serving {
    serve_with(dir, &[])
}

/// The same with more `serve` arguments.
fn serve_with(dir: &TempDir, args: &[&str]) -> Serving {
    let data_dir = dir.0.to_str().expect("utf-8 path");
    serve_env(
        args,
        &[
            ("SWITCHBOARD_HTTP_ADDR", "127.0.0.1:0"),
            ("SWITCHBOARD_DATA_DIR", data_dir),
            ("SWITCHBOARD_ADMIN_TOKEN", "admin-secret"),
        ],
    )
}

/// `serve` with these arguments and environment (plus SMTP on port 0 and info logs), nothing
/// else of the test's environment that names a Switchboard setting.
fn serve_env(args: &[&str], envs: &[(&str, &str)]) -> Serving {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    for (name, _) in std::env::vars() {
        if name.starts_with("SWITCHBOARD_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .arg("serve")
        .args(args)
        .envs(envs.iter().copied())
        .env("SWITCHBOARD_SMTP_ADDR", "127.0.0.1:0")
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
            let kind = if line.contains("HTTP API") {
                "http"
            } else if line.contains("(SMTP)") {
                "smtp"
            } else {
                continue;
            };
            if let Some(addr) = line
                .split("addr=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
            {
                let addr = addr
                    .parse::<SocketAddr>()
                    .expect("a socket address in the log");
                let _ = tx.send((kind, addr));
            }
        }
    });
    let (mut addr, mut smtp) = (None, None);
    while addr.is_none() || smtp.is_none() {
        let (kind, at) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the daemon logs where it listens");
        match kind {
            "http" => addr = Some(at),
            _ => smtp = Some(at),
        }
    }
    Serving {
        child,
        addr: addr.expect("http"),
        smtp: smtp.expect("smtp"),
    }
}

/// Sends mail number `n` over SMTP and returns the final reply line.
async fn send_mail(smtp: SocketAddr, n: usize) -> String {
    let (from, text) = (format!("ada{n}@example.org"), format!("mail {n}"));
    common::send_mail(smtp, &from, "support@example.com", &text, &text).await
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
    let mut mails = Vec::new();
    for n in 0..5 {
        let reply = send_mail(first.smtp, n).await;
        assert!(reply.starts_with("250"), "{reply}");
        let id = reply
            .split("contact ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next());
        mails.push(id.expect("a contact id in the 250").to_string());
    }
    drop(first); // SIGKILL: no shutdown, no flush beyond what was acknowledged

    let second = serve(&dir);
    let (_, queues) = http(second.addr, "GET", "/v1/queues", &[ADMIN], "").await;
    assert_eq!(waiting_total(&queues), 30, "{queues}");
    for id in &mails {
        let path = format!("/v1/contacts/{id}/messages");
        let (_, messages) = http(second.addr, "GET", &path, &[ADMIN], "").await;
        assert_eq!(
            messages["messages"][0]["direction"], "inbound",
            "the raw message of {id} survived: {messages}"
        );
    }
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
    // SIGTERM the moment the daemon says where it listens, as a supervisor's health check
    // racing a stop would: the handler must already be installed by then.
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

#[tokio::test]
async fn sighup_reloads_the_rules_from_disk() {
    let data = TempDir::new("sighup-data");
    let config = TempDir::new("sighup-config");
    std::fs::create_dir_all(&config.0).expect("config dir");
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let main = config.0.join("switchboard.toml");
    std::fs::copy(shipped.join("switchboard.toml"), &main).expect("copy config");
    std::fs::copy(shipped.join("intents.csv"), config.0.join("intents.csv")).expect("intents");
    let rules = config.0.join("rules.toml");
    std::fs::write(&rules, "").expect("no rules yet");
    let serving = serve_with(&data, &["--config", main.to_str().expect("utf-8 path")]);
    let post = |addr| async move {
        let body = json!({"channel": "email", "body": "Please refund the double charge"});
        http(addr, "POST", "/v1/contacts", &[JSON], &body.to_string())
            .await
            .1
    };
    assert_eq!(post(serving.addr).await["queue"], "support");

    std::fs::write(
        &rules,
        "[[rules]]\nname = \"refunds\"\nwhen = 'keyword(\"refund\")'\nqueue = \"billing\"\n",
    )
    .expect("write rules");
    let pid = serving.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if post(serving.addr).await["queue"] == "billing" {
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP never reloaded the rules");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, page) = http(serving.addr, "GET", "/metrics", &[], "").await;
    assert!(
        page.as_str()
            .is_some_and(|p| p.contains("switchboard_config_reloads_total{result=\"ok\"} 1")),
        "{page}"
    );
}

#[tokio::test]
async fn the_server_section_of_the_config_file_sets_what_flags_and_environment_do_not() {
    let data = TempDir::new("server-section-data");
    let config = TempDir::new("server-section-config");
    std::fs::create_dir_all(&config.0).expect("config dir");
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for file in ["rules.toml", "intents.csv"] {
        std::fs::copy(shipped.join(file), config.0.join(file)).expect("copy");
    }
    let main = config.0.join("switchboard.toml");
    let text = std::fs::read_to_string(shipped.join("switchboard.toml")).expect("shipped config");
    std::fs::write(
        &main,
        format!(
            "{text}\n[server]\nhttp_addr = \"127.0.0.1:0\"\ndata_dir = {:?}\nadmin_token = \"file-token\"\n",
            data.0.to_str().expect("utf-8 path")
        ),
    )
    .expect("write config");
    let args = ["--config", main.to_str().expect("utf-8 path")];
    let queues = |addr, token: &'static str| async move {
        let bearer = format!("Bearer {token}");
        http(addr, "GET", "/v1/queues", &[("Authorization", &bearer)], "")
            .await
            .0
    };

    let from_file = serve_env(&args, &[]);
    assert_eq!(queues(from_file.addr, "file-token").await, 200);
    assert_eq!(queues(from_file.addr, "admin-secret").await, 401);
    assert!(
        data.0.join("switchboard.db").exists(),
        "the journal is where the file says"
    );
    drop(from_file);

    let overridden = serve_env(&args, &[("SWITCHBOARD_ADMIN_TOKEN", "env-token")]);
    assert_eq!(queues(overridden.addr, "env-token").await, 200);
    assert_eq!(
        queues(overridden.addr, "file-token").await,
        401,
        "the environment wins over the file"
    );
}
