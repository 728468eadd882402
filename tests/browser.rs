//! The daemon's pages in a real browser: starts the daemon on 127.0.0.1:0 and runs
//! `node tests/browser/e2e.mjs <url> <out dir>`, which drives Debian's Chromium headless
//! through playwright-core (a customer chats, an agent answers, the wallboard follows).
//!
//! Needs `/usr/bin/chromium` (or `SWITCHBOARD_CHROMIUM`), `node`, and `npm ci` run in
//! `tests/browser`. Without them the test says what is missing and passes, so `cargo test`
//! works on a bare machine; with `SWITCHBOARD_REQUIRE_BROWSER=1` (set by `.ci/run`) it fails
//! instead, so CI cannot skip it by accident.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{TempDir, daemon, settings};

/// The whole browser run; a healthy one takes a few seconds.
const BUDGET: Duration = Duration::from_secs(180);

/// What the browser test needs, or why it cannot run here.
fn prerequisites(browser_dir: &Path) -> Result<(), String> {
    let chromium =
        std::env::var("SWITCHBOARD_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!(
            "no Chromium at {chromium} (apt-get install chromium)"
        ));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Err("no node on PATH".into());
    }
    if !browser_dir.join("node_modules/playwright-core").is_dir() {
        return Err(format!(
            "no playwright-core in {} (run npm ci there)",
            browser_dir.display()
        ));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_chats_an_agent_answers_and_the_wallboard_counts_it_in_chromium() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if let Err(missing) = prerequisites(&browser_dir) {
        if std::env::var("SWITCHBOARD_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("browser test required (SWITCHBOARD_REQUIRE_BROWSER=1) but {missing}");
        }
        eprintln!("SKIPPED browser end-to-end test: {missing}");
        return;
    }

    // One retry, on a fresh daemon, with the first failure always printed: a browser run has
    // more moving parts than the daemon (it once lost a rating to the chat rate limit, which
    // the page now resends). A second failure fails the test.
    let first = attempt(&browser_dir, 1).await;
    if let Err(failure) = first {
        eprintln!("browser test, first attempt failed (retrying once):\n{failure}");
        if let Err(failure) = attempt(&browser_dir, 2).await {
            panic!("{failure}");
        }
    }
}

/// One browser run against a fresh daemon; `Err` says why it failed.
async fn attempt(browser_dir: &Path, n: u32) -> Result<(), String> {
    let dir = TempDir::new(&format!("browser-{n}"));
    let mut settings = settings(&dir);
    // The page reconnects after about a second: a grace that outlives it keeps the agent's
    // state across the network cut the test makes.
    settings.agent_grace = Duration::from_secs(20);
    let d = daemon(settings).await;
    let url = format!("http://{}", d.local_addr());

    let out: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("browser-e2e-{n}"));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("output directory");

    let script = browser_dir.join("e2e.mjs");
    let run_out = out.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("node")
            .arg(&script)
            .arg(&url)
            .arg(&run_out)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node starts");
        let started = Instant::now();
        loop {
            if child.try_wait().expect("node runs").is_some() {
                break;
            }
            if started.elapsed() > BUDGET {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let output = child.wait_with_output().expect("node output");
        (output, started.elapsed())
    })
    .await
    .expect("browser run");
    let (output, took) = outcome;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    d.shutdown().await.expect("clean shutdown");
    if !output.status.success() {
        return Err(format!(
            "browser test failed after {took:?} (status {:?}); screenshots and browser.log in {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            output.status.code(),
            out.display(),
        ));
    }
    if !stdout.contains("e2e: ok") {
        return Err(format!("the script did not finish: {stdout}"));
    }
    Ok(())
}
