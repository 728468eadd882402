//! The web pages over plain HTTP, so they are covered where no browser is installed: every page
//! and the assets it names are served with their content types, the embedded copies are the
//! files in web/, the wallboard feed takes the admin token by header or query and streams
//! changes, and agent frames carry the SLA deadlines the desk counts down.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

mod common;
use common::{ADMIN, TempDir, agent, daemon, eventually, expect, http, say, settings};

/// A GET with the raw answer: (status, lower-cased head, body).
async fn fetch(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
}

/// The `/assets/...` paths a page's HTML loads.
fn assets_named(html: &str) -> Vec<String> {
    html.split(['"', '\''])
        .filter(|part| part.starts_with("/assets/"))
        .map(String::from)
        .collect()
}

fn on_disk(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("web")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn every_page_is_served_with_the_scripts_and_styles_it_loads() {
    let dir = TempDir::new("pages");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    for (path, file, script) in [
        ("/agent", "agent.html", "/assets/agent.js"),
        ("/chat", "chat.html", "/assets/chat.js"),
        ("/wallboard", "wallboard.html", "/assets/wallboard.js"),
    ] {
        let (status, head, body) = fetch(addr, path, &[]).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            header(&head, "content-type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        assert_eq!(body, on_disk(file), "{path} serves web/{file} as built");
        let csp = header(&head, "content-security-policy").expect("a CSP");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        let assets = assets_named(&body);
        assert!(
            assets.iter().any(|a| a == script) && assets.iter().any(|a| a.ends_with(".css")),
            "{path} loads its script and the style sheet: {assets:?}"
        );
        for asset in assets {
            let (status, head, served) = fetch(addr, &asset, &[]).await;
            assert_eq!(status, 200, "{asset}");
            let kind = if asset.ends_with(".css") {
                "text/css; charset=utf-8"
            } else {
                "text/javascript; charset=utf-8"
            };
            assert_eq!(header(&head, "content-type"), Some(kind), "{asset}");
            assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
            let name = asset.trim_start_matches("/assets/");
            assert_eq!(served, on_disk(name), "{asset} is web/{name}");
        }
    }
    let (status, _, body) = fetch(addr, "/assets/nothing.js", &[]).await;
    assert_eq!(status, 404);
    let body: Value = serde_json::from_str(&body).expect("JSON error");
    assert_eq!(body["error"]["code"], "not_found");
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn the_widget_script_loads_from_any_site_and_frames_the_chat_page_only() {
    let dir = TempDir::new("pages-widget");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let (status, head, body) = fetch(addr, "/chat/widget.js", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&head, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(header(&head, "access-control-allow-origin"), Some("*"));
    assert!(body.contains("/chat?embedded=1"), "{body}");
    let (_, chat, _) = fetch(addr, "/chat", &[]).await;
    assert!(
        header(&chat, "content-security-policy").is_some_and(|c| c.contains("frame-ancestors *")),
        "the chat page may be framed: {chat}"
    );
    for path in ["/agent", "/wallboard"] {
        let (_, head, _) = fetch(addr, path, &[]).await;
        assert!(
            header(&head, "content-security-policy")
                .is_some_and(|c| c.contains("frame-ancestors 'none'")),
            "{path} may not be framed: {head}"
        );
    }
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn the_wallboard_takes_the_admin_token_by_header_or_query_and_shows_targets() {
    let dir = TempDir::new("pages-wallboard");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    for path in [
        "/v1/wallboard",
        "/v1/wallboard?token=wrong",
        "/v1/wallboard/events",
        "/v1/wallboard/events?token=wrong",
    ] {
        let (status, body) = http(addr, "GET", path, &[], "").await;
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{path}");
    }
    let (status, by_header) = http(addr, "GET", "/v1/wallboard", &[ADMIN], "").await;
    assert_eq!(status, 200, "{by_header}");
    let (status, by_query) = http(addr, "GET", "/v1/wallboard?token=admin-secret", &[], "").await;
    assert_eq!(status, 200, "{by_query}");
    assert_eq!(by_header["queues"], by_query["queues"]);

    let queue = |name: &str| {
        by_header["queues"]
            .as_array()
            .expect("queues")
            .iter()
            .find(|q| q["queue"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no queue {name}: {by_header}"))
    };
    let vip = queue("vip");
    assert_eq!(
        (
            vip["service_level_target"].as_f64(),
            vip["service_level_threshold_seconds"].as_f64()
        ),
        (Some(0.9), Some(10.0)),
        "vip's own objective from the config: {vip}"
    );
    assert_eq!(queue("support")["service_level_target"].as_f64(), Some(0.8));
    assert_eq!(by_header["ratings"], json!({"count": 0, "average": null}));
    let agents = by_header["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 5, "the demo agents: {by_header}");
    assert!(agents.iter().all(|a| a["state"] == "offline"));
    d.shutdown().await.expect("clean shutdown");
}

/// Reads server-sent events until one named `wallboard` arrives; its data as JSON.
async fn next_board(lines: &mut tokio::io::Lines<BufReader<tokio::net::TcpStream>>) -> Value {
    let mut event = String::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
            .await
            .expect("an event within 5 s")
            .expect("read")
            .expect("stream open");
        if let Some(name) = line.strip_prefix("event: ") {
            event = name.to_string();
        } else if let Some(data) = line.strip_prefix("data: ")
            && event == "wallboard"
        {
            return serde_json::from_str(data).expect("JSON board");
        }
    }
}

fn waiting(board: &Value, queue: &str) -> u64 {
    board["queues"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["queue"] == queue))
        .and_then(|q| q["waiting"].as_u64())
        .unwrap_or_else(|| panic!("no {queue} in {board}"))
}

#[tokio::test]
async fn the_wallboard_stream_sends_the_board_then_its_changes_and_ends_at_shutdown() {
    let dir = TempDir::new("pages-events");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /v1/wallboard/events?token=admin-secret HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut lines = BufReader::new(stream).lines();
    let status = lines.next_line().await.expect("read").expect("status line");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut content_type = None;
    while let Some(line) = lines.next_line().await.expect("read") {
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-type: ") {
            content_type = Some(v.to_string());
        }
    }
    assert_eq!(content_type.as_deref(), Some("text/event-stream"));

    let first = next_board(&mut lines).await;
    assert_eq!(waiting(&first, "support"), 0, "{first}");
    let body = json!({"channel": "sms", "queue": "support", "body": "My phone is dead."});
    let (status, answer) = http(
        addr,
        "POST",
        "/v1/contacts",
        &[("Content-Type", "application/json")],
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let next = next_board(&mut lines).await;
    assert_eq!(
        waiting(&next, "support"),
        1,
        "the next event shows the contact waiting: {next}"
    );

    // An open wallboard must not hold up a graceful shutdown.
    tokio::time::timeout(Duration::from_secs(10), d.shutdown())
        .await
        .expect("shutdown does not wait for the wallboard")
        .expect("clean shutdown");
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = lines.next_line().await {}
    })
    .await;
    assert!(rest.is_ok(), "the event stream ends with the daemon");
}

#[tokio::test]
async fn offers_and_assignments_carry_the_sla_deadlines_the_desk_counts_down() {
    let dir = TempDir::new("pages-sla");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let mut alice = agent(addr, "alice-demo-token").await;
    expect(&mut alice, "hello").await;
    let body = json!({"channel": "email", "queue": "billing", "subject": "Refund",
                      "body": "Please refund my last invoice.", "customer": {"name": "Ada"}});
    let before = switchboard::daemon::unix_ms();
    let (status, answer) = http(
        addr,
        "POST",
        "/v1/contacts",
        &[("Content-Type", "application/json")],
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().expect("id").to_string();
    let offer = expect(&mut alice, "offer").await;
    let sla = &offer["contact"]["sla"];
    // billing has the standard policy: first response in 4 h, resolution in 24 h.
    let first = sla["first_response_due"]
        .as_u64()
        .expect("first response due");
    let resolution = sla["resolution_due"].as_u64().expect("resolution due");
    let hour = 3_600_000;
    assert!(
        (before + 4 * hour..=before + 4 * hour + 60_000).contains(&first),
        "{sla}"
    );
    assert_eq!(resolution - first, 20 * hour, "{sla}");
    assert_eq!(sla["responded"], false);

    say(&mut alice, json!({"type": "accept", "offer_id": id})).await;
    let assigned = expect(&mut alice, "assigned").await;
    assert_eq!(assigned["contact"]["sla"], *sla);
    say(&mut alice, json!({"type": "responded", "contact_id": id})).await;
    // A reconnect lists the contact again, now answered.
    drop(alice);
    let mut again = agent(addr, "alice-demo-token").await;
    let hello = expect(&mut again, "hello").await;
    assert_eq!(hello["assigned"][0]["sla"]["responded"], true, "{hello}");
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn the_wallboard_counts_chat_ratings_per_queue() {
    let dir = TempDir::new("pages-ratings");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let mut chen = agent(addr, "chen-demo-token").await;
    expect(&mut chen, "hello").await;
    for score in [5, 2] {
        let (mut customer, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/chat/ws"))
            .await
            .expect("customer connects");
        say(
            &mut customer,
            json!({"type": "start", "name": "Bob", "text": "It blinks."}),
        )
        .await;
        expect(&mut customer, "menu").await;
        say(&mut customer, json!({"type": "choose", "option": "2"})).await;
        let id = expect(&mut customer, "welcome").await["contact_id"].clone();
        let offer = expect(&mut chen, "offer").await;
        assert_eq!(offer["contact"]["id"], id);
        say(&mut chen, json!({"type": "accept", "offer_id": id})).await;
        expect(&mut customer, "agent_joined").await;
        say(&mut customer, json!({"type": "close"})).await;
        expect(&mut customer, "survey").await;
        say(&mut customer, json!({"type": "rate", "score": score})).await;
        expect(&mut customer, "rated").await;
        expect(&mut chen, "contact_ended").await;
        say(&mut chen, json!({"type": "ready"})).await;
    }
    let board = eventually(addr, "/v1/wallboard", |b| b["ratings"]["count"] == 2).await;
    assert_eq!(board["ratings"]["average"].as_f64(), Some(3.5), "{board}");
    let support = board["queues"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["queue"] == "support"))
        .expect("support");
    assert_eq!(support["ratings"], json!({"count": 2, "average": 3.5}));
    d.shutdown().await.expect("clean shutdown");
}
