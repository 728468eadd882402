//! Plain data shared by every layer: ids, channels, priorities, skill requirements, contacts and
//! agent profiles.
//!
//! Nothing here does IO or reads a clock. Skills and queues are interned to small integers when
//! the configuration is compiled (see [`crate::router::RoutingPlan`]), so the router compares and
//! hashes integers on its hot path; names live at the edges, where users see them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

/// Milliseconds on a monotonic epoch chosen by whoever drives the router.
///
/// The router never reads a clock; the daemon passes wall-clock milliseconds, the simulator
/// passes virtual time, and tests pass whatever makes the behaviour easy to read.
pub type Millis = u64;

/// Identifies a contact for its whole life, across queues, transfers and restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContactId(pub u64);

impl fmt::Display for ContactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An agent's login name, as it appears in config, the agent protocol and metrics.
///
/// Copied into every offer and action, so a clone must be cheap: names up to 23 bytes (nearly
/// all logins) are kept inline and copied, longer ones are reference counted. Inline matters
/// on the hot path: a reference count is one more cold cache line, and an atomic write, for
/// every offer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(SmolStr);

impl AgentId {
    /// Wraps a login name.
    pub fn new(name: impl AsRef<str>) -> Self {
        AgentId(SmolStr::new(name.as_ref()))
    }

    /// The login name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for AgentId {
    fn from(name: &str) -> Self {
        AgentId::new(name)
    }
}

/// A queue, interned: the index of the queue in the compiled routing plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub u16);

/// An SLA policy, interned: the index of the policy in the compiled routing plan's
/// `sla_policies`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlaPolicyId(pub u16);

/// A skill, interned: the index of the skill in the compiled routing plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SkillId(pub u16);

/// The medium a contact arrives on. Capacity and wrap-up are counted per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A phone call, usually handed over by a voice platform.
    Voice,
    /// Customer web chat.
    Chat,
    /// Inbound email.
    Email,
    /// Text messages.
    Sms,
    /// Social media messages and mentions.
    Social,
    /// Anything else posted to the webhook intake (forms, tickets).
    Webhook,
}

impl Channel {
    /// Every channel, in the order used by per-channel arrays such as [`Capacity`].
    pub const ALL: [Channel; 6] = [
        Channel::Voice,
        Channel::Chat,
        Channel::Email,
        Channel::Sms,
        Channel::Social,
        Channel::Webhook,
    ];

    /// Position of the channel in [`Channel::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name used in config, JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Chat => "chat",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Social => "social",
            Channel::Webhook => "webhook",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Returned when a channel name is not one of [`Channel::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?}: expected one of voice, chat, email, sms, social, webhook")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownChannel(s.to_owned()))
    }
}

/// Routing priority: higher is served first; contacts of equal priority are served oldest first.
///
/// A signed integer so that rules can lower a contact below the default of 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Priority(pub i32);

impl Priority {
    /// Raises (or with a negative step, lowers) the priority without overflowing.
    pub fn raised_by(self, step: i32) -> Priority {
        Priority(self.0.saturating_add(step))
    }
}

/// Lowest and highest skill proficiency an agent can have or a contact can require.
pub const SKILL_LEVELS: std::ops::RangeInclusive<u8> = 1..=10;

/// One skill a contact needs, with the lowest acceptable proficiency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SkillReq {
    /// The skill.
    pub skill: SkillId,
    /// Lowest acceptable agent proficiency (1-10).
    pub min_level: u8,
    /// An optional skill is required until an escalation step drops optional skills, so the
    /// contact first waits for the ideal agent and later takes any qualified one.
    pub optional: bool,
}

/// What a contact needs from an agent: a set of skills with minimum levels, one entry per skill,
/// kept sorted by skill so equal requirements compare and hash equal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Requirement(Vec<SkillReq>);

impl Requirement {
    /// Builds a requirement; when a skill appears twice the stricter entry wins (higher level,
    /// and mandatory over optional).
    pub fn new(reqs: impl IntoIterator<Item = SkillReq>) -> Self {
        let mut r = Requirement(Vec::new());
        for req in reqs {
            r.add(req);
        }
        r
    }

    /// Adds one skill, merging with an existing entry for the same skill (the stricter wins).
    pub fn add(&mut self, req: SkillReq) {
        match self.0.binary_search_by_key(&req.skill, |r| r.skill) {
            Ok(i) => {
                let have = &mut self.0[i];
                have.min_level = have.min_level.max(req.min_level);
                have.optional = have.optional && req.optional;
            }
            Err(i) => self.0.insert(i, req),
        }
    }

    /// The requirements, sorted by skill.
    pub fn skills(&self) -> &[SkillReq] {
        &self.0
    }

    /// True when the contact needs no particular skill.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Lowers the minimum level of `skill` to `level` if it is currently higher.
    pub fn relax(&mut self, skill: SkillId, level: u8) {
        if let Ok(i) = self.0.binary_search_by_key(&skill, |r| r.skill) {
            let have = &mut self.0[i];
            have.min_level = have.min_level.min(level.max(1));
        }
    }

    /// Removes every optional skill.
    pub fn drop_optional(&mut self) {
        self.0.retain(|r| !r.optional);
    }

    /// True when an agent with these skills meets every requirement.
    pub fn is_met_by(&self, skills: &AgentSkills) -> bool {
        self.0.iter().all(|r| skills.level(r.skill) >= r.min_level)
    }

    /// Sum of the agent's levels on the required skills: how "skilled" the agent is for this
    /// contact, used by the most-skilled selection policy.
    pub fn score(&self, skills: &AgentSkills) -> u32 {
        self.0
            .iter()
            .map(|r| u32::from(skills.level(r.skill)))
            .sum()
    }
}

/// An agent's skills with proficiency levels, sorted by skill for binary search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentSkills(Vec<(SkillId, u8)>);

impl AgentSkills {
    /// Builds the set; when a skill appears twice the higher level wins.
    pub fn new(levels: impl IntoIterator<Item = (SkillId, u8)>) -> Self {
        let mut v: Vec<(SkillId, u8)> = levels.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        v.dedup_by_key(|e| e.0);
        AgentSkills(v)
    }

    /// The agent's level on `skill`, 0 when the agent does not have it.
    pub fn level(&self, skill: SkillId) -> u8 {
        match self.0.binary_search_by_key(&skill, |e| e.0) {
            Ok(i) => self.0[i].1,
            Err(_) => 0,
        }
    }

    /// Every (skill, level) pair, sorted by skill.
    pub fn iter(&self) -> impl Iterator<Item = (SkillId, u8)> + '_ {
        self.0.iter().copied()
    }
}

/// How many contacts of each channel an agent may hold at once (offers, assigned contacts and
/// wrap-ups all count), indexed by [`Channel::index`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity(pub [u8; 6]);

impl Capacity {
    /// The slots for one channel.
    pub fn of(&self, channel: Channel) -> u8 {
        self.0[channel.index()]
    }

    /// Total slots over all channels.
    pub fn total(&self) -> u32 {
        self.0.iter().map(|&n| u32::from(n)).sum()
    }
}

impl Default for Capacity {
    /// One call, or up to three chats, five emails, three SMS or social threads and five webhook
    /// contacts at once: a common omnichannel blend.
    fn default() -> Self {
        Capacity([1, 3, 5, 3, 3, 5])
    }
}

/// Who an agent is and what it can take: everything the router needs to route to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentProfile {
    /// Login name.
    pub id: AgentId,
    /// Skills with proficiency levels.
    pub skills: AgentSkills,
    /// Concurrent contacts per channel.
    pub capacity: Capacity,
    /// Queues the agent serves; empty means every queue its skills qualify it for.
    pub queues: Vec<QueueId>,
}

/// A contact as the intake hands it to the router: already classified, already durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewContact {
    /// Assigned by the intake, unique for the contact's life.
    pub id: ContactId,
    /// The medium.
    pub channel: Channel,
    /// Target queue.
    pub queue: QueueId,
    /// Skills the contact itself needs, on top of the queue's own requirement.
    pub skills: Vec<SkillReq>,
    /// Priority from classification; the queue's priority is added to it.
    pub priority: Priority,
    /// When the customer first reached us. Replayed contacts keep their original arrival, so
    /// their SLA clocks and their place in line survive a restart.
    pub arrived_at: Millis,
    /// Agent that should get this contact first (sticky / last-agent routing).
    pub preferred_agent: Option<AgentId>,
    /// Whether the customer is waiting live and should hear position and estimated wait
    /// (chat, voice) or not (email).
    pub announce_position: bool,
    /// An SLA policy classification chose instead of the queue's (a VIP customer's 30
    /// seconds in a queue that promises 4 hours).
    pub sla: Option<SlaPolicyId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names_short_and_long_keep_their_text_and_identity() {
        let short = "alice.m";
        let long = "firstname.lastname@contact-center.example.com";
        for name in [short, long] {
            let id = AgentId::new(name);
            let copy = id.clone();
            assert_eq!((id.as_str(), copy.to_string().as_str()), (name, name));
            assert_eq!(id, copy);
        }
        assert_ne!(AgentId::new(short), AgentId::new(long));
        assert!(AgentId::new(short) < AgentId::new("bob"));
    }
}
