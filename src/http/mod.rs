//! The one HTTP listener: webhook intake, admin API, the agent websocket, health and metrics,
//! and the web pages (agent desktop, chat widget, wallboard; see `pages`).
//!
//! Errors are always JSON, `{"error":{"code":"...","message":"..."}}`, with the status a client
//! can act on: 400 malformed, 401 credentials or signature, 404, 409, 413, 415, 422 unknown
//! queue/skill/channel, 503 with `Retry-After` when the journal cannot commit.

mod email;
mod intake;
mod pages;

use std::sync::Arc;

use axum::Router as HttpRouter;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::daemon::{AgentEntry, Command, Shared, activity_name, hash_token};
use crate::journal::{AgentRecord, ContactRecord, Record};
use crate::metrics as m;
use crate::model::{
    AgentId, AgentProfile, AgentSkills, Capacity, Channel, ContactId, NewContact, Priority,
    SkillReq,
};
use crate::router::{ContactStatus, Event, Presence, RoutingPlan, WithdrawReason};

pub use intake::verify_signature;

/// A JSON error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 503: the journal cannot commit now; try again in a second.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, secs.into());
        }
        response
    }
}

type ApiResult = Result<Response, ApiError>;

/// A body axum could not read (too large, cut off), as a JSON error.
pub(crate) fn body_error(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    let status = rejection.status();
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "too_large"
    } else {
        "invalid_body"
    };
    ApiError::new(status, code, rejection.body_text())
}

/// The HTTP application.
pub fn app(shared: Arc<Shared>) -> HttpRouter {
    HttpRouter::new()
        .route("/v1/contacts", post(intake::post_contact))
        .route("/v1/contacts/{id}", get(get_contact).delete(delete_contact))
        .route("/v1/contacts/{id}/messages", get(email::get_messages))
        .route(
            "/v1/email/inbound",
            post(email::post_inbound).layer(axum::extract::DefaultBodyLimit::max(
                shared.email.config.max_message_size.saturating_add(1),
            )),
        )
        .route("/v1/email/outbox", get(email::get_outbox))
        .route("/v1/contacts/{id}/transcript", get(email::get_transcript))
        .route("/v1/chat/ws", get(crate::channels::chat::session::upgrade))
        .route("/v1/agents", post(post_agent).get(list_agents))
        .route("/v1/queues", get(list_queues))
        .route("/v1/admin/reload", post(post_reload))
        .route("/v1/agent/ws", get(crate::gateway::session::upgrade))
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page))
        .merge(pages::routes())
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(axum::middleware::from_fn(count_requests))
        .with_state(shared)
}

/// Counts every request by route and status.
async fn count_requests(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    metrics::counter!(m::HTTP_REQUESTS, "route" => route, "status" => response.status().as_u16().to_string())
        .increment(1);
    response
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let started = shared.ready.load(std::sync::atomic::Ordering::SeqCst);
    let problem = if !started {
        Some("starting: the journal is being replayed")
    } else if shared.router.is_closed() {
        Some("the router is not running")
    } else if !shared.journal.is_healthy() {
        Some("the journal cannot store (its last commit failed; see the log)")
    } else {
        None
    };
    match problem {
        None => axum::Json(json!({"status": "ready"})).into_response(),
        Some(problem) => ApiError::unavailable(format!("not ready: {problem}")).into_response(),
    }
}

async fn metrics_page(State(shared): State<Arc<Shared>>) -> Response {
    let body = shared
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Checks the admin bearer token (when one is configured).
pub fn require_admin(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &shared.admin_token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong admin token",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "admin call without Authorization: Bearer <admin token>",
        )),
    }
}

/// Compares secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn ask<T>(
    shared: &Shared,
    make: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T, ApiError> {
    let (tx, rx) = oneshot::channel();
    shared
        .router
        .send(make(tx))
        .await
        .map_err(|_| ApiError::unavailable("router not running"))?;
    rx.await
        .map_err(|_| ApiError::unavailable("router not running"))
}

fn parse_contact_id(id: &str) -> Result<ContactId, ApiError> {
    id.parse::<u64>().map(ContactId).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no contact {id:?}"),
        )
    })
}

async fn get_contact(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    require_admin(&shared, &headers)?;
    let id = parse_contact_id(&id)?;
    if let Some(view) = ask(&shared, |reply| Command::Contact { id, reply }).await? {
        let record = shared.contacts.get(&id.0).map(|r| r.clone());
        let status = match view.status {
            ContactStatus::Waiting => "queued",
            ContactStatus::Offered => "offered",
            ContactStatus::Assigned => "assigned",
        };
        let body = json!({
            "id": id.to_string(),
            "status": status,
            "queue": shared.setup().plan.queue(view.queue).name,
            "channel": view.channel.as_str(),
            "priority": view.priority.0,
            "agent": view.agent.map(|a| a.to_string()),
            "arrived_at": view.arrived_at,
            "position": view.position,
            "estimated_wait_ms": view.estimated_wait,
            "sla": {
                "policy": record.as_ref().and_then(|r| r.sla.clone()),
                "first_response_due": view.first_response_due,
                "responded": view.responded,
                "resolution_due": view.resolution_due,
            },
            "classification": record.as_ref().and_then(|r| r.classification.clone()),
            "payload": record.map(|r| r.payload.clone()),
        });
        return Ok(axum::Json(body).into_response());
    }
    let journal = shared.journal.clone();
    let stored = tokio::task::spawn_blocking(move || journal.lookup(id.0))
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    match stored {
        // The same shape as an open contact's, from the journal's last record of it.
        Some(stored) => Ok(axum::Json(json!({
            "id": id.to_string(),
            "status": stored.status,
            "queue": stored.contact.queue,
            "channel": stored.contact.channel,
            "priority": stored.contact.priority,
            "agent": stored.agent,
            "arrived_at": stored.arrived_at,
            "updated_at": stored.updated_at,
            "closed_at": stored.closed_at,
            "outcome": stored.outcome,
            "disposition": stored.disposition,
            "sla": {"policy": stored.contact.sla},
            "classification": stored.contact.classification,
            "payload": stored.contact.payload,
        }))
        .into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no contact {id}"),
        )),
    }
}

/// `DELETE /v1/contacts/{id}`: withdraws a contact. `?reason=abandoned` records that the
/// customer gave up (a voice platform reporting a hang-up), counted in abandonment and the
/// abandon-aware service level; the default, `cancelled`, is a supervisor's removal.
async fn delete_contact(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> ApiResult {
    require_admin(&shared, &headers)?;
    let id = parse_contact_id(&id)?;
    let (reason, status) = match query.get("reason").map(String::as_str) {
        None | Some("cancelled") => (WithdrawReason::Cancelled, "cancelled"),
        Some("abandoned") => (WithdrawReason::Abandoned, "abandoned"),
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_reason",
                format!("reason {other:?}: cancelled or abandoned"),
            ));
        }
    };
    let event = Event::ContactWithdrawn {
        contact: id,
        reason,
    };
    let result = ask(&shared, |reply| Command::Event {
        event,
        reply: Some(reply),
    })
    .await?;
    match result {
        Ok(()) => Ok(axum::Json(json!({"id": id.to_string(), "status": status})).into_response()),
        Err(_) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no open contact {id}"),
        )),
    }
}

/// Body of `POST /v1/agents`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentBody {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    skills: std::collections::BTreeMap<String, u8>,
    #[serde(default)]
    capacity: Option<std::collections::BTreeMap<String, u8>>,
    #[serde(default)]
    queues: Vec<String>,
}

/// Rebuilds a routing profile from the JSON stored for an agent; `None` if it no longer fits the
/// configuration (a skill or queue was removed).
pub fn profile_from_json(plan: &RoutingPlan, id: &str, profile: &Value) -> Option<AgentProfile> {
    let body: AgentBody = serde_json::from_value(profile.clone()).ok()?;
    build_profile(plan, id, &body).ok()
}

fn build_profile(plan: &RoutingPlan, id: &str, body: &AgentBody) -> Result<AgentProfile, ApiError> {
    let unprocessable =
        |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_reference", m);
    let mut skills = Vec::new();
    for (name, &level) in &body.skills {
        let skill = plan
            .skill_id(name)
            .ok_or_else(|| unprocessable(format!("unknown skill {name:?}")))?;
        if !crate::model::SKILL_LEVELS.contains(&level) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_level",
                format!("skills.{name}: level {level} out of range 1-10"),
            ));
        }
        skills.push((skill, level));
    }
    let capacity = match &body.capacity {
        None => Capacity::default(),
        Some(map) => {
            let mut slots = [0u8; 6];
            for (channel, &n) in map {
                let c: Channel = channel
                    .parse()
                    .map_err(|e: crate::model::UnknownChannel| unprocessable(e.to_string()))?;
                slots[c.index()] = n;
            }
            Capacity(slots)
        }
    };
    let mut queues = Vec::new();
    for q in &body.queues {
        queues.push(
            plan.queue_id(q)
                .ok_or_else(|| unprocessable(format!("unknown queue {q:?}")))?,
        );
    }
    Ok(AgentProfile {
        id: AgentId::new(id),
        skills: AgentSkills::new(skills),
        capacity,
        queues,
    })
}

async fn post_agent(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult {
    require_admin(&shared, &headers)?;
    let body = body.map_err(body_error)?;
    let raw: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?;
    let parsed: AgentBody = serde_json::from_value(raw.clone())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_agent", e.to_string()))?;
    if parsed.id.is_empty() || parsed.id.chars().any(char::is_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_agent",
            "id must be non-empty without spaces",
        ));
    }
    let profile = build_profile(&shared.setup().plan, &parsed.id, &parsed)?;
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::unavailable(format!("no randomness for a token: {e}")))?;
    let token = hex::encode(bytes);
    let token_hash = hash_token(&token);
    let record = AgentRecord {
        id: parsed.id.clone(),
        name: parsed.name.clone(),
        token_hash: token_hash.clone(),
        profile: raw,
        updated_at: crate::daemon::unix_ms(),
    };
    shared
        .journal
        .append(vec![Record::Agent(record)])
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    if let Some(old) = shared.agents.insert(
        parsed.id.clone(),
        AgentEntry {
            name: parsed.name,
            profile: profile.clone(),
            token_hash: token_hash.clone(),
        },
    ) {
        shared.tokens.remove(&old.token_hash);
    }
    shared.tokens.insert(token_hash, parsed.id.clone());
    // An agent already logged in gets its new profile at once.
    let event = Event::AgentProfileChanged { profile };
    let _ = shared
        .router
        .send(Command::Event { event, reply: None })
        .await;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"id": parsed.id, "token": token})),
    )
        .into_response())
}

async fn list_agents(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> ApiResult {
    require_admin(&shared, &headers)?;
    let snapshot = ask(&shared, |reply| Command::Snapshot { reply }).await?;
    let mut agents: Vec<Value> = shared
        .agents
        .iter()
        .map(|entry| {
            let view = snapshot.agents.iter().find(|v| v.id.as_str() == entry.key());
            json!({
                "id": entry.key(),
                "name": entry.name,
                "state": view.map(|v| activity_name(&v.activity)).unwrap_or("offline"),
                "reason": view.and_then(|v| match &v.presence {
                    Presence::Away { reason } => Some(reason.clone()),
                    _ => None,
                }),
                "assigned": view.map(|v| v.assigned.iter().map(|c| c.to_string()).collect::<Vec<_>>()).unwrap_or_default(),
                "offers": view.map(|v| v.offers.iter().map(|c| c.to_string()).collect::<Vec<_>>()).unwrap_or_default(),
            })
        })
        .collect();
    agents.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Ok(axum::Json(json!({"agents": agents})).into_response())
}

/// `POST /v1/admin/reload`: loads the configuration file again (with its rules and intents),
/// and swaps it in if it is valid. 200 with what changed; 422 with every problem, the running
/// configuration unchanged.
async fn post_reload(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> ApiResult {
    require_admin(&shared, &headers)?;
    // In a task of its own: a client that hangs up must not cancel a reload between the
    // router's switch and the setup's.
    let reloading = shared.clone();
    let result = tokio::spawn(async move { crate::daemon::reload(&reloading).await })
        .await
        .unwrap_or(Err(crate::daemon::ReloadError::Stopped));
    match result {
        Ok(done) => Ok(axum::Json(json!({"status": "reloaded", "reloaded": done})).into_response()),
        Err(crate::daemon::ReloadError::Stopped) => {
            Err(ApiError::unavailable("the daemon is shutting down"))
        }
        Err(e) => {
            let problems: Vec<String> = match &e {
                crate::daemon::ReloadError::Config(crate::config::ConfigError::Invalid {
                    problems,
                    ..
                }) => problems.iter().map(ToString::to_string).collect(),
                other => vec![other.to_string()],
            };
            let body = json!({"error": {
                "code": "invalid_config",
                "message": "the configuration was not reloaded; the running one stays",
                "problems": problems,
            }});
            Ok((StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response())
        }
    }
}

async fn list_queues(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> ApiResult {
    require_admin(&shared, &headers)?;
    let setup = shared.setup();
    let snapshot = ask(&shared, |reply| Command::Snapshot { reply }).await?;
    let queues: Vec<Value> = snapshot
        .queues
        .iter()
        .map(|(name, q)| {
            json!({
                "queue": name,
                "waiting": q.waiting,
                "offered": q.offered,
                "oldest_wait_seconds": q.oldest_arrival.map(|t| snapshot.now.saturating_sub(t) as f64 / 1000.0),
                "agents_available": q.agents_ready,
                "service_level": q.counters.service_level(),
                "service_level_abandon_aware": q.counters.service_level_abandon_aware(),
                "answered": q.counters.answered,
                "abandoned": q.counters.abandoned,
                "draining": !setup.takes_queue(name),
            })
        })
        .collect();
    Ok(axum::Json(json!({"queues": queues})).into_response())
}

/// Rebuilds the router's view of a journaled contact (replay after a restart).
pub fn new_contact_from_record(
    plan: &RoutingPlan,
    record: &ContactRecord,
) -> Result<NewContact, String> {
    let queue = plan
        .queue_id(&record.queue)
        .ok_or_else(|| format!("unknown queue {:?}", record.queue))?;
    let channel: Channel = record
        .channel
        .parse()
        .map_err(|e: crate::model::UnknownChannel| e.to_string())?;
    let mut skills = Vec::new();
    for (name, &level) in &record.skills {
        let skill = plan
            .skill_id(name)
            .ok_or_else(|| format!("unknown skill {name:?}"))?;
        skills.push(SkillReq {
            skill,
            min_level: level,
            optional: false,
        });
    }
    Ok(NewContact {
        id: ContactId(record.id),
        channel,
        queue,
        skills,
        priority: Priority(record.priority),
        arrived_at: record.arrived_at,
        preferred_agent: record.preferred_agent.as_deref().map(AgentId::new),
        announce_position: matches!(channel, Channel::Chat | Channel::Voice),
        // A policy that is gone (removed, then a restart) falls back to the queue's: the
        // contact stays routable.
        sla: record.sla.as_deref().and_then(|name| {
            let id = plan.sla_policy_id(name);
            if id.is_none() {
                tracing::warn!(
                    contact = record.id,
                    queue = %record.queue,
                    channel = %record.channel,
                    policy = name,
                    "the contact's SLA policy is not in the configuration; it gets its queue's"
                );
            }
            id
        }),
    })
}
