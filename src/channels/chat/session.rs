//! One customer's chat connection: `start`, the menu, the contact, then relay until the chat
//! or the connection ends. Bad frames get an `error` frame; ten refusals close the socket with
//! the policy-violation close code (1008).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::{ChatFrame, CustomerMessage, MenuChoice};
use crate::classify::Intake;
use crate::config::{MenuConfig, MenuOption};
use crate::daemon::{Command, Shared, unix_ms};
use crate::gateway::ServerMessage;
use crate::journal::{ContactRecord, MessageRecord, Record};
use crate::metrics as m;
use crate::model::ContactId;
use crate::router::{ContactStatus, Event, WithdrawReason};

/// Frames queued for one customer before the connection counts as not reading.
const OUTBOX: usize = 256;
/// Refusals after which the socket is closed.
const MAX_REFUSALS: u32 = 10;
/// Keepalive ping interval; a connection silent (not even a pong) for three of them is taken
/// for dropped, so a half-open connection starts the resume grace like a closed one.
const PING_EVERY: Duration = Duration::from_secs(20);
/// A connection that has not said `start` within this is closed.
const START_WITHIN: Duration = Duration::from_secs(60);

/// `GET /v1/chat/ws[?resume=<token>]`.
pub async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let resume = query.get("resume").cloned();
    // Frames above the limit are read (up to 64 KiB) and refused with an error frame, rather
    // than dropping the connection without a word.
    ws.max_message_size(64 * 1024)
        .read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| run(shared, socket, peer, resume))
        .into_response()
}

/// Where the conversation stands on this connection.
enum Stage {
    /// Waiting for `start`.
    New,
    /// In the menu: the customer's details, the menu shown, and the choices so far.
    Menu(Box<MenuStage>),
    /// Outside business hours: waiting for the message to leave.
    LeaveMessage(Box<(Start, Chosen)>),
    /// A contact: relaying.
    Open(u64),
    /// A message was left; nothing more to do.
    Done,
}

/// A customer in the pre-chat menu.
struct MenuStage {
    start: Start,
    menu: MenuConfig,
    chosen: Chosen,
}

/// What `start` said.
struct Start {
    customer: serde_json::Value,
    attributes: serde_json::Value,
    text: Option<String>,
}

/// What the menu choices set.
#[derive(Default)]
struct Chosen {
    queue: Option<String>,
    skills: BTreeMap<String, u8>,
    priority: Option<i32>,
    attributes: BTreeMap<String, String>,
    path: Vec<String>,
}

impl Chosen {
    fn apply(&mut self, option: &MenuOption) {
        if option.queue.is_some() {
            self.queue.clone_from(&option.queue);
        }
        self.skills.extend(option.skills.clone());
        if option.priority.is_some() {
            self.priority = option.priority;
        }
        self.attributes.extend(option.attributes.clone());
        self.path.push(option.label.clone());
    }
}

async fn run(shared: Arc<Shared>, socket: WebSocket, peer: SocketAddr, resume: Option<String>) {
    let room = &shared.chat;
    let _counted = super::CountedConnection::open();
    let setup = shared.setup();
    let config = &setup.config.chat;
    let connection = shared.next_session.fetch_add(1, Ordering::SeqCst);
    let (outbox, mut frames) = mpsc::channel::<ChatFrame>(OUTBOX);
    let (mut sink, mut stream) = socket.split();
    let (close_tx, mut close_rx) = oneshot::channel::<u16>();
    let writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = ping.tick() => {
                    if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                        return;
                    }
                }
                frame = frames.recv() => match frame {
                    Some(frame) => {
                        let text = serde_json::to_string(&frame).expect("chat frames serialize");
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            return;
                        }
                    }
                    None => return,
                },
                code = &mut close_rx => {
                    // Let queued frames (the error that explains the close) go out first.
                    while let Ok(frame) = frames.try_recv() {
                        let text = serde_json::to_string(&frame).expect("chat frames serialize");
                        let _ = sink.send(Message::Text(text.into())).await;
                    }
                    let code = code.unwrap_or(close_code::NORMAL);
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame { code, reason: "".into() })))
                        .await;
                    return;
                }
            }
        }
    });

    let mut stage = Stage::New;
    if let Some(token) = resume {
        match room.resume(&token, connection, outbox.clone()) {
            Some((contact, missed)) => {
                for frame in missed {
                    let _ = outbox.send(frame).await;
                }
                stage = Stage::Open(contact);
            }
            None => {
                let _ = outbox
                    .send(ChatFrame::error(
                        "unknown_resume_token",
                        "no chat to resume with this token (it ended, or the grace ran out)",
                    ))
                    .await;
                let _ = close_tx.send(close_code::POLICY);
                let _ = writer.await;
                return;
            }
        }
    } else if !room.admit_address(peer.ip(), config.max_chats_per_address) {
        let _ = outbox
            .send(ChatFrame::error(
                "too_many_chats",
                format!(
                    "at most {} chats at once from one address",
                    config.max_chats_per_address
                ),
            ))
            .await;
        let _ = close_tx.send(close_code::POLICY);
        let _ = writer.await;
        return;
    }
    let counted_address = matches!(stage, Stage::New);

    let mut refusals = 0u32;
    let mut window = (Instant::now(), 0u32);
    let mut close_code_sent = None;
    let connected_at = Instant::now();
    loop {
        let Ok(Some(Ok(message))) = tokio::time::timeout(3 * PING_EVERY, stream.next()).await
        else {
            break; // Closed, broken, or silent through three pings.
        };
        if matches!(stage, Stage::New) && connected_at.elapsed() > START_WITHIN {
            let _ = outbox
                .send(ChatFrame::error(
                    "start_timeout",
                    "no start within a minute",
                ))
                .await;
            close_code_sent = Some(close_code::POLICY);
            break;
        }
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Binary(_) => {
                refusals += 1;
                let _ = outbox
                    .send(ChatFrame::error("unsupported", "send JSON text frames"))
                    .await;
                if refusals >= MAX_REFUSALS {
                    close_code_sent = Some(close_code::POLICY);
                    break;
                }
                continue;
            }
        };
        if window.0.elapsed() >= Duration::from_secs(1) {
            window = (Instant::now(), 0);
        }
        window.1 += 1;
        let refusal = if window.1 > config.messages_per_second {
            Some(ChatFrame::error(
                "rate_limited",
                format!("at most {} messages a second", config.messages_per_second),
            ))
        } else if text.len() > config.max_message_bytes {
            Some(ChatFrame::error(
                "too_large",
                format!("messages are at most {} bytes", config.max_message_bytes),
            ))
        } else {
            match serde_json::from_str::<CustomerMessage>(&text) {
                Ok(message) => handle(&shared, &mut stage, message, connection, &outbox).await,
                Err(e) => Some(ChatFrame::error("invalid_message", e.to_string())),
            }
        };
        if let Some(error) = refusal {
            refusals += 1;
            let _ = outbox.send(error).await;
            if refusals >= MAX_REFUSALS {
                close_code_sent = Some(close_code::POLICY);
                break;
            }
        }
    }

    if counted_address {
        room.release_address(peer.ip());
    }
    if let Stage::Open(contact) = stage
        && room.detach(contact, connection)
    {
        if room.is_closed(contact) {
            room.forget(contact);
        } else {
            // The customer may come back with the resume token; after the grace, abandoned.
            let shared = shared.clone();
            tokio::spawn(async move {
                tokio::time::sleep(shared.setup().config.chat.resume_grace).await;
                // Resumed meanwhile (and maybe dropped again, with a grace of its own).
                if !shared.chat.away_since(contact, connection) {
                    return;
                }
                if !shared.chat.is_closed(contact) {
                    leave(&shared, contact, WithdrawReason::Abandoned).await;
                }
                shared.chat.forget(contact);
            });
        }
    }
    let _ = close_tx.send(close_code_sent.unwrap_or(close_code::NORMAL));
    let _ = writer.await;
}

/// Applies one customer frame; returns an error frame to send, if any.
async fn handle(
    shared: &Arc<Shared>,
    stage: &mut Stage,
    message: CustomerMessage,
    connection: u64,
    outbox: &mpsc::Sender<ChatFrame>,
) -> Option<ChatFrame> {
    let current = std::mem::replace(stage, Stage::New);
    let (next, reply) = match (current, message) {
        (
            Stage::New,
            CustomerMessage::Start {
                name,
                email,
                customer_id,
                attributes,
                text,
            },
        ) => {
            let start = Start {
                customer: json!({"name": name, "email": email, "id": customer_id}),
                attributes: attributes.unwrap_or(serde_json::Value::Null),
                text: text.filter(|t| !t.trim().is_empty()),
            };
            match shared.setup().config.chat.menu.clone() {
                Some(menu) => {
                    let _ = outbox.send(menu_frame(&menu)).await;
                    (
                        Stage::Menu(Box::new(MenuStage {
                            start,
                            menu,
                            chosen: Chosen::default(),
                        })),
                        None,
                    )
                }
                None => open(shared, start, Chosen::default(), connection, outbox).await,
            }
        }
        (Stage::Menu(stage), CustomerMessage::Choose { option }) => {
            let MenuStage {
                start,
                menu,
                mut chosen,
            } = *stage;
            match menu.options.iter().find(|o| o.id == option) {
                Some(picked) => {
                    chosen.apply(picked);
                    match &picked.menu {
                        Some(sub) => {
                            let _ = outbox.send(menu_frame(sub)).await;
                            let menu = (**sub).clone();
                            let next = MenuStage {
                                start,
                                menu,
                                chosen,
                            };
                            (Stage::Menu(Box::new(next)), None)
                        }
                        None => open(shared, start, chosen, connection, outbox).await,
                    }
                }
                None => (
                    Stage::Menu(Box::new(MenuStage {
                        start,
                        menu,
                        chosen,
                    })),
                    Some(ChatFrame::error(
                        "unknown_option",
                        format!("no option {option:?} in this menu"),
                    )),
                ),
            }
        }
        // Free text instead of a choice: what was chosen so far, and the text, go to routing.
        (Stage::Menu(stage), CustomerMessage::Message { text }) => {
            let MenuStage {
                mut start, chosen, ..
            } = *stage;
            start.text = Some(match start.text.take() {
                Some(first) => format!("{first}\n{text}"),
                None => text,
            });
            open(shared, start, chosen, connection, outbox).await
        }
        (Stage::LeaveMessage(left), CustomerMessage::Message { text }) => {
            let (start, chosen) = *left;
            leave_message(shared, start, chosen, text, outbox).await
        }
        (Stage::LeaveMessage(_), CustomerMessage::Close) => {
            let _ = outbox
                .send(ChatFrame::Closed {
                    reason: "customer_closed".into(),
                })
                .await;
            (Stage::Done, None)
        }
        (Stage::Open(contact), message) => {
            let reply = in_chat(shared, contact, message).await;
            (Stage::Open(contact), reply)
        }
        (stage, _) => {
            let expected = match stage {
                Stage::New => "start",
                Stage::Menu(_) => "choose (or a message)",
                Stage::LeaveMessage(_) => "the message to leave (or close)",
                _ => "nothing: the chat is over",
            };
            (
                stage,
                Some(ChatFrame::error(
                    "unexpected",
                    format!("expected {expected} now"),
                )),
            )
        }
    };
    *stage = next;
    reply
}

fn menu_frame(menu: &MenuConfig) -> ChatFrame {
    ChatFrame::Menu {
        prompt: menu.prompt.clone(),
        options: menu
            .options
            .iter()
            .map(|o| MenuChoice {
                id: o.id.clone(),
                label: o.label.clone(),
            })
            .collect(),
    }
}

/// Makes the chat a durable contact, registers it, says `welcome` and routes it; outside the
/// queue's business hours, offers to leave a message instead.
async fn open(
    shared: &Arc<Shared>,
    start: Start,
    chosen: Chosen,
    connection: u64,
    outbox: &mpsc::Sender<ChatFrame>,
) -> (Stage, Option<ChatFrame>) {
    if shared.contacts.len() >= shared.max_open_contacts {
        return (Stage::New, Some(over_capacity()));
    }
    // Classified first: the business hours that count are those of the queue it goes to.
    let record = draft(shared, "chat", &start, &chosen);
    let setup = shared.setup();
    let hours = setup
        .config
        .queues
        .get(&record.queue)
        .and_then(|q| q.business_hours.as_ref());
    if hours.is_some_and(|h| !h.is_open(unix_ms())) {
        let frame = ChatFrame::AfterHours {
            queue: record.queue.clone(),
            message: "We are closed right now. Leave a message and we will answer as soon as \
                      we open."
                .into(),
        };
        let _ = outbox.send(frame).await;
        return (Stage::LeaveMessage(Box::new((start, chosen))), None);
    }
    let record = match create(shared, record, &start).await {
        Ok(record) => record,
        Err(refusal) => return (Stage::New, Some(refusal)),
    };
    let id = record.id;
    let token = resume_token();
    shared
        .chat
        .open(id, &token, &record.queue, connection, outbox.clone());
    let _ = outbox
        .send(ChatFrame::Welcome {
            contact_id: id.to_string(),
            resume_token: token,
        })
        .await;
    let _ = crate::channels::route(shared, record).await;
    (Stage::Open(id), None)
}

/// Outside business hours: the message becomes an email-like contact (answered by email when
/// the customer gave an address), not a lost chat.
async fn leave_message(
    shared: &Arc<Shared>,
    mut start: Start,
    chosen: Chosen,
    text: String,
    outbox: &mpsc::Sender<ChatFrame>,
) -> (Stage, Option<ChatFrame>) {
    start.text = Some(match start.text.take() {
        Some(first) => format!("{first}\n{text}"),
        None => text,
    });
    if shared.contacts.len() >= shared.max_open_contacts {
        return (
            Stage::LeaveMessage(Box::new((start, chosen))),
            Some(over_capacity()),
        );
    }
    let record = draft(shared, "email", &start, &chosen);
    let record = match create(shared, record, &start).await {
        Ok(record) => record,
        Err(refusal) => {
            return (
                Stage::LeaveMessage(Box::new((start, chosen))),
                Some(refusal),
            );
        }
    };
    let id = record.id;
    let _ = crate::channels::route(shared, record).await;
    let _ = outbox
        .send(ChatFrame::MessageLeft {
            contact_id: id.to_string(),
        })
        .await;
    let _ = outbox
        .send(ChatFrame::Closed {
            reason: "message_left".into(),
        })
        .await;
    (Stage::Done, None)
}

fn over_capacity() -> ChatFrame {
    ChatFrame::error("unavailable", "too many open contacts; try again later")
}

/// The contact record for what `start` and the menu said, classified: the menu's choices are
/// the intake's explicit routing, the rules decide the rest.
fn draft(shared: &Shared, channel: &str, start: &Start, chosen: &Chosen) -> ContactRecord {
    let setup = shared.setup();
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let mut attributes = match &start.attributes {
        serde_json::Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    for (key, value) in &chosen.attributes {
        attributes.insert(key.clone(), json!(value));
    }
    if !chosen.path.is_empty() {
        attributes.insert("menu".into(), json!(chosen.path));
    }
    let attributes = serde_json::Value::Object(attributes);
    let subject = if channel == "email" {
        json!("Message left in the chat")
    } else {
        json!(null)
    };
    let body = start.text.clone().unwrap_or_default();
    let decision = crate::channels::classify(
        &setup,
        Intake {
            channel,
            subject: subject.as_str().unwrap_or(""),
            body: &body,
            customer: Some(&start.customer),
            attributes: Some(&attributes),
            queue: chosen.queue.as_deref(),
            fallback_queue: &setup.config.routing.default_queue,
            priority: chosen.priority,
            skills: chosen.skills.clone(),
            ..Intake::default()
        },
        id,
    );
    let mut record = ContactRecord {
        id,
        channel: channel.into(),
        queue: String::new(),
        skills: BTreeMap::new(),
        priority: 0,
        arrived_at: unix_ms(),
        preferred_agent: None,
        payload: json!({
            "customer": start.customer,
            "subject": subject,
            "body": body,
            "attributes": attributes,
        }),
        sla: None,
        classification: None,
    };
    crate::channels::apply_decision(shared, decision, &mut record);
    record
}

/// Journals a drafted contact; `Err` is the frame to refuse with.
async fn create(
    shared: &Shared,
    record: ContactRecord,
    start: &Start,
) -> Result<ContactRecord, ChatFrame> {
    let (id, now, queue, channel) = (
        record.id,
        record.arrived_at,
        record.queue.clone(),
        record.channel.clone(),
    );
    let mut records = vec![Record::Accepted {
        contact: record.clone(),
        idempotency_key: None,
        response: json!({"id": id.to_string(), "status": "queued", "queue": queue}),
    }];
    if let Some(text) = &start.text {
        records.push(Record::Message(said(id, "inbound", "customer", text, now)));
    }
    if let Err(e) = shared.journal.append(records).await {
        return Err(ChatFrame::error(
            "unavailable",
            format!("cannot store the chat now: {e}"),
        ));
    }
    metrics::counter!(m::CONTACTS_RECEIVED, "channel" => channel.to_owned(), "queue" => queue)
        .increment(1);
    Ok(record)
}

/// A frame of an open chat.
async fn in_chat(
    shared: &Arc<Shared>,
    contact: u64,
    message: CustomerMessage,
) -> Option<ChatFrame> {
    let room = &shared.chat;
    if !room.contains(contact) {
        return Some(ChatFrame::error("closed", "the chat is over"));
    }
    match message {
        CustomerMessage::Message { text } if !room.is_closed(contact) => {
            if text.trim().is_empty() {
                return Some(ChatFrame::error("invalid_message", "empty message"));
            }
            let now = unix_ms();
            let record = said(contact, "inbound", "customer", &text, now);
            if let Err(e) = shared.journal.append(vec![Record::Message(record)]).await {
                return Some(ChatFrame::error(
                    "unavailable",
                    format!("cannot store the message now: {e}"),
                ));
            }
            crate::channels::append_to_body(shared, contact, &text);
            let frame = ServerMessage::Message {
                contact_id: contact.to_string(),
                channel: "chat".into(),
                from: None,
                subject: None,
                text,
                at: now,
            };
            deliver(shared, contact, frame).await;
            None
        }
        CustomerMessage::Typing if !room.is_closed(contact) => {
            let frame = ServerMessage::Typing {
                contact_id: contact.to_string(),
            };
            deliver(shared, contact, frame).await;
            None
        }
        CustomerMessage::Close if !room.is_closed(contact) => {
            room.end(contact, "customer_closed");
            leave(shared, contact, WithdrawReason::Abandoned).await;
            None
        }
        CustomerMessage::Rate { score, comment } if room.is_closed(contact) => {
            if !(1..=5).contains(&score) {
                return Some(ChatFrame::error("invalid_score", "score is 1 to 5"));
            }
            if !room.take_rating(contact) {
                return Some(ChatFrame::error(
                    "already_rated",
                    "this chat has its rating",
                ));
            }
            let now = unix_ms();
            let record = MessageRecord {
                contact,
                direction: "rating".into(),
                message_id: None,
                raw: Vec::new(),
                parsed: json!({"score": score, "comment": comment}),
                at: now,
            };
            if let Err(e) = shared.journal.append(vec![Record::Message(record)]).await {
                return Some(ChatFrame::error(
                    "unavailable",
                    format!("cannot store the rating now: {e}"),
                ));
            }
            let queue = room.queue(contact).unwrap_or_default();
            room.count_rating(&queue, score);
            metrics::counter!(m::CSAT_RATINGS, "queue" => queue, "score" => score.to_string())
                .increment(1);
            room.tell(contact, ChatFrame::Rated);
            None
        }
        CustomerMessage::Rate { .. } => Some(ChatFrame::error(
            "not_closed",
            "a chat is rated after it ends",
        )),
        CustomerMessage::Start { .. } | CustomerMessage::Choose { .. } => Some(ChatFrame::error(
            "unexpected",
            "the chat has started already",
        )),
        _ => Some(ChatFrame::error("closed", "the chat is over")),
    }
}

/// Sends a frame to the agent holding the contact, if any.
async fn deliver(shared: &Shared, contact: u64, message: ServerMessage) {
    let _ = shared
        .router
        .send(Command::Deliver {
            contact: ContactId(contact),
            message,
        })
        .await;
}

/// The customer is gone: an answered chat completes (the agent is told), an unanswered one is
/// withdrawn with `reason`.
async fn leave(shared: &Shared, contact: u64, reason: WithdrawReason) {
    let id = ContactId(contact);
    let Some(view) = shared.contact_view(id).await else {
        return;
    };
    let event = if view.status == ContactStatus::Assigned {
        deliver(
            shared,
            contact,
            ServerMessage::ContactEnded {
                contact_id: contact.to_string(),
                reason: "customer_left".into(),
            },
        )
        .await;
        Event::ContactCompleted { contact: id }
    } else {
        Event::ContactWithdrawn {
            contact: id,
            reason,
        }
    };
    let _ = shared
        .router
        .send(Command::Event { event, reply: None })
        .await;
}

/// A line of the transcript.
pub fn said(contact: u64, direction: &str, from: &str, text: &str, at: u64) -> MessageRecord {
    MessageRecord {
        contact,
        direction: direction.into(),
        message_id: None,
        raw: Vec::new(),
        parsed: json!({"from": from, "text": text}),
        at,
    }
}

fn resume_token() -> String {
    let mut bytes = [0u8; 16];
    // The token is the customer's only key to the chat: it must not be guessable.
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    hex::encode(bytes)
}
