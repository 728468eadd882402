//! `switchboard status`: a one-screen summary of a running daemon, read from its admin API
//! (`GET /v1/queues`, `GET /v1/agents`) the way an operator's script would: queues with
//! waiting contacts, oldest wait and service level; agents by state.
//!
//! Fetching and rendering are apart so that the rendering (pure) is tested on fixed answers
//! and the fetching on a real daemon (tests/ops.rs).

use std::fmt::Write as _;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

/// Why the summary could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The URL is not `http://host[:port]`.
    #[error("{0:?} is not an http://host:port URL (TLS belongs to a proxy in front)")]
    BadUrl(String),
    /// Nothing answers there.
    #[error("cannot reach the daemon at {url}: {reason}")]
    Unreachable {
        /// The daemon's URL.
        url: String,
        /// The connection or protocol error.
        reason: String,
    },
    /// The daemon answered with an error status (401: wrong or missing admin token).
    #[error("GET {path} answered {status}: {body}{hint}")]
    Refused {
        /// The admin API path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The answer's body.
        body: String,
        /// What to do about it, when known.
        hint: &'static str,
    },
    /// The answer is not what this version of the command reads.
    #[error("GET {path}: unexpected answer: {reason}")]
    BadAnswer {
        /// The admin API path.
        path: String,
        /// The parse error.
        reason: String,
    },
}

/// One queue as `GET /v1/queues` shows it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct QueueStatus {
    /// Queue name.
    pub queue: String,
    /// Contacts waiting in line.
    pub waiting: u64,
    /// Contacts offered to an agent, not yet accepted.
    #[serde(default)]
    pub offered: u64,
    /// Age of the oldest waiting contact; `None` when none waits.
    pub oldest_wait_seconds: Option<f64>,
    /// Agents ready for this queue's contacts now.
    #[serde(default)]
    pub agents_available: u64,
    /// Share answered within the threshold since start; `None` before the first answer.
    pub service_level: Option<f64>,
    /// Contacts answered since start.
    #[serde(default)]
    pub answered: u64,
    /// Contacts abandoned since start.
    #[serde(default)]
    pub abandoned: u64,
    /// Removed by a reload, still holding contacts.
    #[serde(default)]
    pub draining: bool,
}

/// One agent as `GET /v1/agents` shows it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct AgentStatus {
    /// Agent id.
    pub id: String,
    /// offline, available, away, busy or wrap_up.
    pub state: String,
    /// The away reason, if away.
    #[serde(default)]
    pub reason: Option<String>,
    /// Contacts assigned now.
    #[serde(default)]
    pub assigned: Vec<String>,
}

/// What `switchboard status` shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    /// Queues in the daemon's order.
    pub queues: Vec<QueueStatus>,
    /// Agents by id.
    pub agents: Vec<AgentStatus>,
}

/// Agent states in the order they are shown (the order of the daemon's `switchboard_agents`).
const STATES: [&str; 5] = ["available", "busy", "wrap_up", "away", "offline"];

impl Status {
    /// The summary as printed: a queue table, a total line, then agents by state and the
    /// reasons of those away.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let width = self
            .queues
            .iter()
            .map(|q| q.queue.len() + if q.draining { 11 } else { 0 })
            .chain([5])
            .max()
            .unwrap_or(5);
        let _ = writeln!(
            out,
            "{:<width$}  {:>7}  {:>7}  {:>11}  {:>13}  {:>9}  {:>8}  {:>9}",
            "QUEUE",
            "WAITING",
            "OFFERED",
            "OLDEST WAIT",
            "SERVICE LEVEL",
            "AVAILABLE",
            "ANSWERED",
            "ABANDONED"
        );
        for q in &self.queues {
            let name = if q.draining {
                format!("{} (draining)", q.queue)
            } else {
                q.queue.clone()
            };
            let _ = writeln!(
                out,
                "{:<width$}  {:>7}  {:>7}  {:>11}  {:>13}  {:>9}  {:>8}  {:>9}",
                name,
                q.waiting,
                q.offered,
                q.oldest_wait_seconds
                    .filter(|_| q.waiting > 0)
                    .map_or("-".into(), wait),
                q.service_level
                    .map_or("-".into(), |sl| format!("{:.1}%", sl * 100.0)),
                q.agents_available,
                q.answered,
                q.abandoned
            );
        }
        let oldest = self
            .queues
            .iter()
            .filter(|q| q.waiting > 0)
            .filter_map(|q| q.oldest_wait_seconds)
            .fold(None, |max: Option<f64>, w| {
                Some(max.map_or(w, |m| m.max(w)))
            });
        let _ = writeln!(
            out,
            "{:<width$}  {:>7}  {:>7}  {:>11}",
            "total",
            self.queues.iter().map(|q| q.waiting).sum::<u64>(),
            self.queues.iter().map(|q| q.offered).sum::<u64>(),
            oldest.map_or("-".into(), wait),
        );
        let _ = writeln!(out);
        let count = |state: &str| self.agents.iter().filter(|a| a.state == state).count();
        let by_state: Vec<String> = STATES.iter().map(|s| format!("{s} {}", count(s))).collect();
        let _ = writeln!(out, "AGENTS {}: {}", self.agents.len(), by_state.join(", "));
        let mut reasons: std::collections::BTreeMap<&str, usize> = Default::default();
        for agent in self.agents.iter().filter(|a| a.state == "away") {
            *reasons
                .entry(agent.reason.as_deref().unwrap_or("no reason"))
                .or_default() += 1;
        }
        if !reasons.is_empty() {
            let listed: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
            let _ = writeln!(out, "  away: {}", listed.join(", "));
        }
        let handling: usize = self.agents.iter().map(|a| a.assigned.len()).sum();
        let _ = writeln!(out, "  contacts assigned: {handling}");
        out
    }
}

/// A wait as an operator reads it: `42s`, `3m 05s`, `2h 10m`.
fn wait(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Reads queues and agents from the daemon at `url` (`http://host:port`).
pub async fn fetch(url: &str, admin_token: Option<&str>) -> Result<Status, StatusError> {
    #[derive(Deserialize)]
    struct Queues {
        queues: Vec<QueueStatus>,
    }
    #[derive(Deserialize)]
    struct Agents {
        agents: Vec<AgentStatus>,
    }
    let queues: Queues = get(url, "/v1/queues", admin_token).await?;
    let agents: Agents = get(url, "/v1/agents", admin_token).await?;
    Ok(Status {
        queues: queues.queues,
        agents: agents.agents,
    })
}

/// One admin GET over a fresh HTTP/1.1 connection, its JSON answer decoded.
async fn get<T: serde::de::DeserializeOwned>(
    url: &str,
    path: &str,
    admin_token: Option<&str>,
) -> Result<T, StatusError> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| StatusError::BadUrl(url.to_string()))?;
    let (Some("http"), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return Err(StatusError::BadUrl(url.to_string()));
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let unreachable = |reason: String| StatusError::Unreachable {
        url: url.to_string(),
        reason,
    };
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let connection = tokio::spawn(connection);
    let authority = uri.authority().map_or(host, |a| a.as_str());
    let mut request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::USER_AGENT, "switchboard-status");
    if let Some(token) = admin_token {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| unreachable(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| unreachable(e.to_string()))?
        .to_bytes();
    connection.abort();
    if status != 200 {
        return Err(StatusError::Refused {
            path: path.to_string(),
            status,
            body: String::from_utf8_lossy(&body).trim().to_string(),
            hint: if status == 401 {
                " (give the admin token with --admin-token or SWITCHBOARD_ADMIN_TOKEN)"
            } else {
                ""
            },
        });
    }
    serde_json::from_slice(&body).map_err(|e| StatusError::BadAnswer {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(name: &str, waiting: u64, oldest: Option<f64>, sl: Option<f64>) -> QueueStatus {
        QueueStatus {
            queue: name.into(),
            waiting,
            offered: 0,
            oldest_wait_seconds: oldest,
            agents_available: 1,
            service_level: sl,
            answered: 10,
            abandoned: 1,
            draining: false,
        }
    }

    fn agent(id: &str, state: &str, reason: Option<&str>) -> AgentStatus {
        AgentStatus {
            id: id.into(),
            state: state.into(),
            reason: reason.map(String::from),
            assigned: if state == "busy" {
                vec!["7".into()]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn waits_read_as_an_operator_says_them() {
        assert_eq!(wait(0.4), "0s");
        assert_eq!(wait(42.0), "42s");
        assert_eq!(wait(185.0), "3m 05s");
        assert_eq!(wait(7800.0), "2h 10m");
    }

    #[test]
    fn the_summary_shows_queues_totals_and_agents_by_state() {
        let status = Status {
            queues: vec![
                queue("billing", 3, Some(185.0), Some(0.8333)),
                queue("vip", 0, None, None),
                QueueStatus {
                    draining: true,
                    ..queue("old", 1, Some(12.0), Some(1.0))
                },
            ],
            agents: vec![
                agent("alice", "busy", None),
                agent("bruno", "away", Some("lunch")),
                agent("chen", "away", Some("lunch")),
                agent("dana", "available", None),
            ],
        };
        let text = status.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("QUEUE"), "{text}");
        assert!(lines[1].starts_with("billing"), "{text}");
        assert!(
            lines[1].contains("3m 05s") && lines[1].contains("83.3%"),
            "{text}"
        );
        let vip: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(vip[..5], ["vip", "0", "0", "-", "-"], "{text}");
        assert!(lines[3].starts_with("old (draining)"), "{text}");
        let total: Vec<&str> = lines[4].split_whitespace().collect();
        assert_eq!(total, ["total", "4", "0", "3m", "05s"], "{text}");
        assert!(
            text.contains("AGENTS 4: available 1, busy 1, wrap_up 0, away 2, offline 0"),
            "{text}"
        );
        assert!(text.contains("away: lunch 2"), "{text}");
        assert!(text.contains("contacts assigned: 1"), "{text}");
    }
}
