//! The simulator and the staffing maths, on the pure routing core.
//!
//! `switchboard simulate` runs the daemon's own [`Router`](crate::router::Router) on a synthetic
//! or recorded day in virtual time; `switchboard staffing` answers the planner's question with
//! Erlang C or Erlang A. The two are checked against each other in `tests/sim.rs`: the router,
//! the simulator and the maths agree where theory has an answer, and the simulator goes on where
//! it has none (skills, escalation, multitasking, shifts).
//!
//! - `scenario.rs`: the scenario file, its checks and its compiled form;
//! - `engine.rs`: the seeded discrete-event loop around the router;
//! - `replay.rs`: recorded contacts from CSV instead of synthetic traffic;
//! - `report.rs`: per-queue and per-interval rows, as a table, CSV or JSON;
//! - `erlang.rs`: Erlang B, C and A and the staffing search;
//! - `cli.rs`: the two subcommands' arguments and output.

pub mod cli;
pub mod engine;
pub mod erlang;
pub mod replay;
pub mod report;
pub mod scenario;

pub use engine::{Outcomes, Progress, ReplayContact, SimError};
pub use report::Report;
pub use scenario::{Scenario, ScenarioError};

/// Runs a scenario without progress output and reports on it.
pub fn simulate(scenario: &Scenario) -> Result<Report, SimError> {
    let outcomes = engine::run(scenario, None, &mut |_| {})?;
    Ok(Report::new(scenario, &outcomes))
}
