//! The email channel through its real interfaces: SMTP and LMTP conversations on real sockets
//! (lettre as a client, and a raw TCP client for the edge cases), the agent websocket, the
//! journal in a real SQLite file, and outgoing mail to an SMTP server started by the test.

use std::net::SocketAddr;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Value, json};
use switchboard::daemon::Settings;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

mod common;
use common::smtp_sink::Sink;
use common::{ADMIN, TempDir, agent, daemon, eventually, expect, http, say};

/// The embedded default config (support@ and billing@ mailboxes, both acknowledged), with the
/// SMTP listener on a free port.
fn settings(dir: &TempDir) -> Settings {
    Settings {
        smtp_addr: Some("127.0.0.1:0".parse().expect("addr")),
        ..common::settings(dir)
    }
}

/// A plain-text message with the given headers and body.
fn message(headers: &[(&str, &str)], body: &str) -> String {
    let mut text = String::new();
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.push_str("\r\n");
    text
}

/// A raw SMTP client: one line out, one (possibly multi-line) reply in.
struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> (Client, u16) {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut client = Client {
            stream: BufReader::new(stream),
        };
        let (code, _) = client.reply().await;
        (client, code)
    }

    async fn send(&mut self, text: &str) {
        self.stream
            .get_mut()
            .write_all(text.as_bytes())
            .await
            .expect("write");
    }

    /// Reads one reply: its code and its text lines.
    async fn reply(&mut self) -> (u16, String) {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read_line(&mut line))
                .await
                .expect("a reply within 5 s")
                .expect("read");
            assert!(n > 0, "connection closed while waiting for a reply");
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                let code = line[..3].parse().expect("reply code");
                return (code, all);
            }
        }
    }

    async fn command(&mut self, line: &str) -> (u16, String) {
        self.send(&format!("{line}\r\n")).await;
        self.reply().await
    }

    /// A whole transaction; the code after the final dot.
    async fn mail(&mut self, from: &str, to: &[&str], data: &str) -> (u16, String) {
        assert_eq!(self.command(&format!("MAIL FROM:<{from}>")).await.0, 250);
        for rcpt in to {
            assert_eq!(self.command(&format!("RCPT TO:<{rcpt}>")).await.0, 250);
        }
        assert_eq!(self.command("DATA").await.0, 354);
        self.send(&dot_stuffed(data)).await;
        self.send(".\r\n").await;
        self.reply().await
    }
}

fn dot_stuffed(data: &str) -> String {
    data.lines()
        .map(|line| {
            if line.starts_with('.') {
                format!(".{line}\r\n")
            } else {
                format!("{line}\r\n")
            }
        })
        .collect()
}

/// The contact id in a "250 2.0.0 Ok: contact 7 (new_contact)" reply.
fn contact_in(reply: &str) -> String {
    reply
        .split("contact ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no contact in {reply:?}"))
        .to_string()
}

fn mail(outbox: &Value) -> Vec<Value> {
    outbox["mail"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn mail_sent_with_lettre_becomes_a_contact_that_an_agent_is_offered_and_is_acknowledged() {
    let dir = TempDir::new("email-smtp");
    let d = daemon(settings(&dir)).await;
    let (addr, smtp) = (d.local_addr(), d.smtp_addr().expect("smtp listener"));
    let mut chen = agent(addr, "chen-demo-token").await;
    expect(&mut chen, "hello").await;

    let email = Message::builder()
        .from("Ada Lovelace <ada@example.org>".parse().expect("from"))
        .to("support@example.com".parse().expect("to"))
        .subject("Printer on fire")
        .message_id(Some("<first@example.org>".into()))
        .header(ContentType::TEXT_PLAIN)
        .body("It is on fire. Again.".to_string())
        .expect("message");
    let client = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(smtp.port())
        .build();
    let response = client
        .send(email)
        .await
        .expect("the listener takes the mail");
    assert_eq!(response.code().to_string(), "250");
    let id = contact_in(&response.message().collect::<Vec<_>>().join(" "));

    let offer = expect(&mut chen, "offer").await;
    assert_eq!(offer["contact"]["id"], id.as_str());
    assert_eq!(offer["contact"]["channel"], "email");
    assert_eq!(offer["contact"]["queue"], "support");
    assert_eq!(offer["contact"]["subject"], "Printer on fire");

    // No relay configured: the acknowledgement waits in the outbox, threaded to the message.
    let outbox = eventually(addr, "/v1/email/outbox", |o| !mail(o).is_empty()).await;
    let ack = &mail(&outbox)[0];
    assert_eq!(outbox["relay_configured"], false);
    assert_eq!(ack["kind"], "acknowledgement");
    assert_eq!(ack["status"], "pending");
    assert_eq!(ack["recipients"], json!(["ada@example.org"]));
    assert_eq!(ack["mail_from"], "support@example.com");
    let (_, messages) = http(
        addr,
        "GET",
        &format!("/v1/contacts/{id}/messages"),
        &[ADMIN],
        "",
    )
    .await;
    let messages = messages["messages"].as_array().expect("messages").clone();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["direction"], "inbound");
    assert_eq!(messages[0]["message_id"], "first@example.org");
    assert_eq!(
        messages[0]["parsed"]["text"].as_str().map(str::trim),
        Some("It is on fire. Again.")
    );
    assert!(
        messages[0]["size"].as_u64().unwrap_or(0) > 100,
        "the raw message is kept"
    );
    let subject = messages[1]["parsed"]["subject"].as_str().expect("subject");
    assert!(subject.contains(&format!("[#{id}]")), "{subject}");
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn unknown_recipients_get_550_and_pipelined_commands_are_answered_in_order() {
    let dir = TempDir::new("email-pipelining");
    let d = daemon(settings(&dir)).await;
    let (mut client, greeting) = Client::connect(d.smtp_addr().expect("smtp")).await;
    assert_eq!(greeting, 220);
    let (code, ehlo) = client.command("EHLO client.example.org").await;
    assert_eq!(code, 250);
    for extension in ["PIPELINING", "SIZE", "8BITMIME"] {
        assert!(ehlo.contains(extension), "{ehlo}");
    }
    client
        .send(
            "MAIL FROM:<ada@example.org>\r\nRCPT TO:<nobody@example.com>\r\n\
             RCPT TO:<Billing@Example.com>\r\nDATA\r\n",
        )
        .await;
    let codes = [
        client.reply().await.0,
        client.reply().await.0,
        client.reply().await.0,
        client.reply().await.0,
    ];
    assert_eq!(codes, [250, 550, 250, 354]);
    let body = message(
        &[("From", "ada@example.org"), ("Subject", "Invoice")],
        "Hello",
    );
    client.send(&dot_stuffed(&body)).await;
    client.send(".\r\n").await;
    let (code, reply) = client.reply().await;
    assert_eq!(code, 250, "{reply}");
    assert_eq!(client.command("NONSENSE").await.0, 500);
    assert_eq!(client.command("QUIT").await.0, 221);
    let id = contact_in(&reply);
    let (_, contact) = http(
        d.local_addr(),
        "GET",
        &format!("/v1/contacts/{id}"),
        &[ADMIN],
        "",
    )
    .await;
    assert_eq!(contact["queue"], "billing", "{contact}");
    let (_, page) = http(d.local_addr(), "GET", "/metrics", &[], "").await;
    let page = page.as_str().unwrap_or("").to_string();
    for series in [
        "switchboard_smtp_rejected_total{reason=\"unknown_mailbox\"}",
        "switchboard_email_received_total{outcome=\"new_contact\"}",
        "switchboard_contacts_received_total{channel=\"email\",queue=\"billing\"}",
    ] {
        assert!(page.contains(series), "{series} missing from /metrics");
    }
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn an_oversized_message_gets_552_and_a_client_gone_mid_message_leaves_nothing_behind() {
    let dir = TempDir::new("email-size");
    let mut settings = settings(&dir);
    settings.config.email.max_message_size = 2048;
    let d = daemon(settings).await;
    let smtp = d.smtp_addr().expect("smtp");
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO client.example.org").await;
    let big = message(&[("From", "ada@example.org")], &"x".repeat(70).repeat(60));
    assert_eq!(
        client
            .command("MAIL FROM:<ada@example.org> SIZE=999999")
            .await
            .0,
        552,
        "SIZE above the limit is refused at MAIL"
    );
    let (code, _) = client
        .mail("ada@example.org", &["support@example.com"], &big)
        .await;
    assert_eq!(code, 552);

    let (mut dropper, _) = Client::connect(smtp).await;
    dropper.command("EHLO client.example.org").await;
    dropper.command("MAIL FROM:<ada@example.org>").await;
    dropper.command("RCPT TO:<support@example.com>").await;
    dropper.command("DATA").await;
    dropper
        .send("Subject: half a message\r\n\r\nand then")
        .await;
    drop(dropper);

    // The session is still usable after the 552, and the dropped message created nothing.
    let small = message(&[("From", "ada@example.org")], "short");
    let (code, reply) = client
        .mail("ada@example.org", &["support@example.com"], &small)
        .await;
    assert_eq!(code, 250);
    assert_eq!(contact_in(&reply), "1", "the only contact ever created");
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn replies_join_their_contact_and_reach_the_agent_then_reopen_it_after_completion() {
    let dir = TempDir::new("email-threading");
    let d = daemon(settings(&dir)).await;
    let (addr, smtp) = (d.local_addr(), d.smtp_addr().expect("smtp"));
    let mut chen = agent(addr, "chen-demo-token").await;
    expect(&mut chen, "hello").await;
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO client.example.org").await;
    let first = message(
        &[
            ("From", "ada@example.org"),
            ("Subject", "Login broken"),
            ("Message-ID", "<m1@example.org>"),
        ],
        "I cannot log in.",
    );
    let (_, reply) = client
        .mail("ada@example.org", &["support@example.com"], &first)
        .await;
    let id = contact_in(&reply);
    expect(&mut chen, "offer").await;
    say(&mut chen, json!({"type": "accept", "offer_id": id})).await;
    expect(&mut chen, "assigned").await;

    let follow_up = message(
        &[
            ("From", "ada@example.org"),
            ("Subject", "Re: Login broken"),
            ("Message-ID", "<m2@example.org>"),
            ("In-Reply-To", "<m1@example.org>"),
        ],
        "Still broken, and now the password reset fails too.",
    );
    let (code, reply) = client
        .mail("ada@example.org", &["support@example.com"], &follow_up)
        .await;
    assert_eq!((code, contact_in(&reply)), (250, id.clone()), "{reply}");
    assert!(reply.contains("joined"), "{reply}");
    let frame = expect(&mut chen, "message").await;
    assert_eq!(frame["contact_id"], id.as_str());
    assert_eq!(frame["channel"], "email");
    assert!(
        frame["text"]
            .as_str()
            .unwrap_or("")
            .contains("password reset"),
        "{frame}"
    );

    say(&mut chen, json!({"type": "complete", "contact_id": id})).await;
    say(&mut chen, json!({"type": "ready"})).await;
    eventually(addr, &format!("/v1/contacts/{id}"), |c| {
        c["status"] == "completed"
    })
    .await;

    // A week-old thread would start afresh; this one is minutes old, so the token reopens it
    // and it goes back to chen first.
    let reopen = message(
        &[
            ("From", "ada@example.org"),
            ("Subject", format!("Thanks [#{id}]").as_str()),
        ],
        "It broke again.",
    );
    let (code, reply) = client
        .mail("ada@example.org", &["support@example.com"], &reopen)
        .await;
    assert_eq!((code, contact_in(&reply)), (250, id.clone()), "{reply}");
    assert!(reply.contains("reopened"), "{reply}");
    let offer = expect(&mut chen, "offer").await;
    assert_eq!(offer["contact"]["id"], id.as_str());
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn automatic_mail_is_not_acknowledged_and_a_repeated_message_id_creates_nothing() {
    let dir = TempDir::new("email-loops");
    let d = daemon(settings(&dir)).await;
    let (addr, smtp) = (d.local_addr(), d.smtp_addr().expect("smtp"));
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO mx.example.org").await;
    let out_of_office = message(
        &[
            ("From", "bob@example.org"),
            ("Subject", "Out of office"),
            ("Auto-Submitted", "auto-replied"),
            ("Message-ID", "<ooo@example.org>"),
        ],
        "I am away until Monday.",
    );
    let (code, first) = client
        .mail("bob@example.org", &["support@example.com"], &out_of_office)
        .await;
    assert_eq!(code, 250);
    let (code, again) = client
        .mail("bob@example.org", &["support@example.com"], &out_of_office)
        .await;
    assert_eq!(code, 250, "a duplicate is acknowledged to the sender");
    assert_eq!(contact_in(&again), contact_in(&first));
    assert!(again.contains("duplicate"), "{again}");
    let bounce = message(
        &[
            ("From", "MAILER-DAEMON@example.org"),
            ("Subject", "Undeliverable"),
        ],
        "bounced",
    );
    let (code, _) = client.mail("", &["support@example.com"], &bounce).await;
    assert_eq!(code, 250);
    let (_, outbox) = http(addr, "GET", "/v1/email/outbox", &[ADMIN], "").await;
    assert_eq!(
        mail(&outbox),
        Vec::<Value>::new(),
        "no auto-reply to automatic mail or bounces"
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn the_sender_rate_limit_answers_450_and_the_journal_failing_answers_451() {
    let dir = TempDir::new("email-limits");
    let mut settings = settings(&dir);
    settings.config.email.sender_rate_limit.messages = 2;
    let d = daemon(settings).await;
    let (mut client, _) = Client::connect(d.smtp_addr().expect("smtp")).await;
    client.command("EHLO mx.example.org").await;
    let hello = message(&[("From", "loop@example.org")], "hello");
    for _ in 0..2 {
        let (code, _) = client
            .mail("loop@example.org", &["support@example.com"], &hello)
            .await;
        assert_eq!(code, 250);
    }
    assert_eq!(client.command("MAIL FROM:<loop@example.org>").await.0, 450);
    client.command("RSET").await;

    let db = rusqlite::Connection::open(dir.0.join("switchboard.db")).expect("open the journal");
    db.execute_batch("DROP TABLE messages;").expect("drop");
    drop(db);
    let (code, reply) = client
        .mail("ada@example.org", &["support@example.com"], &hello)
        .await;
    assert_eq!(code, 451, "{reply}");
    assert_eq!(
        client.command("NOOP").await.0,
        250,
        "the session and daemon go on"
    );
    d.shutdown().await.ok();
}

#[tokio::test]
async fn lmtp_answers_once_per_recipient_after_the_message() {
    let dir = TempDir::new("email-lmtp");
    let mut settings = settings(&dir);
    settings.lmtp_addr = Some("127.0.0.1:0".parse().expect("addr"));
    let d = daemon(settings).await;
    let (mut client, greeting) = Client::connect(d.lmtp_addr().expect("lmtp")).await;
    assert_eq!(greeting, 220);
    assert_eq!(client.command("EHLO mx").await.0, 500, "LMTP says LHLO");
    assert_eq!(client.command("LHLO mx.example.org").await.0, 250);
    let body = message(
        &[("From", "ada@example.org"), ("Subject", "Both teams")],
        "hi",
    );
    let (first, _) = client
        .mail(
            "ada@example.org",
            &["support@example.com", "billing@example.com"],
            &body,
        )
        .await;
    let (second, _) = client.reply().await;
    assert_eq!((first, second), (250, 250));
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn starttls_upgrades_the_connection_and_mail_still_flows() {
    let dir = TempDir::new("email-tls");
    let mut settings = settings(&dir);
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    settings.config.email.tls_cert = Some(fixtures.join("cert.pem"));
    settings.config.email.tls_key = Some(fixtures.join("key.pem"));
    let d = daemon(settings).await;
    let smtp = d.smtp_addr().expect("smtp");
    let (mut client, _) = Client::connect(smtp).await;
    let (_, ehlo) = client.command("EHLO mx.example.org").await;
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");

    let tls = TlsParameters::builder("localhost".into())
        .dangerous_accept_invalid_certs(true)
        .build_rustls()
        .expect("tls parameters");
    let lettre = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(smtp.port())
        .tls(Tls::Required(tls))
        .build();
    let email = Message::builder()
        .from("ada@example.org".parse().expect("from"))
        .to("support@example.com".parse().expect("to"))
        .subject("Over TLS")
        .body("secret".to_string())
        .expect("message");
    let response = lettre.send(email).await.expect("mail over STARTTLS");
    assert!(response.is_positive());
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn acknowledgements_and_agent_replies_go_out_through_the_relay_threaded_and_retried() {
    let dir = TempDir::new("email-relay");
    let (relay, sink) = Sink::start().await;
    *sink.refuse_next.lock().expect("lock") = 1;
    let mut settings = settings(&dir);
    settings.smtp_relay = Some(format!("smtp://127.0.0.1:{}", relay.port()));
    settings.config.email.retry_base = Duration::from_millis(100);
    let d = daemon(settings).await;
    let (addr, smtp) = (d.local_addr(), d.smtp_addr().expect("smtp"));
    let mut chen = agent(addr, "chen-demo-token").await;
    expect(&mut chen, "hello").await;
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO mx.example.org").await;
    let question = message(
        &[
            ("From", "Ada <ada@example.org>"),
            ("Subject", "Where is my parcel?"),
            ("Message-ID", "<q1@example.org>"),
        ],
        "Ordered last week.",
    );
    let (_, reply) = client
        .mail("ada@example.org", &["support@example.com"], &question)
        .await;
    let id = contact_in(&reply);

    // The relay refuses the acknowledgement once (451); it is retried and goes through.
    let outbox = eventually(addr, "/v1/email/outbox", |o| {
        mail(o).first().is_some_and(|m| m["status"] == "sent")
    })
    .await;
    assert_eq!(mail(&outbox)[0]["attempts"], 2, "{outbox}");
    let ack = &sink.received()[0];
    assert_eq!(ack.recipients, ["ada@example.org"]);
    assert!(
        ack.data.contains("Auto-Submitted: auto-replied"),
        "{}",
        ack.data
    );
    assert!(
        ack.data.contains("In-Reply-To: <q1@example.org>"),
        "{}",
        ack.data
    );

    expect(&mut chen, "offer").await;
    say(&mut chen, json!({"type": "accept", "offer_id": id})).await;
    expect(&mut chen, "assigned").await;
    say(
        &mut chen,
        json!({"type": "reply", "contact_id": id, "text": "It ships tomorrow."}),
    )
    .await;
    let queued = expect(&mut chen, "reply_queued").await;
    assert_eq!(queued["contact_id"], id.as_str());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sink.received().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reply never reached the relay"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = &sink.received()[1];
    assert!(
        answer
            .data
            .contains(&format!("Subject: Re: Where is my parcel? [#{id}]")),
        "{}",
        answer.data
    );
    assert!(
        answer.data.contains("In-Reply-To: <q1@example.org>"),
        "{}",
        answer.data
    );
    assert!(
        answer.data.contains("From: support@example.com"),
        "{}",
        answer.data
    );
    assert!(
        answer.data.contains("It ships tomorrow."),
        "{}",
        answer.data
    );
    let (_, contact) = http(addr, "GET", &format!("/v1/contacts/{id}"), &[ADMIN], "").await;
    assert_eq!(
        contact["sla"]["responded"], true,
        "the reply is the first response: {contact}"
    );

    // The customer answers the agent's reply: it threads by In-Reply-To to the same contact.
    let reply_id = queued["message_id"].as_str().expect("message id");
    let thanks = message(
        &[
            ("From", "ada@example.org"),
            ("Subject", "Re: parcel"),
            ("In-Reply-To", &format!("<{reply_id}>")),
        ],
        "Thanks!",
    );
    let (_, reply) = client
        .mail("ada@example.org", &["support@example.com"], &thanks)
        .await;
    assert_eq!(contact_in(&reply), id);
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_permanent_refusal_by_the_relay_fails_the_mail_and_records_it() {
    let dir = TempDir::new("email-relay-fail");
    let (relay, _sink) = Sink::start().await;
    let mut settings = settings(&dir);
    settings.smtp_relay = Some(format!("smtp://127.0.0.1:{}", relay.port()));
    let d = daemon(settings).await;
    let (addr, smtp) = (d.local_addr(), d.smtp_addr().expect("smtp"));
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO mx.example.org").await;
    let body = message(
        &[("From", "blocked@example.org"), ("Subject", "hi")],
        "hello",
    );
    client
        .mail("blocked@example.org", &["support@example.com"], &body)
        .await;
    let outbox = eventually(addr, "/v1/email/outbox", |o| {
        mail(o).first().is_some_and(|m| m["status"] == "failed")
    })
    .await;
    let failed = &mail(&outbox)[0];
    assert_eq!(failed["attempts"], 1, "a 5xx is not retried");
    assert!(
        failed["last_error"].as_str().unwrap_or("").contains("550"),
        "{failed}"
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn the_inbound_webhook_takes_raw_mime_and_checks_type_and_signature() {
    let dir = TempDir::new("email-webhook");
    let mut settings = settings(&dir);
    settings.smtp_addr = None;
    let d = daemon(settings).await;
    let addr = d.local_addr();
    let raw = message(
        &[
            ("From", "ada@example.org"),
            ("To", "billing@example.com"),
            ("Subject", "Invoice 7"),
        ],
        "Please resend invoice 7.",
    );
    let rfc822 = ("Content-Type", "message/rfc822");
    let (status, answer) = http(addr, "POST", "/v1/email/inbound", &[rfc822], &raw).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (202, Some("new_contact")),
        "{answer}"
    );
    let id = answer["id"].as_str().expect("id");
    let (_, contact) = http(addr, "GET", &format!("/v1/contacts/{id}"), &[ADMIN], "").await;
    assert_eq!(contact["queue"], "billing");

    let json = ("Content-Type", "application/json");
    let (status, answer) = http(addr, "POST", "/v1/email/inbound", &[json], &raw).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let stranger = message(
        &[("From", "a@example.org"), ("To", "ceo@example.com")],
        "hi",
    );
    let (status, answer) = http(addr, "POST", "/v1/email/inbound", &[rfc822], &stranger).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("unknown_mailbox"))
    );
    let (status, answer) = http(addr, "POST", "/v1/email/inbound", &[rfc822], "").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("invalid_message"))
    );
    d.shutdown().await.expect("clean shutdown");

    let dir = TempDir::new("email-webhook-signed");
    let mut settings = self::settings(&dir);
    settings.smtp_addr = None;
    settings.webhook_secret = Some("s3cret".into());
    let d = daemon(settings).await;
    let (status, answer) = http(d.local_addr(), "POST", "/v1/email/inbound", &[rfc822], &raw).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("bad_signature"))
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn an_idle_client_and_a_slow_body_are_cut_off_with_421() {
    let dir = TempDir::new("email-timeouts");
    let mut settings = settings(&dir);
    settings.config.email.idle_timeout = Duration::from_millis(200);
    settings.config.email.data_timeout = Duration::from_millis(300);
    let d = daemon(settings).await;
    let smtp = d.smtp_addr().expect("smtp");
    let (mut idle, _) = Client::connect(smtp).await;
    assert_eq!(idle.command("EHLO mx.example.org").await.0, 250);
    assert_eq!(
        idle.reply().await.0,
        421,
        "silence after EHLO ends the session"
    );

    let (mut slow, _) = Client::connect(smtp).await;
    slow.command("EHLO mx.example.org").await;
    slow.command("MAIL FROM:<ada@example.org>").await;
    slow.command("RCPT TO:<support@example.com>").await;
    assert_eq!(slow.command("DATA").await.0, 354);
    for _ in 0..4 {
        // Each line comes well within the idle timeout, but the body as a whole is too slow.
        slow.send("Subject: trickle\r\n").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(slow.reply().await.0, 421);
    let (_, queues) = http(d.local_addr(), "GET", "/v1/contacts/1", &[ADMIN], "").await;
    assert_eq!(queues["error"]["code"], "not_found", "nothing was accepted");
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_contact_token_from_a_stranger_starts_a_new_contact_instead_of_joining() {
    let dir = TempDir::new("email-token");
    let d = daemon(settings(&dir)).await;
    let (mut client, _) = Client::connect(d.smtp_addr().expect("smtp")).await;
    client.command("EHLO mx.example.org").await;
    let first = message(
        &[("From", "ada@example.org"), ("Subject", "Refund")],
        "Where is it?",
    );
    let (_, reply) = client
        .mail("ada@example.org", &["billing@example.com"], &first)
        .await;
    let id = contact_in(&reply);
    let subject = format!("Re: Refund [#{id}]");
    let stranger = message(
        &[
            ("From", "mallory@example.net"),
            ("Subject", subject.as_str()),
        ],
        "Send it to me",
    );
    let (_, reply) = client
        .mail("mallory@example.net", &["billing@example.com"], &stranger)
        .await;
    assert!(reply.contains("new_contact"), "{reply}");
    assert_ne!(contact_in(&reply), id);
    let customer = message(
        &[
            ("From", "Ada <ada@example.org>"),
            ("Subject", subject.as_str()),
        ],
        "Any news?",
    );
    let (_, reply) = client
        .mail("ada@example.org", &["billing@example.com"], &customer)
        .await;
    assert_eq!(
        (contact_in(&reply), reply.contains("joined")),
        (id, true),
        "{reply}"
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn one_address_cannot_take_every_smtp_connection() {
    let dir = TempDir::new("email-per-address");
    let d = daemon(settings(&dir)).await;
    let smtp = d.smtp_addr().expect("smtp");
    let mut held = Vec::new();
    for _ in 0..32 {
        let (client, greeting) = Client::connect(smtp).await;
        assert_eq!(greeting, 220);
        held.push(client);
    }
    let (_, refused) = Client::connect(smtp).await;
    assert_eq!(refused, 421, "the 33rd connection from one address");
    drop(held.pop());
    // The slot frees once the listener sees the close: retry until it has (at most 5 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, greeting) = Client::connect(smtp).await;
        if greeting == 220 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a freed slot is usable again"
        );
    }
    drop(held);
    d.shutdown().await.expect("clean shutdown");
}
