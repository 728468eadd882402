//! Switchboard: an omnichannel routing daemon (ACD) for contact centers.
//!
//! # Layout
//!
//! - [`model`]: plain data shared by every layer (ids, channels, priorities, skills, profiles).
//! - [`config`]: the typed TOML configuration, its validation, and its compilation into a
//!   [`router::RoutingPlan`].
//! - [`router`]: the pure routing core. No IO, no clock: events in, actions out.
//!   - `router/plan.rs`: the compiled routing plan (queues, SLA policies, escalation steps);
//!   - `router/line.rs`: a line of waiting contacts in service order, with its service rate;
//!   - `router/agent.rs`, `router/contact.rs`: the router's records of agents and contacts;
//!   - `router/stats.rs`: per-queue counters and service-level arithmetic.
//!
//! - [`channels`]: the channel adapters.
//!   - `channels/email/`: SMTP/LMTP listeners (a pure SMTP state machine in `smtp.rs`),
//!     `POST /v1/email/inbound`, parsing with mail-parser, threading, the outbox and lettre;
//!   - `channels/chat/`: the customer chat websocket, its menu, resume and survey.
//! - [`journal`]: durability; SQLite in WAL mode, one writer thread with group commit, replay.
//! - [`http`]: the one HTTP listener: webhook intake, admin API, health, metrics, and the web
//!   pages (`http/pages.rs`: agent desktop, chat widget, wallboard; their files are in `web/`).
//! - [`gateway`]: the agent websocket protocol and its sessions.
//! - [`notify`]: callback webhooks for contacts' lifecycle events.
//! - [`metrics`]: every metric name, unit and help text.
//! - [`daemon`]: wiring; the router task that owns routing state; startup and shutdown.
//! - [`status`]: `switchboard status`, a one-screen summary of a running daemon from its
//!   admin API.
//! - [`loadgen`]: the load generators (`switchboard loadgen`, `switchboard loadgen-chat`) that
//!   measure a running daemon.
//!
//! - [`classify`]: pure classification of new contacts.
//!   - `classify/signals.rs`: language and a lexicon sentiment and urgency score;
//!   - `classify/intent.rs`: intent detection trained from a labeled CSV;
//!   - `classify/rules.rs`: ordered CEL rules with routing actions (`classify/quick.rs`: the
//!     native fast path for common condition shapes).
//! - [`sim`]: the simulator (`switchboard simulate`: the real router on a synthetic or recorded
//!   day in virtual time) and the Erlang C/A staffing maths (`switchboard staffing`).
//!
//! Data flows from the channel adapters through classification and the journal into the router
//! task, which drives [`router::Router`] and executes its actions; see ARCHITECTURE.md.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod channels;
pub mod classify;
pub mod config;
pub mod daemon;
pub mod gateway;
pub mod http;
pub mod journal;
pub mod loadgen;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod router;
pub mod sim;
pub mod status;
