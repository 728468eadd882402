//! Whole-file checks: names, ranges and cross-references that serde alone cannot express.
//!
//! Every check runs and records its [`Problem`]s; nothing stops at the first. Problems come out
//! in file order (skills, routing, SLA policies, queues, overflow loops, agents) and, within a
//! table, in key order, so the output is stable run to run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::duration;
use super::{Config, Problem, ServiceLevelConfig};
use crate::model::SKILL_LEVELS;

/// Most skills or queues a plan can hold: their ids are `u16`.
const MAX_INTERNED: usize = u16::MAX as usize + 1;

impl Config {
    /// Checks the whole configuration and returns every problem found, or `Ok` when
    /// [`Config::routing_plan`] and [`Config::agent_profiles`] can compile it.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut check = Checker {
            config: self,
            skills: self.skills.iter().map(String::as_str).collect(),
            problems: Vec::new(),
        };
        check.skills();
        check.routing();
        check.sla_policies();
        check.queues();
        check.overflow_loops();
        check.agents();
        check.email();
        check.chat();
        check.business_hours();
        check.classify();
        if check.problems.is_empty() {
            Ok(())
        } else {
            Err(check.problems)
        }
    }
}

/// Collects problems while walking the config.
struct Checker<'a> {
    config: &'a Config,
    skills: HashSet<&'a str>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn skills(&mut self) {
        let mut first_at: HashMap<&str, usize> = HashMap::new();
        for (i, name) in self.config.skills.iter().enumerate() {
            let path = format!("skills[{i}]");
            self.name(&path, name);
            if let Some(first) = first_at.get(name.as_str()) {
                self.problem(
                    path,
                    format!("skill {name:?} is already listed at skills[{first}]"),
                );
            } else {
                first_at.insert(name, i);
            }
        }
        if self.config.skills.len() > MAX_INTERNED {
            self.problem("skills", format!("at most {MAX_INTERNED} skills"));
        }
    }

    fn routing(&mut self) {
        let routing = &self.config.routing;
        if !self.config.queues.contains_key(&routing.default_queue) {
            self.problem(
                "routing.default_queue",
                format!("unknown queue {:?}", routing.default_queue),
            );
        }
        self.positive("routing.offer_timeout", routing.offer_timeout);
        self.service_level("routing.service_level", &routing.service_level);
        self.positive(
            "routing.position_update_interval",
            routing.position_update_interval,
        );
        if routing.max_missed_offers == 0 {
            self.problem(
                "routing.max_missed_offers",
                "must be at least 1 (0 would put an agent away before any offer expired)",
            );
        }
    }

    fn sla_policies(&mut self) {
        for (name, sla) in &self.config.sla {
            let path = format!("sla.{name}");
            self.name(&path, name);
            self.positive(&format!("{path}.first_response"), sla.first_response);
            if !(sla.warn_at > 0.0 && sla.warn_at < 1.0) {
                self.problem(
                    format!("{path}.warn_at"),
                    format!(
                        "{} is not a fraction between 0 and 1 (exclusive)",
                        sla.warn_at
                    ),
                );
            }
            if let Some(resolution) = sla.resolution
                && resolution < sla.first_response
            {
                self.problem(
                    format!("{path}.resolution"),
                    format!(
                        "must not be shorter than first_response ({})",
                        duration::display(sla.first_response)
                    ),
                );
            }
        }
    }

    fn queues(&mut self) {
        let config = self.config;
        if config.queues.is_empty() {
            self.problem("queues", "at least one queue is needed");
        }
        if config.queues.len() > MAX_INTERNED {
            self.problem("queues", format!("at most {MAX_INTERNED} queues"));
        }
        for (name, queue) in &config.queues {
            let path = format!("queues.{name}");
            self.name(&path, name);
            if !config.sla.contains_key(&queue.sla) {
                self.problem(
                    format!("{path}.sla"),
                    format!("unknown SLA policy {:?}", queue.sla),
                );
            }
            self.skill_levels(&format!("{path}.skills"), &queue.skills);
            self.skill_levels(&format!("{path}.optional_skills"), &queue.optional_skills);
            for skill in queue.optional_skills.keys() {
                if queue.skills.contains_key(skill) {
                    self.problem(
                        format!("{path}.optional_skills.{skill}"),
                        "also listed under skills; a skill is either required or optional",
                    );
                }
            }
            if let Some(offer_timeout) = queue.offer_timeout {
                self.positive(&format!("{path}.offer_timeout"), offer_timeout);
            }
            if let Some(service_level) = &queue.service_level {
                self.service_level(&format!("{path}.service_level"), service_level);
            }
            self.escalation(name, &path);
        }
    }

    fn escalation(&mut self, queue: &str, queue_path: &str) {
        let config = self.config;
        let steps = &config.queues[queue].escalation;
        let mut previous: Option<Duration> = None;
        let mut overflowed_at: Option<(usize, &str)> = None;
        for (i, step) in steps.iter().enumerate() {
            let path = format!("{queue_path}.escalation[{i}]");
            if duration::millis(step.after) == 0 {
                self.problem(format!("{path}.after"), "must be greater than zero");
            } else if let Some(previous) = previous
                && step.after <= previous
            {
                self.problem(
                    format!("{path}.after"),
                    format!(
                        "must be greater than the previous step ({})",
                        duration::display(previous)
                    ),
                );
            }
            previous = Some(step.after);

            if step.relax.is_empty()
                && !step.drop_optional
                && step.raise_priority == 0
                && step.overflow_to.is_none()
            {
                self.problem(
                    path.clone(),
                    "does nothing: give it relax, drop_optional, raise_priority or overflow_to",
                );
            }
            self.skill_levels(&format!("{path}.relax"), &step.relax);

            if let Some((at, target)) = overflowed_at {
                // The contact left the queue at that step, and the target queue's steps start
                // over, so this one can never run.
                self.problem(
                    path.clone(),
                    format!(
                        "never applies: step [{at}] already moves the contact to queue {target:?}"
                    ),
                );
            }
            if let Some(target) = &step.overflow_to {
                if !config.queues.contains_key(target) {
                    self.problem(
                        format!("{path}.overflow_to"),
                        format!("unknown queue {target:?}"),
                    );
                } else if target == queue {
                    self.problem(
                        format!("{path}.overflow_to"),
                        "is the queue itself; overflow must move the contact elsewhere",
                    );
                }
                overflowed_at.get_or_insert((i, target));
            }
        }
    }

    /// Reports every loop of `overflow_to` between queues (a -> b -> a): a contact caught in one
    /// bounces between the queues forever, restarting their steps each time.
    fn overflow_loops(&mut self) {
        let config = self.config;
        // Edges to known, other queues only: unknown targets and self-overflow are reported
        // where the step is checked.
        let edges: BTreeMap<&str, Vec<(usize, &str)>> = config
            .queues
            .iter()
            .map(|(name, queue)| {
                let out = queue
                    .escalation
                    .iter()
                    .enumerate()
                    .filter_map(|(i, step)| {
                        let target = step.overflow_to.as_deref()?;
                        (target != name && config.queues.contains_key(target))
                            .then_some((i, target))
                    })
                    .collect();
                (name.as_str(), out)
            })
            .collect();

        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Unvisited,
            OnPath,
            Done,
        }
        let mut marks: HashMap<&str, Mark> = edges.keys().map(|&q| (q, Mark::Unvisited)).collect();
        for &start in edges.keys() {
            if marks[start] != Mark::Unvisited {
                continue;
            }
            // Iterative depth-first search; `path` holds the queues on the current path with the
            // index of the next edge to follow from each.
            let mut path: Vec<(&str, usize)> = vec![(start, 0)];
            marks.insert(start, Mark::OnPath);
            while let Some(&(queue, next)) = path.last() {
                let Some(&(step, target)) = edges[queue].get(next) else {
                    marks.insert(queue, Mark::Done);
                    path.pop();
                    continue;
                };
                path.last_mut().expect("the loop saw an entry").1 += 1;
                match marks[target] {
                    Mark::Unvisited => {
                        marks.insert(target, Mark::OnPath);
                        path.push((target, 0));
                    }
                    Mark::OnPath => {
                        let from = path
                            .iter()
                            .position(|&(q, _)| q == target)
                            .expect("a queue marked on the path is on the path");
                        let mut cycle: Vec<&str> = path[from..].iter().map(|&(q, _)| q).collect();
                        cycle.push(target);
                        self.problem(
                            format!("queues.{queue}.escalation[{step}].overflow_to"),
                            format!("overflow loop: {}", cycle.join(" -> ")),
                        );
                    }
                    Mark::Done => {}
                }
            }
        }
    }

    fn business_hours(&mut self) {
        let config = self.config;
        for (name, queue) in &config.queues {
            if let Some(hours) = &queue.business_hours {
                for (key, message) in hours.problems() {
                    self.problem(format!("queues.{name}.business_hours.{key}"), message);
                }
            }
        }
    }

    fn chat(&mut self) {
        let chat = &self.config.chat;
        if chat.max_message_bytes < 64 {
            self.problem("chat.max_message_bytes", "must be at least 64");
        }
        if chat.messages_per_second == 0 {
            self.problem("chat.messages_per_second", "must be at least 1");
        }
        if chat.max_chats_per_address == 0 {
            self.problem("chat.max_chats_per_address", "must be at least 1");
        }
        if let Some(menu) = &chat.menu {
            self.menu("chat.menu", menu);
        }
    }

    fn menu(&mut self, path: &str, menu: &crate::config::MenuConfig) {
        if menu.options.is_empty() {
            self.problem(
                format!("{path}.options"),
                "a menu needs at least one option",
            );
        }
        let mut seen = HashSet::new();
        for (i, option) in menu.options.iter().enumerate() {
            let at = format!("{path}.options[{i}]");
            if option.id.is_empty() || !seen.insert(option.id.as_str()) {
                self.problem(
                    format!("{at}.id"),
                    "must be non-empty and unique in its menu",
                );
            }
            if let Some(queue) = &option.queue
                && !self.config.queues.contains_key(queue)
            {
                self.problem(format!("{at}.queue"), format!("unknown queue {queue:?}"));
            }
            for (skill, level) in &option.skills {
                if !self.skills.contains(skill.as_str()) {
                    self.problem(format!("{at}.skills.{skill}"), "unknown skill");
                } else if !crate::model::SKILL_LEVELS.contains(level) {
                    self.problem(format!("{at}.skills.{skill}"), "level must be 1-10");
                }
            }
            if let Some(sub) = &option.menu {
                self.menu(&format!("{at}.menu"), sub);
            }
        }
    }

    fn email(&mut self) {
        let email = &self.config.email;
        let addresses = std::iter::once(("email.smtp_addr", Some(&email.smtp_addr))).chain(
            std::iter::once(("email.lmtp_addr", email.lmtp_addr.as_ref())),
        );
        for (path, addr) in addresses {
            if let Some(addr) = addr
                && !addr.is_empty()
                && addr.parse::<std::net::SocketAddr>().is_err()
            {
                self.problem(
                    path,
                    format!("{addr:?} is not an address like \"127.0.0.1:2525\""),
                );
            }
        }
        if email.hostname.trim().is_empty() || email.hostname.contains(char::is_whitespace) {
            self.problem("email.hostname", "must be a host name without spaces");
        }
        if email.max_message_size < 1024 {
            self.problem("email.max_message_size", "must be at least 1024 bytes");
        }
        if email.sender_rate_limit.messages > 0 && email.sender_rate_limit.per.is_zero() {
            self.problem("email.sender_rate_limit.per", "must be longer than zero");
        }
        if email.tls_cert.is_some() != email.tls_key.is_some() {
            self.problem("email.tls_key", "tls_cert and tls_key go together");
        }
        for (address, queue) in &email.mailboxes {
            let path = format!("email.mailboxes.{address:?}");
            if !address.contains('@') || address.contains(char::is_whitespace) {
                self.problem(
                    path.clone(),
                    "must be an address like \"support@example.com\"",
                );
            }
            if !self.config.queues.contains_key(queue) {
                self.problem(path, format!("unknown queue {queue:?}"));
            }
        }
        for (i, queue) in email.acknowledgement.queues.iter().enumerate() {
            if !self.config.queues.contains_key(queue) {
                self.problem(
                    format!("email.acknowledgement.queues[{i}]"),
                    format!("unknown queue {queue:?}"),
                );
            }
        }
    }

    fn agents(&mut self) {
        let config = self.config;
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut tokens: HashMap<&str, usize> = HashMap::new();
        for (i, agent) in config.agents.iter().enumerate() {
            let path = format!("agents[{i}]");
            if agent.id.is_empty() {
                self.problem(format!("{path}.id"), "must not be empty");
            } else if agent
                .id
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
            {
                self.problem(
                    format!("{path}.id"),
                    format!("{:?} contains whitespace or control characters", agent.id),
                );
            } else if let Some(first) = ids.get(agent.id.as_str()) {
                self.problem(
                    format!("{path}.id"),
                    format!("{:?} is already used by agents[{first}]", agent.id),
                );
            } else {
                ids.insert(&agent.id, i);
            }
            self.skill_levels(&format!("{path}.skills"), &agent.skills);
            for (k, queue) in agent.queues.iter().enumerate() {
                if !config.queues.contains_key(queue) {
                    self.problem(
                        format!("{path}.queues[{k}]"),
                        format!("unknown queue {queue:?}"),
                    );
                }
            }
            if let Some(capacity) = &agent.capacity {
                let c = capacity;
                if [c.voice, c.chat, c.email, c.sms, c.social, c.webhook] == [0; 6] {
                    self.problem(
                        format!("{path}.capacity"),
                        "every channel is 0, so the agent could never take a contact",
                    );
                }
            }
            if let Some(token) = &agent.token {
                // Never quote the token: problems are printed and logged.
                if token.trim().is_empty() {
                    self.problem(format!("{path}.token"), "must not be empty");
                } else if let Some(first) = tokens.get(token.as_str()) {
                    self.problem(
                        format!("{path}.token"),
                        format!("same token as agents[{first}]; each agent needs its own"),
                    );
                } else {
                    tokens.insert(token, i);
                }
            }
        }
    }

    /// Skill names must be known and levels within [`SKILL_LEVELS`].
    /// `[classify]` and the rules it names: every reference resolves, every condition
    /// compiles, names are unique, and the intents file teaches at least two intents.
    fn classify(&mut self) {
        let classify = &self.config.classify;
        if let Some(zone) = &classify.time_zone
            && jiff::tz::TimeZone::get(zone).is_err()
        {
            self.problem(
                "classify.time_zone",
                format!("unknown IANA time zone {zone:?}"),
            );
        }
        for (i, code) in classify.languages.iter().enumerate() {
            if whatlang::Lang::from_code(code.as_str()).is_none() {
                self.problem(
                    format!("classify.languages[{i}]"),
                    format!("unknown ISO 639-3 language code {code:?} (e.g. \"eng\", \"spa\")"),
                );
            }
        }
        if classify.intents.is_some() {
            let mut intents: Vec<&str> = self
                .config
                .intent_examples
                .iter()
                .map(|e| e.intent.as_str())
                .collect();
            intents.sort_unstable();
            intents.dedup();
            if intents.len() < 2 {
                self.problem(
                    "classify.intents",
                    format!(
                        "the file teaches {} intent(s); a classifier needs at least two",
                        intents.len()
                    ),
                );
            }
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, rule) in self.config.rules.iter().enumerate() {
            let path = format!("classify.rules[{i}] ({})", rule.name);
            if rule.name.trim().is_empty() {
                self.problem(format!("classify.rules[{i}].name"), "must not be empty");
            } else if let Some(first) = seen.insert(rule.name.as_str(), i) {
                self.problem(
                    format!("{path}.name"),
                    format!(
                        "rule {:?} is already defined at classify.rules[{first}]",
                        rule.name
                    ),
                );
            }
            if let Some(queue) = &rule.queue
                && !self.config.queues.contains_key(queue)
            {
                self.problem(format!("{path}.queue"), format!("unknown queue {queue:?}"));
            }
            if let Some(sla) = &rule.sla
                && !self.config.sla.contains_key(sla)
            {
                self.problem(format!("{path}.sla"), format!("unknown SLA policy {sla:?}"));
            }
            self.skill_levels(&format!("{path}.skills"), &rule.skills);
            for (t, tag) in rule.tags.iter().enumerate() {
                self.name(&format!("{path}.tags[{t}]"), tag);
            }
            if let Some(agent) = &rule.preferred_agent {
                self.name(&format!("{path}.preferred_agent"), agent);
            }
        }
        if let Err(errors) = crate::classify::rules::RuleSet::compile(&self.config.rules) {
            for e in errors {
                self.problem(
                    format!("classify.rules[{}] ({}).when", e.index, e.name),
                    e.message,
                );
            }
        }
    }

    fn skill_levels(&mut self, path: &str, levels: &BTreeMap<String, u8>) {
        for (skill, &level) in levels {
            if !self.skills.contains(skill.as_str()) {
                self.problem(format!("{path}.{skill}"), "unknown skill");
            } else if !SKILL_LEVELS.contains(&level) {
                self.problem(
                    format!("{path}.{skill}"),
                    format!(
                        "level {level} out of range {}-{}",
                        SKILL_LEVELS.start(),
                        SKILL_LEVELS.end()
                    ),
                );
            }
        }
    }

    fn service_level(&mut self, path: &str, service_level: &ServiceLevelConfig) {
        self.positive(&format!("{path}.threshold"), service_level.threshold);
        let target = service_level.target;
        if !(target > 0.0 && target <= 1.0) {
            self.problem(
                format!("{path}.target"),
                format!("{target} is not a fraction in (0, 1]"),
            );
        }
    }

    /// Zero would mean "at once", which for these settings is a mistake (and in the router a
    /// busy loop); durations under a millisecond round to zero.
    fn positive(&mut self, path: &str, value: Duration) {
        if duration::millis(value) == 0 {
            self.problem(path, "must be greater than zero");
        }
    }

    /// Names of skills, queues and SLA policies go into metric labels, URLs and problem paths.
    fn name(&mut self, path: &str, name: &str) {
        if name.is_empty() {
            self.problem(path, "name must not be empty");
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            self.problem(
                path,
                format!("name {name:?} may only use ASCII letters, digits, '_' and '-'"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small valid config each case breaks in one way.
    const BASE: &str = r#"
        skills = ["english", "spanish", "billing", "technical"]

        [routing]
        default_queue = "support"

        [sla.standard]
        first_response = "4h"
        resolution = "24h"

        [sla.live]
        first_response = "60s"

        [queues.support]
        sla = "live"
        skills = { english = 1 }

        [queues.billing]
        sla = "standard"
        skills = { billing = 3 }
        optional_skills = { spanish = 5 }
        [[queues.billing.escalation]]
        after = "60s"
        relax = { billing = 1 }
        [[queues.billing.escalation]]
        after = "2m"
        drop_optional = true
        [[queues.billing.escalation]]
        after = "5m"
        overflow_to = "support"

        [[agents]]
        id = "alice"
        skills = { english = 8, billing = 6 }
        queues = ["billing"]
        token = "alice-token"

        [[agents]]
        id = "bob"
        skills = { english = 5, technical = 7 }
        capacity = { chat = 2 }
        token = "bob-token"
    "#;

    fn base() -> Config {
        toml::from_str(BASE).expect("BASE parses")
    }

    fn paths(config: &Config) -> Vec<String> {
        match config.validate() {
            Ok(()) => Vec::new(),
            Err(problems) => problems.into_iter().map(|p| p.path).collect(),
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_base_config_is_valid() {
        assert_eq!(base().validate(), Ok(()));
    }

    #[test]
    fn each_mistake_is_reported_at_its_path() {
        type Case = (&'static str, fn(&mut Config), &'static [&'static str]);
        let cases: &[Case] = &[
            // skills
            (
                "empty skill name",
                |c| c.skills.push(String::new()),
                &["skills[4]"],
            ),
            (
                "skill listed twice",
                |c| c.skills.push("billing".into()),
                &["skills[4]"],
            ),
            (
                "skill name with a dot",
                |c| c.skills.push("a.b".into()),
                &["skills[4]"],
            ),
            // routing
            (
                "unknown default queue",
                |c| c.routing.default_queue = "x".into(),
                &["routing.default_queue"],
            ),
            (
                "zero missed offers",
                |c| c.routing.max_missed_offers = 0,
                &["routing.max_missed_offers"],
            ),
            (
                "zero offer timeout",
                |c| c.routing.offer_timeout = Duration::ZERO,
                &["routing.offer_timeout"],
            ),
            (
                "sub-millisecond position interval",
                |c| c.routing.position_update_interval = Duration::from_micros(10),
                &["routing.position_update_interval"],
            ),
            (
                "service level target above 1",
                |c| c.routing.service_level.target = 1.5,
                &["routing.service_level.target"],
            ),
            // SLA policies
            (
                "zero first response",
                |c| c.sla.get_mut("live").unwrap().first_response = Duration::ZERO,
                &["sla.live.first_response"],
            ),
            (
                "warn_at of 1",
                |c| c.sla.get_mut("live").unwrap().warn_at = 1.0,
                &["sla.live.warn_at"],
            ),
            (
                "warn_at NaN",
                |c| c.sla.get_mut("live").unwrap().warn_at = f64::NAN,
                &["sla.live.warn_at"],
            ),
            (
                "resolution before first response",
                |c| c.sla.get_mut("standard").unwrap().resolution = Some(secs(60)),
                &["sla.standard.resolution"],
            ),
            // queues
            (
                "no queues",
                |c| c.queues.clear(),
                &["routing.default_queue", "queues", "agents[0].queues[0]"],
            ),
            (
                "unknown SLA policy",
                |c| c.queues.get_mut("support").unwrap().sla = "gold".into(),
                &["queues.support.sla"],
            ),
            (
                "unknown required skill",
                |c| {
                    let q = c.queues.get_mut("support").unwrap();
                    q.skills.insert("klingon".into(), 3);
                },
                &["queues.support.skills.klingon"],
            ),
            (
                "required level out of range",
                |c| {
                    let q = c.queues.get_mut("billing").unwrap();
                    q.skills.insert("billing".into(), 12);
                },
                &["queues.billing.skills.billing"],
            ),
            (
                "optional level zero",
                |c| {
                    let q = c.queues.get_mut("billing").unwrap();
                    q.optional_skills.insert("spanish".into(), 0);
                },
                &["queues.billing.optional_skills.spanish"],
            ),
            (
                "skill both required and optional",
                |c| {
                    let q = c.queues.get_mut("billing").unwrap();
                    q.optional_skills.insert("billing".into(), 2);
                },
                &["queues.billing.optional_skills.billing"],
            ),
            (
                "queue offer timeout zero",
                |c| c.queues.get_mut("support").unwrap().offer_timeout = Some(Duration::ZERO),
                &["queues.support.offer_timeout"],
            ),
            (
                "queue service level zero target and threshold",
                |c| {
                    c.queues.get_mut("support").unwrap().service_level = Some(ServiceLevelConfig {
                        threshold: Duration::ZERO,
                        target: 0.0,
                    })
                },
                &[
                    "queues.support.service_level.threshold",
                    "queues.support.service_level.target",
                ],
            ),
            // escalation
            (
                "step not later than the previous",
                |c| c.queues.get_mut("billing").unwrap().escalation[1].after = secs(60),
                &["queues.billing.escalation[1].after"],
            ),
            (
                "step after zero",
                |c| c.queues.get_mut("billing").unwrap().escalation[0].after = Duration::ZERO,
                &["queues.billing.escalation[0].after"],
            ),
            (
                "step that does nothing",
                |c| c.queues.get_mut("billing").unwrap().escalation[1].drop_optional = false,
                &["queues.billing.escalation[1]"],
            ),
            (
                "relax of an unknown skill",
                |c| {
                    let step = &mut c.queues.get_mut("billing").unwrap().escalation[0];
                    step.relax.insert("klingon".into(), 1);
                },
                &["queues.billing.escalation[0].relax.klingon"],
            ),
            (
                "relax to level zero",
                |c| {
                    let step = &mut c.queues.get_mut("billing").unwrap().escalation[0];
                    step.relax.insert("billing".into(), 0);
                },
                &["queues.billing.escalation[0].relax.billing"],
            ),
            (
                "overflow to an unknown queue",
                |c| {
                    c.queues.get_mut("billing").unwrap().escalation[2].overflow_to =
                        Some("nowhere".into())
                },
                &["queues.billing.escalation[2].overflow_to"],
            ),
            (
                "overflow to itself",
                |c| {
                    c.queues.get_mut("billing").unwrap().escalation[2].overflow_to =
                        Some("billing".into())
                },
                &["queues.billing.escalation[2].overflow_to"],
            ),
            (
                "step after an overflow",
                |c| {
                    let q = c.queues.get_mut("billing").unwrap();
                    q.escalation.push(super::super::EscalationStepConfig {
                        after: secs(600),
                        relax: BTreeMap::new(),
                        drop_optional: false,
                        raise_priority: 5,
                        overflow_to: None,
                    });
                },
                &["queues.billing.escalation[3]"],
            ),
            (
                "overflow loop billing -> support -> billing",
                |c| {
                    let q = c.queues.get_mut("support").unwrap();
                    q.escalation.push(super::super::EscalationStepConfig {
                        after: secs(300),
                        relax: BTreeMap::new(),
                        drop_optional: false,
                        raise_priority: 0,
                        overflow_to: Some("billing".into()),
                    });
                },
                &["queues.support.escalation[0].overflow_to"],
            ),
            // agents
            (
                "empty agent id",
                |c| c.agents[1].id = String::new(),
                &["agents[1].id"],
            ),
            (
                "agent id with a space",
                |c| c.agents[1].id = "bo b".into(),
                &["agents[1].id"],
            ),
            (
                "duplicate agent id",
                |c| c.agents[1].id = "alice".into(),
                &["agents[1].id"],
            ),
            (
                "agent with an unknown skill",
                |c| {
                    c.agents[0].skills.insert("klingon".into(), 5);
                },
                &["agents[0].skills.klingon"],
            ),
            (
                "agent level out of range",
                |c| {
                    c.agents[0].skills.insert("english".into(), 11);
                },
                &["agents[0].skills.english"],
            ),
            (
                "agent in an unknown queue",
                |c| c.agents[0].queues.push("vip".into()),
                &["agents[0].queues[1]"],
            ),
            (
                "agent with no capacity at all",
                |c| c.agents[1].capacity = Some(Default::default()),
                &["agents[1].capacity"],
            ),
            (
                "empty token",
                |c| c.agents[0].token = Some(" ".into()),
                &["agents[0].token"],
            ),
            (
                "shared token",
                |c| c.agents[1].token = Some("alice-token".into()),
                &["agents[1].token"],
            ),
        ];
        for (name, mutate, want) in cases {
            let mut config = base();
            mutate(&mut config);
            assert_eq!(paths(&config), *want, "case: {name}");
        }
    }

    #[test]
    fn messages_say_what_is_wrong() {
        let text = BASE.replace("skills = { billing = 3 }", "skills = { billing = 12 }");
        let mut config: Config = toml::from_str(&text).expect("parses");
        config.queues.get_mut("billing").unwrap().escalation[1].after = secs(60);
        config.agents[1].skills.insert("klingon".into(), 2);
        let problems = config.validate().expect_err("invalid");
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "queues.billing.skills.billing: level 12 out of range 1-10",
                "queues.billing.escalation[1].after: must be greater than the previous step (1m)",
                "agents[1].skills.klingon: unknown skill",
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut config = base();
        config.routing.default_queue = "x".into();
        config.queues.get_mut("support").unwrap().sla = "gold".into();
        config.queues.get_mut("billing").unwrap().escalation[2].after = secs(30);
        config.agents[0].skills.insert("klingon".into(), 5);
        config.agents[1].id = "alice".into();
        assert_eq!(
            paths(&config),
            [
                "routing.default_queue",
                "queues.billing.escalation[2].after",
                "queues.support.sla",
                "agents[0].skills.klingon",
                "agents[1].id",
            ]
        );
    }

    #[test]
    fn an_overflow_loop_names_every_queue_on_it() {
        let mut config = base();
        let step = |target: &str| super::super::EscalationStepConfig {
            after: secs(300),
            relax: BTreeMap::new(),
            drop_optional: false,
            raise_priority: 0,
            overflow_to: Some(target.into()),
        };
        config.queues.insert(
            "sales".into(),
            super::super::QueueConfig {
                escalation: vec![step("billing")],
                ..config.queues["support"].clone()
            },
        );
        // billing -> support (base), support -> sales, sales -> billing.
        config.queues.get_mut("support").unwrap().escalation = vec![step("sales")];
        let problems = config.validate().expect_err("loop");
        assert_eq!(
            problems,
            [Problem::new(
                "queues.sales.escalation[0].overflow_to",
                "overflow loop: billing -> support -> sales -> billing"
            )]
        );
    }

    #[test]
    fn overflow_chains_without_loops_are_fine() {
        let mut config = base();
        let mut vip = config.queues["support"].clone();
        vip.escalation = vec![super::super::EscalationStepConfig {
            after: secs(30),
            relax: BTreeMap::new(),
            drop_optional: false,
            raise_priority: 0,
            overflow_to: Some("billing".into()),
        }];
        // vip -> billing -> support: a chain, and two queues reaching the same one.
        config.queues.insert("vip".into(), vip);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn token_problems_never_quote_the_token() {
        let mut config = base();
        config.agents[1].token = Some("alice-token".into());
        let problems = config.validate().expect_err("shared token");
        assert!(problems.iter().all(|p| !p.message.contains("alice-token")));
    }
}
