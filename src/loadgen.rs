//! `switchboard loadgen`: load against a running daemon, through the interfaces its users have.
//!
//! It plays both sides of a contact center. N agents sit on the agent websocket; each accepts
//! every offer, completes it at once and says ready. A webhook sender posts contacts at a fixed
//! rate, or as fast as a fixed pool of keep-alive HTTP/1.1 connections allows (one request in
//! flight per connection, so the pool size bounds what is in flight). It measures what a user
//! would notice: acknowledged (202) contacts per second, HTTP latency, and the time from sending
//! a contact to its offer reaching an agent.
//!
//! With `--baseline` the same HTTP client also runs, in the same process, against a trivial
//! in-process hyper server that answers 202 with a small JSON body: the ceiling of HTTP on this
//! machine with this client, against which the daemon's figures read. Everything is measured in
//! one run, next to its baseline, because the machines we measure on are shared and noisy.
//!
//! With `--daemon-pid` it also reads the daemon's resident memory and CPU time from `/proc`, and
//! it scrapes the daemon's journal commit histogram from `/metrics` before and after the run.
//!
//! Only `http://` URLs: the daemon serves plain HTTP (TLS belongs to a proxy in front of it).

pub mod chat;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::config::Config;
use crate::model::Channel;

/// Connections used to create agents (each creation waits for a journal commit).
const CREATE_CONNECTIONS: usize = 32;
/// Websocket handshakes in flight at once while agents connect.
const CONNECT_AT_ONCE: usize = 128;
/// How long an agent waits for its `hello` frame.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after the agents connect, before memory is read, so the daemon has settled.
const SETTLE: Duration = Duration::from_secs(2);
/// Linux reports process CPU times in `/proc/<pid>/stat` in these ticks (USER_HZ), on every
/// architecture we run on.
const TICKS_PER_SECOND: f64 = 100.0;
/// The daemon's journal commit histogram.
const COMMIT_METRIC: &str = crate::metrics::JOURNAL_COMMIT_SECONDS;

/// What to run, from the command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// The daemon, `http://host:port`.
    pub url: String,
    /// Admin bearer token, to create agents.
    pub admin_token: Option<String>,
    /// The daemon's configuration: skills to give agents, queue and channel names to check.
    pub config: Config,
    /// Agents to create and connect.
    pub agents: usize,
    /// Contacts per second; 0 means as fast as the connections allow.
    pub rate: u32,
    /// How long contacts are posted (or, with `idle`, how long agents are held).
    pub duration: Duration,
    /// Keep-alive HTTP connections posting contacts (the most requests in flight).
    pub connections: usize,
    /// Queue the contacts go to.
    pub queue: String,
    /// Channel of the contacts.
    pub channel: String,
    /// Also run the client against the in-process baseline server.
    pub baseline: bool,
    /// Only connect the agents and hold them; post nothing.
    pub idle: bool,
    /// The daemon's process id, to read its memory and CPU time from `/proc`.
    pub daemon_pid: Option<u32>,
    /// Agent ids are this prefix and a number.
    pub agent_prefix: String,
    /// After posting, how long to wait for offers of contacts already acknowledged.
    pub drain: Duration,
}

/// Why a load run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// The URL is not `http://host:port`.
    #[error("--url {url}: {message}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The queue or channel is not in the configuration.
    #[error("{0}")]
    Options(String),
    /// Not one connection to the daemon could be opened.
    #[error("cannot connect to {addr}: {message}")]
    Connect {
        /// The daemon's address.
        addr: SocketAddr,
        /// The OS or HTTP error.
        message: String,
    },
    /// The daemon refused to create an agent.
    #[error(
        "POST /v1/agents for {id} answered {status}: {body} (check --admin-token and that --config matches the daemon's)"
    )]
    AgentRefused {
        /// The agent.
        id: String,
        /// The HTTP status.
        status: u16,
        /// The answer.
        body: String,
    },
    /// The in-process baseline server could not start.
    #[error("baseline server: {0}")]
    Baseline(std::io::Error),
}

/// Everything a run measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The daemon's URL.
    pub url: String,
    /// Queue of the contacts.
    pub queue: String,
    /// Channel of the contacts.
    pub channel: String,
    /// Contacts per second asked for (0: as fast as possible).
    pub rate: u32,
    /// Seconds of posting (or holding, when idle).
    pub duration_seconds: f64,
    /// Keep-alive connections posting contacts.
    pub connections: usize,
    /// True when agents were only connected and held.
    pub idle: bool,
    /// The agents: created, connected, what they saw.
    pub agents: AgentReport,
    /// Contacts posted to the daemon; none when idle.
    pub daemon: Option<IntakeReport>,
    /// The same client against the in-process baseline server.
    pub baseline: Option<IntakeReport>,
    /// From sending a contact to its offer arriving at an agent.
    pub ingest_to_offer: Option<OfferLatency>,
    /// The daemon's journal commits during the run, from its `/metrics`.
    pub journal_commit: Option<CommitReport>,
    /// The daemon's memory, when its pid was given.
    pub daemon_memory: Option<MemoryReport>,
}

/// The agents of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AgentReport {
    /// Agents asked for.
    pub wanted: usize,
    /// Agents created (201).
    pub created: usize,
    /// Seconds to create them.
    pub create_seconds: f64,
    /// Agents whose websocket got its `hello`.
    pub connected: usize,
    /// Seconds to connect them all.
    pub connect_seconds: f64,
    /// Agents that could not connect, and the first reason.
    pub connect_failures: usize,
    /// The first connection error, if any.
    pub first_connect_error: Option<String>,
    /// Offer frames received.
    pub offers: u64,
    /// `error` frames received, by code (an offer that expired before the accept, ...).
    pub error_frames: BTreeMap<String, u64>,
    /// Websockets the daemon closed during the run.
    pub closed_by_daemon: usize,
}

/// One run of the HTTP client against a server.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IntakeReport {
    /// Requests sent.
    pub sent: u64,
    /// Requests answered 202.
    pub accepted: u64,
    /// Everything else, by status code, plus `io` for broken connections.
    pub errors: BTreeMap<String, u64>,
    /// Seconds from the first request to the last answer.
    pub elapsed_seconds: f64,
    /// `accepted / elapsed_seconds`.
    pub accepted_per_second: f64,
    /// From writing a request to reading all of its answer.
    pub http_latency: Latency,
    /// With a fixed rate: how late requests went out against their schedule (a late send
    /// means the client, not the server, was the bottleneck).
    pub send_lag: Option<Latency>,
    /// CPU seconds the load generator used (client, agents and, for the baseline, the server).
    pub loadgen_cpu_seconds: Option<f64>,
    /// CPU seconds the daemon used, when its pid was given.
    pub daemon_cpu_seconds: Option<f64>,
}

/// Latency percentiles, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

/// Ingest-to-offer latency, and what could not be matched.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OfferLatency {
    /// Percentiles over contacts both acknowledged and offered.
    pub latency: Latency,
    /// Acknowledged contacts never offered within the drain time.
    pub accepted_not_offered: u64,
    /// Offers for contacts this run did not acknowledge (re-offers, earlier contacts, or 202s
    /// the client never read).
    pub unmatched_offers: u64,
}

/// The daemon's journal commits during the run (`switchboard_journal_commit_seconds`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct CommitReport {
    /// Batches committed (one fsync each).
    pub batches: u64,
    /// Mean commit time.
    pub mean_ms: f64,
    /// Median, interpolated within its histogram bucket as Prometheus does.
    pub p50_ms: Option<f64>,
    /// 99th percentile, interpolated likewise.
    pub p99_ms: Option<f64>,
    /// Contacts acknowledged per batch (batches also carry state changes).
    pub contacts_per_batch: Option<f64>,
    /// Batches per histogram bucket (upper bound in seconds, batches in it or below).
    pub buckets: Vec<(String, u64)>,
}

/// The daemon's resident memory at the steps of a run (`VmRSS`, KiB).
#[derive(Clone, Debug, Default, Serialize)]
pub struct MemoryReport {
    /// The daemon's pid.
    pub pid: u32,
    /// Before anything.
    pub start_kib: Option<u64>,
    /// After the agents were created.
    pub agents_created_kib: Option<u64>,
    /// With the agents connected, after a pause to settle.
    pub agents_connected_kib: Option<u64>,
    /// At the end, agents still connected.
    pub end_kib: Option<u64>,
    /// Peak (`VmHWM`) at the end.
    pub peak_kib: Option<u64>,
    /// `(agents_connected - agents_created) / connected`: what one idle agent connection costs.
    pub bytes_per_connected_agent: Option<u64>,
    /// The load generator's own RSS with the same agents connected from its side (tungstenite
    /// with 4 KiB read buffers): a reference for what a websocket needs.
    pub loadgen_agents_connected_kib: Option<u64>,
}

/// Runs agents and contacts against the daemon and measures.
pub async fn run(options: Options) -> Result<Report, LoadgenError> {
    let target = Arc::new(Target::parse(&options.url).await?);
    if !options.config.queues.contains_key(&options.queue) {
        return Err(LoadgenError::Options(format!(
            "--queue {}: not a queue of the configuration (queues: {})",
            options.queue,
            options.config.queue_names().collect::<Vec<_>>().join(", ")
        )));
    }
    if options.channel.parse::<Channel>().is_err() {
        return Err(LoadgenError::Options(format!(
            "--channel {}: one of voice, chat, email, sms, social, webhook",
            options.channel
        )));
    }
    let mut report = Report {
        url: options.url.clone(),
        queue: options.queue.clone(),
        channel: options.channel.clone(),
        rate: options.rate,
        duration_seconds: options.duration.as_secs_f64(),
        connections: options.connections,
        idle: options.idle,
        ..Report::default()
    };
    let pid = options.daemon_pid;
    let mut memory = pid.map(|pid| MemoryReport {
        pid,
        start_kib: proc_status(pid, "VmRSS"),
        ..MemoryReport::default()
    });
    let body = Bytes::from(
        json!({
            "channel": options.channel,
            "body": "Load generator: my order has not arrived and I would like to know where it is.",
            "queue": options.queue,
        })
        .to_string(),
    );
    let plan = IntakePlan {
        rate: options.rate,
        duration: options.duration,
        connections: options.connections.max(1),
        body,
    };
    let posting = !options.idle && !options.duration.is_zero();

    if options.baseline && posting {
        let server = BaselineServer::start(&options.queue)
            .await
            .map_err(LoadgenError::Baseline)?;
        let baseline_target = Arc::new(Target {
            addr: server.addr,
            host: server.addr.to_string(),
        });
        report.baseline = Some(run_intake(baseline_target, &plan, None, None).await?);
        drop(server);
    }

    // Agents: created through the admin API, then connected.
    report.agents.wanted = options.agents;
    let started = Instant::now();
    let tokens = create_agents(&target, &options).await?;
    report.agents.created = tokens.len();
    report.agents.create_seconds = started.elapsed().as_secs_f64();
    if let (Some(memory), Some(pid)) = (memory.as_mut(), pid) {
        memory.agents_created_kib = proc_status(pid, "VmRSS");
    }
    let correlator = Arc::new(Correlator::default());
    let counters = Arc::new(AgentCounters::default());
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    let connected = connect_agents(&target, tokens).await;
    report.agents.connect_seconds = started.elapsed().as_secs_f64();
    report.agents.connected = connected.sockets.len();
    report.agents.connect_failures = connected.failures;
    report.agents.first_connect_error = connected.first_error;
    let mut agents = JoinSet::new();
    for socket in connected.sockets {
        agents.spawn(agent_loop(
            socket,
            correlator.clone(),
            counters.clone(),
            stopped.clone(),
        ));
    }
    if report.agents.connected > 0 {
        tokio::time::sleep(SETTLE).await;
    }
    if let (Some(memory), Some(pid)) = (memory.as_mut(), pid) {
        memory.agents_connected_kib = proc_status(pid, "VmRSS");
        memory.loadgen_agents_connected_kib = proc_self_status("VmRSS");
        if let (Some(before), Some(after)) =
            (memory.agents_created_kib, memory.agents_connected_kib)
            && report.agents.connected > 0
        {
            memory.bytes_per_connected_agent =
                Some(after.saturating_sub(before) * 1024 / report.agents.connected as u64);
        }
    }

    if posting {
        let before = scrape_histogram(&target, COMMIT_METRIC).await;
        let correlate = (report.agents.connected > 0).then(|| correlator.clone());
        let intake = run_intake(target.clone(), &plan, correlate, pid).await?;
        // Offers of contacts acknowledged near the end may still be on their way.
        let drain_until = Instant::now() + options.drain;
        while report.agents.connected > 0
            && correlator.awaiting.load(Ordering::Relaxed) > 0
            && Instant::now() < drain_until
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let after = scrape_histogram(&target, COMMIT_METRIC).await;
        if let (Some(before), Some(after)) = (before, after) {
            report.journal_commit = Some(CommitReport::new(&after.minus(&before), intake.accepted));
        }
        if report.agents.connected > 0 {
            report.ingest_to_offer = Some(correlator.report());
        }
        report.daemon = Some(intake);
    } else if options.idle {
        tokio::time::sleep(options.duration).await;
    }

    if let (Some(memory), Some(pid)) = (memory.as_mut(), pid) {
        memory.end_kib = proc_status(pid, "VmRSS");
        memory.peak_kib = proc_status(pid, "VmHWM");
    }
    report.daemon_memory = memory;
    let _ = stop.send(true);
    let finish = async { while agents.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), finish)
        .await
        .is_err()
    {
        agents.abort_all();
    }
    report.agents.offers = counters.offers.load(Ordering::Relaxed);
    report.agents.closed_by_daemon = counters.closed.load(Ordering::Relaxed) as usize;
    report.agents.error_frames = counters
        .errors
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Ok(report)
}

// --- HTTP client ---------------------------------------------------------------------------------

/// Where requests go: the resolved address and the `Host` header.
struct Target {
    addr: SocketAddr,
    host: String,
}

impl Target {
    async fn parse(url: &str) -> Result<Target, LoadgenError> {
        let host = authority(url).map_err(|message| LoadgenError::Url {
            url: url.into(),
            message,
        })?;
        let addr = tokio::net::lookup_host(host.as_str())
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| LoadgenError::Url {
                url: url.into(),
                message: format!("cannot resolve {host}"),
            })?;
        Ok(Target { addr, host })
    }

    fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/v1/agent/ws?token={token}", self.host)
    }
}

/// `host:port` of an `http://` URL (port 80 when absent).
fn authority(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "only http://host:port URLs are supported".to_string())?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err("no host".into());
    }
    let has_port = match host.rsplit_once(':') {
        Some((_, port)) => !port.contains(']'),
        None => false,
    };
    Ok(if has_port {
        host.to_string()
    } else {
        format!("{host}:80")
    })
}

/// One keep-alive HTTP/1.1 connection; its driver task ends with it.
struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Connection {
    async fn open(target: &Target) -> Result<Connection, String> {
        let stream = TcpStream::connect(target.addr)
            .await
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection { sender, driver })
    }

    /// Sends one request and reads the whole answer.
    async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), hyper::Error> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

fn request(
    target: &Target,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Bytes,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, target.host.as_str());
    if !body.is_empty() {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    builder
        .body(Full::new(body))
        .expect("method, path and headers are valid")
}

/// One request on a fresh connection (for `/metrics`).
async fn get_once(target: &Target, path: &str) -> Option<String> {
    let mut conn = Connection::open(target).await.ok()?;
    let (status, body) = conn
        .exchange(request(target, Method::GET, path, None, Bytes::new()))
        .await
        .ok()?;
    status
        .is_success()
        .then(|| String::from_utf8_lossy(&body).into_owned())
}

// --- Posting contacts ----------------------------------------------------------------------------

/// How contacts are posted.
struct IntakePlan {
    rate: u32,
    duration: Duration,
    connections: usize,
    body: Bytes,
}

/// When each request is due: request `n` at `start + n / rate`, or whenever a connection is
/// free with rate 0, until `deadline`.
struct Schedule {
    start: Instant,
    deadline: Instant,
    rate: u32,
    next: AtomicU64,
}

impl Schedule {
    /// The next request's due time, or `None` once the run is over.
    fn take(&self) -> Option<Instant> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        if self.rate == 0 {
            let now = Instant::now();
            return (now < self.deadline).then_some(now);
        }
        let due = self.start + Duration::from_nanos(n * 1_000_000_000 / u64::from(self.rate));
        (due < self.deadline).then_some(due)
    }
}

/// What one connection's worker saw.
#[derive(Default)]
struct Tally {
    sent: u64,
    accepted: u64,
    errors: BTreeMap<String, u64>,
    latencies_us: Vec<u64>,
    lags_us: Vec<u64>,
    last_answer: Option<Instant>,
}

/// The 202 answer's one field we need.
#[derive(Deserialize)]
struct Acknowledged {
    id: String,
}

/// Posts contacts over `plan.connections` keep-alive connections and measures.
async fn run_intake(
    target: Arc<Target>,
    plan: &IntakePlan,
    correlator: Option<Arc<Correlator>>,
    daemon_pid: Option<u32>,
) -> Result<IntakeReport, LoadgenError> {
    let mut opening = JoinSet::new();
    for _ in 0..plan.connections {
        let target = target.clone();
        opening.spawn(async move { Connection::open(&target).await });
    }
    let mut connections = Vec::with_capacity(plan.connections);
    let mut first_error = None;
    while let Some(opened) = opening.join_next().await {
        match opened {
            Ok(Ok(conn)) => connections.push(conn),
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(e) => first_error = first_error.or(Some(e.to_string())),
        }
    }
    if connections.is_empty() {
        return Err(LoadgenError::Connect {
            addr: target.addr,
            message: first_error.unwrap_or_else(|| "no connection".into()),
        });
    }
    let cpu_before = (proc_cpu_seconds("self"), daemon_pid.and_then(daemon_cpu));
    let start = Instant::now();
    let schedule = Arc::new(Schedule {
        start,
        deadline: start + plan.duration,
        rate: plan.rate,
        next: AtomicU64::new(0),
    });
    let mut workers = JoinSet::new();
    for conn in connections {
        workers.spawn(worker(
            conn,
            target.clone(),
            schedule.clone(),
            plan.body.clone(),
            correlator.clone(),
        ));
    }
    let mut total = Tally::default();
    while let Some(tally) = workers.join_next().await {
        let Ok(tally) = tally else { continue };
        total.sent += tally.sent;
        total.accepted += tally.accepted;
        for (status, n) in tally.errors {
            *total.errors.entry(status).or_default() += n;
        }
        total.latencies_us.extend(tally.latencies_us);
        total.lags_us.extend(tally.lags_us);
        total.last_answer = total.last_answer.max(tally.last_answer);
    }
    let elapsed = total
        .last_answer
        .map_or(0.0, |at| at.duration_since(start).as_secs_f64());
    let cpu_after = (proc_cpu_seconds("self"), daemon_pid.and_then(daemon_cpu));
    Ok(IntakeReport {
        sent: total.sent,
        accepted: total.accepted,
        errors: total.errors,
        elapsed_seconds: elapsed,
        accepted_per_second: if elapsed > 0.0 {
            total.accepted as f64 / elapsed
        } else {
            0.0
        },
        http_latency: Latency::from_micros(total.latencies_us),
        send_lag: (plan.rate > 0).then(|| Latency::from_micros(total.lags_us)),
        loadgen_cpu_seconds: cpu_before.0.zip(cpu_after.0).map(|(b, a)| a - b),
        daemon_cpu_seconds: cpu_before.1.zip(cpu_after.1).map(|(b, a)| a - b),
    })
}

/// One connection's loop: take the next due request, send it, read the answer, repeat.
async fn worker(
    conn: Connection,
    target: Arc<Target>,
    schedule: Arc<Schedule>,
    body: Bytes,
    correlator: Option<Arc<Correlator>>,
) -> Tally {
    let mut tally = Tally::default();
    let mut conn = Some(conn);
    while let Some(due) = schedule.take() {
        if schedule.rate > 0 {
            tokio::time::sleep_until(due).await;
            tally
                .lags_us
                .push(Instant::now().saturating_duration_since(due).as_micros() as u64);
        }
        let open = match conn.as_mut() {
            Some(open) => open,
            None => match Connection::open(&target).await {
                Ok(fresh) => conn.insert(fresh),
                Err(_) => {
                    *tally.errors.entry("connect".into()).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let request = request(&target, Method::POST, "/v1/contacts", None, body.clone());
        let sent_at = Instant::now();
        tally.sent += 1;
        match open.exchange(request).await {
            Ok((status, answer)) => {
                let done = Instant::now();
                tally.last_answer = Some(done);
                tally
                    .latencies_us
                    .push(done.duration_since(sent_at).as_micros() as u64);
                // Parsed for the baseline too, so both runs do the same client work.
                let id = serde_json::from_slice::<Acknowledged>(&answer)
                    .ok()
                    .and_then(|a| a.id.parse::<u64>().ok());
                if status == StatusCode::ACCEPTED {
                    tally.accepted += 1;
                    if let (Some(correlator), Some(id)) = (&correlator, id) {
                        correlator.acknowledged(id, sent_at);
                    }
                } else {
                    *tally.errors.entry(status.as_u16().to_string()).or_default() += 1;
                }
            }
            Err(_) => {
                *tally.errors.entry("io".into()).or_default() += 1;
                conn = None;
            }
        }
    }
    tally
}

// --- The baseline --------------------------------------------------------------------------------

/// A trivial HTTP/1.1 server in this process: reads the body, answers 202 with a small JSON
/// body shaped like the daemon's. Stops (with every connection) when dropped.
struct BaselineServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for BaselineServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BaselineServer {
    async fn start(queue: &str) -> std::io::Result<BaselineServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let queue: Arc<str> = Arc::from(queue);
        let task = tokio::spawn(async move {
            let next = Arc::new(AtomicU64::new(1));
            // Owned here: aborting the accept loop drops the set, which aborts the connections.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let (next, queue) = (next.clone(), queue.clone());
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (next, queue) = (next.clone(), queue.clone());
                    async move {
                        let _ = request.into_body().collect().await;
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        let body = json!({"id": id.to_string(), "status": "queued", "queue": &*queue, "priority": 0});
                        let response = Response::builder()
                            .status(StatusCode::ACCEPTED)
                            .header(CONTENT_TYPE, "application/json")
                            .body(Full::new(Bytes::from(body.to_string())))
                            .expect("status and header are valid");
                        Ok::<_, Infallible>(response)
                    }
                });
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(BaselineServer { addr, task })
    }
}

// --- Agents --------------------------------------------------------------------------------------

/// Creates the agents through `POST /v1/agents`; returns each one's token.
async fn create_agents(
    target: &Arc<Target>,
    options: &Options,
) -> Result<Vec<String>, LoadgenError> {
    if options.agents == 0 {
        return Ok(Vec::new());
    }
    // Level 10 in every configured skill qualifies for any queue and any escalation step.
    let skills: BTreeMap<&str, u8> = options
        .config
        .skills
        .iter()
        .map(|s| (s.as_str(), 10))
        .collect();
    let capacity = json!({"voice": 1, "chat": 3, "email": 5, "sms": 3, "social": 3, "webhook": 5});
    let next = Arc::new(AtomicU64::new(0));
    let mut creators = JoinSet::new();
    for _ in 0..CREATE_CONNECTIONS.min(options.agents) {
        let (target, next) = (target.clone(), next.clone());
        let token = options.admin_token.clone();
        let (prefix, queue, total) = (
            options.agent_prefix.clone(),
            options.queue.clone(),
            options.agents as u64,
        );
        let (skills, capacity) = (json!(skills), capacity.clone());
        creators.spawn(async move {
            let mut conn =
                Connection::open(&target)
                    .await
                    .map_err(|message| LoadgenError::Connect {
                        addr: target.addr,
                        message,
                    })?;
            let mut made = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return Ok(made);
                }
                let id = format!("{prefix}{n}");
                let body = json!({"id": id, "name": format!("Load agent {n}"), "skills": skills,
                                  "capacity": capacity, "queues": [queue]});
                let body = Bytes::from(body.to_string());
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    let request = request(
                        &target,
                        Method::POST,
                        "/v1/agents",
                        token.as_deref(),
                        body.clone(),
                    );
                    let (status, answer) =
                        conn.exchange(request)
                            .await
                            .map_err(|e| LoadgenError::Connect {
                                addr: target.addr,
                                message: e.to_string(),
                            })?;
                    if status == StatusCode::CREATED {
                        let token = serde_json::from_slice::<serde_json::Value>(&answer)
                            .ok()
                            .and_then(|v| v["token"].as_str().map(str::to_owned))
                            .unwrap_or_default();
                        made.push((n, token));
                        break;
                    }
                    // 503: the journal is momentarily full; anything else is our mistake.
                    if status != StatusCode::SERVICE_UNAVAILABLE || attempts >= 5 {
                        return Err(LoadgenError::AgentRefused {
                            id,
                            status: status.as_u16(),
                            body: String::from_utf8_lossy(&answer).into_owned(),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
    }
    let mut tokens = Vec::with_capacity(options.agents);
    while let Some(made) = creators.join_next().await {
        match made {
            Ok(Ok(made)) => tokens.extend(made),
            Ok(Err(e)) => return Err(e),
            Err(e) => {
                return Err(LoadgenError::Connect {
                    addr: target.addr,
                    message: e.to_string(),
                });
            }
        }
    }
    tokens.sort_unstable();
    Ok(tokens.into_iter().map(|(_, token)| token).collect())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Agents connected, and those that could not.
struct Connected {
    sockets: Vec<Socket>,
    failures: usize,
    first_error: Option<String>,
}

/// Connects every agent and waits for its `hello`, a bounded number of handshakes at once.
async fn connect_agents(target: &Arc<Target>, tokens: Vec<String>) -> Connected {
    let gate = Arc::new(Semaphore::new(CONNECT_AT_ONCE));
    let mut connecting = JoinSet::new();
    for token in tokens {
        let url = target.ws_url(&token);
        let gate = gate.clone();
        connecting.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            // Small read buffers: ten thousand agents should not cost the load generator a GiB.
            let config = WebSocketConfig::default().read_buffer_size(4096);
            let (mut socket, _) =
                tokio_tungstenite::connect_async_with_config(url, Some(config), true)
                    .await
                    .map_err(|e| e.to_string())?;
            let hello = tokio::time::timeout(HELLO_TIMEOUT, async {
                while let Some(frame) = socket.next().await {
                    if let Ok(Message::Text(text)) = frame {
                        return text.contains("\"hello\"");
                    }
                }
                false
            })
            .await;
            match hello {
                Ok(true) => Ok(socket),
                Ok(false) => Err("closed before hello".to_string()),
                Err(_) => Err("no hello frame".to_string()),
            }
        });
    }
    let mut connected = Connected {
        sockets: Vec::new(),
        failures: 0,
        first_error: None,
    };
    while let Some(result) = connecting.join_next().await {
        match result.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(socket) => connected.sockets.push(socket),
            Err(e) => {
                connected.failures += 1;
                connected.first_error.get_or_insert(e);
            }
        }
    }
    connected
}

/// What every agent adds to.
#[derive(Default)]
struct AgentCounters {
    offers: AtomicU64,
    closed: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

/// The frames an agent reads; other fields are ignored.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    contact: Option<FrameContact>,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Deserialize)]
struct FrameContact {
    id: String,
}

/// One agent: accept every offer, complete it at once, say ready; until told to stop.
async fn agent_loop(
    mut socket: Socket,
    correlator: Arc<Correlator>,
    counters: Arc<AgentCounters>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            frame = socket.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        counters.closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Some(Ok(_)) => continue, // pings are answered by the library
                };
                let at = Instant::now();
                let Ok(frame) = serde_json::from_str::<Frame>(text.as_str()) else { continue };
                match frame.kind.as_str() {
                    "offer" => {
                        counters.offers.fetch_add(1, Ordering::Relaxed);
                        let Some(contact) = frame.contact else { continue };
                        if let Ok(id) = contact.id.parse::<u64>() {
                            correlator.offered(id, at);
                        }
                        let id = contact.id;
                        // The session handles frames in order: accept, then complete, then ready.
                        let replies = [
                            json!({"type": "accept", "offer_id": id}),
                            json!({"type": "complete", "contact_id": id, "disposition": "resolved"}),
                            json!({"type": "ready", "contact_id": id}),
                        ];
                        for reply in replies {
                            if socket.feed(Message::Text(reply.to_string().into())).await.is_err() {
                                counters.closed.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                        }
                        if socket.flush().await.is_err() {
                            counters.closed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                    "error" => {
                        let code = frame.code.unwrap_or_else(|| "unknown".into());
                        *counters
                            .errors
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .entry(code)
                            .or_default() += 1;
                    }
                    "shutdown" => {
                        counters.closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    _ => {}
                }
            }
            // The only change ever sent is "stop"; a dropped sender means the same.
            _ = stop.changed() => {
                let _ = socket.close(None).await;
                return;
            }
        }
    }
}

// --- Ingest-to-offer -----------------------------------------------------------------------------

/// Matches a contact's 202 with its offer, whichever arrives first.
#[derive(Default)]
struct Correlator {
    marks: dashmap::DashMap<u64, Mark>,
    samples_us: Mutex<Vec<u64>>,
    /// Acknowledged contacts whose offer has not arrived yet.
    awaiting: AtomicI64,
}

#[derive(Clone, Copy)]
enum Mark {
    /// Acknowledged; the request was sent at this time.
    Sent(Instant),
    /// Offered at this time; the 202 has not been read yet.
    Offered(Instant),
}

impl Correlator {
    fn acknowledged(&self, id: u64, sent_at: Instant) {
        match self.marks.entry(id) {
            dashmap::Entry::Occupied(entry) => {
                if let Mark::Offered(at) = *entry.get() {
                    entry.remove();
                    self.record(at.saturating_duration_since(sent_at));
                }
            }
            dashmap::Entry::Vacant(entry) => {
                entry.insert(Mark::Sent(sent_at));
                self.awaiting.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn offered(&self, id: u64, at: Instant) {
        match self.marks.entry(id) {
            dashmap::Entry::Occupied(entry) => {
                // A second offer of a contact still waiting for its 202 keeps the first time.
                if let Mark::Sent(sent_at) = *entry.get() {
                    entry.remove();
                    self.awaiting.fetch_sub(1, Ordering::Relaxed);
                    self.record(at.saturating_duration_since(sent_at));
                }
            }
            dashmap::Entry::Vacant(entry) => {
                entry.insert(Mark::Offered(at));
            }
        }
    }

    fn record(&self, latency: Duration) {
        self.samples_us
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(latency.as_micros() as u64);
    }

    fn report(&self) -> OfferLatency {
        let samples = std::mem::take(
            &mut *self
                .samples_us
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let (mut sent, mut offered) = (0, 0);
        for mark in self.marks.iter() {
            match *mark.value() {
                Mark::Sent(_) => sent += 1,
                Mark::Offered(_) => offered += 1,
            }
        }
        OfferLatency {
            latency: Latency::from_micros(samples),
            accepted_not_offered: sent,
            unmatched_offers: offered,
        }
    }
}

// --- Pure helpers: percentiles, Prometheus histograms, /proc --------------------------------------

impl Latency {
    /// Percentiles of samples in microseconds (nearest rank).
    pub fn from_micros(mut samples: Vec<u64>) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let n = samples.len();
        let rank = |q: f64| {
            let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            samples[i] as f64 / 1000.0
        };
        Latency {
            count: n as u64,
            mean_ms: samples.iter().sum::<u64>() as f64 / n as f64 / 1000.0,
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            p999_ms: rank(0.999),
            max_ms: samples[n - 1] as f64 / 1000.0,
        }
    }
}

/// A Prometheus histogram as scraped: cumulative buckets, sum and count.
#[derive(Clone, Debug, Default, PartialEq)]
struct Histogram {
    /// (upper bound, cumulative count), in page order (ascending, `+Inf` last).
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

impl Histogram {
    /// Reads the unlabelled histogram `name` from a text exposition page.
    fn parse(page: &str, name: &str) -> Option<Histogram> {
        let mut histogram = Histogram::default();
        let mut seen = false;
        for line in page.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            let Some((series, value)) = rest.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            if let Some(labels) = series.strip_prefix("_bucket{") {
                let le = labels
                    .split(',')
                    .find_map(|l| l.trim().strip_prefix("le=\""))
                    .and_then(|l| l.strip_suffix('"').or_else(|| l.strip_suffix("\"}")))
                    .map(|l| l.trim_end_matches(['"', '}']));
                let bound = match le {
                    Some("+Inf") => f64::INFINITY,
                    Some(le) => match le.parse() {
                        Ok(b) => b,
                        Err(_) => continue,
                    },
                    None => continue,
                };
                histogram.buckets.push((bound, value));
                seen = true;
            } else if series == "_sum" {
                histogram.sum = value;
                seen = true;
            } else if series == "_count" {
                histogram.count = value;
                seen = true;
            }
        }
        seen.then_some(histogram)
    }

    /// What happened between two scrapes.
    fn minus(&self, before: &Histogram) -> Histogram {
        let earlier = |bound: f64| {
            before
                .buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0.0, |(_, c)| *c)
        };
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|&(bound, count)| (bound, count - earlier(bound)))
                .collect(),
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }

    /// The `q` quantile as Prometheus' `histogram_quantile` computes it: linear within the
    /// bucket holding the rank; the largest finite bound if the rank falls in `+Inf`.
    fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for &(bound, cumulative) in &self.buckets {
            if cumulative >= rank {
                if bound.is_infinite() {
                    return Some(lower);
                }
                let inside = cumulative - below;
                let share = if inside > 0.0 {
                    (rank - below) / inside
                } else {
                    1.0
                };
                return Some(lower + (bound - lower) * share);
            }
            (lower, below) = (bound, cumulative);
        }
        Some(lower)
    }
}

impl CommitReport {
    fn new(delta: &Histogram, accepted: u64) -> CommitReport {
        let batches = delta.count.max(0.0) as u64;
        CommitReport {
            batches,
            mean_ms: if batches > 0 {
                delta.sum / delta.count * 1000.0
            } else {
                0.0
            },
            p50_ms: delta.quantile(0.50).map(|s| s * 1000.0),
            p99_ms: delta.quantile(0.99).map(|s| s * 1000.0),
            contacts_per_batch: (batches > 0).then(|| accepted as f64 / batches as f64),
            buckets: delta
                .buckets
                .iter()
                .map(|&(bound, count)| {
                    let le = if bound.is_infinite() {
                        "+Inf".to_string()
                    } else {
                        bound.to_string()
                    };
                    (le, count.max(0.0) as u64)
                })
                .collect(),
        }
    }
}

/// The histogram on the daemon's `/metrics`; empty if the page has no such series yet (the
/// exporter shows a histogram from its first sample on). `None` if the page cannot be read.
async fn scrape_histogram(target: &Target, name: &str) -> Option<Histogram> {
    let page = get_once(target, "/metrics").await?;
    Some(Histogram::parse(&page, name).unwrap_or_default())
}

/// A `kB` field of `/proc/<pid>/status` (VmRSS, VmHWM), in KiB.
fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field(&status, field)
}

fn proc_self_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status_field(&status, field)
}

fn status_field(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

fn daemon_cpu(pid: u32) -> Option<f64> {
    proc_cpu_seconds(&pid.to_string())
}

/// User plus system CPU seconds of a process (`self` or a pid), from `/proc/<pid>/stat`.
fn proc_cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_cpu_seconds(&stat)
}

fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name may hold spaces and parentheses; the fields start after the last ')'.
    // After it: state (field 3) ... utime (14), stime (15).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

// --- Output --------------------------------------------------------------------------------------

impl Report {
    /// The report as a plain-text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let rate = if self.rate == 0 {
            "as fast as possible".to_string()
        } else {
            format!("{}/s", thousands(self.rate as f64))
        };
        let _ = writeln!(
            out,
            "switchboard loadgen: {} | queue {} | channel {}",
            self.url, self.queue, self.channel
        );
        let a = &self.agents;
        let _ = writeln!(
            out,
            "agents: {} created in {:.1} s, {} connected in {:.1} s{}; {} offers; error frames: {}",
            a.created,
            a.create_seconds,
            a.connected,
            a.connect_seconds,
            match (&a.first_connect_error, a.connect_failures) {
                (Some(e), n) if n > 0 => format!(" ({n} failed: {e})"),
                _ => String::new(),
            },
            thousands(a.offers as f64),
            counts(&a.error_frames),
        );
        if self.idle {
            let _ = writeln!(
                out,
                "idle: agents held {:.0} s, nothing posted",
                self.duration_seconds
            );
        } else {
            let _ = writeln!(
                out,
                "contacts: {rate} for {:.0} s over {} keep-alive connections",
                self.duration_seconds, self.connections
            );
        }
        if self.daemon.is_some() || self.baseline.is_some() {
            out.push('\n');
            let columns: Vec<(&str, &IntakeReport)> = [
                ("daemon", self.daemon.as_ref()),
                ("baseline (in-process hyper)", self.baseline.as_ref()),
            ]
            .into_iter()
            .filter_map(|(name, r)| r.map(|r| (name, r)))
            .collect();
            let mut rows: Vec<(String, Vec<String>)> = Vec::new();
            let mut row = |label: &str, cell: &dyn Fn(&IntakeReport) -> String| {
                rows.push((
                    label.to_string(),
                    columns.iter().map(|(_, r)| cell(r)).collect(),
                ));
            };
            row("posted", &|r| thousands(r.sent as f64));
            row("accepted (202)", &|r| thousands(r.accepted as f64));
            row("accepted / s", &|r| thousands(r.accepted_per_second));
            row("errors", &|r| counts(&r.errors));
            row("HTTP latency p50 ms", &|r| ms(r.http_latency.p50_ms));
            row("HTTP latency p99 ms", &|r| ms(r.http_latency.p99_ms));
            row("HTTP latency p99.9 ms", &|r| ms(r.http_latency.p999_ms));
            row("HTTP latency max ms", &|r| ms(r.http_latency.max_ms));
            if self.rate > 0 {
                row("send lag p99 ms", &|r| {
                    r.send_lag.as_ref().map_or("-".into(), |l| ms(l.p99_ms))
                });
            }
            row("CPU s loadgen", &|r| {
                r.loadgen_cpu_seconds
                    .map_or("-".into(), |s| format!("{s:.1}"))
            });
            row("CPU s daemon", &|r| {
                r.daemon_cpu_seconds
                    .map_or("-".into(), |s| format!("{s:.1}"))
            });
            let label_width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
            let widths: Vec<usize> = columns
                .iter()
                .enumerate()
                .map(|(i, (name, _))| {
                    rows.iter()
                        .map(|(_, cells)| cells[i].len())
                        .chain([name.len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let _ = write!(out, "{:label_width$}", "");
            for ((name, _), w) in columns.iter().zip(&widths) {
                let _ = write!(out, "  {name:>w$}");
            }
            out.push('\n');
            for (label, cells) in &rows {
                let _ = write!(out, "{label:label_width$}");
                for (cell, w) in cells.iter().zip(&widths) {
                    let _ = write!(out, "  {cell:>w$}");
                }
                out.push('\n');
            }
        }
        if let Some(o) = &self.ingest_to_offer {
            let l = &o.latency;
            let _ = writeln!(
                out,
                "\ningest to offer ms: p50 {} | p99 {} | p99.9 {} | max {} ({} contacts; {} acknowledged but not offered; {} unmatched offers)",
                ms(l.p50_ms),
                ms(l.p99_ms),
                ms(l.p999_ms),
                ms(l.max_ms),
                thousands(l.count as f64),
                o.accepted_not_offered,
                o.unmatched_offers
            );
        }
        if let Some(c) = &self.journal_commit {
            let opt = |v: Option<f64>| v.map_or("-".into(), ms);
            let _ = writeln!(
                out,
                "journal commits (daemon /metrics, same run): {} batches | mean {} ms | p50 ~{} ms | p99 ~{} ms | {} contacts per batch",
                thousands(c.batches as f64),
                ms(c.mean_ms),
                opt(c.p50_ms),
                opt(c.p99_ms),
                c.contacts_per_batch
                    .map_or("-".into(), |n| format!("{n:.1}")),
            );
        }
        if let Some(m) = &self.daemon_memory {
            let mib =
                |k: Option<u64>| k.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0));
            let _ = writeln!(
                out,
                "daemon RSS MiB (pid {}): start {} | agents created {} | agents connected {} | end {} | peak {}{}",
                m.pid,
                mib(m.start_kib),
                mib(m.agents_created_kib),
                mib(m.agents_connected_kib),
                mib(m.end_kib),
                mib(m.peak_kib),
                m.bytes_per_connected_agent
                    .map_or(String::new(), |b| format!(
                        " | {} bytes per connected agent",
                        thousands(b as f64)
                    )),
            );
            if let Some(kib) = m.loadgen_agents_connected_kib {
                let _ = writeln!(
                    out,
                    "loadgen RSS MiB with the same agents connected from its side: {:.1}",
                    kib as f64 / 1024.0
                );
            }
        }
        out
    }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// 12345.6 -> "12,346".
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_in_milliseconds() {
        let l = Latency::from_micros((1..=1000).collect());
        assert_eq!(l.count, 1000);
        assert_eq!(l.p50_ms, 0.5);
        assert_eq!(l.p99_ms, 0.99);
        assert_eq!(l.p999_ms, 0.999);
        assert_eq!(l.max_ms, 1.0);
        assert_eq!(Latency::from_micros(vec![]), Latency::default());
        assert_eq!(Latency::from_micros(vec![7000]).p999_ms, 7.0);
    }

    const PAGE: &str = "\
# TYPE switchboard_journal_commit_seconds histogram
switchboard_journal_commit_seconds_bucket{le=\"0.001\"} 10
switchboard_journal_commit_seconds_bucket{le=\"0.002\"} 90
switchboard_journal_commit_seconds_bucket{le=\"0.005\"} 100
switchboard_journal_commit_seconds_bucket{le=\"+Inf\"} 100
switchboard_journal_commit_seconds_sum 0.15
switchboard_journal_commit_seconds_count 100
switchboard_journal_errors_total 0
";

    #[test]
    fn a_histogram_is_read_from_the_metrics_page_and_its_quantiles_interpolated() {
        let h = Histogram::parse(PAGE, COMMIT_METRIC).expect("found");
        assert_eq!(h.buckets.len(), 4);
        assert_eq!(h.count, 100.0);
        // Rank 50 lies in (1 ms, 2 ms], 40 of its 80 in: 1.5 ms.
        assert!((h.quantile(0.5).expect("q") - 0.0015).abs() < 1e-12);
        // Rank 99 lies in (2 ms, 5 ms], 9 of its 10 in: 4.7 ms.
        assert!((h.quantile(0.99).expect("q") - 0.0047).abs() < 1e-12);
        assert_eq!(Histogram::parse(PAGE, "no_such_histogram"), None);
    }

    #[test]
    fn two_scrapes_give_what_happened_between_them() {
        let after = Histogram::parse(PAGE, COMMIT_METRIC).expect("found");
        let before = Histogram {
            buckets: vec![
                (0.001, 10.0),
                (0.002, 10.0),
                (0.005, 10.0),
                (f64::INFINITY, 10.0),
            ],
            sum: 0.005,
            count: 10.0,
        };
        let delta = after.minus(&before);
        assert_eq!(delta.count, 90.0);
        assert_eq!(delta.buckets[0].1, 0.0);
        assert_eq!(delta.buckets[1].1, 80.0);
        let report = CommitReport::new(&delta, 900);
        assert_eq!(report.batches, 90);
        assert_eq!(report.contacts_per_batch, Some(10.0));
        assert!((report.mean_ms - 0.145 / 90.0 * 1000.0).abs() < 1e-9);
        // A rank in +Inf reports the largest finite bound, as Prometheus does.
        let slow = Histogram {
            buckets: vec![(0.001, 0.0), (f64::INFINITY, 5.0)],
            sum: 10.0,
            count: 5.0,
        };
        assert_eq!(slow.quantile(0.5), Some(0.001));
    }

    #[test]
    fn urls_must_be_plain_http_with_a_host() {
        assert_eq!(
            authority("http://127.0.0.1:8080"),
            Ok("127.0.0.1:8080".into())
        );
        assert_eq!(authority("http://localhost/"), Ok("localhost:80".into()));
        assert_eq!(authority("http://[::1]:9000/x"), Ok("[::1]:9000".into()));
        assert_eq!(authority("http://[::1]"), Ok("[::1]:80".into()));
        assert!(authority("https://example.com").is_err());
        assert!(authority("http://").is_err());
    }

    #[test]
    fn proc_files_give_memory_and_cpu() {
        let status = "Name:\tswitchboard\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(status_field(status, "VmRSS"), Some(102_400));
        assert_eq!(status_field(status, "VmHWM"), Some(204_800));
        assert_eq!(status_field(status, "VmSwap"), None);
        let stat = "4242 (switch board) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 130 0 0 20 0 9 0";
        assert_eq!(stat_cpu_seconds(stat), Some(3.8));
    }

    #[test]
    fn the_schedule_spaces_requests_by_the_rate_and_stops_at_the_deadline() {
        let start = Instant::now();
        let schedule = Schedule {
            start,
            deadline: start + Duration::from_secs(1),
            rate: 4,
            next: AtomicU64::new(0),
        };
        let due: Vec<Duration> = std::iter::from_fn(|| schedule.take())
            .map(|at| at - start)
            .collect();
        assert_eq!(due, [0, 250, 500, 750].map(Duration::from_millis).to_vec());
    }

    #[test]
    fn an_offer_and_its_acknowledgement_match_in_either_order() {
        let c = Correlator::default();
        let t0 = Instant::now();
        c.acknowledged(1, t0);
        c.offered(1, t0 + Duration::from_millis(3));
        c.offered(2, t0 + Duration::from_millis(5));
        c.acknowledged(2, t0 + Duration::from_millis(1));
        c.acknowledged(3, t0);
        c.offered(4, t0);
        let report = c.report();
        assert_eq!(report.latency.count, 2);
        assert_eq!(report.latency.max_ms, 4.0);
        assert_eq!(report.accepted_not_offered, 1);
        assert_eq!(report.unmatched_offers, 1);
        assert_eq!(c.awaiting.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn big_numbers_get_thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
