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
//! Planned, per ARCHITECTURE.md: `journal` (durability), `channels` (email, chat, webhook),
//! `gateway` (agent websocket), `http`, `daemon`, `metrics`, `classify`, `sim`.
//!
//! Data flows from the channel adapters through classification and the journal into the router
//! task, which drives [`router::Router`] and executes its actions; see ARCHITECTURE.md.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod daemon;
pub mod gateway;
pub mod http;
pub mod journal;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod router;
