//! The real `switchboard serve` binary for the operations tests: started on port 0 with JSON
//! logs, every line it prints kept for the test to read.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running daemon process, its addresses, and what it has printed so far.
pub struct Serving {
    pub child: Child,
    pub addr: SocketAddr,
    pub smtp: Option<SocketAddr>,
    /// Every stdout line (the logs).
    pub stdout: Arc<Mutex<Vec<String>>>,
    /// Everything on stderr.
    pub stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serving {
    /// Starts the binary with `SWITCHBOARD_LOG_FORMAT=json`, the data directory, and `env`
    /// (which may override anything, `RUST_LOG` included); waits until it logs where it listens.
    pub fn start(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Serving {
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command
            .arg("serve")
            .args(args)
            .env("SWITCHBOARD_HTTP_ADDR", "127.0.0.1:0")
            .env("SWITCHBOARD_DATA_DIR", data_dir)
            .env("SWITCHBOARD_SMTP_ADDR", "")
            .env("SWITCHBOARD_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the binary starts");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("piped stdout");
        let lines = stdout.clone();
        let mut readers = vec![std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().expect("lines").push(line);
            }
        })];
        let mut err = child.stderr.take().expect("piped stderr");
        let text = stderr.clone();
        readers.push(std::thread::spawn(move || {
            let mut all = String::new();
            let _ = err.read_to_string(&mut all);
            text.lock().expect("stderr").push_str(&all);
        }));
        let wants_smtp = env
            .iter()
            .any(|(name, value)| *name == "SWITCHBOARD_SMTP_ADDR" && !value.is_empty());
        let mut serving = Serving {
            child,
            addr: "0.0.0.0:0".parse().expect("addr"),
            smtp: None,
            stdout,
            stderr,
            readers,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let http = serving.logged_addr("HTTP API");
            let smtp = serving.logged_addr("(SMTP)");
            if let Some(http) = http
                && (!wants_smtp || smtp.is_some())
            {
                serving.addr = http;
                serving.smtp = smtp;
                return serving;
            }
            if let Ok(Some(status)) = serving.child.try_wait() {
                panic!(
                    "the daemon exited with {status} before listening:\n{}",
                    serving.stderr.lock().expect("stderr")
                );
            }
            assert!(
                Instant::now() < deadline,
                "the daemon never logged where it listens"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `addr` field of the first JSON log line whose message contains `marker`.
    fn logged_addr(&self, marker: &str) -> Option<SocketAddr> {
        self.json_lines()
            .into_iter()
            .find(|line| line["message"].as_str().is_some_and(|m| m.contains(marker)))
            .and_then(|line| line["addr"].as_str().and_then(|a| a.parse().ok()))
    }

    /// The log lines printed so far, each parsed as JSON (`Null` for a line that is not).
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .expect("lines")
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or(Value::Null))
            .collect()
    }

    /// Waits (at most `within`) until a log line satisfies `found`.
    pub fn wait_for_log(&self, within: Duration, found: impl Fn(&Value) -> bool) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.json_lines().iter().any(&found) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// SIGTERM, then waits for the exit and for the readers to see the end of the output.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "still running 15 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        status
    }
}

/// A loopback port nobody listens on right now (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A copy of the shipped configuration (with its rules and intents beside it) in `dir`, with
/// each `(from, to)` replacement made in switchboard.toml. Panics if a `from` is not there,
/// so a changed shipped file cannot quietly turn a test's setting into a no-op.
pub fn config_copy(dir: &Path, replacements: &[(&str, &str)]) -> std::path::PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    std::fs::create_dir_all(dir).expect("config dir");
    for file in ["rules.toml", "intents.csv"] {
        std::fs::copy(shipped.join(file), dir.join(file)).expect("copy the config");
    }
    let mut text =
        std::fs::read_to_string(shipped.join("switchboard.toml")).expect("the shipped config");
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "config/switchboard.toml has no {from:?}"
        );
        text = text.replacen(from, to, 1);
    }
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}
