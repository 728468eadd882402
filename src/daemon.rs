//! Wiring: the one place that knows every piece. Opens the journal, replays open contacts into
//! the router, runs the router task (the single owner of routing state), serves HTTP and the
//! agent websocket, and shuts all of it down in order.
//!
//! The router task is the only driver of [`Router`]: producers (HTTP intake, agent sessions) send
//! it [`Command`]s over a bounded channel; it applies them with the current time, wakes at the
//! router's next deadline, and executes the actions: frames to agents, state records to the
//! journal, metrics.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use dashmap::DashMap;
use metrics_exporter_prometheus::PrometheusHandle;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::channels::email::{self, EmailChannel};
use crate::config::Config;
use crate::gateway::{ContactSummary, ServerMessage, SlaDeadlines};
use crate::journal::{ContactRecord, Journal, JournalError, JournalOptions, Record};
use crate::metrics as m;
use crate::model::{AgentId, AgentProfile, Channel, ContactId, Millis, NewContact};
use crate::notify::Callbacks;
use crate::router::{
    Action, AgentActivity, AgentView, ContactView, Event, Outcome, Presence, QueueSnapshot,
    RevokeReason, Router, RouterError, RoutingPlan, SlaKind,
};

/// How the daemon runs: addresses, data directory, secrets.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The routing configuration.
    pub config: Config,
    /// The file it came from, read again on reload (SIGHUP, `POST /v1/admin/reload`); `None`
    /// when running on the embedded default.
    pub config_path: Option<PathBuf>,
    /// HTTP listener (webhooks, admin API, websockets, metrics).
    pub http_addr: SocketAddr,
    /// Where the journal lives.
    pub data_dir: PathBuf,
    /// Bearer token for admin calls; none means admin calls are open (loopback use).
    pub admin_token: Option<String>,
    /// Secret for HMAC-signed intake; none means unsigned intake is accepted.
    pub webhook_secret: Option<String>,
    /// PEM file of CA certificates trusted for https callbacks besides the built-in Mozilla
    /// roots (an internal CA's receivers).
    pub callback_ca: Option<PathBuf>,
    /// How long a dropped agent keeps its assigned contacts before they are requeued.
    pub agent_grace: Duration,
    /// Websocket ping interval on agent connections; one silent (not even a pong) for three
    /// intervals counts as dropped, so a vanished laptop starts the grace instead of holding
    /// offers until the operating system's TCP timeout.
    pub agent_keepalive: Duration,
    /// fsync every journal commit (turn off only for tests and benchmarks of the rest).
    pub fsync: bool,
    /// Most contacts open at once (waiting, offered or assigned); beyond it intake answers 503,
    /// so a flood with no agents to serve it cannot grow the daemon until the host runs out.
    pub max_open_contacts: usize,
    /// SMTP listener; `None` runs without one.
    pub smtp_addr: Option<SocketAddr>,
    /// LMTP listener, for an MTA's `lmtp:` transport.
    pub lmtp_addr: Option<SocketAddr>,
    /// Outgoing mail relay (lettre URL); `None` keeps outgoing mail in the outbox.
    pub smtp_relay: Option<String>,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The journal could not be opened.
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The metrics recorder could not be installed.
    #[error("metrics: {0}")]
    Metrics(String),
    /// The CA file for https callbacks could not be read.
    #[error("callback TLS: {0}")]
    CallbackTls(String),
    /// The STARTTLS certificate or key could not be loaded.
    #[error("email TLS: {0}")]
    Tls(String),
}

/// An agent known to the daemon (from config or the admin API).
#[derive(Clone, Debug)]
pub struct AgentEntry {
    /// Display name.
    pub name: Option<String>,
    /// Profile as routed.
    pub profile: AgentProfile,
    /// Hex SHA-256 of the agent's token.
    pub token_hash: String,
}

/// What the HTTP layer and agent sessions share. Read-mostly; routing state is not here.
pub struct Shared {
    /// The running configuration, its plan and its classifier; swapped whole on reload.
    pub setup: ArcSwap<Setup>,
    /// Where reloads read the configuration from; `None` runs on the embedded default.
    pub config_path: Option<PathBuf>,
    /// Reloads run one at a time.
    pub reload_lock: tokio::sync::Mutex<()>,
    /// Commands to the router task.
    pub router: mpsc::Sender<Command>,
    /// The journal.
    pub journal: Journal,
    /// Open contacts' records, for offers and lookups.
    pub contacts: DashMap<u64, Arc<ContactRecord>>,
    /// Agents by id.
    pub agents: DashMap<String, AgentEntry>,
    /// Agent id by token hash.
    pub tokens: DashMap<String, String>,
    /// Answers already given, by idempotency key; `None` while the first request is in flight.
    pub idempotency: DashMap<String, Option<serde_json::Value>>,
    /// Next contact id.
    pub next_id: AtomicU64,
    /// Admin bearer token.
    pub admin_token: Option<String>,
    /// Intake signing secret.
    pub webhook_secret: Option<String>,
    /// Renders /metrics.
    pub metrics: Option<PrometheusHandle>,
    /// True once replay is done and the router task runs.
    pub ready: AtomicBool,
    /// Flips to true when shutdown begins; sessions watch it.
    pub shutting_down: watch::Receiver<bool>,
    /// Session ids for agent connections.
    pub next_session: AtomicU64,
    /// Grace for dropped agents.
    pub agent_grace: Duration,
    /// Ping interval on agent connections (see [`Settings::agent_keepalive`]).
    pub agent_keepalive: Duration,
    /// Most contacts open at once before intake answers 503.
    pub max_open_contacts: usize,
    /// The email channel.
    pub email: EmailChannel,
    /// Open customer chats.
    pub chat: crate::channels::chat::ChatRoom,
}

/// One loaded configuration: what it says, the plan it compiles to, and the classifier built
/// from its rules and intents. Readers take a snapshot (`shared.setup()`) and keep using it for
/// the request at hand, so a reload never changes the rules under a contact mid-way.
#[derive(Debug)]
pub struct Setup {
    /// The configuration.
    pub config: Config,
    /// The compiled plan (names to ids). After reloads it may hold queues and skills the
    /// configuration no longer has, kept until their contacts drain.
    pub plan: RoutingPlan,
    /// Rules and intent model.
    pub classifier: crate::classify::Classifier,
    /// The time zone rules read `hour` and `weekday` in.
    pub time_zone: jiff::tz::TimeZone,
}

impl Setup {
    /// The setup for a freshly loaded configuration; `previous` is the plan it replaces, whose
    /// ids it keeps.
    pub fn new(config: Config, previous: Option<&RoutingPlan>) -> Setup {
        let plan = match previous {
            Some(previous) => config.routing_plan_after(previous),
            None => config.routing_plan(),
        };
        Setup {
            classifier: config.classifier(),
            time_zone: config.classify_time_zone(),
            plan,
            config,
        }
    }

    /// Open contacts from the journal whose queue or skills the configuration no longer has
    /// (a queue removed by a reload and then a restart) keep being routed: their queue comes
    /// back as a draining queue with the default rules, their skills as plan skills. Nothing
    /// new can go there.
    pub fn adopt_orphans<'a>(&mut self, open: impl Iterator<Item = &'a ContactRecord>) {
        for record in open {
            if self.plan.queue_id(&record.queue).is_none() {
                warn!(
                    contact = record.id,
                    queue = %record.queue,
                    channel = %record.channel,
                    "an open contact's queue is not in the configuration; it drains with default rules"
                );
                let mut queue = crate::router::QueuePlan::new(record.queue.clone());
                if let Some(default) = self
                    .plan
                    .queue_id(&self.config.routing.default_queue)
                    .map(|id| self.plan.queue(id).clone())
                {
                    queue.sla = default.sla;
                    queue.offer_timeout = default.offer_timeout;
                    queue.wrap_up = default.wrap_up;
                }
                self.plan.queues.push(queue);
            }
            for skill in record.skills.keys() {
                if self.plan.skill_id(skill).is_none() {
                    self.plan.skills.push(skill.clone());
                }
            }
        }
    }

    /// True when new contacts may go to this queue: it is in the configuration (a queue a
    /// reload removed still drains, but takes nothing new).
    pub fn takes_queue(&self, name: &str) -> bool {
        self.config.queues.contains_key(name)
    }

    /// True when new contacts may ask for this skill.
    pub fn knows_skill(&self, name: &str) -> bool {
        self.config.skills.iter().any(|s| s == name)
    }
}

impl Shared {
    /// A snapshot of the running setup.
    pub fn setup(&self) -> Arc<Setup> {
        self.setup.load_full()
    }

    /// The router's view of one contact; `None` if it is not in the router (or the router is
    /// gone).
    pub async fn contact_view(&self, id: ContactId) -> Option<ContactView> {
        let (tx, rx) = oneshot::channel();
        self.router
            .send(Command::Contact { id, reply: tx })
            .await
            .ok()?;
        rx.await.ok().flatten()
    }
}

/// What a reload changed, for the admin API and the log.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Reloaded {
    /// Queues in the new configuration.
    pub queues: usize,
    /// Rules in the new configuration.
    pub rules: usize,
    /// Intents the model learned (0 without a model).
    pub intents: usize,
    /// Queues the new configuration dropped that still hold contacts; they drain, take
    /// nothing new.
    pub draining_queues: Vec<String>,
}

/// Why a reload was refused; the running configuration stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file could not be read, parsed or validated; every problem is listed.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The router refused the new plan.
    #[error("the router refused the new plan: {0}")]
    Router(#[from] RouterError),
    /// The new file drops a queue a running mailbox still sends mail to (`[email]` takes
    /// effect on restart, so its mailboxes keep the queues they had).
    #[error(
        "queue {queue:?} is removed but mailbox {mailbox} still sends to it; restart to change [email]"
    )]
    MailboxQueue {
        /// The mailbox address.
        mailbox: String,
        /// Its queue.
        queue: String,
    },
    /// The router task is gone (shutting down).
    #[error("the daemon is shutting down")]
    Stopped,
}

/// Loads, validates and compiles the configuration again (the file and the rules and intents
/// it names), hands the router its new plan, then swaps the new setup in. A configuration
/// with any problem leaves the running one in place. Metered as
/// `switchboard_config_reloads_total{result}`.
pub async fn reload(shared: &Shared) -> Result<Reloaded, ReloadError> {
    let _one_at_a_time = shared.reload_lock.lock().await;
    let result = reload_locked(shared).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!(m::CONFIG_RELOADS, "result" => outcome).increment(1);
    match &result {
        Ok(done) => info!(
            queues = done.queues,
            rules = done.rules,
            intents = done.intents,
            draining = ?done.draining_queues,
            "configuration reloaded"
        ),
        Err(e) => warn!(error = %e, "configuration reload refused; the running one stays"),
    }
    result
}

async fn reload_locked(shared: &Shared) -> Result<Reloaded, ReloadError> {
    let path = shared.config_path.clone();
    let previous = shared.setup();
    let previous_plan = previous.plan.clone();
    // Reading files and training the intent model take milliseconds to a second: off the
    // async workers.
    let setup = tokio::task::spawn_blocking(move || {
        let config = match &path {
            Some(path) => Config::load(path)?,
            None => Config::embedded_default(),
        };
        Ok::<_, ReloadError>(Setup::new(config, Some(&previous_plan)))
    })
    .await
    .map_err(|_| ReloadError::Stopped)??;
    if let Some((mailbox, queue)) = shared
        .email
        .config
        .mailboxes
        .iter()
        .find(|(_, queue)| !setup.takes_queue(queue))
    {
        return Err(ReloadError::MailboxQueue {
            mailbox: mailbox.clone(),
            queue: queue.clone(),
        });
    }
    let (tx, rx) = oneshot::channel();
    shared
        .router
        .send(Command::UpdatePlan {
            plan: Box::new(setup.plan.clone()),
            reply: tx,
        })
        .await
        .map_err(|_| ReloadError::Stopped)?;
    rx.await.map_err(|_| ReloadError::Stopped)??;
    let draining_queues = setup
        .plan
        .queues
        .iter()
        .filter(|q| !setup.takes_queue(&q.name))
        .filter(|q| shared.contacts.iter().any(|c| c.queue == q.name))
        .map(|q| q.name.clone())
        .collect();
    let done = Reloaded {
        queues: setup.config.queues.len(),
        rules: setup.classifier.rules().len(),
        intents: setup
            .classifier
            .intent_model()
            .map_or(0, |m| m.intents().len()),
        draining_queues,
    };
    shared.setup.store(Arc::new(setup));
    Ok(done)
}

/// Hex SHA-256 of an agent token: tokens are stored and compared hashed.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Wall-clock milliseconds since the Unix epoch: the router's clock and the journal's times.
pub fn unix_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// A request to the router task.
pub enum Command {
    /// A durable contact to route.
    Queue {
        /// The contact.
        contact: NewContact,
        /// The router's answer.
        reply: oneshot::Sender<Result<(), RouterError>>,
    },
    /// Any other router event; the answer is optional.
    Event {
        /// The event.
        event: Event,
        /// The router's answer.
        reply: Option<oneshot::Sender<Result<(), RouterError>>>,
    },
    /// An event sent by an agent over its websocket: contact-bound events are refused unless
    /// the contact is assigned to that agent.
    AgentEvent {
        /// The agent that sent it.
        agent: AgentId,
        /// The event.
        event: Event,
        /// The router's answer.
        reply: oneshot::Sender<Result<(), RouterError>>,
    },
    /// An agent completes a contact it holds, with the wrap-up code it chose. The code travels
    /// beside the router's event, which has no use for it: the router task keeps it until the
    /// contact's closure is journaled and reported.
    Complete {
        /// The agent that sent it.
        agent: AgentId,
        /// The contact.
        contact: ContactId,
        /// The disposition, already checked by the gateway.
        disposition: Option<String>,
        /// The router's answer.
        reply: oneshot::Sender<Result<(), RouterError>>,
    },
    /// An agent's websocket connected.
    Connect {
        /// The agent.
        agent: AgentId,
        /// Its profile.
        profile: AgentProfile,
        /// This connection.
        session: u64,
        /// Frames to the agent.
        outbox: mpsc::Sender<ServerMessage>,
        /// The hello frame.
        reply: oneshot::Sender<ServerMessage>,
    },
    /// An agent's websocket closed.
    Disconnect {
        /// The agent.
        agent: AgentId,
        /// The connection that closed.
        session: u64,
    },
    /// A customer's message on a contact: the agent holding it gets the frame.
    Deliver {
        /// The contact.
        contact: ContactId,
        /// The `message` frame.
        message: ServerMessage,
    },
    /// A dropped agent's grace ran out.
    GraceExpired {
        /// The agent.
        agent: AgentId,
        /// The connection that dropped.
        session: u64,
    },
    /// One contact's routing view.
    Contact {
        /// The contact.
        id: ContactId,
        /// The view, if the contact is still in the router.
        reply: oneshot::Sender<Option<ContactView>>,
    },
    /// A reloaded configuration's plan; the router switches to it or says why not.
    UpdatePlan {
        /// The new plan, aligned with the running one.
        plan: Box<RoutingPlan>,
        /// The router's answer.
        reply: oneshot::Sender<Result<(), RouterError>>,
    },
    /// Queues and agents, for the admin API.
    Snapshot {
        /// The snapshot.
        reply: oneshot::Sender<Snapshot>,
    },
}

/// Queues and agents as the admin API shows them.
pub struct Snapshot {
    /// Each queue's name and state.
    pub queues: Vec<(String, QueueSnapshot)>,
    /// Every agent seen.
    pub agents: Vec<AgentView>,
    /// The router's clock.
    pub now: Millis,
}

/// A running daemon.
pub struct Daemon {
    shared: Arc<Shared>,
    addr: SocketAddr,
    smtp_addr: Option<SocketAddr>,
    lmtp_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    journal: Journal,
}

impl Daemon {
    /// The address the HTTP listener is bound to (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the daemon's parts share: for [`reload`] and for tests that look inside.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The SMTP listener's address, if one runs.
    pub fn smtp_addr(&self) -> Option<SocketAddr> {
        self.smtp_addr
    }

    /// The LMTP listener's address, if one runs.
    pub fn lmtp_addr(&self) -> Option<SocketAddr> {
        self.lmtp_addr
    }

    /// Graceful shutdown: stop accepting, tell agents, let the router task finish, flush the
    /// journal.
    pub async fn shutdown(self) -> Result<(), DaemonError> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        let journal = self.journal;
        tokio::task::spawn_blocking(move || journal.close())
            .await
            .map_err(|e| DaemonError::Journal(JournalError::Write(e.to_string())))??;
        Ok(())
    }
}

/// Starts the daemon: journal, replay, router task, HTTP. Returns once it is listening.
pub async fn start(
    settings: Settings,
    metrics: Option<PrometheusHandle>,
) -> Result<Daemon, DaemonError> {
    let data_dir = settings.data_dir.clone();
    let fsync = settings.fsync;
    let (journal, replay) = tokio::task::spawn_blocking(move || {
        Journal::open(
            &data_dir,
            JournalOptions {
                synchronous_full: fsync,
                ..JournalOptions::default()
            },
        )
    })
    .await
    .map_err(|e| DaemonError::Journal(JournalError::Write(e.to_string())))??;

    let mut setup = Setup::new(settings.config.clone(), None);
    setup.adopt_orphans(replay.open.iter().map(|open| &open.contact));
    let plan = setup.plan.clone();
    let mut router = Router::new(plan.clone());
    let now = unix_ms();

    let agents: DashMap<String, AgentEntry> = DashMap::new();
    let tokens = DashMap::new();
    for (agent, profile) in settings
        .config
        .agents
        .iter()
        .zip(settings.config.agent_profiles())
    {
        let token_hash = agent.token.as_deref().map(hash_token).unwrap_or_default();
        if !token_hash.is_empty() {
            tokens.insert(token_hash.clone(), agent.id.clone());
        }
        agents.insert(
            agent.id.clone(),
            AgentEntry {
                name: agent.name.clone(),
                profile,
                token_hash,
            },
        );
    }
    for stored in &replay.agents {
        if let Some(profile) = crate::http::profile_from_json(&plan, &stored.id, &stored.profile) {
            tokens.insert(stored.token_hash.clone(), stored.id.clone());
            agents.insert(
                stored.id.clone(),
                AgentEntry {
                    name: stored.name.clone(),
                    profile,
                    token_hash: stored.token_hash.clone(),
                },
            );
        }
    }

    let contacts = DashMap::new();
    let mut replayed = 0usize;
    let mut lost_chats = Vec::new();
    for open in &replay.open {
        let record = &open.contact;
        if record.channel == "chat" {
            // The customer's connection died with the old process and its resume token with
            // it: nobody can come back to this chat, so it counts as abandoned rather than
            // being offered to an agent who would talk to no one.
            lost_chats.push(Record::Closed {
                contact: record.id,
                outcome: "abandoned".into(),
                at: now,
                disposition: None,
            });
            continue;
        }
        match crate::http::new_contact_from_record(&plan, record) {
            Ok(contact) => {
                if router.handle(now, Event::ContactQueued(contact)).is_ok() {
                    contacts.insert(record.id, Arc::new(record.clone()));
                    replayed += 1;
                }
            }
            Err(e) => warn!(
                contact = record.id,
                queue = %record.queue,
                channel = %record.channel,
                error = %e,
                "cannot replay contact"
            ),
        }
    }
    router.drain_actions().for_each(drop);
    if !lost_chats.is_empty() {
        info!(
            chats = lost_chats.len(),
            "chats open at the last stop are recorded as abandoned"
        );
        journal.append(lost_chats).await?;
    }
    let window = crate::config::duration::millis(settings.config.email.reopen_window);
    let reader = journal.clone();
    let threads =
        tokio::task::spawn_blocking(move || reader.thread_index(now.saturating_sub(window)))
            .await
            .map_err(|e| DaemonError::Journal(JournalError::Read(e.to_string())))??;
    let email_tls = match (
        &settings.config.email.tls_cert,
        &settings.config.email.tls_key,
    ) {
        (Some(cert), Some(key)) => {
            Some(email::listener::tls_config(cert, key).map_err(DaemonError::Tls)?)
        }
        _ => None,
    };
    let idempotency = DashMap::new();
    for (key, _, response) in &replay.idempotency {
        idempotency.insert(key.clone(), Some(response.clone()));
    }
    info!(replayed, data_dir = %settings.data_dir.display(), "journal open");

    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: settings.http_addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| DaemonError::Bind {
        addr: settings.http_addr,
        source,
    })?;
    if !addr.ip().is_loopback()
        && settings.admin_token.is_none()
        && settings.webhook_secret.is_none()
    {
        warn!(
            %addr,
            "LISTENING BEYOND LOOPBACK WITH NO ADMIN TOKEN AND NO WEBHOOK SECRET: anyone who can reach \
             this port can post contacts and administer agents. Set SWITCHBOARD_ADMIN_TOKEN and \
             SWITCHBOARD_WEBHOOK_SECRET."
        );
    }

    let (stop, stop_rx) = watch::channel(false);
    let (tx, rx) = mpsc::channel(65_536);
    let shared = Arc::new(Shared {
        setup: ArcSwap::from_pointee(setup),
        config_path: settings.config_path.clone(),
        reload_lock: tokio::sync::Mutex::new(()),
        router: tx,
        journal: journal.clone(),
        contacts,
        agents,
        tokens,
        idempotency,
        next_id: AtomicU64::new(replay.next_contact_id.max(1)),
        admin_token: settings.admin_token.clone(),
        webhook_secret: settings.webhook_secret.clone(),
        metrics,
        ready: AtomicBool::new(false),
        shutting_down: stop_rx.clone(),
        next_session: AtomicU64::new(1),
        agent_grace: settings.agent_grace,
        agent_keepalive: settings.agent_keepalive,
        max_open_contacts: settings.max_open_contacts,
        email: EmailChannel::new(
            settings.config.email.clone(),
            settings.smtp_relay.clone(),
            threads,
        ),
        chat: Default::default(),
    });

    // Pending callbacks are not awaited at shutdown: they are best effort, never durable.
    let callback_tls = crate::notify::tls_client(settings.callback_ca.as_deref())
        .map_err(DaemonError::CallbackTls)?;
    let (callbacks, _deliveries) = Callbacks::start(settings.webhook_secret.clone(), callback_tls);
    let router_task =
        tokio::spawn(RouterTask::new(router, shared.clone(), rx, callbacks).run(stop_rx.clone()));
    shared.ready.store(true, Ordering::SeqCst);
    let app = crate::http::app(shared.clone());
    let mut http_stop = stop_rx.clone();
    let http_task = tokio::spawn(async move {
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            warn!(error = %e, "http server stopped");
        }
    });
    info!(%addr, "listening (HTTP API, agent websocket at /v1/agent/ws, metrics at /metrics)");
    let mut tasks = vec![http_task, router_task];
    tasks.push(tokio::spawn(email::outbound::run(
        shared.clone(),
        stop_rx.clone(),
    )));
    let mut mail_addrs = [None, None];
    let listeners = [
        (settings.smtp_addr, email::smtp::Protocol::Smtp),
        (settings.lmtp_addr, email::smtp::Protocol::Lmtp),
    ];
    for (i, (mail_addr, protocol)) in listeners.into_iter().enumerate() {
        let Some(mail_addr) = mail_addr else { continue };
        let (bound, task) = email::listener::start(
            shared.clone(),
            mail_addr,
            protocol,
            email_tls.clone(),
            stop_rx.clone(),
        )
        .await
        .map_err(|source| DaemonError::Bind {
            addr: mail_addr,
            source,
        })?;
        mail_addrs[i] = Some(bound);
        tasks.push(task);
    }
    Ok(Daemon {
        shared,
        addr,
        smtp_addr: mail_addrs[0],
        lmtp_addr: mail_addrs[1],
        stop,
        tasks,
        journal,
    })
}

/// The router task's state: the router, agent sessions, and what it needs to execute actions.
struct RouterTask {
    router: Router,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    sessions: HashMap<AgentId, (u64, mpsc::Sender<ServerMessage>)>,
    /// Answer times and channels of assigned contacts, for handle time.
    answered_at: HashMap<ContactId, (Millis, Channel)>,
    /// Metric handles per queue, indexed by queue id; grown when a reload adds queues.
    meters: Vec<m::QueueMeters>,
    last_now: Millis,
    callbacks: Callbacks,
    /// Agents whose socket dropped: the dropped session and the presence they had before, so a
    /// reconnect within the grace restores it and only the latest drop's timer counts.
    dropped: HashMap<AgentId, (u64, Presence)>,
    /// State changes of the current round, journaled together.
    records: Vec<Record>,
    /// Who holds each assigned contact, to tell them when it is taken away.
    holders: HashMap<ContactId, AgentId>,
    /// The last state frame sent to each agent, to send only changes.
    last_state: HashMap<AgentId, ServerMessage>,
    /// Dispositions of contacts being completed, from the agent's `complete` until the
    /// router's `ContactLeft` for them: the router is unaware of them.
    dispositions: HashMap<ContactId, String>,
}

impl RouterTask {
    fn new(
        router: Router,
        shared: Arc<Shared>,
        commands: mpsc::Receiver<Command>,
        callbacks: Callbacks,
    ) -> Self {
        let mut task = RouterTask {
            callbacks,
            dropped: HashMap::new(),
            holders: HashMap::new(),
            records: Vec::new(),
            last_state: HashMap::new(),
            dispositions: HashMap::new(),
            last_now: router.now(),
            router,
            shared,
            commands,
            sessions: HashMap::new(),
            answered_at: HashMap::new(),
            meters: Vec::new(),
        };
        task.register_meters();
        task
    }

    /// Registers the handles of queues that have none yet. Queue ids are stable across
    /// reloads (a removed queue keeps its id while it drains), so existing handles stay valid.
    fn register_meters(&mut self) {
        let plan = self.router.plan();
        for queue in plan.queues.get(self.meters.len()..).unwrap_or_default() {
            self.meters.push(m::QueueMeters::register(&queue.name));
        }
    }

    fn meters(&mut self, queue: crate::model::QueueId) -> &mut m::QueueMeters {
        &mut self.meters[usize::from(queue.0)]
    }

    /// The router's clock: wall time, never going backwards.
    fn now(&mut self) -> Millis {
        self.last_now = self.last_now.max(unix_ms());
        self.last_now
    }

    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut gauges = tokio::time::interval(Duration::from_secs(1));
        let stopping = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::pin!(stopping);
        loop {
            let wake = self.router.next_deadline().map(|at| {
                let now = unix_ms();
                tokio::time::Instant::now() + Duration::from_millis(at.saturating_sub(now))
            });
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => break,
                },
                _ = async { tokio::time::sleep_until(wake.expect("guarded")).await }, if wake.is_some() => {
                    let now = self.now();
                    self.router.tick(now);
                }
                _ = gauges.tick() => self.refresh_gauges(),
                _ = &mut stopping => break,
            }
            self.execute_actions();
        }
        for (_, (_, outbox)) in self.sessions.drain() {
            let _ = outbox.try_send(ServerMessage::Shutdown);
        }
    }

    fn command(&mut self, cmd: Command) {
        let now = self.now();
        match cmd {
            Command::Queue { contact, reply } => {
                let id = contact.id;
                let result = self.router.handle(now, Event::ContactQueued(contact));
                if result.is_ok() {
                    self.log_contact(id, None, None, "contact queued");
                    self.callback(id, "queued", serde_json::Value::Null);
                }
                let _ = reply.send(result);
            }
            Command::Event { event, reply } => {
                let result = self.event(now, event);
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            Command::AgentEvent {
                agent,
                event,
                reply,
            } => {
                let _ = reply.send(self.agent_event(now, agent, event));
            }
            Command::Complete {
                agent,
                contact,
                disposition,
                reply,
            } => {
                // Kept before the router sees the completion, whose ContactLeft action takes it
                // for the journal; dropped again if the router refuses.
                if let Some(code) = disposition {
                    self.dispositions.insert(contact, code);
                }
                let result = self.agent_event(now, agent, Event::ContactCompleted { contact });
                if result.is_err() {
                    self.dispositions.remove(&contact);
                }
                let _ = reply.send(result);
            }
            Command::Connect {
                agent,
                profile,
                session,
                outbox,
                reply,
            } => {
                let previous = self.router.agent(&agent).map(|v| v.presence);
                let presence = match (
                    self.dropped.remove(&agent),
                    self.sessions.contains_key(&agent),
                ) {
                    // Back within the grace: as before the drop (away for lunch stays away).
                    (Some((_, before)), _) => before,
                    // A second connection takes over; the state does not change.
                    (None, true) => previous.clone().unwrap_or(Presence::Available),
                    // A fresh login.
                    (None, false) => Presence::Available,
                };
                let presence = if presence == Presence::Offline {
                    Presence::Available
                } else {
                    presence
                };
                if previous.is_some() {
                    let _ = self
                        .router
                        .handle(now, Event::AgentProfileChanged { profile });
                    let _ = self.router.handle(
                        now,
                        Event::AgentPresence {
                            agent: agent.clone(),
                            presence,
                        },
                    );
                } else {
                    let _ = self
                        .router
                        .handle(now, Event::AgentOnline { profile, presence });
                }
                if let Some((_, old)) = self.sessions.insert(agent.clone(), (session, outbox)) {
                    // The older connection is closed: one connection acts for an agent.
                    let _ = old.try_send(ServerMessage::Shutdown);
                }
                metrics::gauge!(m::AGENT_CONNECTIONS).set(self.sessions.len() as f64);
                let hello = self.hello(&agent);
                self.last_state.remove(&agent);
                let _ = reply.send(hello);
            }
            Command::Disconnect { agent, session } => {
                if self
                    .sessions
                    .get(&agent)
                    .is_some_and(|(s, _)| *s == session)
                {
                    self.drop_session(&agent, session);
                }
            }
            Command::GraceExpired { agent, session } => {
                let latest_drop = self.dropped.get(&agent).is_some_and(|(s, _)| *s == session);
                if latest_drop && !self.sessions.contains_key(&agent) {
                    self.dropped.remove(&agent);
                    let _ = self.router.handle(now, Event::AgentOffline { agent });
                }
            }
            Command::Deliver { contact, message } => {
                if let Some(agent) = self.holders.get(&contact).cloned() {
                    self.send(&agent, message);
                }
            }
            Command::Contact { id, reply } => {
                let _ = reply.send(self.router.contact(id));
            }
            Command::UpdatePlan { plan, reply } => {
                let result = self.router.update_plan(*plan);
                self.register_meters();
                let _ = reply.send(result);
            }
            Command::Snapshot { reply } => {
                let queues = (0..self.router.plan().queues.len())
                    .map(|q| {
                        let id = crate::model::QueueId(q as u16);
                        (
                            self.router.plan().queue(id).name.clone(),
                            self.router.queue(id),
                        )
                    })
                    .collect();
                let agents = self
                    .router
                    .agent_ids()
                    .filter_map(|a| self.router.agent(a))
                    .collect();
                let _ = reply.send(Snapshot {
                    queues,
                    agents,
                    now,
                });
            }
        }
    }

    /// Applies a router event; the agent whose state it may change hears its new state.
    fn event(&mut self, now: Millis, event: Event) -> Result<(), RouterError> {
        let rejected = match &event {
            Event::OfferRejected { contact, .. } => self.router.contact(*contact).map(|c| c.queue),
            _ => None,
        };
        // The agent whose state this event may change: it hears its new state after.
        let agent = match &event {
            Event::AgentPresence { agent, .. }
            | Event::WrapUpDone { agent, .. }
            | Event::OfferAccepted { agent, .. }
            | Event::OfferRejected { agent, .. } => Some(agent.clone()),
            Event::ContactCompleted { contact } | Event::ContactTransferred { contact, .. } => {
                self.router.contact(*contact).and_then(|c| c.agent)
            }
            _ => None,
        };
        let result = self.router.handle(now, event);
        if let (Ok(()), Some(agent)) = (&result, &agent) {
            self.send_state(agent);
        }
        if let (Ok(()), Some(queue)) = (&result, rejected) {
            self.meters(queue).offer(m::OfferOutcome::Rejected);
        }
        result
    }

    /// Applies an event an agent sent: contact-bound events are refused unless the contact is
    /// assigned to that agent.
    fn agent_event(
        &mut self,
        now: Millis,
        agent: AgentId,
        event: Event,
    ) -> Result<(), RouterError> {
        let contact = match &event {
            Event::ContactCompleted { contact }
            | Event::ContactTransferred { contact, .. }
            | Event::ContactResponded { contact } => Some(*contact),
            _ => None,
        };
        if let Some(contact) = contact {
            let holds = self.router.contact(contact).is_some_and(|c| {
                c.status == crate::router::ContactStatus::Assigned
                    && c.agent.as_ref() == Some(&agent)
            });
            if !holds {
                return Err(RouterError::NotAssigned(contact));
            }
        }
        self.event(now, event)
    }

    /// An agent's connection is gone (closed, or stuck): offers go to others at once, assigned
    /// contacts wait for the grace period.
    fn drop_session(&mut self, agent: &AgentId, session: u64) {
        self.sessions.remove(agent);
        self.last_state.remove(agent);
        metrics::gauge!(m::AGENT_CONNECTIONS).set(self.sessions.len() as f64);
        let before = self
            .router
            .agent(agent)
            .map_or(Presence::Available, |v| v.presence);
        self.dropped.insert(agent.clone(), (session, before));
        let away = Presence::Away {
            reason: "disconnected".into(),
        };
        let now = self.last_now;
        let _ = self.router.handle(
            now,
            Event::AgentPresence {
                agent: agent.clone(),
                presence: away,
            },
        );
        let tx = self.shared.router.clone();
        let grace = self.shared.agent_grace;
        let agent = agent.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = tx.send(Command::GraceExpired { agent, session }).await;
        });
    }

    fn hello(&self, agent: &AgentId) -> ServerMessage {
        let view = self.router.agent(agent);
        let entry = self.shared.agents.get(agent.as_str());
        let skills = view
            .as_ref()
            .map(|v| {
                v.profile
                    .skills
                    .iter()
                    .map(|(s, l)| (self.router.plan().skills[usize::from(s.0)].clone(), l))
                    .collect()
            })
            .unwrap_or_default();
        let assigned = view
            .as_ref()
            .map(|v| {
                v.assigned
                    .iter()
                    .filter_map(|c| self.summary(*c, None))
                    .collect()
            })
            .unwrap_or_default();
        ServerMessage::Hello {
            agent: agent.to_string(),
            name: entry.and_then(|e| e.name.clone()),
            state: view
                .map(|v| activity_name(&v.activity).to_string())
                .unwrap_or_else(|| "offline".into()),
            skills,
            assigned,
        }
    }

    /// A debug line about a contact, with its id, queue and channel, so that one search for a
    /// contact finds its whole story. Never its body or customer: those are personal data.
    /// `queue` overrides the router's view (gone once the contact has left).
    fn log_contact(
        &self,
        contact: ContactId,
        queue: Option<crate::model::QueueId>,
        agent: Option<&AgentId>,
        event: &str,
    ) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let record = self.shared.contacts.get(&contact.0).map(|r| r.clone());
        let queue = queue
            .or_else(|| self.router.contact(contact).map(|c| c.queue))
            .map(|q| self.queue_name(q))
            .or_else(|| record.as_ref().map(|r| r.queue.clone()))
            .unwrap_or_default();
        let channel = record.map(|r| r.channel.clone()).unwrap_or_default();
        debug!(
            contact = contact.0,
            %queue,
            %channel,
            agent = agent.map(AgentId::as_str),
            "{event}"
        );
    }

    fn queue_name(&self, q: crate::model::QueueId) -> String {
        self.router.plan().queue(q).name.clone()
    }

    /// The contact as an agent sees it; `preview` cuts the body.
    fn summary(&self, id: ContactId, preview: Option<usize>) -> Option<ContactSummary> {
        let record = self.shared.contacts.get(&id.0)?.clone();
        let view = self.router.contact(id);
        let body = record
            .payload
            .get("body")
            .and_then(|b| b.as_str())
            .unwrap_or_default();
        let body = match preview {
            Some(n) => body.chars().take(n).collect(),
            None => body.to_string(),
        };
        let sla = view.as_ref().map(|v| SlaDeadlines {
            first_response_due: v.first_response_due,
            responded: v.responded,
            resolution_due: v.resolution_due,
        });
        Some(ContactSummary {
            id: id.to_string(),
            channel: record.channel.clone(),
            queue: view
                .as_ref()
                .map(|v| self.queue_name(v.queue))
                .unwrap_or_else(|| record.queue.clone()),
            priority: view.map(|v| v.priority.0).unwrap_or(record.priority),
            subject: record
                .payload
                .get("subject")
                .and_then(|s| s.as_str())
                .map(String::from),
            body,
            customer: record
                .payload
                .get("customer")
                .filter(|c| !c.is_null())
                .cloned(),
            sla,
        })
    }

    /// Tells the agent that held a contact that it no longer does.
    fn tell_holder(&mut self, contact: ContactId, reason: &str) {
        if let Some(agent) = self.holders.remove(&contact) {
            let msg = ServerMessage::ContactEnded {
                contact_id: contact.to_string(),
                reason: reason.into(),
            };
            self.send(&agent, msg);
        }
    }

    /// Sends a lifecycle event to the contact's callback URL, if it gave one.
    fn callback(&self, contact: ContactId, event: &str, detail: serde_json::Value) {
        let Some(record) = self.shared.contacts.get(&contact.0) else {
            return;
        };
        let Some(url) = record.payload.get("callback_url").and_then(|u| u.as_str()) else {
            return;
        };
        let body = serde_json::json!({
            "event": event,
            "contact_id": contact.to_string(),
            "queue": record.queue,
            "at": self.last_now,
            "detail": detail,
        });
        let about = crate::notify::CallbackContact {
            id: contact.0,
            queue: record.queue.clone(),
            channel: record.channel.clone(),
        };
        self.callbacks.send(url, about, &body);
    }

    fn send(&mut self, agent: &AgentId, msg: ServerMessage) {
        let Some((session, outbox)) = self.sessions.get(agent) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = outbox.try_send(msg) {
            // The client stopped reading: treat it as gone rather than drop frames silently.
            warn!(%agent, "agent connection is not reading its frames; disconnecting it");
            let session = *session;
            self.drop_session(agent, session);
        }
    }

    /// Records a state change; written with the others of the same round (see
    /// `execute_actions`).
    fn status(&mut self, contact: ContactId, status: &str, agent: Option<&AgentId>) {
        self.records.push(Record::Status {
            contact: contact.0,
            status: status.into(),
            agent: agent.map(|a| a.to_string()),
            at: self.last_now,
        });
    }

    fn execute_actions(&mut self) {
        let actions: Vec<Action> = self.router.drain_actions().collect();
        let now = self.last_now;
        self.execute(actions, now);
        // One journal request for every state change of this round, not one each: at moderate
        // load each request would otherwise be its own transaction and fsync.
        if !self.records.is_empty() {
            let records = std::mem::take(&mut self.records);
            let n = records.len();
            if let Err(e) = self.shared.journal.append_nowait(records) {
                warn!(records = n, error = %e, "state changes not journaled");
            }
        }
    }

    fn execute(&mut self, actions: Vec<Action>, now: Millis) {
        for action in actions {
            match action {
                Action::Offer {
                    contact,
                    agent,
                    expires_at,
                    ..
                } => {
                    self.status(contact, "offered", Some(&agent));
                    self.log_contact(contact, None, Some(&agent), "offer made");
                    if let Some(summary) = self.summary(contact, Some(200)) {
                        let offer = ServerMessage::Offer {
                            offer_id: contact.to_string(),
                            contact: summary,
                            expires_in_ms: expires_at.saturating_sub(now),
                        };
                        self.send(&agent, offer);
                    }
                }
                Action::RevokeOffer {
                    contact,
                    agent,
                    reason,
                } => {
                    let queue = self.router.contact(contact).map(|c| c.queue);
                    let (reason, outcome) = match reason {
                        RevokeReason::Expired => ("expired", m::OfferOutcome::Expired),
                        RevokeReason::ContactLeft => ("contact_left", m::OfferOutcome::Revoked),
                        RevokeReason::AgentUnavailable => {
                            ("agent_unavailable", m::OfferOutcome::Revoked)
                        }
                        RevokeReason::Transferred => ("transferred", m::OfferOutcome::Revoked),
                    };
                    self.log_contact(contact, queue, Some(&agent), "offer withdrawn");
                    if let Some(queue) = queue {
                        self.meters(queue).offer(outcome);
                        self.status(contact, "queued", None);
                    }
                    self.send(
                        &agent,
                        ServerMessage::OfferRevoked {
                            offer_id: contact.to_string(),
                            reason: reason.into(),
                        },
                    );
                }
                Action::Assigned {
                    contact,
                    agent,
                    queue,
                    waited,
                } => {
                    let channel = self
                        .router
                        .contact(contact)
                        .map(|c| c.channel)
                        .unwrap_or(Channel::Webhook);
                    self.meters(queue).offer(m::OfferOutcome::Accepted);
                    // A contact answered again after a requeue was already counted.
                    if self.answered_at.insert(contact, (now, channel)).is_none() {
                        self.meters(queue).answered(channel, waited as f64 / 1000.0);
                    }
                    self.status(contact, "assigned", Some(&agent));
                    self.log_contact(contact, None, Some(&agent), "contact assigned");
                    self.holders.insert(contact, agent.clone());
                    self.callback(
                        contact,
                        "assigned",
                        serde_json::json!({"agent": agent.as_str(), "waited_ms": waited}),
                    );
                    if let Some(summary) = self.summary(contact, None) {
                        self.send(&agent, ServerMessage::Assigned { contact: summary });
                    }
                    if self.shared.chat.contains(contact.0) {
                        let name = self
                            .shared
                            .agents
                            .get(agent.as_str())
                            .and_then(|a| a.name.clone())
                            .unwrap_or_else(|| agent.to_string());
                        self.shared.chat.tell(
                            contact.0,
                            crate::channels::chat::ChatFrame::AgentJoined { name },
                        );
                    }
                    self.send_state(&agent);
                }
                Action::Requeued { contact, .. } => {
                    self.log_contact(contact, None, None, "contact requeued");
                    self.status(contact, "queued", None);
                    self.tell_holder(contact, "requeued");
                }
                Action::Transferred { contact, .. } => {
                    self.log_contact(contact, None, None, "contact transferred");
                    self.status(contact, "queued", None);
                    self.tell_holder(contact, "transferred");
                }
                Action::SlaWarning {
                    contact,
                    kind,
                    deadline,
                } => {
                    self.callback(
                        contact,
                        "sla_warning",
                        serde_json::json!({"kind": sla_kind(kind), "deadline": deadline}),
                    );
                    self.log_contact(contact, None, None, "SLA deadline near");
                    // Counted like breaches, by the queue the contact is in now: a warning
                    // rate rising ahead of breaches is the early sign ops can still act on.
                    if let Some(c) = self.router.contact(contact) {
                        self.meters(c.queue).sla_warned();
                    }
                    if let Some(agent) = self.router.contact(contact).and_then(|c| c.agent) {
                        let msg = ServerMessage::SlaWarning {
                            contact_id: contact.to_string(),
                            kind: sla_kind(kind).into(),
                            due_in_ms: deadline as i64 - now as i64,
                        };
                        self.send(&agent, msg);
                    }
                }
                Action::SlaBreach {
                    contact,
                    kind,
                    deadline,
                    ..
                } => {
                    self.callback(
                        contact,
                        "sla_breached",
                        serde_json::json!({"kind": sla_kind(kind), "deadline": deadline}),
                    );
                    self.log_contact(contact, None, None, "SLA deadline missed");
                    if let Some(c) = self.router.contact(contact) {
                        self.meters(c.queue).sla_breached();
                    }
                }
                Action::WrapUpStarted { agent, contact, .. } => {
                    self.status(contact, "wrap_up", Some(&agent));
                    self.send_state(&agent);
                }
                Action::WrapUpEnded { agent, .. } => self.send_state(&agent),
                Action::AgentAutoPaused { agent, .. } => self.send_state(&agent),
                Action::ContactLeft {
                    contact,
                    queue,
                    outcome,
                } => {
                    match outcome {
                        Outcome::Completed => {
                            self.holders.remove(&contact);
                        }
                        Outcome::Abandoned => self.tell_holder(contact, "abandoned"),
                        Outcome::Cancelled => self.tell_holder(contact, "cancelled"),
                    }
                    let outcome_name = match outcome {
                        Outcome::Completed => "completed",
                        Outcome::Abandoned => "abandoned",
                        Outcome::Cancelled => "cancelled",
                    };
                    let left = match outcome {
                        Outcome::Completed => "contact completed",
                        Outcome::Abandoned => "contact abandoned",
                        Outcome::Cancelled => "contact cancelled",
                    };
                    self.log_contact(contact, Some(queue), None, left);
                    if outcome == Outcome::Abandoned {
                        self.meters(queue).abandoned();
                    }
                    if let Some((answered, channel)) = self.answered_at.remove(&contact) {
                        self.meters(queue)
                            .handled(channel, now.saturating_sub(answered) as f64 / 1000.0);
                    }
                    // Only a completion has a disposition; any other exit discards one.
                    let disposition = self
                        .dispositions
                        .remove(&contact)
                        .filter(|_| outcome == Outcome::Completed);
                    let detail = match outcome {
                        Outcome::Completed => serde_json::json!({ "disposition": disposition }),
                        Outcome::Abandoned | Outcome::Cancelled => serde_json::Value::Null,
                    };
                    self.callback(contact, outcome_name, detail);
                    self.records.push(Record::Closed {
                        contact: contact.0,
                        outcome: outcome_name.into(),
                        at: now,
                        disposition,
                    });
                    self.shared.contacts.remove(&contact.0);
                    let reason = match outcome {
                        Outcome::Completed => "agent_closed",
                        Outcome::Abandoned => "abandoned",
                        Outcome::Cancelled => "cancelled",
                    };
                    self.shared.chat.end(contact.0, reason);
                }
                Action::Position {
                    contact,
                    position,
                    estimated_wait,
                } => {
                    let frame = crate::channels::chat::ChatFrame::Queued {
                        position,
                        estimated_wait_seconds: estimated_wait.map(|ms| ms.div_ceil(1000)),
                    };
                    self.shared.chat.tell(contact.0, frame);
                }
                Action::Escalated { .. } => {}
            }
        }
    }

    /// Tells the agent its state, if it changed since the last frame.
    fn send_state(&mut self, agent: &AgentId) {
        let Some(view) = self.router.agent(agent) else {
            return;
        };
        let reason = match &view.activity {
            AgentActivity::Away(r) => Some(r.clone()),
            _ => None,
        };
        let msg = ServerMessage::State {
            state: activity_name(&view.activity).into(),
            reason,
        };
        if self.last_state.get(agent) != Some(&msg) && self.sessions.contains_key(agent) {
            self.last_state.insert(agent.clone(), msg.clone());
            self.send(agent, msg);
        }
    }

    fn refresh_gauges(&mut self) {
        let now = self.now();
        for q in 0..self.router.plan().queues.len() {
            let id = crate::model::QueueId(q as u16);
            let snap = self.router.queue(id);
            let oldest = snap
                .oldest_arrival
                .map_or(0.0, |t| now.saturating_sub(t) as f64 / 1000.0);
            self.meters[q].line(snap.waiting, oldest, snap.counters.service_level());
            let plan = self.router.plan().queue(id);
            self.meters[q].answers_and_targets(
                snap.counters.answered,
                snap.counters.answered_within_threshold,
                plan.service_level_target,
                plan.service_level_threshold as f64 / 1000.0,
                plan.sla.first_response as f64 / 1000.0,
            );
        }
        let mut by_state: HashMap<&str, usize> =
            ["offline", "available", "away", "busy", "wrap_up"]
                .into_iter()
                .map(|s| (s, 0))
                .collect();
        for agent in self.router.agent_ids() {
            if let Some(view) = self.router.agent(agent) {
                *by_state.entry(activity_name(&view.activity)).or_default() += 1;
            }
        }
        for (state, n) in by_state {
            metrics::gauge!(m::AGENTS, "state" => state).set(n as f64);
        }
    }
}

/// The state name agents and dashboards see.
pub fn activity_name(activity: &AgentActivity) -> &'static str {
    match activity {
        AgentActivity::Offline => "offline",
        AgentActivity::Away(_) => "away",
        AgentActivity::Idle => "available",
        AgentActivity::Busy => "busy",
        AgentActivity::WrapUp => "wrap_up",
    }
}

fn sla_kind(kind: SlaKind) -> &'static str {
    match kind {
        SlaKind::FirstResponse => "first_response",
        SlaKind::Resolution => "resolution",
    }
}
