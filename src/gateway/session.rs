//! One agent's websocket connection: authenticate, register with the router task, then relay
//! frames both ways until either side closes. A bad message gets an `error` frame; the socket
//! stays open.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

use super::{AgentMessage, ServerMessage, check_disposition};
use crate::channels::email;
use crate::daemon::{Command, Shared, hash_token};
use crate::http::ApiError;
use crate::model::{AgentId, AgentProfile, ContactId};
use crate::router::{Event, Presence, RouterError, TransferTarget};

/// Frames queued for one agent before the connection counts as stuck.
const OUTBOX: usize = 256;
/// The shortest keepalive interval honoured (a zero interval would make the ping timer panic).
const MIN_KEEPALIVE: Duration = Duration::from_millis(10);
/// Per-connection read buffer; agent frames are a few hundred bytes.
const READ_BUFFER: usize = 4 * 1024;
/// Largest frame an agent may send.
const MAX_FRAME: usize = 64 * 1024;

/// `GET /v1/agent/ws`: checks the agent token (`Authorization: Bearer` or `?token=`), then
/// upgrades.
pub async fn upgrade(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| query.get("token").cloned());
    let Some(token) = token else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "agent token missing (Authorization: Bearer or ?token=)",
        )
        .into_response();
    };
    let Some(agent) = shared.tokens.get(&hash_token(&token)).map(|a| a.clone()) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown agent token",
        )
        .into_response();
    };
    let Some(profile) = shared.agents.get(&agent).map(|e| e.profile.clone()) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "agent no longer exists",
        )
        .into_response();
    };
    // tungstenite's default 128 KiB read buffer is zero-filled and resident per connection:
    // 10,000 idle agents cost 1.3 GiB with it (docs/performance.md); agent frames are small.
    ws.max_message_size(MAX_FRAME)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| run(shared, AgentId::new(agent), profile, socket))
}

async fn run(shared: Arc<Shared>, agent: AgentId, profile: AgentProfile, socket: WebSocket) {
    let session = shared.next_session.fetch_add(1, Ordering::SeqCst);
    let (outbox, mut frames) = mpsc::channel::<ServerMessage>(OUTBOX);
    let (reply, hello) = oneshot::channel();
    let connect = Command::Connect {
        agent: agent.clone(),
        profile,
        session,
        outbox: outbox.clone(),
        reply,
    };
    if shared.router.send(connect).await.is_err() {
        return;
    }
    let Ok(hello) = hello.await else { return };
    let (mut sink, mut stream) = socket.split();
    if send(&mut sink, &hello).await.is_err() {
        disconnect(&shared, agent, session).await;
        return;
    }
    let mut stop = shared.shutting_down.clone();
    let shutting_down = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(shutting_down);
    // A connection that has not been heard from (a frame, or the pong to our ping) for three
    // pings is gone without a close: a laptop lid, a dead NAT. Treat it as dropped.
    let keepalive = shared.agent_keepalive.max(MIN_KEEPALIVE);
    let silence = keepalive.saturating_mul(3);
    let mut ping = tokio::time::interval(keepalive);
    ping.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    loop {
        // Biased, in this order: after a stall, a frame (or pong) already waiting is read
        // before the ping tick can judge the connection silent.
        tokio::select! {
            biased;
            _ = &mut shutting_down => {
                let _ = send(&mut sink, &ServerMessage::Shutdown).await;
                break;
            }
            incoming = stream.next() => match incoming {
                Some(Ok(message)) if !matches!(message, Message::Close(_)) => {
                    let refused = answer(&shared, &agent, message).await;
                    // Heard now, stamped after answering, which may have waited on the router
                    // or the journal.
                    last_heard = tokio::time::Instant::now();
                    if let Some(error) = refused
                        && send(&mut sink, &error).await.is_err()
                    {
                        break;
                    }
                }
                _ => break,
            },
            frame = frames.recv() => match frame {
                Some(msg) => {
                    // Frames queued meanwhile go out with this one in a single write.
                    let mut last = msg == ServerMessage::Shutdown;
                    let mut ok = feed(&mut sink, &msg).await.is_ok();
                    while ok && !last && let Ok(next) = frames.try_recv() {
                        last = next == ServerMessage::Shutdown;
                        ok = feed(&mut sink, &next).await.is_ok();
                    }
                    if !ok || sink.flush().await.is_err() || last {
                        break;
                    }
                }
                None => break,
            },
            _ = ping.tick() => {
                if last_heard.elapsed() >= silence {
                    tracing::info!(agent = %agent, "agent connection silent through three pings; taken as dropped");
                    break;
                }
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    disconnect(&shared, agent, session).await;
}

/// What an agent's frame asks for, and the error frame to send back if it was refused.
async fn answer(shared: &Shared, agent: &AgentId, message: Message) -> Option<ServerMessage> {
    match message {
        Message::Text(text) => handle(shared, agent, text.as_str()).await,
        Message::Binary(_) => Some(ServerMessage::error("unsupported", "send JSON text frames")),
        _ => None, // ping/pong: the library answers pings; either shows the agent is there
    }
}

async fn disconnect(shared: &Shared, agent: AgentId, session: u64) {
    let _ = shared
        .router
        .send(Command::Disconnect { agent, session })
        .await;
}

async fn send(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    msg: &ServerMessage,
) -> Result<(), axum::Error> {
    feed(sink, msg).await?;
    sink.flush().await
}

/// Queues a frame without flushing it.
async fn feed(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    msg: &ServerMessage,
) -> Result<(), axum::Error> {
    let text = serde_json::to_string(msg).expect("server messages serialize");
    sink.feed(Message::Text(text.into())).await
}

/// Applies one agent frame; returns an error frame to send back, if any.
async fn handle(shared: &Shared, agent: &AgentId, text: &str) -> Option<ServerMessage> {
    let msg: AgentMessage = match serde_json::from_str(text) {
        Ok(msg) => msg,
        Err(e) => return Some(ServerMessage::error("invalid_message", e.to_string())),
    };
    let contact = |id: &str| id.parse::<u64>().ok().map(ContactId);
    let unknown = |id: &str| {
        Some(ServerMessage::error(
            "unknown_contact",
            format!("no contact {id:?}"),
        ))
    };
    let event = match msg {
        AgentMessage::SetState { state, reason } => {
            let presence = match state.as_str() {
                "available" => Presence::Available,
                "away" => Presence::Away {
                    reason: reason.unwrap_or_else(|| "away".into()),
                },
                "offline" => Presence::Offline,
                other => {
                    return Some(ServerMessage::error(
                        "invalid_state",
                        format!("unknown state {other:?}: available, away or offline"),
                    ));
                }
            };
            Event::AgentPresence {
                agent: agent.clone(),
                presence,
            }
        }
        AgentMessage::Accept { offer_id } => match contact(&offer_id) {
            Some(contact) => Event::OfferAccepted {
                contact,
                agent: agent.clone(),
            },
            None => return unknown(&offer_id),
        },
        AgentMessage::Reject { offer_id } => match contact(&offer_id) {
            Some(contact) => Event::OfferRejected {
                contact,
                agent: agent.clone(),
            },
            None => return unknown(&offer_id),
        },
        AgentMessage::Complete {
            contact_id,
            disposition,
        } => {
            let Some(contact) = contact(&contact_id) else {
                return unknown(&contact_id);
            };
            if let Some(Err(e)) = disposition.as_deref().map(check_disposition) {
                return Some(ServerMessage::error("invalid_disposition", e.to_string()));
            }
            // The disposition travels beside the event, not in it: the router decides whether
            // the contact may complete, the router task keeps the code for the journal.
            return relay(shared, |reply| Command::Complete {
                agent: agent.clone(),
                contact,
                disposition,
                reply,
            })
            .await;
        }
        AgentMessage::Responded { contact_id } => match contact(&contact_id) {
            Some(contact) => Event::ContactResponded { contact },
            None => return unknown(&contact_id),
        },
        AgentMessage::Ready { contact_id } => {
            let contact = match contact_id {
                None => None,
                Some(id) => match contact(&id) {
                    Some(c) => Some(c),
                    None => return unknown(&id),
                },
            };
            Event::WrapUpDone {
                agent: agent.clone(),
                contact,
            }
        }
        AgentMessage::Reply { contact_id, text } => {
            return Some(match contact(&contact_id) {
                Some(id) => reply(shared, agent, id, &text).await,
                None => {
                    ServerMessage::error("unknown_contact", format!("no contact {contact_id:?}"))
                }
            });
        }
        AgentMessage::Typing { contact_id } => {
            let Some(id) = contact(&contact_id) else {
                return unknown(&contact_id);
            };
            if !holds(shared, agent, id).await {
                return Some(router_error(&RouterError::NotAssigned(id)));
            }
            shared
                .chat
                .tell(id.0, crate::channels::chat::ChatFrame::Typing);
            return None;
        }
        AgentMessage::Transfer {
            contact_id,
            queue,
            agent: target,
        } => {
            let id = match contact(&contact_id) {
                Some(c) => c,
                None => return unknown(&contact_id),
            };
            let to = match (queue, target) {
                (Some(q), None) => match shared
                    .setup()
                    .plan
                    .queue_id(&q)
                    .filter(|_| shared.setup().takes_queue(&q))
                {
                    Some(q) => TransferTarget::Queue(q),
                    None => {
                        return Some(ServerMessage::error(
                            "unknown_queue",
                            format!("unknown queue {q:?}"),
                        ));
                    }
                },
                (None, Some(a)) if shared.agents.contains_key(&a) => {
                    TransferTarget::Agent(AgentId::new(a))
                }
                (None, Some(a)) => {
                    return Some(ServerMessage::error(
                        "unknown_agent",
                        format!("unknown agent {a:?}"),
                    ));
                }
                _ => {
                    return Some(ServerMessage::error(
                        "invalid_message",
                        "transfer takes exactly one of queue or agent",
                    ));
                }
            };
            Event::ContactTransferred { contact: id, to }
        }
    };
    relay(shared, |reply| Command::AgentEvent {
        agent: agent.clone(),
        event,
        reply,
    })
    .await
}

/// Sends an agent's command to the router task and turns its answer into the error frame to
/// send back, if any.
async fn relay(
    shared: &Shared,
    command: impl FnOnce(oneshot::Sender<Result<(), RouterError>>) -> Command,
) -> Option<ServerMessage> {
    let (reply, answer) = oneshot::channel();
    if shared.router.send(command(reply)).await.is_err() {
        return Some(ServerMessage::error("unavailable", "router not running"));
    }
    match answer.await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(router_error(&e)),
        Err(_) => Some(ServerMessage::error("unavailable", "router not running")),
    }
}

/// An agent's reply to the customer of a contact it holds: made durable, then the contact counts
/// as responded to.
async fn reply(shared: &Shared, agent: &AgentId, id: ContactId, text: &str) -> ServerMessage {
    if !holds(shared, agent, id).await {
        return router_error(&RouterError::NotAssigned(id));
    }
    if text.trim().is_empty() {
        return ServerMessage::error("invalid_message", "reply text is empty");
    }
    let Some(record) = shared.contacts.get(&id.0).map(|r| r.clone()) else {
        return router_error(&RouterError::UnknownContact(id));
    };
    let now = crate::daemon::unix_ms();
    if record.channel == "chat" {
        return chat_reply(shared, agent, id, text, now).await;
    }
    if record.channel != "email" {
        return ServerMessage::error(
            "unsupported_channel",
            format!("replies to {} contacts are not supported", record.channel),
        );
    }
    let prepared = match email::outbound::reply(&shared.email, &record, text, now) {
        Ok(prepared) => prepared,
        Err(e) => return ServerMessage::error("cannot_reply", e.to_string()),
    };
    if let Err(e) = shared.journal.append(prepared.records().to_vec()).await {
        return ServerMessage::error("unavailable", format!("journal cannot commit: {e}"));
    }
    shared.email.remember(&prepared.mail.message_id, id.0);
    email::outbound::queued(&prepared.mail);
    shared.email.outbox_ready.notify_one();
    mark_responded(shared, agent, id).await;
    ServerMessage::ReplyQueued {
        contact_id: id.to_string(),
        message_id: prepared.mail.message_id,
    }
}

/// The agent's reply counts as the first response for the SLA.
async fn mark_responded(shared: &Shared, agent: &AgentId, id: ContactId) {
    let (tx, rx) = oneshot::channel();
    let responded = Command::AgentEvent {
        agent: agent.clone(),
        event: Event::ContactResponded { contact: id },
        reply: tx,
    };
    if shared.router.send(responded).await.is_ok() {
        let _ = rx.await;
    }
}

/// True when the contact is assigned to this agent now.
async fn holds(shared: &Shared, agent: &AgentId, id: ContactId) -> bool {
    shared.contact_view(id).await.is_some_and(|view| {
        view.status == crate::router::ContactStatus::Assigned && view.agent.as_ref() == Some(agent)
    })
}

/// An agent's chat message: journaled, shown to the customer, and the first response.
async fn chat_reply(
    shared: &Shared,
    agent: &AgentId,
    id: ContactId,
    text: &str,
    now: u64,
) -> ServerMessage {
    let name = shared
        .agents
        .get(agent.as_str())
        .and_then(|a| a.name.clone())
        .unwrap_or_else(|| agent.to_string());
    let record = crate::channels::chat::session::said(id.0, "outbound", &name, text, now);
    if let Err(e) = shared
        .journal
        .append(vec![crate::journal::Record::Message(record)])
        .await
    {
        return ServerMessage::error("unavailable", format!("journal cannot commit: {e}"));
    }
    shared.chat.tell(
        id.0,
        crate::channels::chat::ChatFrame::Message {
            from: name,
            text: text.to_owned(),
            at: now,
        },
    );
    mark_responded(shared, agent, id).await;
    ServerMessage::ReplyQueued {
        contact_id: id.to_string(),
        message_id: format!("{}.chat.{now}", id.0),
    }
}

fn router_error(e: &RouterError) -> ServerMessage {
    let code = match e {
        RouterError::NotOffered { .. } => "not_offered",
        RouterError::NotAssigned(_) => "not_assigned",
        RouterError::UnknownContact(_) => "unknown_contact",
        RouterError::UnknownAgent(_) => "unknown_agent",
        RouterError::UnknownQueue(_) => "unknown_queue",
        _ => "refused",
    };
    ServerMessage::error(code, e.to_string())
}
