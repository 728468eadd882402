//! Typed configuration: the TOML file an operator writes, checked as a whole and compiled into
//! the [`RoutingPlan`](crate::router::RoutingPlan) the router runs on.
//!
//! Loading happens in three steps, each with its own error:
//!
//! 1. read the file ([`ConfigError::Io`]);
//! 2. parse it into [`Config`] ([`ConfigError::Parse`]): every struct has
//!    `deny_unknown_fields`, so a misspelt key is an error rather than a silently ignored line,
//!    and durations must be strings such as `"30s"` (see [`duration`]);
//! 3. [`Config::validate`] checks names, ranges and references across the whole file and reports
//!    every problem at once with its path ([`ConfigError::Invalid`]), so a user fixes the file in
//!    one pass instead of one error per run.
//!
//! A validated config compiles infallibly: [`Config::routing_plan`] interns skills in the order
//! of the `skills` list and queues in name order, and fills queue-level settings from the
//! `[routing]` defaults; [`Config::agent_profiles`] gives the demo agents the daemon starts with.
//!
//! Decisions a reader may look for:
//!
//! - A queue's `sla` has no default: which deadlines a queue promises is a business decision the
//!   file should state, not inherit by accident.
//! - Every other queue-level setting (selection, offer timeout, wrap-up, service level, short
//!   abandon, preferred-agent timeout) falls back to the same key under `[routing]`, whose own
//!   defaults match [`QueuePlan::new`](crate::router::QueuePlan::new).
//! - Names of skills, queues and SLA policies are restricted to ASCII letters, digits, `_` and
//!   `-`: they end up in metric labels, URLs and problem paths, where anything else is trouble.
//! - Agent tokens are secrets: [`AgentConfig`]'s `Debug` hides them, and problems about them never
//!   quote them.

mod chat;
mod classify;
mod compile;
pub mod duration;
mod email;
mod error;
mod hours;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

pub use chat::{ChatConfig, MenuConfig, MenuOption};
pub use classify::ClassifyConfig;
pub use email::{AcknowledgementConfig, EmailConfig, RateLimitConfig};
pub use error::{ConfigError, Problem};
pub use hours::BusinessHoursConfig;

/// The daemon's built-in configuration, used when no file is given; also the shipped example.
const EMBEDDED_DEFAULT: &str = include_str!("../../config/switchboard.toml");

/// `[server]`: what `serve` would otherwise take from flags and the environment, for
/// deployments that keep everything in one file (a mounted config, a config-management
/// template). A flag or its environment variable wins over the file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// HTTP listener (`SWITCHBOARD_HTTP_ADDR`; default 127.0.0.1:8080).
    pub http_addr: Option<std::net::SocketAddr>,
    /// Journal directory (`SWITCHBOARD_DATA_DIR`; default `./data`, from the working
    /// directory).
    pub data_dir: Option<std::path::PathBuf>,
    /// Bearer token for the admin API (`SWITCHBOARD_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// Secret of HMAC-signed intake (`SWITCHBOARD_WEBHOOK_SECRET`).
    pub webhook_secret: Option<String>,
}

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Every skill name used anywhere in the file; a skill not listed here is a typo.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Center-wide routing settings and the defaults for every queue.
    pub routing: RoutingConfig,
    /// SLA policies by name, referenced by queues.
    #[serde(default)]
    pub sla: BTreeMap<String, SlaConfig>,
    /// Queues by name. Name order is also the order of queue ids in the routing plan.
    #[serde(default)]
    pub queues: BTreeMap<String, QueueConfig>,
    /// Agents the daemon knows at start, so a new user can try it without provisioning.
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
    /// The email channel.
    #[serde(default)]
    pub email: EmailConfig,
    /// The customer chat channel.
    #[serde(default)]
    pub chat: ChatConfig,
    /// Where `serve` listens and keeps its data, and its secrets; each key is overridden by its
    /// flag or environment variable. Read at start: a reload does not move the listener.
    #[serde(default)]
    pub server: ServerConfig,
    /// Classification: the rules file, the intent training data, the rules' time zone.
    #[serde(default)]
    pub classify: ClassifyConfig,
    /// The rules `classify.rules` names, read when the config is loaded.
    #[serde(skip)]
    pub rules: Vec<crate::classify::rules::RuleSpec>,
    /// The labeled examples `classify.intents` names, read when the config is loaded.
    #[serde(skip)]
    pub intent_examples: Vec<crate::classify::intent::Example>,
}

/// `[routing]`: center-wide settings, and defaults for the keys a queue may leave out.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Queue for contacts whose intake and classification name none.
    pub default_queue: String,
    /// Default time an agent has to accept an offer.
    #[serde(
        default = "defaults::offer_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub offer_timeout: Duration,
    /// Default after-contact work time; zero frees the agent's slot at completion.
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub wrap_up: Duration,
    /// Default way to pick among several idle qualified agents.
    #[serde(default)]
    pub selection: SelectionConfig,
    /// Default service-level objective of a queue.
    #[serde(default)]
    pub service_level: ServiceLevelConfig,
    /// Default wait below which an abandon counts as a short abandon.
    #[serde(
        default = "defaults::short_abandon",
        deserialize_with = "duration::deserialize"
    )]
    pub short_abandon: Duration,
    /// Default wait for a contact's preferred agent before anyone qualified may take it.
    #[serde(
        default = "defaults::preferred_agent_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub preferred_agent_timeout: Duration,
    /// Expired offers in a row after which an agent is put away (redirect on no answer).
    #[serde(default = "defaults::max_missed_offers")]
    pub max_missed_offers: u32,
    /// While an agent holds a call, offer it nothing else.
    #[serde(default = "defaults::voice_blocks_other_channels")]
    pub voice_blocks_other_channels: bool,
    /// Shortest gap between two position / estimated-wait updates to one waiting customer.
    #[serde(
        default = "defaults::position_update_interval",
        deserialize_with = "duration::deserialize"
    )]
    pub position_update_interval: Duration,
}

/// How a queue picks among several idle agents that qualify for a contact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionConfig {
    /// Whoever has waited longest: spreads work evenly.
    #[default]
    LongestIdle,
    /// Highest summed level on the contact's skills: best match first.
    MostSkilled,
    /// Smallest share of capacity in use: spreads load across multitasking agents.
    LeastOccupied,
}

/// `[sla.NAME]`: deadlines a contact gets from its queue, counted from its arrival.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaConfig {
    /// Time to the first agent response (answering, for voice).
    #[serde(deserialize_with = "duration::deserialize")]
    pub first_response: Duration,
    /// Time to completion, if the policy promises one.
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub resolution: Option<Duration>,
    /// Fraction of a deadline at which a warning goes out, in (0, 1).
    #[serde(default = "defaults::warn_at")]
    pub warn_at: f64,
    /// What happens when a deadline passes.
    #[serde(default)]
    pub on_breach: BreachConfig,
}

/// `on_breach`: actions taken when an SLA deadline passes. All off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreachConfig {
    /// Added to the contact's priority.
    #[serde(default)]
    pub raise_priority: i32,
    /// Apply the queue's next escalation step at once.
    #[serde(default)]
    pub escalate: bool,
    /// Tell supervisors (email or webhook, as the daemon is configured).
    #[serde(default)]
    pub notify: bool,
}

/// `service_level`: the queue's answer-time objective, e.g. 80 % answered within 20 s.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLevelConfig {
    /// Answers within this wait count as on time.
    #[serde(deserialize_with = "duration::deserialize")]
    pub threshold: Duration,
    /// Share of contacts to answer on time, in (0, 1].
    pub target: f64,
}

impl Default for ServiceLevelConfig {
    /// The industry's 80/20.
    fn default() -> Self {
        ServiceLevelConfig {
            threshold: Duration::from_secs(20),
            target: 0.8,
        }
    }
}

/// `[queues.NAME]`: one routing target. Keys left out take the `[routing]` default.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Added to every contact's priority; a VIP queue outranks the rest.
    #[serde(default)]
    pub priority: i32,
    /// Name of the `[sla.*]` policy for contacts in this queue.
    pub sla: String,
    /// Skills every contact needs, with minimum levels 1-10.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Skills wanted until an escalation step drops them (`drop_optional`).
    #[serde(default)]
    pub optional_skills: BTreeMap<String, u8>,
    /// Overrides `routing.selection`.
    #[serde(default)]
    pub selection: Option<SelectionConfig>,
    /// Overrides `routing.offer_timeout`.
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub offer_timeout: Option<Duration>,
    /// Overrides `routing.wrap_up`.
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub wrap_up: Option<Duration>,
    /// Overrides `routing.service_level`.
    #[serde(default)]
    pub service_level: Option<ServiceLevelConfig>,
    /// Overrides `routing.short_abandon`.
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub short_abandon: Option<Duration>,
    /// Overrides `routing.preferred_agent_timeout`.
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub preferred_agent_timeout: Option<Duration>,
    /// Steps that widen the net as a contact waits, in increasing order of `after`.
    #[serde(default)]
    pub escalation: Vec<EscalationStepConfig>,
    /// When live channels (chat) are staffed; absent means always.
    #[serde(default)]
    pub business_hours: Option<BusinessHoursConfig>,
}

/// `[[queues.NAME.escalation]]`: after a wait in the queue, widen the net.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationStepConfig {
    /// Wait in this queue (from entering it) after which the step applies.
    #[serde(deserialize_with = "duration::deserialize")]
    pub after: Duration,
    /// Lower these skills' minimum levels to these levels.
    #[serde(default)]
    pub relax: BTreeMap<String, u8>,
    /// Drop every optional skill.
    #[serde(default)]
    pub drop_optional: bool,
    /// Add to the contact's priority.
    #[serde(default)]
    pub raise_priority: i32,
    /// Move the contact to this queue, where that queue's steps start over.
    #[serde(default)]
    pub overflow_to: Option<String>,
}

/// `[[agents]]`: an agent the daemon knows at start.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Login name, unique.
    pub id: String,
    /// Display name for supervisors' screens.
    #[serde(default)]
    pub name: Option<String>,
    /// Skills with proficiency levels 1-10.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Concurrent contacts per channel; absent means [`model::Capacity::default`](crate::model::Capacity::default).
    #[serde(default)]
    pub capacity: Option<CapacityConfig>,
    /// Queues the agent serves; empty means every queue its skills qualify it for.
    #[serde(default)]
    pub queues: Vec<String>,
    /// Secret the agent's client presents on the agent websocket.
    #[serde(default)]
    pub token: Option<String>,
}

impl fmt::Debug for AgentConfig {
    /// Like a derived `Debug`, but never prints the token: configs end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfig")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("skills", &self.skills)
            .field("capacity", &self.capacity)
            .field("queues", &self.queues)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `capacity`: concurrent contacts per channel. A channel left out of a given table is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityConfig {
    /// Calls.
    #[serde(default)]
    pub voice: u8,
    /// Web chats.
    #[serde(default)]
    pub chat: u8,
    /// Emails.
    #[serde(default)]
    pub email: u8,
    /// Text messages.
    #[serde(default)]
    pub sms: u8,
    /// Social media threads.
    #[serde(default)]
    pub social: u8,
    /// Other webhook contacts (forms, tickets).
    #[serde(default)]
    pub webhook: u8,
}

impl Config {
    /// Reads, parses and validates a config file, with the rules and intents files it names
    /// (relative to its directory).
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml_str(&text, path)
    }

    /// Parses and validates config text; `origin` names the file in errors, and its directory
    /// is where the rules and intents files are read from.
    pub fn from_toml_str(text: &str, origin: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let origin = origin.as_ref();
        let dir = match origin.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        Config::parse(text, origin, classify::Companions::Dir(dir))
    }

    fn parse(
        text: &str,
        origin: &Path,
        companions: classify::Companions<'_>,
    ) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        (config.rules, config.intent_examples) =
            classify::load_companions(&config.classify, companions)?;
        config.validate().map_err(|problems| ConfigError::Invalid {
            path: origin.to_path_buf(),
            problems,
        })?;
        Ok(config)
    }

    /// The configuration built into the binary: `config/switchboard.toml` as shipped, with the
    /// shipped rules and demo intents.
    pub fn embedded_default() -> Config {
        Config::parse(
            EMBEDDED_DEFAULT,
            Path::new("config/switchboard.toml (embedded)"),
            classify::Companions::Embedded,
        )
        .expect("the shipped config validates; a unit test checks it")
    }

    /// The classifier for this config: the rules compiled, the intent model trained (in well
    /// under a second for a few thousand examples).
    ///
    /// # Panics
    ///
    /// If the config has not passed [`Config::validate`], which compiles the rules and checks
    /// that the intents file has at least two intents.
    pub fn classifier(&self) -> crate::classify::Classifier {
        let rules = crate::classify::rules::RuleSet::compile(&self.rules)
            .expect("validated: every rule compiles");
        let model = (!self.intent_examples.is_empty()).then(|| {
            crate::classify::intent::IntentModel::train(&self.intent_examples)
                .expect("validated: at least two intents")
        });
        crate::classify::Classifier::new(rules, model).with_languages(&self.classify.languages)
    }

    /// The time zone `hour` and `weekday` are read in by rules.
    pub fn classify_time_zone(&self) -> jiff::tz::TimeZone {
        self.classify
            .time_zone
            .as_deref()
            .and_then(|name| jiff::tz::TimeZone::get(name).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// Queue names in [`QueueId`](crate::model::QueueId) order: the `n`th name is queue `n` in
    /// the routing plan.
    pub fn queue_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.queues.keys().map(String::as_str)
    }
}

/// Defaults for keys left out, kept in one place so docs/config.md can be checked against them.
/// They match [`QueuePlan::new`](crate::router::QueuePlan::new) and
/// [`RoutingPlan::new`](crate::router::RoutingPlan::new).
mod defaults {
    use std::time::Duration;

    pub fn offer_timeout() -> Duration {
        Duration::from_secs(20)
    }
    pub fn short_abandon() -> Duration {
        Duration::from_secs(5)
    }
    pub fn preferred_agent_timeout() -> Duration {
        Duration::from_secs(60)
    }
    pub fn max_missed_offers() -> u32 {
        3
    }
    pub fn voice_blocks_other_channels() -> bool {
        true
    }
    pub fn position_update_interval() -> Duration {
        Duration::from_secs(1)
    }
    pub fn warn_at() -> f64 {
        0.8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [routing]
        default_queue = "support"

        [sla.standard]
        first_response = "4h"

        [queues.support]
        sla = "standard"
    "#;

    #[test]
    fn a_minimal_file_takes_every_default() {
        let config = Config::from_toml_str(MINIMAL, "minimal.toml").expect("valid");
        let r = &config.routing;
        assert_eq!(r.offer_timeout, Duration::from_secs(20));
        assert_eq!(r.wrap_up, Duration::ZERO);
        assert_eq!(r.selection, SelectionConfig::LongestIdle);
        assert_eq!(r.service_level, ServiceLevelConfig::default());
        assert_eq!(r.short_abandon, Duration::from_secs(5));
        assert_eq!(r.preferred_agent_timeout, Duration::from_secs(60));
        assert_eq!(r.max_missed_offers, 3);
        assert!(r.voice_blocks_other_channels);
        assert_eq!(r.position_update_interval, Duration::from_secs(1));
        let sla = &config.sla["standard"];
        assert_eq!(sla.warn_at, 0.8);
        assert_eq!(sla.resolution, None);
        assert_eq!(sla.on_breach, BreachConfig::default());
        assert!(config.skills.is_empty() && config.agents.is_empty());
    }

    #[test]
    fn a_misspelt_key_is_a_parse_error_with_its_line() {
        let text = MINIMAL.replace("first_response", "first_respons");
        let err = Config::from_toml_str(&text, "typo.toml").expect_err("unknown key");
        let ConfigError::Parse { path, message } = &err else {
            panic!("expected a parse error, got {err:?}");
        };
        assert_eq!(path, Path::new("typo.toml"));
        assert!(message.contains("first_respons"), "{message}");
        assert!(message.contains("line 6"), "{message}");
    }

    #[test]
    fn a_bad_duration_is_a_parse_error_naming_the_text() {
        let text = MINIMAL.replace("\"4h\"", "\"4 hrz\"");
        let err = Config::from_toml_str(&text, "x.toml").expect_err("bad duration");
        assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
        assert!(err.to_string().contains("\"4 hrz\""), "{err}");
    }

    #[test]
    fn an_unknown_selection_is_a_parse_error_listing_the_choices() {
        let text = MINIMAL.replace(
            "sla = \"standard\"",
            "sla = \"standard\"\nselection = \"random\"",
        );
        let err = Config::from_toml_str(&text, "x.toml").expect_err("bad selection");
        let message = err.to_string();
        assert!(message.contains("random"), "{message}");
        assert!(message.contains("longest_idle"), "{message}");
    }

    #[test]
    fn a_capacity_table_with_an_unknown_channel_is_refused() {
        let text = format!("{MINIMAL}\n[[agents]]\nid = \"a\"\ncapacity = {{ fax = 1 }}\n");
        let err = Config::from_toml_str(&text, "x.toml").expect_err("fax");
        assert!(err.to_string().contains("fax"), "{err}");
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let err = Config::load("/nonexistent/switchboard.toml").expect_err("missing");
        assert!(matches!(err, ConfigError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/switchboard.toml"));
    }

    #[test]
    fn invalid_contents_are_reported_with_the_file_name() {
        let text = MINIMAL.replace("sla = \"standard\"", "sla = \"gold\"");
        let err = Config::from_toml_str(&text, "x.toml").expect_err("unknown sla");
        let ConfigError::Invalid { path, problems } = &err else {
            panic!("expected invalid, got {err:?}");
        };
        assert_eq!(path, Path::new("x.toml"));
        assert_eq!(
            problems,
            &[Problem::new(
                "queues.support.sla",
                "unknown SLA policy \"gold\""
            )]
        );
    }

    #[test]
    fn debug_output_hides_agent_tokens() {
        let text = format!("{MINIMAL}\n[[agents]]\nid = \"a\"\ntoken = \"s3cret-token\"\n");
        let config = Config::from_toml_str(&text, "x.toml").expect("valid");
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn the_embedded_default_validates() {
        let config = Config::embedded_default();
        assert!(config.validate().is_ok());
        assert_eq!(
            config.queue_names().collect::<Vec<_>>(),
            ["billing", "sales", "support", "vip"]
        );
        assert!(config.agents.len() >= 4);
        assert!(config.agents.iter().all(|a| a.token.is_some()));
    }
}
