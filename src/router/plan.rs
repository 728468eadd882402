//! The compiled routing configuration the router runs on: names resolved to interned ids,
//! durations in milliseconds, defaults filled in. Built from [`crate::config::Config`] (or by
//! hand in tests and the simulator); plain data, cheap to clone.

use crate::model::{Millis, QueueId, SkillId, SkillReq, SlaPolicyId};

/// How a queue picks among several idle agents that qualify for a contact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Selection {
    /// The agent who has waited longest since its workload last changed (its last offer, or a
    /// contact ending) or since becoming available: spreads work evenly, the ACD default (like
    /// app_queue's `leastrecent` or a longest-available-agent rule).
    #[default]
    LongestIdle,
    /// The agent with the highest summed proficiency on the contact's required skills; ties go
    /// to the longest idle.
    MostSkilled,
    /// The agent using the smallest share of its total capacity; ties go to the longest idle.
    LeastOccupied,
}

/// What happens when an SLA deadline passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BreachActions {
    /// Added to the contact's priority.
    pub raise_priority: i32,
    /// Apply the queue's next escalation step at once instead of waiting for its time.
    pub escalate: bool,
    /// Ask the daemon to notify supervisors (email or webhook); carried on the breach action.
    pub notify: bool,
}

/// Service-level agreement for a contact: deadlines counted from its arrival.
#[derive(Clone, Debug, PartialEq)]
pub struct SlaPolicy {
    /// Name from config, for reports.
    pub name: String,
    /// Time to the first response by an agent (for voice, answering is the response).
    pub first_response: Millis,
    /// Time to completion, if the policy has one.
    pub resolution: Option<Millis>,
    /// Fraction of a deadline after which a warning is raised (0.8 = at 80 %).
    pub warn_at: f64,
    /// What to do on breach.
    pub on_breach: BreachActions,
}

/// One escalation step: after a wait in the queue, widen the net (bullseye routing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EscalationStep {
    /// Wait in this queue after which the step applies.
    pub after: Millis,
    /// Lower the minimum level of these skills to these levels.
    pub relax: Vec<(SkillId, u8)>,
    /// Drop every optional skill.
    pub drop_optional: bool,
    /// Add to the contact's priority.
    pub raise_priority: i32,
    /// Move the contact to another queue, keeping its age.
    pub overflow_to: Option<QueueId>,
}

/// One queue's routing rules.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuePlan {
    /// Name from config, for reports and metric labels.
    pub name: String,
    /// Added to the priority of every contact in the queue (a VIP queue outranks the rest).
    pub priority: i32,
    /// Skills every contact of the queue needs.
    pub skills: Vec<SkillReq>,
    /// How the queue picks among idle agents.
    pub selection: Selection,
    /// How long an agent has to accept an offer.
    pub offer_timeout: Millis,
    /// After-contact work: the slot stays taken for this long after completion, or until the
    /// agent says ready. Zero frees it at once.
    pub wrap_up: Millis,
    /// Service level counts contacts answered within this wait.
    pub service_level_threshold: Millis,
    /// Target share answered within the threshold (0.8 = 80/20 with a 20 s threshold).
    pub service_level_target: f64,
    /// Abandons before this wait are "short abandons", left out of the abandon-aware service
    /// level (the customer hung up before anyone could reasonably answer).
    pub short_abandon: Millis,
    /// How long a contact waits for its preferred agent before anyone qualified may take it.
    pub preferred_agent_timeout: Millis,
    /// The queue's SLA.
    pub sla: SlaPolicy,
    /// Steps in increasing order of `after`.
    pub escalation: Vec<EscalationStep>,
}

impl QueuePlan {
    /// When escalation step `step` (counted from 0) comes due for a contact that entered the
    /// queue at `entered`; `None` when the queue has no such step.
    pub fn step_due(&self, step: usize, entered: Millis) -> Option<Millis> {
        self.escalation.get(step).map(|s| entered + s.after)
    }

    /// A queue with everyday defaults: 20 s offers, no wrap-up, 80/20 service level, a 5 minute
    /// first-response SLA and no escalation. Tests and the simulator start from here.
    pub fn new(name: impl Into<String>) -> Self {
        QueuePlan {
            name: name.into(),
            priority: 0,
            skills: Vec::new(),
            selection: Selection::LongestIdle,
            offer_timeout: 20_000,
            wrap_up: 0,
            service_level_threshold: 20_000,
            service_level_target: 0.8,
            short_abandon: 5_000,
            preferred_agent_timeout: 60_000,
            sla: SlaPolicy {
                name: "default".into(),
                first_response: 300_000,
                resolution: None,
                warn_at: 0.8,
                on_breach: BreachActions::default(),
            },
            escalation: Vec::new(),
        }
    }
}

/// Everything the router needs to know about the contact center's setup.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutingPlan {
    /// Skill names; a [`SkillId`] is an index into this list.
    pub skills: Vec<String>,
    /// Queues; a [`QueueId`] is an index into this list.
    pub queues: Vec<QueuePlan>,
    /// Consecutive expired offers after which an agent is put away ("redirect on no answer").
    pub max_missed_offers: u32,
    /// While an agent holds a voice contact, nothing else is offered to it.
    pub voice_blocks_other_channels: bool,
    /// How often position and estimated-wait updates may go out for one contact.
    pub position_update_interval: Millis,
    /// Named SLA policies a contact may be given instead of its queue's; a
    /// [`SlaPolicyId`] is an index into this list.
    pub sla_policies: Vec<SlaPolicy>,
}

impl RoutingPlan {
    /// A plan with the given skills and queues and the default routing settings.
    pub fn new(skills: Vec<String>, queues: Vec<QueuePlan>) -> Self {
        RoutingPlan {
            skills,
            queues,
            max_missed_offers: 3,
            voice_blocks_other_channels: true,
            position_update_interval: 1_000,
            sla_policies: Vec::new(),
        }
    }

    /// Looks a queue up by name.
    pub fn queue_id(&self, name: &str) -> Option<QueueId> {
        self.queues
            .iter()
            .position(|q| q.name == name)
            .map(|i| QueueId(i as u16))
    }

    /// Looks an SLA policy up by name.
    pub fn sla_policy_id(&self, name: &str) -> Option<SlaPolicyId> {
        self.sla_policies
            .iter()
            .position(|p| p.name == name)
            .map(|i| SlaPolicyId(i as u16))
    }

    /// Looks a skill up by name.
    pub fn skill_id(&self, name: &str) -> Option<SkillId> {
        self.skills
            .iter()
            .position(|s| s == name)
            .map(|i| SkillId(i as u16))
    }

    /// The queue's rules. Panics on an id that did not come from this plan.
    pub fn queue(&self, id: QueueId) -> &QueuePlan {
        &self.queues[usize::from(id.0)]
    }
}
