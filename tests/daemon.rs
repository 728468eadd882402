//! The daemon through its real interfaces: HTTP on a real socket, the agent websocket with a
//! real tokio-tungstenite client, the journal in a real SQLite file in a temp directory.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

mod common;
use common::{ADMIN, Socket, TempDir, agent, daemon, eventually, expect, http, say, settings};

const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn post_contact(addr: SocketAddr, body: Value) -> (u16, Value) {
    http(addr, "POST", "/v1/contacts", &[JSON], &body.to_string()).await
}

/// The next `state` frame announcing `state` (earlier state frames are skipped).
async fn expect_state(socket: &mut Socket, state: &str) -> Value {
    loop {
        let frame = expect(socket, "state").await;
        if frame["state"] == state {
            return frame;
        }
    }
}

/// True once `GET /v1/agents` shows the agent's dropped connection (away, "disconnected").
fn disconnected(agents: &Value, id: &str) -> bool {
    agents["agents"]
        .as_array()
        .and_then(|all| all.iter().find(|a| a["id"] == id))
        .is_some_and(|a| a["reason"] == "disconnected")
}

/// Alice logged in and holding a freshly posted billing email: her socket and the contact id.
async fn alice_holds_a_billing_email(addr: SocketAddr) -> (Socket, String) {
    let mut alice = agent(addr, "alice-demo-token").await;
    expect(&mut alice, "hello").await;
    let (_, answer) = post_contact(addr, billing_email()).await;
    let id = answer["id"].as_str().expect("id").to_string();
    expect(&mut alice, "offer").await;
    say(&mut alice, json!({"type": "accept", "offer_id": id})).await;
    expect(&mut alice, "assigned").await;
    (alice, id)
}

fn billing_email() -> Value {
    json!({"channel": "email", "customer": {"id": "c-42", "name": "Ada", "tier": "gold"},
           "subject": "Refund", "body": "Please refund my last invoice.", "queue": "billing"})
}

#[tokio::test]
async fn a_posted_contact_is_offered_accepted_completed_and_the_agent_made_ready() {
    let dir = TempDir::new("flow");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let mut alice = agent(addr, "alice-demo-token").await;
    let hello = expect(&mut alice, "hello").await;
    assert_eq!(hello["agent"], "alice");

    let (status, answer) = post_contact(addr, billing_email()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "queued");
    assert_eq!(answer["queue"], "billing");
    let id = answer["id"].as_str().expect("id").to_string();

    let offer = expect(&mut alice, "offer").await;
    assert_eq!(offer["offer_id"], id.as_str());
    assert_eq!(offer["contact"]["subject"], "Refund");
    say(&mut alice, json!({"type": "accept", "offer_id": id})).await;
    let assigned = expect(&mut alice, "assigned").await;
    assert_eq!(
        assigned["contact"]["body"],
        "Please refund my last invoice."
    );

    let (_, view) = http(addr, "GET", &format!("/v1/contacts/{id}"), &[ADMIN], "").await;
    assert_eq!(view["status"], "assigned");
    assert_eq!(view["agent"], "alice");

    say(
        &mut alice,
        json!({"type": "complete", "contact_id": id, "disposition": "resolved"}),
    )
    .await;
    // Billing has a minute of wrap-up; the agent ends it early.
    expect_state(&mut alice, "wrap_up").await;
    say(&mut alice, json!({"type": "ready"})).await;
    expect_state(&mut alice, "available").await;

    // Gone from the router, the journal still knows it.
    let path = format!("/v1/contacts/{id}");
    let view = eventually(addr, &path, |v| v["outcome"] == "completed").await;
    assert_eq!(view["status"], "completed", "{view}");
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_rejected_offer_goes_to_the_next_qualified_agent() {
    let dir = TempDir::new("reject");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let mut chen = agent(addr, "chen-demo-token").await;
    expect(&mut chen, "hello").await;
    let mut alice = agent(addr, "alice-demo-token").await;
    expect(&mut alice, "hello").await;
    let chat = json!({"channel": "chat", "body": "my router is down", "queue": "support"});
    let (_, answer) = post_contact(addr, chat).await;
    let id = answer["id"].as_str().expect("id").to_string();
    // support picks the least occupied; both idle, chen logged in first (longest idle).
    let offer = expect(&mut chen, "offer").await;
    say(
        &mut chen,
        json!({"type": "reject", "offer_id": offer["offer_id"]}),
    )
    .await;
    let offer = expect(&mut alice, "offer").await;
    assert_eq!(offer["offer_id"], id.as_str());
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn bad_requests_get_json_errors_with_the_right_status() {
    let dir = TempDir::new("errors");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    // (status, error code, headers, body)
    type Case<'a> = (u16, &'a str, Vec<(&'a str, &'a str)>, String);
    let cases: Vec<Case> = vec![
        (
            415,
            "unsupported_media_type",
            vec![("Content-Type", "text/plain")],
            "{}".into(),
        ),
        (400, "invalid_json", vec![JSON], "{not json".into()),
        (
            400,
            "invalid_json",
            vec![JSON],
            json!({"body": "no channel"}).to_string(),
        ),
        (
            422,
            "unknown_channel",
            vec![JSON],
            json!({"channel": "fax", "body": "x"}).to_string(),
        ),
        (
            422,
            "unknown_queue",
            vec![JSON],
            json!({"channel": "sms", "body": "x", "queue": "nope"}).to_string(),
        ),
        (
            422,
            "unknown_skill",
            vec![JSON],
            json!({"channel": "sms", "body": "x", "skills": {"klingon": 3}}).to_string(),
        ),
        (
            413,
            "too_large",
            vec![JSON],
            json!({"channel": "sms", "body": "x".repeat(300_000)}).to_string(),
        ),
    ];
    for (status, code, headers, body) in cases {
        let (got, answer) = http(addr, "POST", "/v1/contacts", &headers, &body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{answer}"
        );
    }
    let (status, answer) = http(addr, "GET", "/v1/queues", &[], "").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _) = http(addr, "GET", "/v1/contacts/999999", &[ADMIN], "").await;
    assert_eq!(status, 404);
    let (status, _) = http(addr, "GET", "/nowhere", &[], "").await;
    assert_eq!(status, 404);
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_gets_the_first_answer() {
    let dir = TempDir::new("idem");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let body = billing_email().to_string();
    let headers = [JSON, ("Idempotency-Key", "order-7")];
    let (s1, first) = http(addr, "POST", "/v1/contacts", &headers, &body).await;
    let (s2, second) = http(addr, "POST", "/v1/contacts", &headers, &body).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(first, second);
    let (_, queues) = http(addr, "GET", "/v1/queues", &[ADMIN], "").await;
    let billing = queues["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["queue"] == "billing")
        .cloned();
    assert_eq!(
        billing.expect("billing")["waiting"],
        1,
        "one contact, not two"
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn signed_intake_accepts_good_signatures_only() {
    use hmac::Mac;
    let dir = TempDir::new("sig");
    let mut s = settings(&dir);
    s.webhook_secret = Some("whsec".into());
    let d = daemon(s).await;
    let addr = d.local_addr();
    let body = json!({"channel": "sms", "body": "hi"}).to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let sign = |t: i64, secret: &str| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(format!("{t}.{body}").as_bytes());
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    };
    let good = sign(now, "whsec");
    let (status, _) = http(
        addr,
        "POST",
        "/v1/contacts",
        &[JSON, ("X-Switchboard-Signature", &good)],
        &body,
    )
    .await;
    assert_eq!(status, 202);
    let bad = sign(now, "wrong");
    let (status, _) = http(
        addr,
        "POST",
        "/v1/contacts",
        &[JSON, ("X-Switchboard-Signature", &bad)],
        &body,
    )
    .await;
    assert_eq!(status, 401);
    let stale = sign(now - 600, "whsec");
    let (status, _) = http(
        addr,
        "POST",
        "/v1/contacts",
        &[JSON, ("X-Switchboard-Signature", &stale)],
        &body,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = http(addr, "POST", "/v1/contacts", &[JSON], &body).await;
    assert_eq!(status, 401);
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn accepted_contacts_survive_a_restart_and_are_offered_again() {
    let dir = TempDir::new("restart");
    let d = daemon(settings(&dir)).await;
    let (_, answer) = post_contact(d.local_addr(), billing_email()).await;
    let id = answer["id"].as_str().expect("id").to_string();
    d.shutdown().await.expect("clean shutdown");

    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let (status, view) = http(addr, "GET", &format!("/v1/contacts/{id}"), &[ADMIN], "").await;
    assert_eq!(
        (status, view["status"].as_str()),
        (200, Some("queued")),
        "{view}"
    );
    let mut alice = agent(addr, "alice-demo-token").await;
    let offer = expect(&mut alice, "offer").await;
    assert_eq!(offer["offer_id"], id.as_str());
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn an_agent_who_reconnects_within_the_grace_keeps_its_contact() {
    let dir = TempDir::new("grace");
    let mut s = settings(&dir);
    s.agent_grace = Duration::from_secs(5);
    let d = daemon(s).await;
    let addr = d.local_addr();
    let (alice, id) = alice_holds_a_billing_email(addr).await;
    drop(alice);
    eventually(addr, "/v1/agents", |a| disconnected(a, "alice")).await;
    let mut again = agent(addr, "alice-demo-token").await;
    let hello = expect(&mut again, "hello").await;
    assert_eq!(hello["assigned"][0]["id"], id.as_str(), "{hello}");
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn bad_agent_messages_get_error_frames_and_the_socket_stays_open() {
    let dir = TempDir::new("badmsg");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let mut alice = agent(addr, "alice-demo-token").await;
    expect(&mut alice, "hello").await;
    say(&mut alice, json!({"type": "dance"})).await;
    assert_eq!(expect(&mut alice, "error").await["code"], "invalid_message");
    say(&mut alice, json!({"type": "accept", "offer_id": "12345"})).await;
    assert_eq!(expect(&mut alice, "error").await["code"], "unknown_contact");
    say(
        &mut alice,
        json!({"type": "set_state", "state": "away", "reason": "lunch"}),
    )
    .await;
    let state = expect_state(&mut alice, "away").await;
    assert_eq!(state["reason"], "lunch");
    let bad = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/agent/ws?token=nope")).await;
    assert!(
        bad.is_err(),
        "an unknown token is refused before the upgrade"
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn metrics_show_the_series_after_traffic() {
    let dir = TempDir::new("metrics");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    post_contact(addr, billing_email()).await;
    let wanted = [
        "switchboard_contacts_received_total",
        "switchboard_queue_waiting",
        "switchboard_queue_oldest_wait_seconds",
        "switchboard_journal_commit_seconds",
        "switchboard_http_requests_total",
        "switchboard_agents",
    ];
    // Gauges are refreshed once a second: the page must carry them all within 5 s.
    eventually(addr, "/metrics", |page| {
        page.as_str()
            .is_some_and(|text| wanted.iter().all(|series| text.contains(series)))
    })
    .await;
    let (status, _) = http(addr, "GET", "/readyz", &[], "").await;
    assert_eq!(status, 200);
    d.shutdown().await.expect("clean shutdown");
}

/// A CRM endpoint that records callbacks: the first request fails with 500, later ones succeed.
async fn hook_server() -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(Vec<u8>, String)>,
) {
    hook_server_with(None).await
}

/// The same over TLS, with the test CA's certificate for localhost and 127.0.0.1.
async fn https_hook_server() -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(Vec<u8>, String)>,
) {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let certs = CertificateDer::pem_file_iter(fixtures.join("hook.pem"))
        .expect("hook.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(fixtures.join("hook-key.pem")).expect("hook-key.pem");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server certificate");
    hook_server_with(Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(
        config,
    ))))
    .await
}

async fn hook_server_with(
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(Vec<u8>, String)>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((stream, _)) = listener.accept().await {
            let stream: Box<dyn Duplex> = match &tls {
                None => Box::new(stream),
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => Box::new(stream),
                    Err(_) => continue, // a client that did not trust us
                },
            };
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            let mut signature = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).await.unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("x-switchboard-signature:") {
                    signature = line["x-switchboard-signature:".len()..].trim().to_string();
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body).await;
            let status = if first {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            first = false;
            let _ = reader
                .get_mut()
                .write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
            if status.starts_with("200") {
                let _ = tx.send((body, signature));
            }
        }
    });
    (addr, rx)
}

/// A byte stream both ways: a TCP or TLS connection.
trait Duplex: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Duplex for T {}

#[tokio::test]
async fn lifecycle_events_are_posted_signed_to_the_callback_url_with_retries() {
    let dir = TempDir::new("callbacks");
    let mut s = settings(&dir);
    s.webhook_secret = Some("whsec".into());
    let d = daemon(s).await;
    let addr = d.local_addr();
    let (hook, mut events) = hook_server().await;
    let mut alice = agent(addr, "alice-demo-token").await;
    expect(&mut alice, "hello").await;

    let mut contact = billing_email();
    contact["callback_url"] = json!(format!("http://{hook}/hooks/switchboard"));
    let body = contact.to_string();
    let signature = switchboard::notify::sign("whsec", body.as_bytes());
    let (status, answer) = http(
        addr,
        "POST",
        "/v1/contacts",
        &[JSON, ("X-Switchboard-Signature", &signature)],
        &body,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().expect("id").to_string();
    let offer = expect(&mut alice, "offer").await;
    say(
        &mut alice,
        json!({"type": "accept", "offer_id": offer["offer_id"]}),
    )
    .await;

    let mut seen = Vec::new();
    while seen.len() < 2 {
        let (body, signature) = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("callbacks arrive (the first after one retry)")
            .expect("hook server running");
        let event: Value = serde_json::from_slice(&body).expect("a JSON event");
        assert_eq!(event["contact_id"], id.as_str());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        assert!(
            switchboard::http::verify_signature("whsec", Some(&signature), &body, now).is_ok(),
            "the callback is signed with the webhook secret: {signature}"
        );
        assert!(
            switchboard::http::verify_signature("other", Some(&signature), &body, now).is_err(),
            "and with nothing else"
        );
        seen.push(event["event"].as_str().unwrap_or_default().to_string());
    }
    seen.sort();
    assert_eq!(seen, vec!["assigned", "queued"]);

    // The CRM learns how the agent wrapped the contact up.
    say(
        &mut alice,
        json!({"type": "complete", "contact_id": id, "disposition": "follow_up"}),
    )
    .await;
    let (body, _) = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("the completed callback arrives")
        .expect("hook server running");
    let event: Value = serde_json::from_slice(&body).expect("a JSON event");
    assert_eq!(event["event"], "completed", "{event}");
    assert_eq!(
        event["detail"],
        json!({"disposition": "follow_up"}),
        "{event}"
    );

    let ftp =
        json!({"channel": "sms", "body": "x", "callback_url": "ftp://crm.example/h"}).to_string();
    let signature = switchboard::notify::sign("whsec", ftp.as_bytes());
    let headers = [JSON, ("X-Switchboard-Signature", signature.as_str())];
    let (status, answer) = http(addr, "POST", "/v1/contacts", &headers, &ftp).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("invalid_callback_url"))
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn https_callbacks_reach_a_receiver_whose_certificate_the_daemon_trusts() {
    let dir = TempDir::new("https-callbacks");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let d = daemon(switchboard::daemon::Settings {
        callback_ca: Some(fixtures.join("ca.pem")),
        ..settings(&dir)
    })
    .await;
    let addr = d.local_addr();
    let (hook, mut events) = https_hook_server().await;
    for host in ["localhost", "127.0.0.1"] {
        let mut contact = billing_email();
        contact["callback_url"] = json!(format!("https://{host}:{}/hooks", hook.port()));
        let (status, answer) = post_contact(addr, contact).await;
        assert_eq!(status, 202, "{answer}");
        let (body, _) = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap_or_else(|_| panic!("the queued event reaches https://{host} (after one retry)"))
            .expect("hook server running");
        let event: Value = serde_json::from_slice(&body).expect("a JSON event");
        assert_eq!(
            (event["event"].as_str(), event["contact_id"].as_str()),
            (Some("queued"), answer["id"].as_str())
        );
    }
    d.shutdown().await.expect("clean shutdown");

    // Without the CA the receiver's certificate is refused: nothing is delivered.
    let dir = TempDir::new("https-untrusted");
    let d = daemon(settings(&dir)).await;
    let mut contact = billing_email();
    contact["callback_url"] = json!(format!("https://localhost:{}/hooks", hook.port()));
    let (status, _) = post_contact(d.local_addr(), contact).await;
    assert_eq!(status, 202);
    assert!(
        tokio::time::timeout(Duration::from_secs(2), events.recv())
            .await
            .is_err(),
        "a receiver with an untrusted certificate gets nothing"
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn skills_and_priority_decide_who_gets_what() {
    let dir = TempDir::new("skills");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    // A Spanish-speaking sales call and, later, a higher-priority one; nobody is connected yet.
    let spanish =
        json!({"channel": "voice", "body": "hola", "queue": "sales", "skills": {"spanish": 5}});
    let (_, first) = post_contact(addr, spanish).await;
    let urgent = json!({"channel": "voice", "body": "urgent", "queue": "sales", "priority": 9});
    let (_, second) = post_contact(addr, urgent).await;
    // Dana sells but speaks no Spanish: she gets the urgent call, never the Spanish one.
    let mut dana = agent(addr, "dana-demo-token").await;
    let offer = expect(&mut dana, "offer").await;
    assert_eq!(offer["offer_id"], second["id"]);
    // Bruno speaks Spanish and sells: the Spanish call is his.
    let mut bruno = agent(addr, "bruno-demo-token").await;
    let offer = expect(&mut bruno, "offer").await;
    assert_eq!(offer["offer_id"], first["id"]);
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn an_unanswered_offer_expires_and_goes_to_the_next_agent() {
    let dir = TempDir::new("expiry");
    let mut s = settings(&dir);
    let support = s.config.queues.get_mut("support").expect("support queue");
    support.offer_timeout = Some(Duration::from_millis(400));
    let d = daemon(s).await;
    let addr = d.local_addr();
    let mut chen = agent(addr, "chen-demo-token").await;
    expect(&mut chen, "hello").await;
    let mut alice = agent(addr, "alice-demo-token").await;
    expect(&mut alice, "hello").await;
    let (_, answer) = post_contact(
        addr,
        json!({"channel": "chat", "body": "anyone?", "queue": "support"}),
    )
    .await;
    let first = expect(&mut chen, "offer").await;
    assert_eq!(first["offer_id"], answer["id"]);
    // Chen does not answer.
    let revoked = expect(&mut chen, "offer_revoked").await;
    assert_eq!(revoked["reason"], "expired");
    let second = expect(&mut alice, "offer").await;
    assert_eq!(second["offer_id"], answer["id"]);
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_journal_that_cannot_commit_turns_intake_into_503_and_the_daemon_stays_up() {
    let dir = TempDir::new("journal-fail");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let (status, _) = post_contact(addr, billing_email()).await;
    assert_eq!(status, 202);
    // Break the database under the daemon's feet: the next commit fails.
    let db =
        rusqlite::Connection::open(dir.0.join("switchboard.db")).expect("open the journal file");
    // The heartbeat too, so the writer's own probe fails as well until it is back.
    db.execute_batch("DROP TABLE contacts; DROP TABLE heartbeat;")
        .expect("drop");
    let (status, head, answer) = common::http_with_head(
        addr,
        "POST",
        "/v1/contacts",
        &[JSON],
        &billing_email().to_string(),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{answer}"
    );
    assert!(
        head.to_ascii_lowercase().contains("\r\nretry-after: 1"),
        "the sender is told when to try again: {head}"
    );
    let (status, _) = http(addr, "GET", "/healthz", &[], "").await;
    assert_eq!(status, 200, "the daemon is still up");
    let (status, ready) = http(addr, "GET", "/readyz", &[], "").await;
    assert_eq!(
        status, 503,
        "not ready while the journal cannot store: {ready}"
    );
    // Once the disk takes writes again the writer finds out by itself, with no request to try.
    db.execute_batch(
        "CREATE TABLE heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);",
    )
    .expect("heartbeat back");
    drop(db);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, ready) = http(addr, "GET", "/readyz", &[], "").await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready again: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.shutdown().await.ok();
}

#[tokio::test]
async fn an_agent_created_over_the_api_logs_in_with_its_token_and_a_hang_up_counts_as_abandoned() {
    let dir = TempDir::new("agents");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let body = json!({"id": "erin", "name": "Erin", "skills": {"english": 7, "technical": 6}, "capacity": {"voice": 1, "chat": 2}});
    let (status, created) = http(
        addr,
        "POST",
        "/v1/agents",
        &[JSON, ADMIN],
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().expect("token").to_string();
    let (status, _) = http(addr, "POST", "/v1/agents", &[JSON], &body.to_string()).await;
    assert_eq!(status, 401, "creating agents is an admin call");
    let bad = json!({"id": "x", "skills": {"klingon": 3}});
    let (status, _) = http(addr, "POST", "/v1/agents", &[JSON, ADMIN], &bad.to_string()).await;
    assert_eq!(status, 422);

    let mut erin = agent(addr, &token).await;
    assert_eq!(expect(&mut erin, "hello").await["agent"], "erin");
    let (_, agents) = http(addr, "GET", "/v1/agents", &[ADMIN], "").await;
    let listed = agents["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["id"] == "erin")
        .cloned();
    assert_eq!(listed.expect("erin listed")["state"], "available");

    // A call erin cannot take (no billing skill) waits; the caller hangs up.
    let (_, call) = post_contact(
        addr,
        json!({"channel": "voice", "body": "...", "queue": "billing"}),
    )
    .await;
    let id = call["id"].as_str().expect("id");
    let path = format!("/v1/contacts/{id}?reason=abandoned");
    let (status, answer) = http(addr, "DELETE", &path, &[ADMIN], "").await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("abandoned"))
    );
    let (_, queues) = http(addr, "GET", "/v1/queues", &[ADMIN], "").await;
    let billing = queues["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["queue"] == "billing")
        .cloned();
    assert_eq!(billing.expect("billing")["abandoned"], 1);
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn after_the_grace_a_dropped_agents_contact_is_requeued_and_held_for_it() {
    let dir = TempDir::new("after-grace");
    let d = daemon(settings(&dir)).await; // grace: 300 ms
    let addr = d.local_addr();
    let (alice, id) = alice_holds_a_billing_email(addr).await;
    drop(alice);
    // Requeued after the 300 ms grace.
    let path = format!("/v1/contacts/{id}");
    eventually(addr, &path, |v| v["status"] == "queued").await;
    // Alice comes back: it is offered to her first (she is its preferred agent for a while).
    let mut again = agent(addr, "alice-demo-token").await;
    let offer = expect(&mut again, "offer").await;
    assert_eq!(offer["offer_id"], id.as_str());
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn concurrent_retries_with_one_idempotency_key_create_one_contact() {
    let dir = TempDir::new("idem-race");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let body = billing_email().to_string();
    let attempts = (0..10).map(|_| {
        let body = body.clone();
        tokio::spawn(async move {
            http(
                addr,
                "POST",
                "/v1/contacts",
                &[JSON, ("Idempotency-Key", "same")],
                &body,
            )
            .await
        })
    });
    let mut ids = std::collections::BTreeSet::new();
    for attempt in attempts {
        let (status, answer) = attempt.await.expect("request task");
        match status {
            202 => {
                ids.insert(answer["id"].as_str().expect("id").to_string());
            }
            409 => assert_eq!(answer["error"]["code"], "in_progress"),
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    assert_eq!(ids.len(), 1, "every 202 carries the same contact");
    let (_, queues) = http(addr, "GET", "/v1/queues", &[ADMIN], "").await;
    let billing = queues["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["queue"] == "billing")
        .cloned();
    assert_eq!(billing.expect("billing")["waiting"], 1);
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn an_agent_cannot_complete_a_contact_it_does_not_hold() {
    let dir = TempDir::new("ownership");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let (_alice, id) = alice_holds_a_billing_email(addr).await;
    let mut bruno = agent(addr, "bruno-demo-token").await;
    expect(&mut bruno, "hello").await;
    say(&mut bruno, json!({"type": "complete", "contact_id": id})).await;
    assert_eq!(expect(&mut bruno, "error").await["code"], "not_assigned");
    say(
        &mut bruno,
        json!({"type": "transfer", "contact_id": id, "queue": "support"}),
    )
    .await;
    assert_eq!(expect(&mut bruno, "error").await["code"], "not_assigned");
    let (_, view) = http(addr, "GET", &format!("/v1/contacts/{id}"), &[ADMIN], "").await;
    assert_eq!(
        (view["status"].as_str(), view["agent"].as_str()),
        (Some("assigned"), Some("alice"))
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_reconnect_within_the_grace_keeps_the_agent_away_if_it_was_away() {
    let dir = TempDir::new("away-reconnect");
    let mut s = settings(&dir);
    s.agent_grace = Duration::from_secs(5);
    let d = daemon(s).await;
    let addr = d.local_addr();
    let mut alice = agent(addr, "alice-demo-token").await;
    expect(&mut alice, "hello").await;
    say(
        &mut alice,
        json!({"type": "set_state", "state": "away", "reason": "lunch"}),
    )
    .await;
    expect_state(&mut alice, "away").await;
    drop(alice);
    eventually(addr, "/v1/agents", |a| disconnected(a, "alice")).await;
    let mut again = agent(addr, "alice-demo-token").await;
    let hello = expect(&mut again, "hello").await;
    assert_eq!(hello["state"], "away", "{hello}");
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_second_connection_takes_over_and_the_first_is_told_to_go() {
    let dir = TempDir::new("takeover");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let mut first = agent(addr, "alice-demo-token").await;
    expect(&mut first, "hello").await;
    let mut second = agent(addr, "alice-demo-token").await;
    expect(&mut second, "hello").await;
    expect(&mut first, "shutdown").await;
    let (_, answer) = post_contact(addr, billing_email()).await;
    let offer = expect(&mut second, "offer").await;
    assert_eq!(offer["offer_id"], answer["id"]);
    let (status, body) = http(addr, "PUT", "/v1/contacts", &[JSON], "{}").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn an_agent_is_told_when_a_supervisor_cancels_its_contact() {
    let dir = TempDir::new("told");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let (mut alice, id) = alice_holds_a_billing_email(addr).await;
    let (status, _) = http(addr, "DELETE", &format!("/v1/contacts/{id}"), &[ADMIN], "").await;
    assert_eq!(status, 200);
    let ended = expect(&mut alice, "contact_ended").await;
    assert_eq!(
        (ended["contact_id"].as_str(), ended["reason"].as_str()),
        (Some(id.as_str()), Some("cancelled"))
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn intake_answers_503_once_the_open_contact_limit_is_reached() {
    let dir = TempDir::new("cap");
    let mut s = settings(&dir);
    s.max_open_contacts = 2;
    let d = daemon(s).await;
    let addr = d.local_addr();
    for _ in 0..2 {
        let (status, _) = post_contact(addr, billing_email()).await;
        assert_eq!(status, 202);
    }
    let (status, answer) = post_contact(addr, billing_email()).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{answer}"
    );
    // Once one leaves, intake takes contacts again.
    let (_, queues) = http(addr, "GET", "/v1/queues", &[ADMIN], "").await;
    assert_eq!(
        queues["queues"]
            .as_array()
            .expect("queues")
            .iter()
            .map(|q| q["waiting"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        2
    );
    let (status, _) = http(addr, "DELETE", "/v1/contacts/1", &[ADMIN], "").await;
    assert_eq!(status, 200);
    eventually(addr, "/v1/queues", |q| {
        q["queues"].as_array().is_some_and(|qs| {
            qs.iter()
                .map(|q| q["waiting"].as_u64().unwrap_or(0))
                .sum::<u64>()
                == 1
        })
    })
    .await;
    let (status, _) = post_contact(addr, billing_email()).await;
    assert_eq!(status, 202);
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_request_can_retry_with_its_idempotency_key() {
    let dir = TempDir::new("idem-hangup");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let body = billing_email().to_string();
    let keys: Vec<String> = (0..20).map(|n| format!("hangup-{n}")).collect();
    for key in &keys {
        // The request goes out whole, then the client is gone before any answer: the daemon may
        // be anywhere between reading it and committing the contact.
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "POST /v1/contacts HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Idempotency-Key: {key}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
            .await
            .expect("write");
        drop(stream);
    }
    let mut ids = std::collections::BTreeSet::new();
    for key in &keys {
        let headers = [JSON, ("Idempotency-Key", key.as_str())];
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let answer = loop {
            let (status, answer) = http(addr, "POST", "/v1/contacts", &headers, &body).await;
            match status {
                202 => break answer,
                409 if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                _ => panic!("the retry with {key} got {status}: {answer}"),
            }
        };
        let id = answer["id"].as_str().expect("id").to_string();
        let (status, view) = http(addr, "GET", &format!("/v1/contacts/{id}"), &[ADMIN], "").await;
        assert_eq!(
            (status, view["status"].as_str()),
            (200, Some("queued")),
            "{view}"
        );
        ids.insert(id);
    }
    assert_eq!(ids.len(), keys.len(), "one contact per key");
    let (_, queues) = http(addr, "GET", "/v1/queues", &[ADMIN], "").await;
    let billing = queues["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["queue"] == "billing")
        .cloned()
        .expect("billing");
    assert_eq!(
        billing["waiting"], 20,
        "every contact the daemon took is in line, each once: {billing}"
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn an_agent_connection_that_stops_answering_pings_counts_as_dropped() {
    let dir = TempDir::new("keepalive");
    let d = daemon(switchboard::daemon::Settings {
        agent_keepalive: Duration::from_millis(400),
        agent_grace: Duration::from_secs(30),
        ..settings(&dir)
    })
    .await;
    let addr = d.local_addr();
    // Alice's client keeps reading, so her library answers every ping; Bruno's goes quiet (a
    // laptop lid closed: the socket stays open, nothing answers).
    let mut alice = agent(addr, "alice-demo-token").await;
    expect(&mut alice, "hello").await;
    let alice_reads = tokio::spawn(async move {
        use futures_util::StreamExt;
        while let Some(Ok(_)) = alice.next().await {}
    });
    let mut bruno = agent(addr, "bruno-demo-token").await;
    expect(&mut bruno, "hello").await;

    let agents = eventually(addr, "/v1/agents", |agents| disconnected(agents, "bruno")).await;
    assert!(
        !disconnected(&agents, "alice"),
        "an agent whose client answers pings stays connected: {agents}"
    );
    alice_reads.abort();
    drop(bruno);
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_disposition_given_at_completion_is_shown_with_the_contact_and_survives_a_restart() {
    let dir = TempDir::new("disposition");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let (mut alice, id) = alice_holds_a_billing_email(addr).await;
    say(
        &mut alice,
        json!({"type": "complete", "contact_id": id, "disposition": "callback"}),
    )
    .await;
    expect_state(&mut alice, "wrap_up").await;
    let path = format!("/v1/contacts/{id}");
    let view = eventually(addr, &path, |v| v["outcome"] == "completed").await;
    assert_eq!(view["disposition"], "callback", "{view}");
    d.shutdown().await.expect("clean shutdown");

    let d = daemon(settings(&dir)).await;
    let (status, view) = http(d.local_addr(), "GET", &path, &[ADMIN], "").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["outcome"].as_str(), view["disposition"].as_str()),
        (Some("completed"), Some("callback")),
        "{view}"
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_refused_disposition_gets_an_error_frame_and_is_never_stored() {
    let dir = TempDir::new("bad-disposition");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let (mut alice, id) = alice_holds_a_billing_email(addr).await;
    let path = format!("/v1/contacts/{id}");

    say(
        &mut alice,
        json!({"type": "complete", "contact_id": id, "disposition": "x".repeat(65)}),
    )
    .await;
    let error = expect(&mut alice, "error").await;
    assert_eq!(error["code"], "invalid_disposition", "{error}");
    assert!(
        error["message"].as_str().is_some_and(|m| m.contains("64")),
        "the message says the limit: {error}"
    );
    let (_, view) = http(addr, "GET", &path, &[ADMIN], "").await;
    assert_eq!(
        (view["status"].as_str(), view["agent"].as_str()),
        (Some("assigned"), Some("alice")),
        "the contact stays with alice: {view}"
    );

    // Another agent's code for alice's contact is refused with the completion.
    let mut bruno = agent(addr, "bruno-demo-token").await;
    expect(&mut bruno, "hello").await;
    say(
        &mut bruno,
        json!({"type": "complete", "contact_id": id, "disposition": "spam"}),
    )
    .await;
    assert_eq!(expect(&mut bruno, "error").await["code"], "not_assigned");

    // The socket is still open: alice completes without a code, and none of the refused ones
    // was kept for the contact.
    say(&mut alice, json!({"type": "complete", "contact_id": id})).await;
    expect_state(&mut alice, "wrap_up").await;
    let view = eventually(addr, &path, |v| v["outcome"] == "completed").await;
    assert_eq!(view["disposition"], Value::Null, "{view}");
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_deadline_warns_the_agent_and_the_crm_then_misses_are_reported_and_missed_offers_pause() {
    let dir = TempDir::new("sla-frames");
    let mut s = settings(&dir);
    // Billing's policy, shortened: a warning at half a second, the breach at one.
    let standard = s.config.sla.get_mut("standard").expect("standard policy");
    standard.first_response = Duration::from_secs(1);
    standard.warn_at = 0.5;
    s.config.routing.max_missed_offers = 2;
    s.config
        .queues
        .get_mut("billing")
        .expect("billing")
        .offer_timeout = Some(Duration::from_millis(300));
    let d = daemon(s).await;
    let addr = d.local_addr();
    let (hook, mut events) = hook_server().await;

    // Alice connects with the token in the Authorization header, as a desktop client does.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{addr}/v1/agent/ws"
        ))
        .expect("request");
    request.headers_mut().insert(
        "Authorization",
        "Bearer alice-demo-token".parse().expect("header"),
    );
    let (mut alice, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("a bearer token in the header is accepted");
    expect(&mut alice, "hello").await;

    let mut contact = billing_email();
    contact["callback_url"] = json!(format!("http://{hook}/hooks"));
    let (_, answer) = post_contact(addr, contact).await;
    let id = answer["id"].as_str().expect("id").to_string();
    expect(&mut alice, "offer").await;
    say(&mut alice, json!({"type": "accept", "offer_id": id})).await;
    expect(&mut alice, "assigned").await;
    let warning = expect(&mut alice, "sla_warning").await;
    assert_eq!(
        (warning["contact_id"].as_str(), warning["kind"].as_str()),
        (Some(id.as_str()), Some("first_response")),
        "{warning}"
    );

    let mut seen = std::collections::BTreeSet::new();
    while !(seen.contains("sla_warning") && seen.contains("sla_breached")) {
        let (body, _) = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap_or_else(|_| panic!("the CRM hears of the deadline; so far {seen:?}"))
            .expect("hook server running");
        let event: Value = serde_json::from_slice(&body).expect("JSON");
        seen.insert(event["event"].as_str().unwrap_or_default().to_string());
    }

    // Two offers left to expire in a row: Alice is paused, and told so.
    say(&mut alice, json!({"type": "complete", "contact_id": id})).await;
    say(&mut alice, json!({"type": "ready"})).await;
    for _ in 0..2 {
        post_contact(addr, billing_email()).await;
    }
    let paused = expect_state(&mut alice, "away").await;
    assert_eq!(paused["reason"], "missed offers", "{paused}");
    d.shutdown().await.expect("clean shutdown");
}
