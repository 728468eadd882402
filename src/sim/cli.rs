//! The `simulate` and `staffing` subcommands: their arguments and what they print. `main.rs`
//! only dispatches here, so the commands can be tested without a process.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::engine::{Progress, SimError};
use super::erlang::{Load, Prediction, StaffingRequest};
use super::report::{Report, clock_label};
use super::scenario::{Scenario, ScenarioError};
use crate::config::Problem;

/// How a command prints its result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// CSV with a header line.
    Csv,
    /// JSON.
    Json,
}

/// Options of `switchboard simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The scenario (TOML): config, agents and traffic.
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// Replay recorded contacts (CSV: arrival,channel,queue,skills,handle_time[,patience])
    /// instead of the scenario's traffic.
    #[arg(long, value_name = "FILE.csv")]
    pub replay: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Options of `switchboard staffing`.
#[derive(Debug, clap::Args)]
pub struct StaffingArgs {
    /// Contacts offered per hour (not needed with --traffic).
    #[arg(long)]
    pub arrivals_per_hour: Option<f64>,
    /// Average handle time, e.g. 240s or 4m.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub aht: Duration,
    /// Service-level target, as a share (0.8 for 80 %).
    #[arg(long, default_value_t = 0.8)]
    pub target: f64,
    /// Service-level threshold, e.g. 20s.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub within: Duration,
    /// Highest acceptable occupancy (0.9 for 90 %).
    #[arg(long)]
    pub max_occupancy: Option<f64>,
    /// Mean customer patience: switches from Erlang C to Erlang A (abandonment).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub patience: Option<Duration>,
    /// A day's forecast (CSV: interval,contacts[,aht_seconds]): prints the staffing curve.
    #[arg(long, value_name = "FILE.csv")]
    pub traffic: Option<PathBuf>,
    /// Length of one interval of --traffic.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The scenario could not be loaded.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Rows of a CSV input were wrong.
    #[error("invalid {}:{}", path.display(), problems.iter().map(|p| format!("\n  {p}")).collect::<String>())]
    Rows {
        /// The file.
        path: PathBuf,
        /// Every bad row.
        problems: Vec<Problem>,
    },
    /// An argument is out of range.
    #[error("{0}")]
    Argument(String),
    /// The router refused what the simulator sent: a bug worth reporting.
    #[error(transparent)]
    Sim(#[from] SimError),
}

impl CommandError {
    /// Exit status: 2 for input the user can fix, 1 for a failure inside.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Sim(_) => 1,
            _ => 2,
        }
    }
}

/// Runs `switchboard simulate` and returns what to print. Progress goes to stderr on runs
/// longer than a second.
pub fn simulate(args: &SimulateArgs) -> Result<String, CommandError> {
    let mut scenario = Scenario::load(&args.scenario)?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let replay = match &args.replay {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| CommandError::Io {
                path: path.clone(),
                source,
            })?;
            Some(
                super::replay::read(&text, &scenario.plan, scenario.opens).map_err(|problems| {
                    CommandError::Rows {
                        path: path.clone(),
                        problems,
                    }
                })?,
            )
        }
    };
    let started = Instant::now();
    let mut last = started;
    let terminal = std::io::stderr().is_terminal();
    let mut shown = false;
    let opens = scenario.opens;
    let mut progress = |p: Progress| {
        let now = Instant::now();
        let every = if terminal { 0.2 } else { 5.0 };
        if now.duration_since(started).as_secs_f64() < 1.0
            || now.duration_since(last).as_secs_f64() < every
        {
            return;
        }
        last = now;
        shown = true;
        let done = (p.now as f64 / p.traffic_end.max(1) as f64).min(1.0);
        let bar: String = (0..30)
            .map(|i| if f64::from(i) < done * 30.0 { '#' } else { '.' })
            .collect();
        let text = format!(
            "simulating [{bar}] {} of {}, {} contacts",
            clock_label(opens + p.now),
            clock_label(opens + p.traffic_end),
            p.contacts
        );
        let mut err = std::io::stderr();
        let _ = if terminal {
            write!(err, "\r{text}")
        } else {
            writeln!(err, "{text}")
        };
    };
    let outcomes = super::engine::run(&scenario, replay.as_deref(), &mut progress)?;
    if shown && terminal {
        eprintln!();
    }
    let report = Report::new(&scenario, &outcomes);
    Ok(match args.format {
        Format::Table => report.table(),
        Format::Csv => report.csv(),
        Format::Json => {
            serde_json::to_string_pretty(&report).expect("the report serializes") + "\n"
        }
    })
}

/// The JSON answer for one load.
#[derive(Debug, Serialize)]
struct StaffingAnswer {
    model: &'static str,
    agents: u32,
    erlangs: f64,
    table: Vec<Prediction>,
}

/// One interval of a staffing curve.
#[derive(Debug, Serialize)]
struct CurvePoint {
    interval: String,
    contacts: f64,
    erlangs: f64,
    agents: u32,
    service_level: Option<f64>,
    asa_seconds: Option<f64>,
    occupancy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    abandon_rate: Option<f64>,
}

fn check_arguments(args: &StaffingArgs) -> Result<(), CommandError> {
    let bad = |m: &str| Err(CommandError::Argument(m.into()));
    if !(args.target > 0.0 && args.target < 1.0) {
        return bad("--target must be a share between 0 and 1 (0.8 for 80 %)");
    }
    if args.aht.is_zero() {
        return bad("--aht must be longer than zero");
    }
    if args.max_occupancy.is_some_and(|m| !(m > 0.0 && m <= 1.0)) {
        return bad("--max-occupancy must be a share between 0 and 1");
    }
    if args.patience.is_some_and(|p| p.is_zero()) {
        return bad("--patience must be longer than zero");
    }
    if args.interval.is_zero() {
        return bad("--interval must be longer than zero");
    }
    if args.traffic.is_none() && args.arrivals_per_hour.is_none() {
        return bad("give --arrivals-per-hour, or a forecast with --traffic");
    }
    if args
        .arrivals_per_hour
        .is_some_and(|r| !(r.is_finite() && r >= 0.0))
    {
        return bad("--arrivals-per-hour must be zero or more");
    }
    Ok(())
}

fn request(args: &StaffingArgs, per_hour: f64, aht: f64) -> StaffingRequest {
    StaffingRequest {
        load: Load::per_hour(per_hour, aht),
        target: args.target,
        within: args.within.as_secs_f64(),
        max_occupancy: args.max_occupancy,
        patience: args.patience.map(|p| p.as_secs_f64()),
    }
}

fn unreachable_target() -> CommandError {
    CommandError::Argument(format!(
        "no staffing up to {} agents meets the target",
        super::erlang::MAX_AGENTS
    ))
}

/// Runs `switchboard staffing` and returns what to print.
pub fn staffing(args: &StaffingArgs) -> Result<String, CommandError> {
    check_arguments(args)?;
    let aht = args.aht.as_secs_f64();
    if let Some(path) = &args.traffic {
        return staffing_curve(args, path, aht);
    }
    let per_hour = args.arrivals_per_hour.expect("checked");
    let staffing = request(args, per_hour, aht)
        .staff()
        .ok_or_else(unreachable_target)?;
    let answer = StaffingAnswer {
        model: if args.patience.is_some() {
            "erlang_a"
        } else {
            "erlang_c"
        },
        agents: staffing.agents,
        erlangs: staffing.erlangs,
        table: staffing.table,
    };
    Ok(match args.format {
        Format::Json => serde_json::to_string_pretty(&answer).expect("serializes") + "\n",
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for row in &answer.table {
                w.serialize(row).expect("to memory");
            }
            String::from_utf8(w.into_inner().expect("memory")).expect("UTF-8")
        }
        Format::Table => {
            let mut s = format!(
                "{:.2} erlangs ({}): {} agents for {:.0}% within {}s{}\n\n",
                answer.erlangs,
                if args.patience.is_some() {
                    "Erlang A"
                } else {
                    "Erlang C"
                },
                answer.agents,
                args.target * 100.0,
                args.within.as_secs_f64(),
                args.max_occupancy
                    .map(|m| format!(", occupancy at most {:.0}%", m * 100.0))
                    .unwrap_or_default()
            );
            s += &format!(
                "{:>7} {:>8} {:>8} {:>9} {:>9}{}\n",
                "agents",
                "SL",
                "ASA",
                "occupancy",
                "P(wait)",
                if args.patience.is_some() {
                    "  abandoned"
                } else {
                    ""
                }
            );
            for p in &answer.table {
                s += &format!(
                    "{:>7} {:>7.1}% {:>7.1}s {:>8.1}% {:>8.1}%{}{}\n",
                    p.agents,
                    p.service_level * 100.0,
                    p.asa_seconds,
                    p.occupancy * 100.0,
                    p.waiting_probability * 100.0,
                    p.abandon_rate
                        .map(|a| format!(" {:>9.1}%", a * 100.0))
                        .unwrap_or_default(),
                    if p.agents == answer.agents {
                        "  <-"
                    } else {
                        ""
                    }
                );
            }
            s
        }
    })
}

fn staffing_curve(args: &StaffingArgs, path: &PathBuf, aht: f64) -> Result<String, CommandError> {
    let text = std::fs::read_to_string(path).map_err(|source| CommandError::Io {
        path: path.clone(),
        source,
    })?;
    let hours = args.interval.as_secs_f64() / 3600.0;
    let mut points = Vec::new();
    let mut problems = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    for (i, record) in reader.records().enumerate() {
        let line = format!("line {}", i + 2);
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.push(Problem::new(line, e.to_string()));
                continue;
            }
        };
        let label = record.get(0).unwrap_or("").to_string();
        let contacts = record.get(1).and_then(|c| c.parse::<f64>().ok());
        let row_aht = match record.get(2).filter(|a| !a.is_empty()) {
            None => Some(aht),
            Some(a) => a.parse::<f64>().ok().filter(|a| *a > 0.0),
        };
        let (Some(contacts), Some(row_aht)) = (contacts.filter(|c| *c >= 0.0), row_aht) else {
            problems.push(Problem::new(
                line,
                "expected interval,contacts[,aht_seconds] with contacts >= 0 and aht > 0",
            ));
            continue;
        };
        let per_hour = contacts / hours;
        let point = if contacts == 0.0 {
            CurvePoint {
                interval: label,
                contacts,
                erlangs: 0.0,
                agents: 0,
                service_level: None,
                asa_seconds: None,
                occupancy: None,
                abandon_rate: None,
            }
        } else {
            let staffing = request(args, per_hour, row_aht)
                .staff()
                .ok_or_else(unreachable_target)?;
            let p = staffing
                .table
                .iter()
                .find(|p| p.agents == staffing.agents)
                .copied()
                .expect("the table holds the answer");
            CurvePoint {
                interval: label,
                contacts,
                erlangs: staffing.erlangs,
                agents: staffing.agents,
                service_level: Some(p.service_level),
                asa_seconds: Some(p.asa_seconds),
                occupancy: Some(p.occupancy),
                abandon_rate: p.abandon_rate,
            }
        };
        points.push(point);
    }
    if !problems.is_empty() {
        return Err(CommandError::Rows {
            path: path.clone(),
            problems,
        });
    }
    Ok(match args.format {
        Format::Json => {
            let peak = points.iter().map(|p| p.agents).max().unwrap_or(0);
            serde_json::to_string_pretty(&serde_json::json!({
                "model": if args.patience.is_some() { "erlang_a" } else { "erlang_c" },
                "peak_agents": peak,
                "intervals": points,
            }))
            .expect("serializes")
                + "\n"
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for p in &points {
                w.serialize(p).expect("to memory");
            }
            String::from_utf8(w.into_inner().expect("memory")).expect("UTF-8")
        }
        Format::Table => {
            let peak = points.iter().map(|p| p.agents).max().unwrap_or(1).max(1);
            let mut s = format!(
                "{:<9} {:>8} {:>8} {:>6} {:>7} {:>7}\n",
                "interval", "contacts", "erlangs", "agents", "SL", "ASA"
            );
            for p in &points {
                let bar = "#".repeat((p.agents as usize * 40).div_ceil(peak as usize));
                s += &format!(
                    "{:<9} {:>8.0} {:>8.1} {:>6} {:>7} {:>7}  {bar}\n",
                    p.interval,
                    p.contacts,
                    p.erlangs,
                    p.agents,
                    p.service_level
                        .map_or("-".into(), |v| format!("{:.1}%", v * 100.0)),
                    p.asa_seconds.map_or("-".into(), |v| format!("{v:.1}s")),
                );
            }
            s
        }
    })
}
