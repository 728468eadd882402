//! The `switchboard` command line.
//!
//! Subcommands:
//!
//! - `check-config`: load and validate a config file without starting anything, for CI and for
//!   operators before a reload. Exit status: 0 when valid, 1 when the file parsed but has
//!   problems (each printed on its own line as `FILE: PATH: MESSAGE`), 2 when the file could not
//!   be read or parsed (one error, with line and column for parse errors).
//!
//! - `serve`: the daemon. Environment variables override the defaults: `SWITCHBOARD_HTTP_ADDR`
//!   (127.0.0.1:8080), `SWITCHBOARD_DATA_DIR` (./data), `SWITCHBOARD_ADMIN_TOKEN`,
//!   `SWITCHBOARD_WEBHOOK_SECRET`. Without `--config` and without `config/switchboard.toml` in
//!   the working directory it runs on the configuration built into the binary.
//!   `SWITCHBOARD_LOG_FORMAT=json` logs one JSON object a line; `RUST_LOG` filters.
//!
//! - `simulate` and `staffing`: the simulator and the Erlang C/A staffing calculator; their
//!   arguments and output live in `switchboard::sim::cli`.
//!
//! - `status`: a one-screen summary of a running daemon from its admin API (see
//!   `switchboard::status`).
//!
//! - `loadgen`: drives a running daemon with agents on the websocket and contacts on the intake,
//!   and reports throughput and latency, optionally next to an in-process HTTP baseline (see
//!   `switchboard::loadgen` and docs/performance.md).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use switchboard::config::{Config, ConfigError};

/// Where the config file lives when `--config` is not given: the shipped example, relative to the
/// working directory, so commands work from a fresh checkout.
const DEFAULT_CONFIG: &str = "config/switchboard.toml";

/// Omnichannel routing daemon (ACD) for contact centers.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: HTTP intake and admin API, agent websocket, metrics.
    Serve {
        /// The config file (default: config/switchboard.toml if present, else the built-in one).
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
        /// HTTP listen address [default: `server.http_addr`, else 127.0.0.1:8080].
        #[arg(long, env = "SWITCHBOARD_HTTP_ADDR")]
        http_addr: Option<SocketAddr>,
        /// Where the journal (SQLite) lives [default: `server.data_dir`, else ./data].
        #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Bearer token for admin calls.
        #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// Secret for HMAC-signed intake.
        #[arg(long, env = "SWITCHBOARD_WEBHOOK_SECRET", hide_env_values = true)]
        webhook_secret: Option<String>,
        /// PEM file of CA certificates to trust for https callbacks, besides the built-in
        /// Mozilla roots.
        #[arg(long, env = "SWITCHBOARD_CALLBACK_CA")]
        callback_ca: Option<PathBuf>,
        /// How long a dropped agent keeps its assigned contacts.
        #[arg(long, env = "SWITCHBOARD_AGENT_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
        agent_grace: Duration,
        /// Websocket ping interval for agents; three silent intervals count as a dropped
        /// connection.
        #[arg(long, env = "SWITCHBOARD_AGENT_KEEPALIVE", default_value = "20s", value_parser = keepalive)]
        agent_keepalive: Duration,
        /// Most contacts open at once; beyond it intake answers 503 with Retry-After.
        #[arg(
            long,
            env = "SWITCHBOARD_MAX_OPEN_CONTACTS",
            default_value_t = 1_000_000
        )]
        max_open_contacts: usize,
        /// SMTP listen address (overrides `email.smtp_addr`; "" turns SMTP off).
        #[arg(long, env = "SWITCHBOARD_SMTP_ADDR")]
        smtp_addr: Option<String>,
        /// LMTP listen address (overrides `email.lmtp_addr`; "" turns LMTP off).
        #[arg(long, env = "SWITCHBOARD_LMTP_ADDR")]
        lmtp_addr: Option<String>,
        /// Outgoing mail relay as a lettre URL, e.g. smtp://127.0.0.1:25 (overrides
        /// `email.relay`).
        #[arg(long, env = "SWITCHBOARD_SMTP_RELAY", hide_env_values = true)]
        smtp_relay: Option<String>,
    },
    /// One screen about a running daemon, from its admin API: queues with waiting contacts,
    /// oldest wait and service level; agents by state.
    ///
    /// Exits 0 with the summary, 1 when the daemon cannot be reached or refuses.
    Status {
        /// The daemon (plain http://host:port).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Admin bearer token.
        #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
    },
    /// Validate a config file and print a summary, or every problem found.
    ///
    /// Exits 0 when the file is valid, 1 when it has problems, 2 when it cannot be read or
    /// parsed.
    CheckConfig {
        /// The config file to check.
        #[arg(long, short, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Also evaluate the configured intent model (trained on `classify.intents`) on this
        /// labeled `text,intent` CSV: accuracy, macro-F1, training time, speed.
        #[arg(long, value_name = "FILE.csv")]
        eval: Option<PathBuf>,
        /// Output format of `--eval`.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Classify contacts with a config's rules and intent model: intake JSON on stdin (one
    /// object per line, the shape of `POST /v1/contacts`), one decision per line on stdout
    /// with the rules that matched and the signals.
    ///
    /// Exits 0 when every line was classified, 1 when some line was not valid intake JSON
    /// (reported on stdout as `{"line":N,"error":...}`), 2 when the config cannot be used.
    Classify {
        /// The config file (default: config/switchboard.toml if present, else the built-in
        /// one).
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Classify as if at this time (RFC 3339, e.g. 2026-12-05T22:30:00Z) instead of now:
        /// rules reading `hour` and `weekday` give the same answer run to run.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Load a running daemon: agents that take every offer, contacts at a rate; report
    /// throughput, HTTP and ingest-to-offer latency, journal commits and memory.
    Loadgen(LoadgenArgs),
    /// Intent detection: `intents eval` trains on a labeled CSV and reports on another.
    Intents {
        #[command(subcommand)]
        command: IntentsCommand,
    },
    /// Keep many customer chats waiting in a running daemon; report memory per chat and the
    /// fan-out time of position updates, beside a bare websocket server as the baseline.
    LoadgenChat {
        /// The daemon's HTTP address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Admin token (to create the agents).
        #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// The daemon's pid, to read its memory.
        #[arg(long, default_value_t = 0)]
        daemon_pid: u32,
        /// Customer chats to keep waiting.
        #[arg(long, default_value_t = 10_000)]
        chats: usize,
        /// Agents connected (away) meanwhile.
        #[arg(long, default_value_t = 1_000)]
        agents: usize,
        /// The menu option customers choose.
        #[arg(long, default_value = "2")]
        option: String,
        /// Run as the baseline websocket server instead (prints its address).
        #[arg(long)]
        echo_server: bool,
    },
    /// Run the real router on a simulated or recorded day in virtual time; report service
    /// level, ASA, AHT, abandonment and occupancy per queue and interval.
    Simulate(switchboard::sim::cli::SimulateArgs),
    /// Agents needed for a load (Erlang C, or Erlang A with --patience), or a day's curve.
    Staffing(switchboard::sim::cli::StaffingArgs),
}

/// `switchboard intents ...`.
#[derive(Debug, Subcommand)]
enum IntentsCommand {
    /// Train on `--train` (text,intent CSV) and report accuracy, macro-F1, training time and
    /// speed on `--test`, or on a held-out share of the training file.
    Eval {
        /// Labeled training data.
        #[arg(long)]
        train: PathBuf,
        /// Labeled test data; without it, `--holdout` of the training file is held out.
        #[arg(long)]
        test: Option<PathBuf>,
        /// Share of the training file held out when there is no `--test`.
        #[arg(long, default_value_t = 0.2)]
        holdout: f64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// Options of `switchboard loadgen`.
#[derive(Debug, clap::Args)]
struct LoadgenArgs {
    /// The daemon (plain http://host:port).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Admin bearer token, to create the agents.
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The daemon's config file, for skill, queue and channel names (default:
    /// config/switchboard.toml if present, else the built-in one).
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Agents to create and connect (ids: the prefix and a number).
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Contacts per second; 0 posts as fast as the connections allow.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// How long to post (with --idle: how long to hold the agents).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Keep-alive HTTP connections posting contacts: the most requests in flight.
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Queue of the contacts.
    #[arg(long, default_value = "support")]
    queue: String,
    /// Channel of the contacts.
    #[arg(long, default_value = "chat")]
    channel: String,
    /// Also run the same client against a trivial in-process HTTP server, in the same run.
    #[arg(long)]
    baseline: bool,
    /// Only connect the agents and hold them for --duration; post nothing.
    #[arg(long)]
    idle: bool,
    /// The daemon's pid: read its memory and CPU time from /proc.
    #[arg(long)]
    daemon_pid: Option<u32>,
    /// Prefix of the agent ids.
    #[arg(long, default_value = "loadgen-")]
    agent_prefix: String,
    /// After posting, how long to wait for the offers of acknowledged contacts.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    drain: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// How `loadgen` prints its report.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Format {
    /// A table for people.
    Table,
    /// JSON for scripts.
    Json,
}

/// Trains and evaluates the intent model; the JSON report (`accuracy`, `macro_f1`,
/// `train_seconds`, `per_second`, `examples`, `confused`).
fn intents_eval(
    train: &std::path::Path,
    test: Option<&std::path::Path>,
    holdout: f64,
) -> anyhow::Result<serde_json::Value> {
    use switchboard::classify::intent;
    let read = |path: &std::path::Path| -> anyhow::Result<Vec<intent::Example>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        intent::read_csv(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    };
    let all = read(train)?;
    let (train_set, test_set) = match test {
        Some(path) => (all, read(path)?),
        None => intent::holdout(&all, holdout),
    };
    evaluation_report(&train_set, &test_set)
}

fn read_labeled(path: &Path) -> anyhow::Result<Vec<switchboard::classify::intent::Example>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    switchboard::classify::intent::read_csv(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// `check-config --eval`: the model the config trains, on a labeled file.
fn eval_configured(config: &Config, test: &Path) -> anyhow::Result<serde_json::Value> {
    if config.intent_examples.is_empty() {
        anyhow::bail!("the config names no classify.intents file: there is no model to evaluate");
    }
    evaluation_report(&config.intent_examples, &read_labeled(test)?)
}

/// Trains on one set, reports on the other.
fn evaluation_report(
    train_set: &[switchboard::classify::intent::Example],
    test_set: &[switchboard::classify::intent::Example],
) -> anyhow::Result<serde_json::Value> {
    use switchboard::classify::intent;
    if test_set.is_empty() {
        anyhow::bail!("no labeled examples to evaluate on");
    }
    let started = std::time::Instant::now();
    let model = intent::IntentModel::train(train_set)?;
    let train_seconds = started.elapsed().as_secs_f64();
    let evaluation = intent::evaluate(&model, test_set);
    let started = std::time::Instant::now();
    let mut rounds = 0usize;
    while started.elapsed() < std::time::Duration::from_secs(1) {
        for e in test_set {
            std::hint::black_box(model.classify(&e.text));
        }
        rounds += 1;
    }
    let per_second = (rounds * test_set.len()) as f64 / started.elapsed().as_secs_f64();
    let mut report = serde_json::to_value(&evaluation)?;
    report["train_seconds"] = serde_json::json!(train_seconds);
    report["per_second"] = serde_json::json!(per_second);
    report["train_examples"] = serde_json::json!(train_set.len());
    Ok(report)
}

/// Prints an evaluation report (or why there is none) and gives the exit status.
fn print_evaluation(report: anyhow::Result<serde_json::Value>, format: Format) -> ExitCode {
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_UNREADABLE);
        }
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report).expect("report")),
        Format::Table => {
            println!(
                "accuracy {:.4}  macro-F1 {:.4}  on {} examples; trained in {:.2} s; {:.0} classifications/s",
                report["accuracy"].as_f64().unwrap_or(0.0),
                report["macro_f1"].as_f64().unwrap_or(0.0),
                report["examples"],
                report["train_seconds"].as_f64().unwrap_or(0.0),
                report["per_second"].as_f64().unwrap_or(0.0)
            );
            for pair in report["confused"].as_array().into_iter().flatten() {
                println!("  {} -> {}: {}", pair[0], pair[1], pair[2]);
            }
        }
    }
    ExitCode::SUCCESS
}

/// One line of `switchboard classify` input: the intake JSON of `POST /v1/contacts`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassifyLine {
    channel: String,
    body: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    customer: Option<serde_json::Value>,
    #[serde(default)]
    attributes: Option<serde_json::Value>,
    #[serde(default)]
    queue: Option<String>,
    #[serde(default)]
    skills: std::collections::BTreeMap<String, u8>,
    #[serde(default)]
    priority: Option<i32>,
    #[serde(default)]
    preferred_agent: Option<String>,
    /// Accepted so intake bodies can be piped as they are; classification does not read it.
    #[serde(default, rename = "callback_url")]
    _callback_url: Option<serde_json::Value>,
}

/// `switchboard classify`: stdin lines to decisions on stdout.
fn classify(config: Option<&Path>, at: Option<&str>) -> ExitCode {
    use std::io::{BufRead, Write};
    let path = config_path_for_serve(config);
    let config = match load_for_serve(path.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_UNREADABLE);
        }
    };
    let zone = config.classify_time_zone();
    let at = match at.map(str::parse::<jiff::Timestamp>) {
        None => None,
        Some(Ok(t)) => Some(t.to_zoned(zone.clone())),
        Some(Err(e)) => {
            eprintln!("error: --at: {e}");
            return ExitCode::from(EXIT_UNREADABLE);
        }
    };
    let classifier = config.classifier();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut bad_lines = 0usize;
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                eprintln!("error: reading stdin: {e}");
                return ExitCode::from(EXIT_UNREADABLE);
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<ClassifyLine>(&line) {
            Err(e) => {
                bad_lines += 1;
                serde_json::json!({"line": n + 1, "error": e.to_string()})
            }
            Ok(intake) => {
                let mut facts = switchboard::classify::Intake {
                    channel: &intake.channel,
                    subject: intake.subject.as_deref().unwrap_or(""),
                    body: &intake.body,
                    customer: intake.customer.as_ref(),
                    attributes: intake.attributes.as_ref(),
                    queue: intake.queue.as_deref(),
                    fallback_queue: &config.routing.default_queue,
                    priority: intake.priority,
                    skills: intake.skills.clone(),
                    preferred_agent: intake.preferred_agent.as_deref(),
                    ..Default::default()
                };
                facts.at(&at
                    .clone()
                    .unwrap_or_else(|| jiff::Timestamp::now().to_zoned(zone.clone())));
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    classifier.classify(&facts)
                })) {
                    Ok(decision) => serde_json::json!({"line": n + 1, "decision": decision}),
                    Err(_) => {
                        bad_lines += 1;
                        serde_json::json!({"line": n + 1, "error": "classification failed on this input"})
                    }
                }
            }
        };
        if writeln!(out, "{answer}").is_err() {
            break;
        }
    }
    let _ = out.flush();
    if bad_lines > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Starts the baseline server as a child process, then runs the chat load against both.
async fn loadgen_chat(
    options: switchboard::loadgen::chat::Options,
) -> anyhow::Result<switchboard::loadgen::chat::Report> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["loadgen-chat", "--echo-server"])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let echo: SocketAddr = line.trim().parse()?;
    let result = switchboard::loadgen::chat::run(options, echo, child.id()).await;
    let _ = child.kill();
    let _ = child.wait();
    result.map_err(anyhow::Error::msg)
}

/// A mail listener address: the flag or environment variable, else the config; empty is off.
fn mail_addr(
    given: Option<String>,
    configured: Option<&String>,
) -> Result<Option<SocketAddr>, String> {
    match given.as_ref().or(configured).map(|a| a.trim()) {
        None | Some("") => Ok(None),
        Some(addr) => addr
            .parse()
            .map(Some)
            .map_err(|e| format!("{addr:?} is not an address like 127.0.0.1:2525: {e}")),
    }
}

/// Exit status for a config with problems: the file is there but wrong.
const EXIT_INVALID: u8 = 1;
/// Exit status for a config that could not be read or parsed at all.
const EXIT_UNREADABLE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig {
            config, eval: None, ..
        } => check_config(&config, false),
        Command::CheckConfig {
            config,
            eval: Some(eval),
            format,
        } => {
            // With a JSON report, stdout is the report alone; the summary goes to stderr.
            let code = check_config(&config, matches!(format, Format::Json));
            if code != ExitCode::SUCCESS {
                return code;
            }
            let report = Config::load(&config)
                .map_err(anyhow::Error::new)
                .and_then(|loaded| eval_configured(&loaded, &eval));
            print_evaluation(report, format)
        }
        Command::Classify { config, at } => classify(config.as_deref(), at.as_deref()),
        Command::Status { url, admin_token } => status(&url, admin_token.as_deref()),
        Command::Simulate(args) => print_or_fail(switchboard::sim::cli::simulate(&args)),
        Command::Staffing(args) => print_or_fail(switchboard::sim::cli::staffing(&args)),
        Command::Loadgen(args) => loadgen(args),
        Command::Intents {
            command:
                IntentsCommand::Eval {
                    train,
                    test,
                    holdout,
                    format,
                },
        } => print_evaluation(intents_eval(&train, test.as_deref(), holdout), format),
        Command::LoadgenChat {
            addr,
            admin_token,
            daemon_pid,
            chats,
            agents,
            option,
            echo_server,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            if echo_server {
                return match runtime.block_on(switchboard::loadgen::chat::echo_server()) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                };
            }
            let options = switchboard::loadgen::chat::Options {
                addr,
                admin_token,
                daemon_pid,
                chats,
                agents,
                option,
            };
            match runtime.block_on(loadgen_chat(options)) {
                Ok(report) => {
                    println!("{}", serde_json::to_string_pretty(&report).expect("report"));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve {
            config,
            http_addr,
            data_dir,
            admin_token,
            webhook_secret,
            callback_ca,
            agent_grace,
            agent_keepalive,
            max_open_contacts,
            smtp_addr,
            lmtp_addr,
            smtp_relay,
        } => {
            let config_path = config_path_for_serve(config.as_deref());
            let settings = match load_for_serve(config_path.as_deref()) {
                Ok(config) => switchboard::daemon::Settings {
                    config_path,
                    smtp_addr: match mail_addr(smtp_addr, Some(&config.email.smtp_addr)) {
                        Ok(addr) => addr,
                        Err(e) => {
                            eprintln!("error: SWITCHBOARD_SMTP_ADDR: {e}");
                            return ExitCode::from(EXIT_UNREADABLE);
                        }
                    },
                    lmtp_addr: match mail_addr(lmtp_addr, config.email.lmtp_addr.as_ref()) {
                        Ok(addr) => addr,
                        Err(e) => {
                            eprintln!("error: SWITCHBOARD_LMTP_ADDR: {e}");
                            return ExitCode::from(EXIT_UNREADABLE);
                        }
                    },
                    smtp_relay: smtp_relay
                        .filter(|r| !r.is_empty())
                        .or_else(|| config.email.relay.clone()),
                    http_addr: http_addr
                        .or(config.server.http_addr)
                        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
                    data_dir: data_dir
                        .or_else(|| config.server.data_dir.clone())
                        .unwrap_or_else(|| PathBuf::from("./data")),
                    admin_token: admin_token
                        .filter(|t| !t.is_empty())
                        .or_else(|| config.server.admin_token.clone())
                        .filter(|t| !t.is_empty()),
                    webhook_secret: webhook_secret
                        .filter(|s| !s.is_empty())
                        .or_else(|| config.server.webhook_secret.clone())
                        .filter(|s| !s.is_empty()),
                    config,
                    callback_ca: callback_ca.filter(|p| !p.as_os_str().is_empty()),
                    agent_grace,
                    agent_keepalive,
                    fsync: true,
                    max_open_contacts,
                },
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(EXIT_UNREADABLE);
                }
            };
            match serve(settings) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The file `serve` runs on (and reloads from): the named file, else the shipped file if
/// present; `None` for the one built into the binary.
fn config_path_for_serve(path: Option<&Path>) -> Option<PathBuf> {
    match path {
        Some(path) => Some(path.to_path_buf()),
        None if Path::new(DEFAULT_CONFIG).exists() => Some(PathBuf::from(DEFAULT_CONFIG)),
        None => None,
    }
}

/// Prints a command's output, or its error with the command's exit status.
fn print_or_fail(result: Result<String, switchboard::sim::cli::CommandError>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let code = e.exit_code();
            eprintln!("error: {:#}", anyhow::Error::new(e));
            ExitCode::from(code)
        }
    }
}

/// `--agent-keepalive`: a duration from 1 second to 10 minutes.
fn keepalive(text: &str) -> Result<Duration, String> {
    let every = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if (Duration::from_secs(1)..=Duration::from_secs(600)).contains(&every) {
        Ok(every)
    } else {
        Err(format!("{text}: between 1s and 10m"))
    }
}

fn load_for_serve(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(path) => Ok(Config::load(path)?),
        None => Ok(Config::embedded_default()),
    }
}

/// Log output for `serve`: human-readable lines by default, one JSON object a line with
/// `SWITCHBOARD_LOG_FORMAT=json` (journald, Loki, Elasticsearch index it field by field:
/// `contact`, `queue`, `channel`, `agent`). `RUST_LOG` filters either way (default `info`;
/// `switchboard=debug` adds a line per contact event).
fn init_logs() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match std::env::var("SWITCHBOARD_LOG_FORMAT").as_deref() {
        Ok("json") => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_env_filter(filter)
            .init(),
        Ok("text" | "") | Err(_) => tracing_subscriber::fmt().with_env_filter(filter).init(),
        Ok(other) => anyhow::bail!("SWITCHBOARD_LOG_FORMAT={other:?}: expected text or json"),
    }
    Ok(())
}

fn serve(settings: switchboard::daemon::Settings) -> anyhow::Result<()> {
    init_logs()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Signal handlers go in before anything listens: a supervisor (or a test) that sends
        // SIGTERM or SIGHUP as soon as the port answers must meet our handler, not the default
        // action that kills the process mid-write.
        let shutdown = ShutdownSignals::install()?;
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let metrics =
            switchboard::metrics::install().map_err(|e| anyhow::anyhow!("metrics: {e}"))?;
        let daemon = switchboard::daemon::start(settings, Some(metrics)).await?;
        // SIGHUP reloads the configuration, the Unix daemon convention; a bad file is logged
        // with every problem and the running configuration stays.
        let shared = daemon.shared();
        let reloads = tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the configuration");
                let _ = switchboard::daemon::reload(&shared).await;
            }
        });
        shutdown.received().await;
        reloads.abort();
        tracing::info!("shutting down: closing connections, flushing the journal");
        daemon.shutdown().await?;
        tracing::info!("stopped");
        Ok(())
    })
}

fn loadgen(args: LoadgenArgs) -> ExitCode {
    let config = match load_for_serve(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_UNREADABLE);
        }
    };
    let options = switchboard::loadgen::Options {
        url: args.url,
        admin_token: args.admin_token.filter(|t| !t.is_empty()),
        config,
        agents: args.agents,
        rate: args.rate,
        duration: args.duration,
        connections: args.connections,
        queue: args.queue,
        channel: args.channel,
        baseline: args.baseline,
        idle: args.idle,
        daemon_pid: args.daemon_pid,
        agent_prefix: args.agent_prefix,
        drain: args.drain,
    };
    let report = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime
                .block_on(switchboard::loadgen::run(options))
                .map_err(anyhow::Error::from)
        });
    match report {
        Ok(report) => {
            match args.format {
                Format::Table => print!("{}", report.table()),
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("the report serializes")
                ),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `switchboard status`: fetches and prints the summary.
fn status(url: &str, admin_token: Option<&str>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let admin_token = admin_token.filter(|t| !t.is_empty());
    match runtime.block_on(switchboard::status::fetch(url, admin_token)) {
        Ok(status) => {
            print!("{}", status.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT and SIGTERM handlers, installed up front so no signal finds the default action.
struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves on the first SIGINT or SIGTERM since `install`.
    async fn received(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

fn check_config(path: &Path, summary_to_stderr: bool) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            let summary = format!(
                "ok: {} skills, {} SLA policies, {} queues, {} agents, {} rules, {} intent examples in {}",
                config.skills.len(),
                config.sla.len(),
                config.queues.len(),
                config.agents.len(),
                config.rules.len(),
                config.intent_examples.len(),
                path.display(),
            );
            if summary_to_stderr {
                eprintln!("{summary}");
            } else {
                println!("{summary}");
            }
            ExitCode::SUCCESS
        }
        Err(ConfigError::Invalid { path, problems }) => {
            // One line per problem, prefixed with the file like a compiler, so editors and grep
            // can jump to it.
            for problem in &problems {
                eprintln!("{}: {problem}", path.display());
            }
            eprintln!(
                "{}: {} problem{}",
                path.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            ExitCode::from(EXIT_INVALID)
        }
        Err(err) => {
            // `{:#}` prints the cause chain on one line: "cannot read config file x: No such
            // file or directory (os error 2)".
            eprintln!("error: {:#}", anyhow::Error::new(err));
            ExitCode::from(EXIT_UNREADABLE)
        }
    }
}
