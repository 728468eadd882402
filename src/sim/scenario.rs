//! The scenario file: which configuration to route with, which agents work when, and what
//! traffic arrives. Parsed like the daemon's config (serde with `deny_unknown_fields`, durations
//! as `"30s"`), checked as a whole with every problem reported at its path, then compiled into a
//! [`Scenario`] of interned ids and milliseconds that the engine runs.
//!
//! ```toml
//! seed = 7
//! opens = "08:00"          # clock time of the first interval, for labels and shifts
//! interval = "30m"         # 15 or 30 minutes is usual
//! intervals = 16           # needed only when no traffic stream lists per-interval arrivals
//! warmup = "0s"            # whole intervals left out of the summary (steady-state studies)
//! config = "../switchboard.toml"   # or an inline [config] table in the daemon's format
//!
//! [[traffic]]
//! queue = "billing"
//! channel = "voice"
//! arrivals = [40, 55, 70]  # Poisson, mean contacts per interval (or arrivals_per_hour = 120)
//! handle_time = { distribution = "lognormal", mean = "4m", sd = "3m" }
//! patience = { distribution = "exponential", mean = "2m" }   # absent: nobody gives up
//!
//! [[agents]]
//! name = "billing"         # agents billing-1 .. billing-12
//! count = 12
//! skills = { billing = 6 }
//! capacity = { voice = 1 }
//! shift = { start = "08:00", end = "16:00" }
//! breaks = [{ start = "10:00", length = "15m" }]
//! answer_time = { distribution = "exponential", mean = "3s" }
//! reject = 0.02
//! ```
//!
//! Decisions a reader may look for:
//!
//! - Time zero of the simulation is `opens`; shift and break times are clock times on that day
//!   (`"07:30"` before `opens` means "already there"). A group without `shift` works from the
//!   start until every contact is handled, which is what a steady-state comparison with
//!   Erlang C needs.
//! - Wrap-up is the queue's configured `wrap_up`, run by the router itself as in production.
//! - Relative paths (`config`, empirical handle-time files) are relative to the scenario file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::duration::{self, millis};
use crate::config::{CapacityConfig, Config, ConfigError, Problem};
use crate::model::{
    AgentId, AgentProfile, AgentSkills, Capacity, Channel, Millis, QueueId, SKILL_LEVELS, SkillReq,
};
use crate::router::RoutingPlan;

/// A scenario that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A file could not be read: the scenario, its config, or a handle-time sample.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The scenario is not valid TOML or does not fit the scenario's shape.
    #[error("cannot parse scenario {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The scenario's config file could not be loaded.
    #[error("in scenario {}", path.display())]
    Config {
        /// The scenario.
        path: PathBuf,
        /// What was wrong with the config.
        source: ConfigError,
    },
    /// The scenario parsed but does not make sense; every problem with its path.
    #[error("invalid scenario {}:{}", path.display(), ProblemLines(problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

struct ProblemLines<'a>(&'a [Problem]);

impl fmt::Display for ProblemLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in self.0 {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

/// The scenario file as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Seed of the random generator: the same seed gives the same run.
    #[serde(default = "defaults::seed")]
    pub seed: u64,
    /// Clock time (`"HH:MM"`) at which the first interval starts.
    #[serde(default = "defaults::opens")]
    pub opens: String,
    /// Length of a reporting and forecasting interval.
    #[serde(
        default = "defaults::interval",
        deserialize_with = "duration::deserialize"
    )]
    pub interval: Duration,
    /// Number of intervals; defaults to the longest `arrivals` list.
    #[serde(default)]
    pub intervals: Option<usize>,
    /// Leading time left out of the summary; a whole number of intervals.
    #[serde(default, deserialize_with = "duration::deserialize")]
    pub warmup: Duration,
    /// The routing configuration: a path to a config file, or the config inline as a table.
    pub config: toml::Value,
    /// Arrival streams.
    #[serde(default)]
    pub traffic: Vec<TrafficFile>,
    /// Agent groups.
    #[serde(default)]
    pub agents: Vec<AgentGroupFile>,
}

/// A random duration as written: `{ distribution = "exponential", mean = "4m" }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "distribution", rename_all = "snake_case", deny_unknown_fields)]
pub enum DistributionFile {
    /// Always the same.
    Fixed {
        /// The duration.
        #[serde(deserialize_with = "duration::deserialize")]
        value: Duration,
    },
    /// Exponential with this mean: memoryless, what Erlang C and A assume.
    Exponential {
        /// The mean.
        #[serde(deserialize_with = "duration::deserialize")]
        mean: Duration,
    },
    /// Log-normal with this mean and standard deviation: the usual shape of real handle times.
    Lognormal {
        /// The mean.
        #[serde(deserialize_with = "duration::deserialize")]
        mean: Duration,
        /// The standard deviation.
        #[serde(deserialize_with = "duration::deserialize")]
        sd: Duration,
    },
    /// Drawn from recorded values: a CSV file with one duration in seconds per line (a header
    /// line is skipped; with several columns, the first is used).
    Empirical {
        /// The file, relative to the scenario.
        file: PathBuf,
    },
}

/// `[[traffic]]`: one arrival stream.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficFile {
    /// Queue the contacts arrive in.
    pub queue: String,
    /// Channel of the contacts.
    #[serde(default = "defaults::channel")]
    pub channel: Channel,
    /// Skills the contacts need on top of the queue's own.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Classification priority of the contacts.
    #[serde(default)]
    pub priority: i32,
    /// Mean contacts per interval, one entry per interval (Poisson within each).
    #[serde(default)]
    pub arrivals: Option<Vec<f64>>,
    /// A constant rate instead of `arrivals`.
    #[serde(default)]
    pub arrivals_per_hour: Option<f64>,
    /// How long an agent spends on a contact.
    pub handle_time: DistributionFile,
    /// How long a customer waits before giving up; absent means forever.
    #[serde(default)]
    pub patience: Option<DistributionFile>,
}

/// `[[agents]]`: a group of identical agents.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentGroupFile {
    /// Group name; agents are `NAME-1` to `NAME-COUNT`.
    pub name: String,
    /// How many agents.
    #[serde(default = "defaults::count")]
    pub count: u32,
    /// Skills with levels 1-10.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Contacts per channel at once; absent means the default omnichannel blend.
    #[serde(default)]
    pub capacity: Option<CapacityConfig>,
    /// Queues served; empty means every queue the skills qualify for.
    #[serde(default)]
    pub queues: Vec<String>,
    /// Working hours; absent means from the start until the last contact is handled.
    #[serde(default)]
    pub shift: Option<ShiftFile>,
    /// Breaks within the shift.
    #[serde(default)]
    pub breaks: Vec<BreakFile>,
    /// Time from an offer to the agent's answer; absent means at once.
    #[serde(default)]
    pub answer_time: Option<DistributionFile>,
    /// Probability that the agent rejects an offer.
    #[serde(default)]
    pub reject: f64,
}

/// `shift = { start = "08:00", end = "16:30" }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftFile {
    /// Clock time the agents log in.
    pub start: String,
    /// Clock time they stop taking new contacts (they finish what they hold).
    pub end: String,
}

/// `{ start = "10:00", length = "15m" }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakFile {
    /// Clock time the break starts (what the agent holds is finished first).
    pub start: String,
    /// How long it lasts.
    #[serde(deserialize_with = "duration::deserialize")]
    pub length: Duration,
}

mod defaults {
    use std::time::Duration;

    use crate::model::Channel;

    pub fn seed() -> u64 {
        1
    }
    pub fn opens() -> String {
        "00:00".into()
    }
    pub fn interval() -> Duration {
        Duration::from_secs(30 * 60)
    }
    pub fn channel() -> Channel {
        Channel::Voice
    }
    pub fn count() -> u32 {
        1
    }
}

/// A random duration in milliseconds, ready to sample.
#[derive(Clone, Debug, PartialEq)]
pub enum Distribution {
    /// Always this.
    Fixed(f64),
    /// Exponential with this mean.
    Exponential(f64),
    /// `exp(N(mu, sigma²))`.
    LogNormal {
        /// Mean of the logarithm.
        mu: f64,
        /// Standard deviation of the logarithm.
        sigma: f64,
    },
    /// Uniform choice among recorded values.
    Empirical(Vec<f64>),
}

impl Distribution {
    /// The distribution's mean, milliseconds.
    pub fn mean(&self) -> f64 {
        match self {
            Distribution::Fixed(v) | Distribution::Exponential(v) => *v,
            Distribution::LogNormal { mu, sigma } => (mu + sigma * sigma / 2.0).exp(),
            Distribution::Empirical(values) => values.iter().sum::<f64>() / values.len() as f64,
        }
    }
}

/// One arrival stream, compiled.
#[derive(Clone, Debug, PartialEq)]
pub struct Stream {
    /// Queue of arrival.
    pub queue: QueueId,
    /// Channel.
    pub channel: Channel,
    /// Skills on top of the queue's.
    pub skills: Vec<SkillReq>,
    /// Classification priority.
    pub priority: i32,
    /// Arrivals per millisecond in each interval.
    pub rates: Vec<f64>,
    /// Handle time.
    pub handle_time: Distribution,
    /// Patience; `None` waits forever.
    pub patience: Option<Distribution>,
}

/// One agent, compiled.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentPlan {
    /// What the router is told at login.
    pub profile: AgentProfile,
    /// Login time (ms from the start).
    pub shift_start: Millis,
    /// Time it stops taking contacts; `None` works until the end.
    pub shift_end: Option<Millis>,
    /// Breaks as (start, end), ms from the start, in order.
    pub breaks: Vec<(Millis, Millis)>,
    /// Time to answer an offer; `None` answers at once.
    pub answer_time: Option<Distribution>,
    /// Probability of rejecting an offer.
    pub reject: f64,
}

/// A checked, compiled scenario: what the engine runs.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Random seed.
    pub seed: u64,
    /// Clock time of the start, ms since midnight (labels only).
    pub opens: Millis,
    /// Interval length, ms.
    pub interval: Millis,
    /// Number of traffic intervals.
    pub intervals: usize,
    /// Leading intervals left out of the summary.
    pub warmup_intervals: usize,
    /// The routing plan from the scenario's config.
    pub plan: RoutingPlan,
    /// Arrival streams.
    pub streams: Vec<Stream>,
    /// Every agent.
    pub agents: Vec<AgentPlan>,
}

/// Most agents one scenario may hold; a bigger number is a typo.
const MAX_AGENTS: u64 = 1_000_000;

impl Scenario {
    /// Reads, parses, checks and compiles a scenario file.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Scenario::from_toml_str(&text, path, base)
    }

    /// Parses, checks and compiles scenario text; `origin` names it in errors and relative
    /// paths are resolved against `base`.
    pub fn from_toml_str(
        text: &str,
        origin: impl AsRef<Path>,
        base: impl AsRef<Path>,
    ) -> Result<Scenario, ScenarioError> {
        let origin = origin.as_ref();
        let file: ScenarioFile = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        file.compile(origin, base.as_ref())
    }
}

impl ScenarioFile {
    /// Loads the config, checks everything and compiles.
    pub fn compile(&self, origin: &Path, base: &Path) -> Result<Scenario, ScenarioError> {
        let invalid = |problems| ScenarioError::Invalid {
            path: origin.to_path_buf(),
            problems,
        };
        let config = match &self.config {
            toml::Value::String(path) => {
                Config::load(base.join(path)).map_err(|source| ScenarioError::Config {
                    path: origin.to_path_buf(),
                    source,
                })?
            }
            toml::Value::Table(_) => {
                let config: Config =
                    self.config
                        .clone()
                        .try_into()
                        .map_err(|e: toml::de::Error| ScenarioError::Parse {
                            path: origin.to_path_buf(),
                            message: format!("config: {}", e.message()),
                        })?;
                config.validate().map_err(|problems| {
                    invalid(
                        problems
                            .into_iter()
                            .map(|p| Problem::new(format!("config.{}", p.path), p.message))
                            .collect(),
                    )
                })?;
                config
            }
            _ => {
                return Err(invalid(vec![Problem::new(
                    "config",
                    "expected a path to a config file or an inline [config] table",
                )]));
            }
        };
        let plan = config.routing_plan();
        let mut check = Check {
            plan: &plan,
            base,
            problems: Vec::new(),
        };
        let scenario = check.scenario(self);
        if check.problems.is_empty() {
            Ok(scenario.expect("no problems means compiled"))
        } else {
            Err(invalid(check.problems))
        }
    }
}

/// Walks a scenario file, recording problems and compiling what it can.
struct Check<'a> {
    plan: &'a RoutingPlan,
    base: &'a Path,
    problems: Vec<Problem>,
}

impl Check<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn scenario(&mut self, file: &ScenarioFile) -> Option<Scenario> {
        let opens = self.clock("opens", &file.opens);
        let interval = millis(file.interval);
        if interval == 0 {
            self.problem("interval", "must be longer than zero");
        }
        let longest = file
            .traffic
            .iter()
            .filter_map(|t| t.arrivals.as_ref().map(Vec::len))
            .max();
        let intervals = match (file.intervals, longest) {
            (Some(n), _) => n,
            (None, Some(n)) => n,
            (None, None) if file.traffic.is_empty() => 0,
            (None, None) => {
                self.problem(
                    "intervals",
                    "needed when no traffic stream lists per-interval arrivals",
                );
                0
            }
        };
        if let (Some(n), Some(longest)) = (file.intervals, longest)
            && longest > n
        {
            self.problem(
                "intervals",
                format!("{n} intervals but a traffic stream lists {longest}"),
            );
        }
        let warmup = millis(file.warmup);
        let warmup_intervals = if interval > 0 && warmup.is_multiple_of(interval) {
            (warmup / interval) as usize
        } else {
            self.problem("warmup", "must be a whole number of intervals");
            0
        };
        if warmup_intervals > intervals {
            self.problem("warmup", "is longer than the traffic");
        }
        let streams: Vec<Stream> = file
            .traffic
            .iter()
            .enumerate()
            .filter_map(|(i, t)| self.stream(&format!("traffic[{i}]"), t, intervals, interval))
            .collect();
        let total: u64 = file.agents.iter().map(|g| u64::from(g.count)).sum();
        if total > MAX_AGENTS {
            self.problem("agents", format!("{total} agents; at most {MAX_AGENTS}"));
            return None;
        }
        let mut agents = Vec::new();
        let mut names = BTreeMap::new();
        for (i, group) in file.agents.iter().enumerate() {
            let path = format!("agents[{i}]");
            if let Some(first) = names.insert(group.name.as_str(), i) {
                self.problem(
                    format!("{path}.name"),
                    format!("{:?} is also the name of agents[{first}]", group.name),
                );
            }
            self.group(&path, group, opens.unwrap_or(0), &mut agents);
        }
        Some(Scenario {
            seed: file.seed,
            opens: opens?,
            interval,
            intervals,
            warmup_intervals,
            plan: self.plan.clone(),
            streams,
            agents,
        })
    }

    /// `"HH:MM"` as milliseconds since midnight.
    fn clock(&mut self, path: &str, text: &str) -> Option<Millis> {
        let parsed = text.split_once(':').and_then(|(h, m)| {
            let (h, m): (u64, u64) = (h.trim().parse().ok()?, m.trim().parse().ok()?);
            (h < 24 && m < 60 && text.len() <= 5).then_some((h * 60 + m) * 60_000)
        });
        if parsed.is_none() {
            self.problem(path, format!("{text:?} is not a clock time like \"08:30\""));
        }
        parsed
    }

    /// A clock time as an offset from `opens`; times before it clamp to the start.
    fn offset(&mut self, path: &str, text: &str, opens: Millis) -> Option<Millis> {
        self.clock(path, text).map(|t| t.saturating_sub(opens))
    }

    fn distribution(&mut self, path: &str, d: &DistributionFile) -> Option<Distribution> {
        let positive = |check: &mut Self, what: &str, v: Duration| {
            if v.is_zero() {
                check.problem(format!("{path}.{what}"), "must be longer than zero");
                false
            } else {
                true
            }
        };
        match d {
            DistributionFile::Fixed { value } => Some(Distribution::Fixed(millis(*value) as f64)),
            DistributionFile::Exponential { mean } => positive(self, "mean", *mean)
                .then(|| Distribution::Exponential(millis(*mean) as f64)),
            DistributionFile::Lognormal { mean, sd } => positive(self, "mean", *mean).then(|| {
                let (m, s) = (millis(*mean) as f64, millis(*sd) as f64);
                let sigma2 = (1.0 + (s * s) / (m * m)).ln();
                Distribution::LogNormal {
                    mu: m.ln() - sigma2 / 2.0,
                    sigma: sigma2.sqrt(),
                }
            }),
            DistributionFile::Empirical { file } => {
                let full = self.base.join(file);
                let text = match std::fs::read_to_string(&full) {
                    Ok(text) => text,
                    Err(e) => {
                        self.problem(
                            format!("{path}.file"),
                            format!("cannot read {}: {e}", full.display()),
                        );
                        return None;
                    }
                };
                match empirical_values(&text) {
                    Ok(values) => Some(Distribution::Empirical(values)),
                    Err(message) => {
                        self.problem(format!("{path}.file"), message);
                        None
                    }
                }
            }
        }
    }

    fn skills(&mut self, path: &str, skills: &BTreeMap<String, u8>) -> Vec<(usize, u8)> {
        let mut out = Vec::new();
        for (name, &level) in skills {
            match self.plan.skill_id(name) {
                None => self.problem(
                    format!("{path}.{name}"),
                    "unknown skill: not in the config's skills list",
                ),
                Some(_) if !SKILL_LEVELS.contains(&level) => {
                    self.problem(format!("{path}.{name}"), "level must be 1-10")
                }
                Some(id) => out.push((usize::from(id.0), level)),
            }
        }
        out
    }

    fn queue(&mut self, path: &str, name: &str) -> Option<QueueId> {
        let id = self.plan.queue_id(name);
        if id.is_none() {
            self.problem(path, format!("unknown queue {name:?}"));
        }
        id
    }

    fn stream(
        &mut self,
        path: &str,
        t: &TrafficFile,
        intervals: usize,
        interval: Millis,
    ) -> Option<Stream> {
        let queue = self.queue(&format!("{path}.queue"), &t.queue);
        let skills = self
            .skills(&format!("{path}.skills"), &t.skills)
            .into_iter()
            .map(|(s, level)| SkillReq {
                skill: crate::model::SkillId(s as u16),
                min_level: level,
                optional: false,
            })
            .collect();
        let per_interval: Option<Vec<f64>> = match (&t.arrivals, t.arrivals_per_hour) {
            (Some(list), None) => {
                if let Some(i) = list.iter().position(|c| !c.is_finite() || *c < 0.0) {
                    self.problem(
                        format!("{path}.arrivals[{i}]"),
                        "must be a number of contacts, zero or more",
                    );
                }
                let mut v = list.clone();
                v.resize(intervals, 0.0);
                Some(v)
            }
            (None, Some(rate)) if rate.is_finite() && rate >= 0.0 => {
                Some(vec![rate * interval as f64 / 3_600_000.0; intervals])
            }
            (None, Some(_)) => {
                self.problem(format!("{path}.arrivals_per_hour"), "must be zero or more");
                None
            }
            _ => {
                self.problem(
                    path,
                    "give exactly one of arrivals (per interval) or arrivals_per_hour",
                );
                None
            }
        };
        let handle_time = self.distribution(&format!("{path}.handle_time"), &t.handle_time);
        let patience = match &t.patience {
            Some(p) => Some(self.distribution(&format!("{path}.patience"), p)?),
            None => None,
        };
        let rates = per_interval?
            .into_iter()
            .map(|c| c / interval.max(1) as f64)
            .collect();
        Some(Stream {
            queue: queue?,
            channel: t.channel,
            skills,
            priority: t.priority,
            rates,
            handle_time: handle_time?,
            patience,
        })
    }

    fn group(&mut self, path: &str, g: &AgentGroupFile, opens: Millis, out: &mut Vec<AgentPlan>) {
        let name_ok = !g.name.is_empty()
            && g.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok {
            self.problem(
                format!("{path}.name"),
                "use ASCII letters, digits, '_' and '-'",
            );
        }
        let skills = AgentSkills::new(
            self.skills(&format!("{path}.skills"), &g.skills)
                .into_iter()
                .map(|(s, l)| (crate::model::SkillId(s as u16), l)),
        );
        let mut queues: Vec<QueueId> = g
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| self.queue(&format!("{path}.queues[{i}]"), q))
            .collect();
        queues.sort_unstable();
        queues.dedup();
        let capacity = match &g.capacity {
            Some(c) => Capacity([c.voice, c.chat, c.email, c.sms, c.social, c.webhook]),
            None => Capacity::default(),
        };
        if capacity.total() == 0 {
            self.problem(format!("{path}.capacity"), "no channel has a slot");
        }
        let (shift_start, shift_end) = match &g.shift {
            None => (Some(0), None),
            Some(s) => {
                let start = self.offset(&format!("{path}.shift.start"), &s.start, opens);
                let end = self.offset(&format!("{path}.shift.end"), &s.end, opens);
                if let (Some(a), Some(b)) = (start, end)
                    && b <= a
                {
                    self.problem(format!("{path}.shift.end"), "must be after the start");
                }
                (start, end)
            }
        };
        let mut breaks = Vec::new();
        for (i, b) in g.breaks.iter().enumerate() {
            let bpath = format!("{path}.breaks[{i}]");
            if let Some(start) = self.offset(&format!("{bpath}.start"), &b.start, opens) {
                let end = start + millis(b.length);
                if breaks.last().is_some_and(|&(_, e)| start < e) {
                    self.problem(&bpath, "breaks must be in order and not overlap");
                }
                if start < shift_start.unwrap_or(0) || shift_end.is_some_and(|e| end > e) {
                    self.problem(&bpath, "must lie within the shift");
                }
                breaks.push((start, end));
            }
        }
        let answer_time = g
            .answer_time
            .as_ref()
            .and_then(|d| self.distribution(&format!("{path}.answer_time"), d));
        if !(0.0..=1.0).contains(&g.reject) {
            self.problem(format!("{path}.reject"), "must be a probability, 0 to 1");
        }
        let Some(shift_start) = shift_start else {
            return;
        };
        for k in 1..=g.count {
            out.push(AgentPlan {
                profile: AgentProfile {
                    id: AgentId::new(format!("{}-{k}", g.name)),
                    skills: skills.clone(),
                    capacity,
                    queues: queues.clone(),
                },
                shift_start,
                shift_end,
                breaks: breaks.clone(),
                answer_time: answer_time.clone(),
                reject: g.reject,
            });
        }
    }
}

/// Reads recorded durations (seconds), one per line, first column, header skipped.
fn empirical_values(text: &str) -> Result<Vec<f64>, String> {
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let first = line.split(',').next().unwrap_or("").trim();
        if first.is_empty() {
            continue;
        }
        match first.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => values.push(v * 1000.0),
            Ok(_) => return Err(format!("line {}: {first:?} is not a duration", i + 1)),
            Err(_) if i == 0 => {} // a header
            Err(_) => {
                return Err(format!(
                    "line {}: {first:?} is not a number of seconds",
                    i + 1
                ));
            }
        }
    }
    if values.is_empty() {
        return Err("no durations in the file".into());
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
        skills = ["english", "billing"]
        [config.routing]
        default_queue = "support"
        [config.sla.standard]
        first_response = "5m"
        [config.queues.support]
        sla = "standard"
        [config.queues.billing]
        sla = "standard"
        skills = { billing = 3 }
    "#;

    fn scenario(body: &str) -> Result<Scenario, ScenarioError> {
        let text = format!("{body}\n[config]\n{CONFIG}");
        Scenario::from_toml_str(&text, "t.toml", ".")
    }

    #[test]
    fn a_small_day_compiles_with_clock_times_relative_to_opening() {
        let s = scenario(
            r#"
            opens = "08:00"
            interval = "30m"
            [[traffic]]
            queue = "billing"
            arrivals = [30, 60]
            handle_time = { distribution = "lognormal", mean = "4m", sd = "2m" }
            patience = { distribution = "exponential", mean = "90s" }
            [[agents]]
            name = "b"
            count = 3
            skills = { billing = 5 }
            shift = { start = "08:15", end = "09:00" }
            breaks = [{ start = "08:30", length = "10m" }]
            "#,
        )
        .expect("valid");
        assert_eq!(s.intervals, 2);
        assert_eq!(s.streams[0].rates, [30.0 / 1_800_000.0, 60.0 / 1_800_000.0]);
        let mean = s.streams[0].handle_time.mean();
        assert!((mean - 240_000.0).abs() < 1.0, "{mean}");
        assert_eq!(s.agents.len(), 3);
        assert_eq!(s.agents[2].profile.id, AgentId::new("b-3"));
        assert_eq!(s.agents[0].shift_start, 15 * 60_000);
        assert_eq!(s.agents[0].shift_end, Some(60 * 60_000));
        assert_eq!(s.agents[0].breaks, [(30 * 60_000, 40 * 60_000)]);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let err = scenario(
            r#"
            opens = "8am"
            warmup = "10m"
            [[traffic]]
            queue = "sales"
            arrivals = [10, -1]
            skills = { klingon = 3 }
            handle_time = { distribution = "exponential", mean = "0s" }
            [[agents]]
            name = "a"
            skills = { billing = 11 }
            reject = 2.0
            shift = { start = "10:00", end = "09:00" }
            "#,
        )
        .expect_err("invalid");
        let ScenarioError::Invalid { problems, .. } = err else {
            panic!("expected problems, got {err:?}");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "opens",
            "warmup",
            "traffic[0].queue",
            "traffic[0].skills.klingon",
            "traffic[0].arrivals[1]",
            "traffic[0].handle_time.mean",
            "agents[0].skills.billing",
            "agents[0].shift.end",
            "agents[0].reject",
        ] {
            assert!(paths.contains(&want), "{want} missing from {paths:?}");
        }
    }

    #[test]
    fn a_misspelt_key_or_distribution_is_a_parse_error() {
        let err = scenario(
            r#"
            intervals = 1
            [[traffic]]
            queue = "support"
            arrivals_per_hour = 10
            handle_time = { distribution = "exponential", mean = "4m", sd = "1m" }
            "#,
        )
        .expect_err("sd is not a key of exponential");
        assert!(matches!(err, ScenarioError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("sd"), "{err}");
        let err = scenario("intervals = 1\nseeed = 3").expect_err("typo");
        assert!(err.to_string().contains("seeed"), "{err}");
    }

    #[test]
    fn config_problems_carry_the_config_prefix() {
        let text = "intervals = 1\n[config]\n[config.routing]\ndefault_queue = \"nowhere\"\n";
        let err = Scenario::from_toml_str(text, "t.toml", ".").expect_err("bad config");
        let ScenarioError::Invalid { problems, .. } = err else {
            panic!("expected problems, got {err:?}");
        };
        assert!(
            problems.iter().all(|p| p.path.starts_with("config.")),
            "{problems:?}"
        );
    }

    #[test]
    fn empirical_files_skip_a_header_and_take_seconds() {
        assert_eq!(
            empirical_values("seconds\n120\n240,x\n\n60\n"),
            Ok(vec![120_000.0, 240_000.0, 60_000.0])
        );
        assert!(empirical_values("seconds\nabc\n").is_err());
        assert!(empirical_values("seconds\n").is_err());
    }
}
