//! The daemon's own web pages: the agent desktop (`/agent`), the customer chat (`/chat`, and
//! `/chat/widget.js` to embed it in any site with one script tag) and the wallboard
//! (`/wallboard`), with the wallboard's feed (`GET /v1/wallboard`, and
//! `GET /v1/wallboard/events` as server-sent events).
//!
//! The pages are plain HTML, CSS and JavaScript under `web/`, built into the binary with
//! `include_str!`: no CDN, no build step, and the pages a daemon serves always speak its own
//! protocol version. They talk to the daemon only through its public interfaces (the agent and
//! chat websockets, the admin API), so they double as reference clients.
//!
//! The wallboard feed is an admin call. Browsers' `EventSource` cannot set headers, so it also
//! takes the admin token as `?token=` (as the agent websocket does for agent tokens).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router as HttpRouter;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, ask, constant_time_eq, require_admin};
use crate::daemon::{Command, Shared, activity_name};
use crate::router::Presence;

/// How often the wallboard feed looks at the router. Once a second is as live as a wall
/// display needs, and costs the router one snapshot per second per open wallboard.
const WALLBOARD_TICK: Duration = Duration::from_secs(1);

/// One embedded file: its URL path under `/assets/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// The scripts and styles the pages load, served from `/assets/{name}`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "switchboard.css",
        content_type: CSS,
        body: include_str!("../../web/switchboard.css"),
    },
    Asset {
        name: "agent.js",
        content_type: JS,
        body: include_str!("../../web/agent.js"),
    },
    Asset {
        name: "chat.js",
        content_type: JS,
        body: include_str!("../../web/chat.js"),
    },
    Asset {
        name: "wallboard.js",
        content_type: JS,
        body: include_str!("../../web/wallboard.js"),
    },
];

const AGENT_PAGE: &str = include_str!("../../web/agent.html");
const CHAT_PAGE: &str = include_str!("../../web/chat.html");
const WALLBOARD_PAGE: &str = include_str!("../../web/wallboard.html");
const WIDGET: &str = include_str!("../../web/widget.js");

/// Scripts and styles only from the daemon itself; websockets and the feed back to it.
/// `'self'` covers `ws:`/`wss:` to the same host in CSP level 3 browsers.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'";

/// The routes of the pages and the wallboard feed, merged into the HTTP application.
pub fn routes() -> HttpRouter<Arc<Shared>> {
    HttpRouter::new()
        .route("/agent", get(|| async { page(AGENT_PAGE, false) }))
        // The chat page may be framed by any site: that is how the widget embeds it.
        .route("/chat", get(|| async { page(CHAT_PAGE, true) }))
        .route("/chat/widget.js", get(widget))
        .route("/wallboard", get(|| async { page(WALLBOARD_PAGE, false) }))
        .route("/assets/{name}", get(asset))
        .route("/v1/wallboard", get(wallboard_now))
        .route("/v1/wallboard/events", get(wallboard_events))
}

/// An HTML page with the headers every page gets.
fn page(body: &'static str, frameable: bool) -> Response {
    let frame_ancestors = if frameable {
        "frame-ancestors *"
    } else {
        "frame-ancestors 'none'"
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Pages and assets change with the binary; revalidating is cheap on loopback.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response();
    let csp = format!("{CSP}; {frame_ancestors}");
    if let Ok(value) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            asset.body,
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no asset {name:?}"),
        )
        .into_response(),
    }
}

/// The embed script: other sites load it cross-origin, so it says so.
async fn widget() -> Response {
    (
        [
            (header::CONTENT_TYPE, JS),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        WIDGET,
    )
        .into_response()
}

/// The admin check for the wallboard: the bearer header, or `?token=` for `EventSource`.
fn require_wallboard_admin(
    shared: &Shared,
    headers: &HeaderMap,
    query: &std::collections::HashMap<String, String>,
) -> Result<(), ApiError> {
    match (&shared.admin_token, query.get("token")) {
        (Some(expected), Some(given)) if !headers.contains_key(header::AUTHORIZATION) => {
            if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
                Ok(())
            } else {
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "wrong admin token",
                ))
            }
        }
        _ => require_admin(shared, headers),
    }
}

/// `GET /v1/wallboard`: what the wallboard shows, once.
async fn wallboard_now(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> ApiResult {
    require_wallboard_admin(&shared, &headers, &query)?;
    Ok(axum::Json(wallboard(&shared).await?).into_response())
}

/// `GET /v1/wallboard/events`: the same as a server-sent `wallboard` event whenever it changes
/// (looked at once a second). The stream ends when the daemon shuts down, so a graceful
/// shutdown does not wait on open wallboards; browsers reconnect by themselves.
async fn wallboard_events(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> ApiResult {
    require_wallboard_admin(&shared, &headers, &query)?;
    let first = wallboard(&shared).await?;
    let stop = shared.shutting_down.clone();
    let state = (shared, stop, None::<Value>, Some(first));
    let events = futures_util::stream::unfold(state, |(shared, mut stop, last, next)| async move {
        let mut next = next;
        loop {
            if let Some(board) = next.take() {
                if last.as_ref().is_some_and(|l| same_board(l, &board)) {
                    continue;
                }
                let event = SseEvent::default()
                    .event("wallboard")
                    .data(board.to_string());
                return Some((
                    Ok::<_, Infallible>(event),
                    (shared, stop, Some(board), None),
                ));
            }
            if *stop.borrow() {
                return None;
            }
            tokio::select! {
                _ = tokio::time::sleep(WALLBOARD_TICK) => {}
                _ = stop.changed() => return None,
            }
            // The router stopping means the daemon is going down: end the stream.
            next = Some(wallboard(&shared).await.ok()?);
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Two boards show the same thing (their clocks aside).
fn same_board(a: &Value, b: &Value) -> bool {
    a["queues"] == b["queues"] && a["agents"] == b["agents"] && a["ratings"] == b["ratings"]
}

/// The wallboard's content, from the router snapshot that `GET /v1/queues` and
/// `GET /v1/agents` show, plus each queue's service-level objective and the chat ratings.
async fn wallboard(shared: &Shared) -> Result<Value, ApiError> {
    let setup = shared.setup();
    let snapshot = ask(shared, |reply| Command::Snapshot { reply }).await?;
    let ratings = shared.chat.ratings();
    let rating_of = |queue: &str| {
        ratings
            .iter()
            .find(|(q, _)| q == queue)
            .map(|(_, t)| *t)
            .unwrap_or_default()
    };
    let queues: Vec<Value> = snapshot
        .queues
        .iter()
        .map(|(name, q)| {
            let plan = setup.plan.queue_id(name).map(|id| setup.plan.queue(id));
            let tally = rating_of(name);
            json!({
                "queue": name,
                "waiting": q.waiting,
                "offered": q.offered,
                "oldest_wait_seconds": q.oldest_arrival.map(|t| snapshot.now.saturating_sub(t) as f64 / 1000.0),
                "agents_available": q.agents_ready,
                "service_level": q.counters.service_level(),
                "service_level_target": plan.map(|p| p.service_level_target),
                "service_level_threshold_seconds": plan.map(|p| p.service_level_threshold as f64 / 1000.0),
                "answered": q.counters.answered,
                "abandoned": q.counters.abandoned,
                "ratings": rating_json(tally.count, tally.score_sum),
            })
        })
        .collect();
    let mut agents: Vec<Value> = shared
        .agents
        .iter()
        .map(|entry| {
            let view = snapshot
                .agents
                .iter()
                .find(|v| v.id.as_str() == entry.key());
            json!({
                "id": entry.key(),
                "name": entry.name,
                "state": view.map(|v| activity_name(&v.activity)).unwrap_or("offline"),
                "reason": view.and_then(|v| match &v.presence {
                    Presence::Away { reason } => Some(reason.clone()),
                    _ => None,
                }),
                "contacts": view.map(|v| v.assigned.len()).unwrap_or(0),
            })
        })
        .collect();
    agents.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let (count, sum) = ratings
        .iter()
        .fold((0, 0), |(c, s), (_, t)| (c + t.count, s + t.score_sum));
    Ok(json!({
        "at": crate::daemon::unix_ms(),
        "queues": queues,
        "agents": agents,
        "ratings": rating_json(count, sum),
    }))
}

fn rating_json(count: u64, score_sum: u64) -> Value {
    let average = (count > 0).then(|| score_sum as f64 / count as f64);
    json!({"count": count, "average": average})
}
