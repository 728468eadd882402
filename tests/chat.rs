//! Customer chat through its real interfaces: customers and agents as real websocket clients
//! against the real daemon, the journal in a real SQLite file.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

mod common;
use common::{ADMIN, Socket, TempDir, agent, daemon, eventually, expect, http, say, settings};

async fn customer(addr: SocketAddr) -> Socket {
    tokio_tungstenite::connect_async(format!("ws://{addr}/v1/chat/ws"))
        .await
        .expect("customer connects")
        .0
}

async fn resume(addr: SocketAddr, token: &str) -> Socket {
    tokio_tungstenite::connect_async(format!("ws://{addr}/v1/chat/ws?resume={token}"))
        .await
        .expect("customer reconnects")
        .0
}

/// An agent serving support chats one at a time, created over the admin API; its token.
async fn one_chat_agent(addr: SocketAddr, id: &str, name: &str) -> String {
    let body = json!({"id": id, "name": name, "skills": {"technical": 6, "english": 8},
                      "capacity": {"chat": 1}});
    let (status, created) = http(
        addr,
        "POST",
        "/v1/agents",
        &[("Content-Type", "application/json"), ADMIN],
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created["token"].as_str().expect("token").to_string()
}

/// A customer through the menu to technical support: (socket, contact id, resume token).
async fn support_chat(addr: SocketAddr, name: &str) -> (Socket, String, String) {
    let mut socket = customer(addr).await;
    say(
        &mut socket,
        json!({"type": "start", "name": name, "text": "My router blinks red."}),
    )
    .await;
    let menu = expect(&mut socket, "menu").await;
    assert_eq!(menu["options"][1]["label"], "Technical support", "{menu}");
    say(&mut socket, json!({"type": "choose", "option": "2"})).await;
    let welcome = expect(&mut socket, "welcome").await;
    let id = welcome["contact_id"].as_str().expect("id").to_string();
    let token = welcome["resume_token"].as_str().expect("token").to_string();
    (socket, id, token)
}

#[tokio::test]
async fn a_customer_picks_support_waits_as_the_line_moves_chats_with_the_agent_and_rates() {
    let dir = TempDir::new("chat-flow");
    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let token = one_chat_agent(addr, "ada", "Ada Agent").await;
    let (mut first, first_id, _) = support_chat(addr, "Bob").await;
    assert_eq!(expect(&mut first, "queued").await["position"], 1);
    let (mut second, _, _) = support_chat(addr, "Cy").await;
    assert_eq!(expect(&mut second, "queued").await["position"], 2);

    let mut ada = agent(addr, &token).await;
    let offer = expect(&mut ada, "offer").await;
    assert_eq!(offer["contact"]["id"], first_id.as_str());
    assert_eq!(offer["contact"]["channel"], "chat");
    assert_eq!(offer["contact"]["body"], "My router blinks red.");
    say(&mut ada, json!({"type": "accept", "offer_id": first_id})).await;
    assert_eq!(
        expect(&mut first, "agent_joined").await["name"],
        "Ada Agent"
    );
    assert_eq!(
        expect(&mut second, "queued").await["position"],
        1,
        "the second customer moves up as the first is answered"
    );

    say(&mut first, json!({"type": "typing"})).await;
    expect(&mut ada, "typing").await;
    say(
        &mut first,
        json!({"type": "message", "text": "Still blinking."}),
    )
    .await;
    let message = expect(&mut ada, "message").await;
    assert_eq!(
        (
            message["contact_id"].as_str(),
            message["channel"].as_str(),
            message["text"].as_str()
        ),
        (
            Some(first_id.as_str()),
            Some("chat"),
            Some("Still blinking.")
        )
    );
    say(&mut ada, json!({"type": "typing", "contact_id": first_id})).await;
    expect(&mut first, "typing").await;
    say(
        &mut ada,
        json!({"type": "reply", "contact_id": first_id, "text": "Unplug it for 10 s."}),
    )
    .await;
    expect(&mut ada, "reply_queued").await;
    let answer = expect(&mut first, "message").await;
    assert_eq!(
        (answer["from"].as_str(), answer["text"].as_str()),
        (Some("Ada Agent"), Some("Unplug it for 10 s."))
    );
    let (_, view) = http(
        addr,
        "GET",
        &format!("/v1/contacts/{first_id}"),
        &[ADMIN],
        "",
    )
    .await;
    assert_eq!(
        view["sla"]["responded"], true,
        "the first reply is the first response"
    );

    say(
        &mut ada,
        json!({"type": "complete", "contact_id": first_id}),
    )
    .await;
    assert_eq!(expect(&mut first, "closed").await["reason"], "agent_closed");
    expect(&mut first, "survey").await;
    say(&mut first, json!({"type": "rate", "score": 7})).await;
    assert_eq!(expect(&mut first, "error").await["code"], "invalid_score");
    say(
        &mut first,
        json!({"type": "rate", "score": 5, "comment": "quick"}),
    )
    .await;
    expect(&mut first, "rated").await;
    say(&mut first, json!({"type": "rate", "score": 1})).await;
    assert_eq!(
        expect(&mut first, "error").await["code"],
        "already_rated",
        "one rating per chat"
    );

    let transcript = http(
        addr,
        "GET",
        &format!("/v1/contacts/{first_id}/transcript"),
        &[ADMIN],
        "",
    )
    .await
    .1;
    let lines: Vec<(String, String)> = transcript["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["from"].as_str().unwrap_or("").into(),
                m["text"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("customer".to_string(), "My router blinks red.".to_string()),
            ("customer".into(), "Still blinking.".into()),
            ("Ada Agent".into(), "Unplug it for 10 s.".into()),
        ],
        "{transcript}"
    );
    assert_eq!(transcript["rating"]["score"], 5);
    let (_, page) = http(addr, "GET", "/metrics", &[], "").await;
    let series = "switchboard_csat_ratings_total{queue=\"support\",score=\"5\"}";
    assert!(
        page.as_str().unwrap_or("").contains(series),
        "{series} missing"
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_customer_who_reconnects_in_time_keeps_the_agent_and_gets_what_was_missed() {
    let dir = TempDir::new("chat-resume");
    let mut settings = settings(&dir);
    settings.config.chat.resume_grace = Duration::from_millis(400);
    let d = daemon(settings).await;
    let addr = d.local_addr();
    let token = one_chat_agent(addr, "ada", "Ada Agent").await;
    let mut ada = agent(addr, &token).await;
    let (mut bob, id, resume_token) = support_chat(addr, "Bob").await;
    expect(&mut ada, "offer").await;
    say(&mut ada, json!({"type": "accept", "offer_id": id})).await;
    expect(&mut bob, "agent_joined").await;

    drop(bob); // The connection drops (train tunnel).
    // Nothing outside shows the daemon noticing the drop; a short pause lets it, so the reply
    // below is one the customer misses rather than one written to the closing socket.
    tokio::time::sleep(Duration::from_millis(50)).await;
    say(
        &mut ada,
        json!({"type": "reply", "contact_id": id, "text": "Are you still there?"}),
    )
    .await;
    expect(&mut ada, "reply_queued").await;
    let mut bob = resume(addr, &resume_token).await;
    let missed = expect(&mut bob, "message").await;
    assert_eq!(missed["text"], "Are you still there?");
    say(&mut bob, json!({"type": "message", "text": "Yes, back."})).await;
    assert_eq!(expect(&mut ada, "message").await["text"], "Yes, back.");

    // Gone for longer than the grace: the chat ends and the agent is told.
    drop(bob);
    let ended = expect(&mut ada, "contact_ended").await;
    assert_eq!(
        (ended["contact_id"].as_str(), ended["reason"].as_str()),
        (Some(id.as_str()), Some("customer_left"))
    );
    let mut late = resume(addr, &resume_token).await;
    assert_eq!(
        expect(&mut late, "error").await["code"],
        "unknown_resume_token"
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_waiting_customer_who_never_comes_back_is_abandoned() {
    let dir = TempDir::new("chat-abandon");
    let mut settings = settings(&dir);
    settings.config.chat.resume_grace = Duration::from_millis(200);
    settings.config.chat.menu = None;
    let d = daemon(settings).await;
    let addr = d.local_addr();
    let mut socket = customer(addr).await;
    say(
        &mut socket,
        json!({"type": "start", "name": "Dee", "text": "hello?"}),
    )
    .await;
    let welcome = expect(&mut socket, "welcome").await;
    let id = welcome["contact_id"].as_str().expect("id").to_string();
    let (_, view) = http(addr, "GET", &format!("/v1/contacts/{id}"), &[ADMIN], "").await;
    assert_eq!(view["queue"], "support", "no menu: the default queue");
    drop(socket);
    eventually(addr, &format!("/v1/contacts/{id}"), |c| {
        c["status"] == "abandoned"
    })
    .await;
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_abuse_closes_the_socket_with_1008() {
    let dir = TempDir::new("chat-limits");
    let mut settings = settings(&dir);
    settings.config.chat.max_chats_per_address = 2;
    let d = daemon(settings).await;
    let addr = d.local_addr();
    let mut socket = customer(addr).await;
    say(&mut socket, json!({"type": "message", "text": "hi"})).await;
    assert_eq!(expect(&mut socket, "error").await["code"], "unexpected");
    socket.send_text("not json").await;
    assert_eq!(
        expect(&mut socket, "error").await["code"],
        "invalid_message"
    );
    say(
        &mut socket,
        json!({"type": "start", "text": "x".repeat(5000)}),
    )
    .await;
    assert_eq!(expect(&mut socket, "error").await["code"], "too_large");
    say(&mut socket, json!({"type": "start", "name": "Eve"})).await;
    expect(&mut socket, "menu").await;
    say(&mut socket, json!({"type": "choose", "option": "9"})).await;
    assert_eq!(expect(&mut socket, "error").await["code"], "unknown_option");

    let _second = customer(addr).await;
    let mut third = customer(addr).await;
    assert_eq!(expect(&mut third, "error").await["code"], "too_many_chats");

    // A flood: over the rate, then enough refusals to be shown the door.
    for _ in 0..20 {
        say(&mut socket, json!({"type": "typing"})).await;
    }
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => break u16::from(frame.code),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(code, 1008);
    d.shutdown().await.expect("clean shutdown");
}

trait SendText {
    async fn send_text(&mut self, text: &str);
}

impl SendText for Socket {
    async fn send_text(&mut self, text: &str) {
        use futures_util::SinkExt;
        self.send(Message::Text(text.to_owned().into()))
            .await
            .expect("send");
    }
}

#[tokio::test]
async fn outside_business_hours_the_customer_leaves_a_message_that_becomes_a_contact() {
    let dir = TempDir::new("chat-hours");
    let mut settings = settings(&dir);
    // Billing keeps no hours at all this week: always closed.
    settings
        .config
        .queues
        .get_mut("billing")
        .expect("billing")
        .business_hours = Some(switchboard::config::BusinessHoursConfig {
        time_zone: "Europe/Berlin".into(),
        days: Default::default(),
    });
    let d = daemon(settings).await;
    let addr = d.local_addr();
    let mut socket = customer(addr).await;
    say(&mut socket, json!({"type": "start", "name": "Fay", "email": "fay@example.org", "text": "Invoice 9 is wrong."})).await;
    expect(&mut socket, "menu").await;
    say(&mut socket, json!({"type": "choose", "option": "1"})).await;
    let after = expect(&mut socket, "after_hours").await;
    assert_eq!(after["queue"], "billing");
    say(
        &mut socket,
        json!({"type": "message", "text": "Please call me back."}),
    )
    .await;
    let left = expect(&mut socket, "message_left").await;
    assert_eq!(
        expect(&mut socket, "closed").await["reason"],
        "message_left"
    );
    let id = left["contact_id"].as_str().expect("id");
    let (_, contact) = http(addr, "GET", &format!("/v1/contacts/{id}"), &[ADMIN], "").await;
    assert_eq!(
        (contact["channel"].as_str(), contact["queue"].as_str()),
        (Some("email"), Some("billing")),
        "{contact}"
    );
    assert_eq!(
        contact["payload"]["body"],
        "Invoice 9 is wrong.\nPlease call me back."
    );
    d.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_chat_open_when_the_daemon_stopped_counts_as_abandoned_after_the_restart() {
    let dir = TempDir::new("chat-restart");
    let d = daemon(settings(&dir)).await;
    let (_socket, id, token) = support_chat(d.local_addr(), "Gus").await;
    d.shutdown().await.expect("clean shutdown");

    let d = daemon(settings(&dir)).await;
    let addr = d.local_addr();
    let (_, contact) = http(addr, "GET", &format!("/v1/contacts/{id}"), &[ADMIN], "").await;
    assert_eq!(
        contact["status"], "abandoned",
        "nobody can come back to it: {contact}"
    );
    let mut late = resume(addr, &token).await;
    assert_eq!(
        expect(&mut late, "error").await["code"],
        "unknown_resume_token"
    );
    d.shutdown().await.expect("clean shutdown");
}
