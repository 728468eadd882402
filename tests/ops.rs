//! Operations, tested on the real binary: its JSON logs keep secrets and message bodies out
//! while every line about a contact names it; `switchboard status` summarizes a running
//! daemon; and a real Prometheus server scraping a real daemon answers every PromQL expression
//! of contrib/grafana/switchboard.json and contrib/prometheus/switchboard.rules.yml.

mod common;
#[path = "ops/serving.rs"]
mod serving;

use std::net::SocketAddr;
use std::time::Duration;

use common::{TempDir, expect, http, say};
use serde_json::{Value, json};
use serving::Serving;

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// Signs an intake body as `X-Switchboard-Signature` does.
fn sign(secret: &str, body: &str) -> String {
    use hmac::Mac;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{now}.{body}").as_bytes());
    format!("t={now},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends one message over SMTP; returns the final reply line.
async fn send_mail(smtp: SocketAddr, from: &str, to: &str, subject: &str, body: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(smtp).await.expect("connect");
    let mut io = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    io.read_line(&mut line).await.expect("greeting");
    let script = format!("EHLO mx.example.org\r\nMAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nDATA\r\n");
    io.get_mut()
        .write_all(script.as_bytes())
        .await
        .expect("write");
    let mut replies = 0;
    while replies < 4 {
        line.clear();
        io.read_line(&mut line).await.expect("reply");
        if line.as_bytes().get(3) != Some(&b'-') {
            replies += 1;
        }
    }
    assert!(line.starts_with("354"), "{line}");
    let message = format!("From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{body}\r\n.\r\n");
    io.get_mut()
        .write_all(message.as_bytes())
        .await
        .expect("write");
    line.clear();
    io.read_line(&mut line).await.expect("final reply");
    line
}

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

    // A signed webhook contact and an email, both carrying the body marker.
    let body = json!({
        "channel": "chat",
        "queue": "support",
        "subject": format!("subject {BODY}"),
        "body": format!("My router blinks red. {BODY}"),
        "customer": {"id": "cust-1", "name": "Ada"},
    })
    .to_string();
    let signature = sign(WEBHOOK_SECRET, &body);
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
