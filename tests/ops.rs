//! Operations, tested on the real binary: its JSON logs keep secrets, message bodies and
//! callback URLs' paths and queries out while every line about a contact names it; `switchboard status` summarizes a running
//! daemon; and a real Prometheus server scraping a real daemon answers every PromQL expression
//! of contrib/grafana/switchboard.json and contrib/prometheus/switchboard.rules.yml.

mod common;
#[path = "ops/serving.rs"]
mod serving;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::{TempDir, expect, http, say, send_mail};
use serde_json::{Value, json};
use serving::Serving;

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// Accepts every offer, replies to and completes every contact assigned, until `n` are done
/// (offers may come while an earlier one is still being answered). Returns their ids, sorted.
async fn work_contacts(agent: &mut common::Socket, n: usize, reply: &str) -> Vec<String> {
    use futures_util::StreamExt;
    let mut done = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while done.len() < n {
        let frame = tokio::time::timeout_at(deadline, agent.next())
            .await
            .unwrap_or_else(|_| panic!("only {done:?} handled within 10 s"))
            .expect("socket open")
            .expect("frame");
        let tokio_tungstenite::tungstenite::Message::Text(text) = frame else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).expect("JSON frame");
        match frame["type"].as_str() {
            Some("offer") => {
                say(
                    agent,
                    json!({"type": "accept", "offer_id": frame["offer_id"]}),
                )
                .await;
            }
            Some("assigned") => {
                let id = frame["contact"]["id"].as_str().expect("id").to_string();
                say(
                    agent,
                    json!({"type": "reply", "contact_id": id, "text": reply}),
                )
                .await;
                say(agent, json!({"type": "complete", "contact_id": id})).await;
                say(agent, json!({"type": "ready"})).await;
                done.push(id);
            }
            _ => {}
        }
    }
    done.sort();
    done
}

/// Names a mailbox the daemon does not serve; returns the RCPT reply.
async fn smtp_unknown_mailbox(smtp: SocketAddr) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(smtp).await.expect("connect");
    let mut io = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    io.read_line(&mut line).await.expect("greeting");
    let script =
        "EHLO mx.example.org\r\nMAIL FROM:<ada@example.org>\r\nRCPT TO:<nobody@example.com>\r\n";
    io.get_mut()
        .write_all(script.as_bytes())
        .await
        .expect("write");
    let mut replies = 0;
    while replies < 3 {
        line.clear();
        io.read_line(&mut line).await.expect("reply");
        if line.as_bytes().get(3) != Some(&b'-') {
            replies += 1;
        }
    }
    line
}

/// The contact id in an SMTP `250 ... contact N (...)` reply.
fn contact_in_reply(reply: &str) -> String {
    reply
        .split("contact ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no contact id in {reply:?}"))
        .to_string()
}

#[tokio::test]
async fn json_logs_name_every_contact_and_never_show_secrets_or_bodies() {
    const ADMIN_TOKEN: &str = "ops-admin-SECRET-a1f0";
    const WEBHOOK_SECRET: &str = "ops-webhook-SECRET-b2e1";
    const RELAY_PASSWORD: &str = "ops-relay-SECRET-c3d2";
    const WRONG_TOKEN: &str = "ops-wrong-SECRET-d4c3";
    const BODY: &str = "BODYMARK-93c1";
    const CALLBACK_PATH: &str = "ops-callback-path-SECRET-e5b4";
    const CALLBACK_TOKEN: &str = "ops-callback-query-SECRET-f6a5";
    let dir = TempDir::new("ops-logs");
    // A relay that refuses connections: delivery attempts fail and are logged with the error.
    let relay = format!(
        "smtp://relayuser:{RELAY_PASSWORD}@127.0.0.1:{}",
        serving::free_port()
    );
    let mut daemon = Serving::start(
        &dir.0,
        &[
            ("RUST_LOG", "debug"),
            ("SWITCHBOARD_ADMIN_TOKEN", ADMIN_TOKEN),
            ("SWITCHBOARD_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("SWITCHBOARD_SMTP_RELAY", &relay),
            ("SWITCHBOARD_SMTP_ADDR", "127.0.0.1:0"),
        ],
        &[],
    );
    let addr = daemon.addr;
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let admin = ("Authorization", bearer.as_str());

    // An agent created through the admin API: its token is a secret too.
    let (status, created) = http(
        addr,
        "POST",
        "/v1/agents",
        &[JSON, admin],
        &json!({"id": "ops-agent", "skills": {"english": 7, "technical": 5}, "capacity": {"chat": 3, "email": 3}}).to_string(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let agent_token = created["token"].as_str().expect("a token").to_string();

    // Refused credentials must not be echoed into the logs either.
    let wrong = format!("Bearer {WRONG_TOKEN}");
    let (status, _) = http(addr, "GET", "/v1/queues", &[("Authorization", &wrong)], "").await;
    assert_eq!(status, 401);
    let refused =
        tokio_tungstenite::connect_async(format!("ws://{addr}/v1/agent/ws?token={WRONG_TOKEN}"))
            .await;
    assert!(refused.is_err(), "a wrong agent token is refused");
    let unsigned = json!({"channel": "sms", "body": BODY}).to_string();
    let (status, _) = http(
        addr,
        "POST",
        "/v1/contacts",
        &[JSON, ("X-Switchboard-Signature", "t=1,v1=00")],
        &unsigned,
    )
    .await;
    assert_eq!(status, 401);

    // A signed webhook contact and an email, both carrying the body marker. The contact's
    // callback URL carries the customer's token in its path and query, and nothing listens
    // there: every delivery fails and is logged.
    let callback_url = format!(
        "http://127.0.0.1:{}/hooks/{CALLBACK_PATH}?token={CALLBACK_TOKEN}",
        serving::free_port()
    );
    let body = json!({
        "channel": "chat",
        "queue": "support",
        "subject": format!("subject {BODY}"),
        "body": format!("My router blinks red. {BODY}"),
        "customer": {"id": "cust-1", "name": "Ada"},
        "callback_url": callback_url,
    })
    .to_string();
    let signature = switchboard::notify::sign(WEBHOOK_SECRET, body.as_bytes());
    let (status, answer) = http(
        addr,
        "POST",
        "/v1/contacts",
        &[JSON, ("X-Switchboard-Signature", &signature)],
        &body,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let chat_id = answer["id"].as_str().expect("id").to_string();
    let reply = send_mail(
        daemon.smtp.expect("smtp"),
        "ada@example.org",
        "support@example.com",
        &format!("Printer {BODY}"),
        &format!("It is on fire. {BODY}"),
    )
    .await;
    assert!(reply.starts_with("250"), "{reply}");
    let email_id = contact_in_reply(&reply);

    // The agent takes the chat, answers with the marker, completes it.
    let mut agent = common::agent(addr, &agent_token).await;
    expect(&mut agent, "hello").await;
    let handled = work_contacts(&mut agent, 2, &format!("Answer {BODY}")).await;
    let mut expected = vec![chat_id.clone(), email_id.clone()];
    expected.sort();
    assert_eq!(handled, expected);

    for id in &handled {
        assert!(
            daemon.wait_for_log(Duration::from_secs(10), |line| {
                line["message"] == "contact completed"
                    && line["contact"].as_u64().map(|c| c.to_string()).as_ref() == Some(id)
            }),
            "contact {id} is completed"
        );
    }

    // The acknowledgement of the email reaches the refusing relay and fails: a logged error
    // that must not carry the relay's credentials.
    assert!(
        daemon.wait_for_log(Duration::from_secs(15), |line| {
            line["message"] == "outgoing mail not delivered"
        }),
        "the failed delivery to the relay is logged"
    );
    // The failed callback is logged about its contact, naming the receiver by host only.
    assert!(
        daemon.wait_for_log(Duration::from_secs(10), |line| {
            line["message"] == "callback not delivered"
                && line["contact"].as_u64().map(|c| c.to_string()) == Some(chat_id.clone())
                && line["host"] == "127.0.0.1"
        }),
        "the failed callback is logged with its contact and host"
    );
    let status = daemon.stop();
    assert!(status.success(), "exit status {status}");

    let stdout = daemon.stdout.lock().expect("lines").clone();
    let stderr = daemon.stderr.lock().expect("stderr").clone();
    assert!(stdout.len() > 10, "hardly any logs at debug: {stdout:?}");
    for secret in [
        ADMIN_TOKEN,
        WEBHOOK_SECRET,
        RELAY_PASSWORD,
        WRONG_TOKEN,
        &agent_token,
        BODY,
        CALLBACK_PATH,
        CALLBACK_TOKEN,
    ] {
        let leaks: Vec<&String> = stdout.iter().filter(|l| l.contains(secret)).collect();
        assert!(
            leaks.is_empty(),
            "{secret:?} appears in the logs: {leaks:#?}"
        );
        assert!(!stderr.contains(secret), "{secret:?} appears on stderr");
    }
    let lines: Vec<Value> = stdout
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {l}"))
        })
        .collect();
    for line in &lines {
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
        if line.get("contact").is_some() {
            assert!(
                line["queue"].is_string() && line["channel"].is_string(),
                "a line about a contact without its queue and channel: {line}"
            );
        }
    }
    for (id, channel) in [(&chat_id, "chat"), (&email_id, "email")] {
        let about: Vec<&Value> = lines
            .iter()
            .filter(|l| l["contact"].to_string().trim_matches('"') == id.as_str())
            .collect();
        let messages: Vec<&str> = about.iter().filter_map(|l| l["message"].as_str()).collect();
        for event in [
            "contact queued",
            "offer made",
            "contact assigned",
            "contact completed",
        ] {
            assert!(
                messages.contains(&event),
                "no {event:?} line for contact {id}: {messages:?}"
            );
        }
        assert!(
            about
                .iter()
                .all(|l| l["queue"] == "support" && l["channel"] == channel),
            "contact {id}'s lines: {about:#?}"
        );
    }
}

/// The dashboard as shipped.
fn dashboard() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/grafana/switchboard.json"
    );
    let text = std::fs::read_to_string(path).expect("contrib/grafana/switchboard.json");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every PromQL expression of the dashboard's panels, with the panel's title.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let nested = panel["panels"].as_array().into_iter().flatten();
        for p in std::iter::once(panel).chain(nested) {
            for target in p["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().expect("a target with an expr");
                found.push((
                    p["title"].as_str().unwrap_or("").to_string(),
                    expr.to_string(),
                ));
            }
        }
    }
    found
}

#[test]
fn the_dashboard_is_importable_and_says_what_a_bad_value_means() {
    let dashboard = dashboard();
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .expect("template variables")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(variables, ["datasource", "queue", "channel"]);
    let mut titles = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().expect("a title");
        titles.push(title);
        let description = panel["description"].as_str().unwrap_or("");
        assert!(
            description.len() > 60,
            "panel {title:?} does not say what a bad value means: {description:?}"
        );
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "panel {title:?} does not use the datasource variable"
        );
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
    let unique: std::collections::BTreeSet<&&str> = titles.iter().collect();
    assert_eq!(unique.len(), titles.len(), "two panels share a title");
    let queries = dashboard_queries(&dashboard);
    for name in switchboard_metric_names(queries.iter().map(|(_, q)| q.as_str())) {
        assert!(
            declared_metric(&name),
            "the dashboard uses {name}, which src/metrics.rs does not declare"
        );
    }
}

/// `switchboard_*` metric names in PromQL, without histogram suffixes (as declared).
fn switchboard_metric_names<'a>(queries: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for query in queries {
        let mut rest = query;
        while let Some(at) = rest.find("switchboard_") {
            let preceded = rest[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            if !preceded {
                names.insert(tail[..end].to_string());
            }
            rest = &tail[end..];
        }
    }
    names.into_iter().collect()
}

/// True when src/metrics.rs declares the metric (a histogram's `_bucket`, `_sum` and `_count`
/// series count as the histogram).
fn declared_metric(series: &str) -> bool {
    let source = include_str!("../src/metrics.rs");
    let base = ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| series.strip_suffix(suffix))
        .unwrap_or(series);
    [series, base]
        .iter()
        .any(|name| source.contains(&format!(": &str = \"{name}\";")))
}

/// The `prometheus` server binary on PATH, if installed.
fn prometheus_binary() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join("prometheus"))
        .find(|candidate| candidate.is_file())
}

/// A Prometheus server on loopback with its own storage, killed when dropped.
struct Prometheus {
    child: std::process::Child,
    addr: SocketAddr,
    _storage: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts it scraping `target` every second and evaluating the shipped rules every second.
    /// Prometheus cannot listen on port 0, so it gets a port found free just before.
    async fn start(binary: &Path, target: SocketAddr) -> Prometheus {
        let storage = TempDir::new("ops-prometheus");
        std::fs::create_dir_all(&storage.0).expect("storage dir");
        let rules = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/contrib/prometheus/switchboard.rules.yml"
        );
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: switchboard\n    static_configs:\n      \
             - targets: [\"{target}\"]\n"
        );
        let config_path = storage.0.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("prometheus.yml");
        let addr: SocketAddr = format!("127.0.0.1:{}", serving::free_port())
            .parse()
            .expect("addr");
        let child = std::process::Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                storage.0.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus starts");
        let prometheus = Prometheus {
            child,
            addr,
            _storage: storage,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                let (status, _) = http(addr, "GET", "/-/ready", &[], "").await;
                if status == 200 {
                    return prometheus;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Prometheus was not ready on {addr} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An instant query; the `data` of the answer, or the error Prometheus gave.
    async fn query(&self, promql: &str) -> Result<Value, String> {
        let body = format!("query={}", form_encode(promql));
        let (status, answer) = http(
            self.addr,
            "POST",
            "/api/v1/query",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &body,
        )
        .await;
        if status == 200 && answer["status"] == "success" {
            Ok(answer["data"].clone())
        } else {
            Err(format!("{status}: {answer}"))
        }
    }
}

/// application/x-www-form-urlencoded.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Dashboard variables filled in as for a chosen value: `.+` rather than the `.*` of "All",
/// so that a panel filtering on a label its metric does not have finds nothing and fails.
fn fill_variables(query: &str) -> String {
    query
        .replace("$queue", ".+")
        .replace("$channel", ".+")
        .replace("$__rate_interval", "1m")
}

/// Metrics no traffic of the test can produce: an expression reading only these may be empty.
const ALLOWED_EMPTY: &[(&str, &str)] = &[
    (
        "switchboard_journal_errors_total",
        "needs a journal commit to fail (a full or broken disk)",
    ),
    (
        "switchboard_classification_errors_total",
        "needs a shipped rule to fail at run time, which none does",
    ),
];

#[tokio::test]
async fn a_real_prometheus_answers_every_dashboard_and_rule_expression() {
    let Some(binary) = prometheus_binary() else {
        assert!(
            std::env::var("SWITCHBOARD_REQUIRE_PROMETHEUS").as_deref() != Ok("1"),
            "SWITCHBOARD_REQUIRE_PROMETHEUS=1 but no prometheus binary on PATH \
             (apt-get install prometheus)"
        );
        eprintln!(
            "SKIPPED: no prometheus binary on PATH (apt-get install prometheus); \
             .ci/run installs it and sets SWITCHBOARD_REQUIRE_PROMETHEUS=1"
        );
        return;
    };
    let dir = TempDir::new("ops-prom");
    // Short offer timeout and live SLA so expiries and breaches happen within the test; a low
    // cap on open contacts so intake answers 503 (the HTTP error panels).
    let config_dir = dir.0.join("config");
    let config = serving::config_copy(
        &config_dir,
        &[
            ("offer_timeout = \"20s\"", "offer_timeout = \"1s\""),
            ("first_response = \"60s\"", "first_response = \"2s\""),
        ],
    );
    let config_arg = config.to_str().expect("utf-8 path").to_string();
    let daemon = Serving::start(
        &dir.0.join("data"),
        &[
            ("SWITCHBOARD_ADMIN_TOKEN", "admin-secret"),
            ("SWITCHBOARD_SMTP_ADDR", "127.0.0.1:0"),
            ("SWITCHBOARD_MAX_OPEN_CONTACTS", "12"),
        ],
        &["--config", &config_arg],
    );
    let addr = daemon.addr;
    let prometheus = Prometheus::start(&binary, addr).await;
    traffic(&daemon, &config).await;

    // Every expression: the dashboard's, and each loaded rule's as Prometheus parsed it.
    let dashboard = dashboard();
    let mut expressions: Vec<(String, String, bool)> = dashboard_queries(&dashboard)
        .into_iter()
        .map(|(title, q)| (format!("panel {title:?}"), fill_variables(&q), true))
        .collect();
    let rules = prometheus.query_rules().await;
    let written = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("contrib/prometheus/switchboard.rules.yml"),
    )
    .expect("the rules file")
    .lines()
    .filter(|l| {
        let l = l.trim_start();
        l.starts_with("- record:") || l.starts_with("- alert:")
    })
    .count();
    assert_eq!(
        rules.len(),
        written,
        "Prometheus loaded every rule of the file"
    );
    for (kind, name, query) in rules {
        // An alert's expression is a condition: no series is its normal answer.
        expressions.push((format!("{kind} {name}"), query, kind == "recording"));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut problems = Vec::new();
        for (source, query, needs_data) in &expressions {
            match prometheus.query(query).await {
                Err(e) => problems.push(format!("{source}: {query}: {e}")),
                Ok(data) if data["resultType"] != "vector" => {
                    problems.push(format!("{source}: {query}: not a vector: {data}"))
                }
                Ok(data) => {
                    let empty = data["result"].as_array().is_none_or(Vec::is_empty);
                    let excused = switchboard_metric_names(std::iter::once(query.as_str()))
                        .iter()
                        .all(|m| ALLOWED_EMPTY.iter().any(|(allowed, _)| allowed == m));
                    if *needs_data && empty && !excused {
                        problems.push(format!("{source}: {query}: no data"));
                    }
                }
            }
        }
        // Every metric any expression names exists with data in Prometheus.
        let all = expressions.iter().map(|(_, q, _)| q.as_str());
        for name in switchboard_metric_names(all) {
            assert!(declared_metric(&name), "{name} is not in src/metrics.rs");
            if ALLOWED_EMPTY.iter().any(|(allowed, _)| *allowed == name) {
                continue;
            }
            let found = prometheus
                .query(&format!("count({{__name__=\"{name}\"}})"))
                .await
                .map(|d| d["result"].as_array().is_some_and(|r| !r.is_empty()));
            if found != Ok(true) {
                problems.push(format!("no series named {name} was scraped"));
            }
        }
        if problems.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} expressions fail against a real Prometheus:\n{}",
            problems.len(),
            expressions.len(),
            problems.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    served_metrics_match_their_declaration(addr).await;
}

/// Every `switchboard_*` family the daemon serves is in `switchboard::metrics::ALL`, with the
/// declared type and exactly the declared label names on every series: the declaration that
/// docs/metrics.md is checked against is the truth about the recording sites too.
async fn served_metrics_match_their_declaration(addr: SocketAddr) {
    use switchboard::metrics::{ALL, Kind};
    let (_, page) = http(addr, "GET", "/metrics", &[], "").await;
    let page = page.as_str().expect("a text page").to_string();
    let label_name =
        regex::Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*""#).expect("regex");
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            match ALL.iter().find(|m| m.name == name) {
                Some(m) if m.kind.as_str() == kind => {}
                Some(m) => problems.push(format!(
                    "{name} is served as a {kind}, declared a {}",
                    m.kind.as_str()
                )),
                None => problems.push(format!("{name} is served but not in metrics::ALL")),
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let series = line.split_once(' ').map_or(line, |(s, _)| s);
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let Some(metric) = ALL.iter().find(|m| {
            let base = match m.kind {
                Kind::Histogram => ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix)),
                _ => Some(name),
            };
            base == Some(m.name)
        }) else {
            problems.push(format!("a series of no declared metric: {line}"));
            continue;
        };
        seen.insert(metric.name);
        let mut served: Vec<&str> = label_name
            .captures_iter(labels)
            .map(|c| c.get(1).expect("a name").as_str())
            .filter(|l| !(metric.kind == Kind::Histogram && *l == "le"))
            .collect();
        served.sort_unstable();
        let mut declared = metric.labels.to_vec();
        declared.sort_unstable();
        if served != declared {
            problems.push(format!(
                "{series}: labels {served:?}, declared {declared:?}"
            ));
        }
    }
    // The traffic makes nearly every metric appear; too few means the parser went wrong.
    assert!(seen.len() >= 20, "only {seen:?} parsed from /metrics");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

impl Prometheus {
    /// (recording or alerting, name, query) of every rule Prometheus loaded.
    async fn query_rules(&self) -> Vec<(String, String, String)> {
        let (status, answer) = http(self.addr, "GET", "/api/v1/rules", &[], "").await;
        assert_eq!(status, 200, "{answer}");
        let mut rules = Vec::new();
        for group in answer["data"]["groups"].as_array().expect("rule groups") {
            for rule in group["rules"].as_array().expect("rules") {
                assert_ne!(
                    rule["health"], "err",
                    "a rule Prometheus cannot evaluate: {rule}"
                );
                rules.push((
                    rule["type"].as_str().expect("type").to_string(),
                    rule["name"].as_str().expect("name").to_string(),
                    rule["query"].as_str().expect("query").to_string(),
                ));
            }
        }
        rules
    }
}

/// Traffic that makes every metric the dashboard and rules read appear: answered, expired,
/// rejected and abandoned contacts, SLA warnings and breaches, a customer chat socket, email, classification, refused intake, and
/// a good and a refused reload.
async fn traffic(daemon: &Serving, config: &Path) {
    let addr = daemon.addr;
    let admin = ("Authorization", "Bearer admin-secret");
    let post = |body: Value| async move {
        http(addr, "POST", "/v1/contacts", &[JSON], &body.to_string()).await
    };
    let (status, created) = http(
        addr,
        "POST",
        "/v1/agents",
        &[JSON, admin],
        &json!({"id": "ops-agent", "skills": {"english": 7, "technical": 5}, "capacity": {"chat": 1}})
            .to_string(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let mut agent = common::agent(addr, created["token"].as_str().expect("token")).await;
    expect(&mut agent, "hello").await;

    // First contact: its first offer expires (1 s), the second is accepted and completed.
    let (status, first) =
        post(json!({"channel": "chat", "queue": "support", "body": "first"})).await;
    assert_eq!(status, 202, "{first}");
    expect(&mut agent, "offer").await;
    expect(&mut agent, "offer_revoked").await;
    let again = expect(&mut agent, "offer").await;
    say(
        &mut agent,
        json!({"type": "accept", "offer_id": again["offer_id"]}),
    )
    .await;
    expect(&mut agent, "assigned").await;
    let id = first["id"].as_str().expect("id");
    say(&mut agent, json!({"type": "complete", "contact_id": id})).await;
    say(&mut agent, json!({"type": "ready"})).await;

    // Second contact: rejected; it stays waiting and misses its 2 s SLA.
    let (status, _) = post(json!({"channel": "chat", "queue": "support", "body": "second"})).await;
    assert_eq!(status, 202);
    let offer = expect(&mut agent, "offer").await;
    say(
        &mut agent,
        json!({"type": "reject", "offer_id": offer["offer_id"]}),
    )
    .await;

    // Classified (no queue named) and email contacts; a billing call the agent cannot take,
    // abandoned by its caller.
    let (status, _) =
        post(json!({"channel": "sms", "body": "I want a refund for my invoice"})).await;
    assert_eq!(status, 202);
    let reply = send_mail(
        daemon.smtp.expect("smtp"),
        "ada@example.org",
        "support@example.com",
        "Printer",
        "It is on fire.",
    )
    .await;
    assert!(reply.starts_with("250"), "{reply}");
    let refusal = smtp_unknown_mailbox(daemon.smtp.expect("smtp")).await;
    assert!(refusal.starts_with("550"), "{refusal}");
    let (status, call) = post(json!({"channel": "voice", "queue": "billing", "body": "..."})).await;
    assert_eq!(status, 202);
    let path = format!(
        "/v1/contacts/{}?reason=abandoned",
        call["id"].as_str().expect("id")
    );
    let (status, _) = http(addr, "DELETE", &path, &[admin], "").await;
    assert_eq!(status, 200);

    // Fill up to the open-contact cap: intake answers 503.
    let mut refused = 0;
    for n in 0..20 {
        let (status, _) =
            post(json!({"channel": "email", "queue": "billing", "body": format!("{n}")})).await;
        if status == 503 {
            refused += 1;
        }
    }
    assert!(refused > 0, "intake never refused a contact over the cap");

    // A customer chat socket is counted while open, and counted out when it closes.
    let (mut customer, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/chat/ws"))
        .await
        .expect("a customer connects");
    wait_for_series(addr, "switchboard_chat_connections 1").await;
    customer.close(None).await.expect("close");
    drop(customer);
    wait_for_series(addr, "switchboard_chat_connections 0").await;

    // A reload that works, then one of a broken file.
    let (status, answer) = http(addr, "POST", "/v1/admin/reload", &[admin], "").await;
    assert_eq!(status, 200, "{answer}");
    let text = std::fs::read_to_string(config).expect("config");
    std::fs::write(config, format!("{text}\n[this is not valid")).expect("break the config");
    let (status, _) = http(addr, "POST", "/v1/admin/reload", &[admin], "").await;
    assert_eq!(status, 422);

    // The SLA warning (at 80 % of the 2 s) and the breach of the rejected contact.
    // Per-queue counters are served at 0 from the start: wait for them to count.
    wait_for_count(addr, "switchboard_sla_warnings_total{queue=\"support\"}").await;
    wait_for_count(addr, "switchboard_sla_breaches_total{queue=\"support\"}").await;
}

/// Waits up to 10 s for a line of /metrics that starts with `series` (a name with its labels,
/// optionally followed by a value).
/// Waits until `/metrics` serves `series` with a value above zero.
async fn wait_for_count(addr: SocketAddr, series: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, page) = http(addr, "GET", "/metrics", &[], "").await;
        let text = page.as_str().unwrap_or_default();
        let counted = text.lines().any(|line| {
            line.strip_prefix(series)
                .and_then(|rest| rest.trim().parse::<f64>().ok())
                .is_some_and(|value| value > 0.0)
        });
        if counted {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series:?} never counted on /metrics within 10 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_series(addr: SocketAddr, series: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, page) = http(addr, "GET", "/metrics", &[], "").await;
        let text = page.as_str().unwrap_or_default();
        if text.lines().any(|line| line.starts_with(series)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {series:?} on /metrics within 10 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn status_summarizes_a_running_daemon() {
    let dir = TempDir::new("ops-status");
    let daemon = Serving::start(&dir.0, &[("SWITCHBOARD_ADMIN_TOKEN", "admin-secret")], &[]);
    let addr = daemon.addr;
    // Two VIP calls nobody connected can take, and alice logged in (no VIP skill).
    for _ in 0..2 {
        let body = json!({"channel": "voice", "queue": "vip", "body": "..."}).to_string();
        let (status, _) = http(addr, "POST", "/v1/contacts", &[JSON], &body).await;
        assert_eq!(status, 202);
    }
    let mut alice = common::agent(addr, "alice-demo-token").await;
    expect(&mut alice, "hello").await;
    common::eventually(addr, "/v1/agents", |agents| {
        agents["agents"].as_array().is_some_and(|all| {
            all.iter()
                .any(|a| a["id"] == "alice" && a["state"] == "available")
        })
    })
    .await;

    let url = format!("http://{addr}");
    let run = |token: Option<&'static str>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
            command
                .args(["status", "--url", &url])
                .env_remove("SWITCHBOARD_ADMIN_TOKEN");
            if let Some(token) = token {
                command.args(["--admin-token", token]);
            }
            command.output().expect("status runs")
        })
    };
    let output = run(Some("admin-secret")).await.expect("join");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let vip: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("vip "))
        .unwrap_or_else(|| panic!("no vip line:\n{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(vip[1], "2", "two waiting in vip:\n{text}");
    assert!(vip[3].ends_with('s'), "an oldest wait in seconds:\n{text}");
    for queue in ["sales", "support", "billing"] {
        assert!(
            text.lines().any(|l| l.starts_with(queue)),
            "{queue} missing:\n{text}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("total") && l.split_whitespace().nth(1) == Some("2")),
        "{text}"
    );
    assert!(
        text.contains("AGENTS 5: available 1, busy 0, wrap_up 0, away 0, offline 4"),
        "{text}"
    );
    assert!(text.lines().count() < 25, "more than a screen:\n{text}");

    // Without the token: refused, and the command says what to do.
    let output = run(None).await.expect("join");
    assert_eq!(output.status.code(), Some(1));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("401") && error.contains("--admin-token"),
        "{error}"
    );
    drop(alice);
}
