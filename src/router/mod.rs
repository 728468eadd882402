//! The routing core: which agent gets which contact, and when. Pure and deterministic.
//!
//! No tokio, no IO, no clock reads. The driver (the daemon's router task, the simulator, a test)
//! feeds [`Event`]s with the current time to [`Router::handle`], executes the [`Action`]s it
//! drains from [`Router::drain_actions`], and calls [`Router::tick`] when
//! [`Router::next_deadline`] comes. The same inputs always give the same outputs.
//!
//! # Data structures
//!
//! Contacts are grouped into *routing classes*: contacts of one queue, one channel and one skill
//! requirement compete for exactly the same agents. (The channel is part of the class because
//! capacity is counted per channel: an agent with a free chat slot and no free email slot can take
//! the head of a chat class but not of an email class.) Each class keeps
//!
//! - a line of waiting contacts in service order (priority, then arrival): a sorted deque
//!   served from the front (`line`), its head copied into a compact array of class heads, and
//! - a ready line of agents that qualify for the class and are ready for it now, ordered by the
//!   queue's selection policy (`ready`). Entries are invalidated lazily: every change to an
//!   agent bumps its epoch, so an old entry is recognised and dropped when it reaches the front
//!   (when a contact pops it, or when the look-ahead after a pop finds it there).
//!
//! A contact that arrives takes the best ready agent of its class: no scan of agents. An agent
//! that becomes free compares the heads of the classes it qualifies for (16 bytes each) and its
//! own preferred line, and takes the best: no scan of waiting contacts. After every event the
//! router is at a fixed point: no ready agent qualifies for a waiting contact it has not
//! refused. Contacts live in slots (`contacts`); lines and timers hold the slot, and an id finds
//! its slot through a window over the recent ids, the counter's order (`id_index`). Timers a
//! fixed delay after now sit in per-delay lanes, the rest in a heap (`timers`).
//!
//! # Decisions a reader may look for
//!
//! - A reject excludes the agent for that contact for good; a missed (expired) offer excludes it
//!   for one more offer timeout, so others get the next chance but a lone agent on a night
//!   shift gets the contact again. Either way the contact keeps its place in line. A contact
//!   every qualified agent has rejected waits for an escalation step to widen the net.
//! - Position in line is the position within the contact's routing class, the contacts that
//!   compete for the same agents.
//! - A queue's service level counts the wait from entering the queue, and counts a contact's first
//!   answer only; the customer's SLA deadlines always count from arrival.
//! - Voice blocks other channels: while an agent holds a voice contact (offered, assigned or in
//!   wrap-up) nothing else is offered; a call may still be offered to an agent holding chats.
//! - An agent going offline returns its offers and assigned contacts to the queue, held for it as
//!   preferred agent for the queue's preferred-agent timeout, so a reconnect gets them back.

mod agent;
mod contact;
mod contacts;
mod entry_classes;
mod id_index;
mod line;
mod plan;
mod ready;
mod stats;
#[cfg(test)]
mod tests;
mod timers;

use std::cmp::Reverse;

use rustc_hash::FxHashMap;

use crate::model::{
    AgentId, AgentProfile, Capacity, Channel, ContactId, Millis, NewContact, Priority, QueueId,
    Requirement, SKILL_LEVELS, SkillId, SkillReq,
};

pub use agent::Presence;
pub use plan::{BreachActions, EscalationStep, QueuePlan, RoutingPlan, Selection, SlaPolicy};
pub use stats::{QueueCounters, QueueSnapshot};

use agent::{Agent, Seat, WrapUp, remove_item};
use contact::{Contact, Deadline, LineRef, Refusal, SlaClock, Whereabouts};
use contacts::{Contacts, Slot};
use entry_classes::EntryClasses;
use line::{Head, Line, Place};
use ready::{ReadyEntry, ReadyLine};
use timers::Timers;

pub(crate) type ClassIdx = u32;
pub(crate) type AgentIdx = u32;

/// Something that happened outside the router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new contact, already durable. Replayed contacts carry their original arrival time.
    ContactQueued(NewContact),
    /// The customer gave up, or a supervisor removed the contact.
    ContactWithdrawn {
        /// The contact.
        contact: ContactId,
        /// Why it left.
        reason: WithdrawReason,
    },
    /// Move a contact to another queue or to a named agent, keeping its age.
    ContactTransferred {
        /// The contact.
        contact: ContactId,
        /// Where it goes.
        to: TransferTarget,
    },
    /// An agent sent the first response (chat, email); stops the first-response SLA clock.
    ContactResponded {
        /// The contact.
        contact: ContactId,
    },
    /// The assigned agent finished with the contact; wrap-up starts.
    ContactCompleted {
        /// The contact.
        contact: ContactId,
    },
    /// An agent logged in (or logged in again with a new profile).
    AgentOnline {
        /// Who it is and what it can take.
        profile: AgentProfile,
        /// Its state on arrival.
        presence: Presence,
    },
    /// An agent logged out or its connection is gone for good.
    AgentOffline {
        /// The agent.
        agent: AgentId,
    },
    /// An agent changed state: available, away with a reason, or offline.
    AgentPresence {
        /// The agent.
        agent: AgentId,
        /// The new state.
        presence: Presence,
    },
    /// A supervisor changed an agent's skills, capacity or queues.
    AgentProfileChanged {
        /// The new profile (its `id` names the agent).
        profile: AgentProfile,
    },
    /// The agent accepted an offer.
    OfferAccepted {
        /// The contact offered.
        contact: ContactId,
        /// The agent it was offered to.
        agent: AgentId,
    },
    /// The agent declined an offer.
    OfferRejected {
        /// The contact offered.
        contact: ContactId,
        /// The agent it was offered to.
        agent: AgentId,
    },
    /// The agent is ready again: ends wrap-up of one contact, or of all with `None`.
    WrapUpDone {
        /// The agent.
        agent: AgentId,
        /// The contact whose wrap-up ends, or `None` for all.
        contact: Option<ContactId>,
    },
    /// Nothing happened but time passed.
    Tick,
}

/// Why a contact left before completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithdrawReason {
    /// The customer gave up (hung up, closed the chat, timed out).
    Abandoned,
    /// A supervisor or the system removed it (spam, duplicate, solved elsewhere).
    Cancelled,
}

/// Where a transfer sends a contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferTarget {
    /// Another queue; the contact takes that queue's requirement plus its own skills.
    Queue(QueueId),
    /// A named agent, who gets it first for the queue's preferred-agent timeout.
    Agent(AgentId),
}

/// How a contact left the router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Handled and completed by an agent.
    Completed,
    /// The customer gave up.
    Abandoned,
    /// Removed by a supervisor or the system.
    Cancelled,
}

/// Why an offer was taken back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeReason {
    /// The agent did not answer in time.
    Expired,
    /// The contact left (abandoned, cancelled).
    ContactLeft,
    /// The agent went away or offline.
    AgentUnavailable,
    /// The contact was transferred elsewhere.
    Transferred,
}

/// Which SLA deadline an SLA action is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SlaKind {
    /// Time to the first agent response.
    FirstResponse,
    /// Time to completion.
    Resolution,
}

/// Something the driver must do, or record, because of an event.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Offer the contact to the agent until `expires_at`.
    Offer {
        /// The contact.
        contact: ContactId,
        /// The agent.
        agent: AgentId,
        /// The contact's queue.
        queue: QueueId,
        /// The contact's channel.
        channel: Channel,
        /// The contact's effective priority.
        priority: Priority,
        /// When the offer lapses.
        expires_at: Millis,
    },
    /// Tell the agent an offer is gone.
    RevokeOffer {
        /// The contact.
        contact: ContactId,
        /// The agent.
        agent: AgentId,
        /// Why.
        reason: RevokeReason,
    },
    /// The agent accepted: the contact is now theirs.
    Assigned {
        /// The contact.
        contact: ContactId,
        /// The agent.
        agent: AgentId,
        /// The contact's queue.
        queue: QueueId,
        /// Time since the customer arrived.
        waited: Millis,
    },
    /// An assigned contact went back to waiting because its agent went offline.
    Requeued {
        /// The contact.
        contact: ContactId,
        /// The agent it was taken from (and is held for first).
        agent: AgentId,
    },
    /// Tell a waiting customer where they stand.
    Position {
        /// The contact.
        contact: ContactId,
        /// 1 = next to be served.
        position: usize,
        /// Estimated wait from the recent service rate, when there is one.
        estimated_wait: Option<Millis>,
    },
    /// An escalation step was applied.
    Escalated {
        /// The contact.
        contact: ContactId,
        /// The queue after the step.
        queue: QueueId,
        /// Index of the step in its queue's list.
        step: usize,
        /// The queue the contact left, when the step overflowed it.
        overflowed_from: Option<QueueId>,
    },
    /// An SLA deadline is near.
    SlaWarning {
        /// The contact.
        contact: ContactId,
        /// Which deadline.
        kind: SlaKind,
        /// When it falls.
        deadline: Millis,
    },
    /// An SLA deadline passed.
    SlaBreach {
        /// The contact.
        contact: ContactId,
        /// Which deadline.
        kind: SlaKind,
        /// When it fell.
        deadline: Millis,
        /// Whether the policy asks for supervisors to be notified.
        notify: bool,
    },
    /// The agent is in after-contact work for this contact until `until` (or until ready).
    WrapUpStarted {
        /// The agent.
        agent: AgentId,
        /// The contact.
        contact: ContactId,
        /// When wrap-up ends by itself.
        until: Millis,
    },
    /// Wrap-up of this contact ended; its slot is free.
    WrapUpEnded {
        /// The agent.
        agent: AgentId,
        /// The contact.
        contact: ContactId,
    },
    /// The agent was put away by the router (redirect on no answer).
    AgentAutoPaused {
        /// The agent.
        agent: AgentId,
        /// The away reason set.
        reason: String,
    },
    /// The contact was transferred.
    Transferred {
        /// The contact.
        contact: ContactId,
        /// The queue it was in.
        from: QueueId,
        /// Where it went.
        to: TransferTarget,
    },
    /// The contact left the router for good.
    ContactLeft {
        /// The contact.
        contact: ContactId,
        /// Its last queue.
        queue: QueueId,
        /// How it left.
        outcome: Outcome,
    },
}

/// An event the router refused. Nothing changed because of it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    /// The queue id is not in the routing plan.
    #[error("unknown queue id {0:?}")]
    UnknownQueue(QueueId),
    /// The skill id is not in the routing plan.
    #[error("unknown skill id {0:?}")]
    UnknownSkill(SkillId),
    /// A skill level outside 1-10.
    #[error("skill level {level} out of range 1-10 for skill {skill:?}")]
    SkillLevelOutOfRange {
        /// The skill.
        skill: SkillId,
        /// The level given.
        level: u8,
    },
    /// A contact with this id is already in the router.
    #[error("contact {0} is already queued")]
    DuplicateContact(ContactId),
    /// The id is reserved by the router (`u64::MAX` marks "no contact" in its records).
    #[error("contact id {0} is reserved")]
    ReservedContactId(ContactId),
    /// No contact with this id is in the router.
    #[error("unknown contact {0}")]
    UnknownContact(ContactId),
    /// No agent with this id has been seen.
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    /// Accept or reject for an offer that is not outstanding (it expired, was revoked, or went
    /// to another agent).
    #[error("contact {contact} is not offered to agent {agent}")]
    NotOffered {
        /// The contact.
        contact: ContactId,
        /// The agent that answered.
        agent: AgentId,
    },
    /// Completion of a contact that no agent holds.
    #[error("contact {0} is not assigned to an agent")]
    NotAssigned(ContactId),
    /// A new plan that would renumber what the router holds: it must keep every skill, queue
    /// and SLA policy of the current plan at its id (new ones go after them).
    #[error(
        "the new plan renumbers {0}; skills, queues and SLA policies may only be added at the end"
    )]
    PlanRenumbers(String),
}

/// A waiting contact an agent becoming free might take: its rank in service order, its slot
/// and the line it waits in.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    urgency: Reverse<Priority>,
    arrived_at: Millis,
    slot: Slot,
    line: LineRef,
}

impl Candidate {
    fn waiting_at(place: &Place, line: LineRef) -> Self {
        Candidate {
            urgency: place.urgency,
            arrived_at: place.arrived_at,
            slot: place.slot,
            line,
        }
    }
}

/// One routing class: contacts of one queue, channel and requirement (the channel lives in
/// `Router::class_channels`).
///
/// The ready line's header comes first, at the start of a cache line: an arrival that finds an
/// agent reads that line and nothing else of the class, and it is the line prefetched when
/// the contact arrives (`Router::contact_queued`).
#[derive(Debug)]
#[repr(C, align(64))]
struct Class {
    /// Agents ready for this class, best first; stale entries dropped lazily.
    ready: ReadyLine,
    /// Live entries the ready line kept at its last sweep (see `Router::refresh_ready`).
    live_at_sweep: u32,
    queue: QueueId,
    line: Line,
    requirement: Requirement,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    OfferExpiry(ContactId, Slot),
    Escalation(ContactId, Slot),
    /// The contact's next SLA warning or breach (one timer per contact at a time, so contacts
    /// that finish early leave few stale timers behind).
    Sla(ContactId, Slot),
    PreferredTimeout(ContactId, Slot),
    /// A missed-offer exclusion of the contact ends.
    RefusalLapse(ContactId, Slot),
    WrapUpEnd(AgentIdx, ContactId),
    PositionTick,
}

type Timer = timers::Timer<Due>;

/// The routing core. See the module documentation.
#[derive(Debug)]
pub struct Router {
    plan: RoutingPlan,
    now: Millis,
    contacts: Contacts,
    agents: Vec<Agent>,
    /// Each agent's seat: availability, load, capacity, idle time, first outstanding offer and
    /// name, apart from the records so that routing decisions read one 64-byte line of a dense
    /// array, not a cold record (see `agent::Seat`).
    seats: Vec<Seat>,
    /// Each agent's epoch, bumped on every change that affects its readiness or its selection
    /// key: a ready entry with an older epoch is stale. Apart from the seats because most
    /// entries a contact with a skill of its own pops are stale (measured: 11 of 12), and
    /// telling them apart reads this array (4 bytes an agent, 40 KB at 10k agents, which stays
    /// in cache) instead of a cold seat each.
    epochs: Vec<u32>,
    agent_index: FxHashMap<AgentId, AgentIdx>,
    classes: Vec<Class>,
    /// Each class's head of line, kept apart from the classes themselves so that an agent
    /// becoming free reads one small entry per class it serves (the hot loop of routing): 16
    /// bytes, four to a cache line.
    class_heads: Vec<Head>,
    /// Each class's channel (a small array that stays in cache).
    class_channels: Vec<Channel>,
    /// The class of contacts that bring no skill of their own or one (the common cases after
    /// classification), found without building and hashing a whole requirement.
    entry_classes: EntryClasses,
    class_index: FxHashMap<(QueueId, Channel, Requirement), ClassIdx>,
    /// For each skill, the agents having it: finds qualified agents for a new class without
    /// scanning everyone.
    skill_agents: Vec<Vec<AgentIdx>>,
    /// Each class with a requirement, filed under its first required skill: an agent can only
    /// qualify for classes filed under a skill it has, so a login looks at those, not at all.
    skill_classes: Vec<Vec<ClassIdx>>,
    /// Classes that require no skill.
    open_classes: Vec<ClassIdx>,
    timers: Timers<Due>,
    /// Timer count at which stale timers are swept out.
    timer_compact_at: usize,
    counters: Vec<QueueCounters>,
    dirty_lines: Vec<LineRef>,
    position_tick_at: Option<Millis>,
    actions: Vec<Action>,
    scratch: Vec<ReadyEntry>,
}

/// A contact as seen from outside the router.
#[derive(Clone, Debug, PartialEq)]
pub struct ContactView {
    /// The contact.
    pub id: ContactId,
    /// Current queue.
    pub queue: QueueId,
    /// Channel.
    pub channel: Channel,
    /// Waiting, offered or assigned.
    pub status: ContactStatus,
    /// The agent it is offered or assigned to.
    pub agent: Option<AgentId>,
    /// Effective priority.
    pub priority: Priority,
    /// Arrival.
    pub arrived_at: Millis,
    /// Entry into the current queue.
    pub queue_entered_at: Millis,
    /// What it needs now (after any relaxation).
    pub requirement: Requirement,
    /// 1-based position in its line while waiting.
    pub position: Option<usize>,
    /// Estimated wait while waiting.
    pub estimated_wait: Option<Millis>,
    /// First-response deadline.
    pub first_response_due: Millis,
    /// Whether the first response has been given.
    pub responded: bool,
    /// Resolution deadline, if the policy has one.
    pub resolution_due: Option<Millis>,
    /// Agent it is held for, and until when.
    pub preferred_agent: Option<(AgentId, Millis)>,
    /// Agents that refused it.
    pub excluded_agents: Vec<AgentId>,
}

/// Where a contact stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactStatus {
    /// In line.
    Waiting,
    /// Offered to an agent.
    Offered,
    /// Accepted by an agent.
    Assigned,
}

/// What an agent is doing, derived from presence and load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentActivity {
    /// Logged out.
    Offline,
    /// Not taking offers.
    Away(String),
    /// Available with nothing on hand.
    Idle,
    /// Holding offers or assigned contacts.
    Busy,
    /// Only after-contact work on hand.
    WrapUp,
}

/// An agent as seen from outside the router.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentView {
    /// The agent.
    pub id: AgentId,
    /// What it said about itself.
    pub presence: Presence,
    /// What it is doing.
    pub activity: AgentActivity,
    /// Its profile.
    pub profile: AgentProfile,
    /// Slots used per channel.
    pub load: [u8; 6],
    /// Outstanding offers.
    pub offers: Vec<ContactId>,
    /// Assigned contacts.
    pub assigned: Vec<ContactId>,
    /// Contacts in wrap-up.
    pub wrap_ups: Vec<ContactId>,
    /// Consecutive expired offers.
    pub missed_in_row: u32,
}

impl Router {
    /// A router with no agents and no contacts.
    pub fn new(plan: RoutingPlan) -> Self {
        let queues = plan.queues.len();
        let skills = plan.skills.len();
        Router {
            plan,
            now: 0,
            contacts: Contacts::default(),
            agents: Vec::new(),
            seats: Vec::new(),
            epochs: Vec::new(),
            agent_index: FxHashMap::default(),
            classes: Vec::new(),
            class_heads: Vec::new(),
            class_channels: Vec::new(),
            entry_classes: EntryClasses::new(queues),
            class_index: FxHashMap::default(),
            skill_agents: vec![Vec::new(); skills],
            skill_classes: vec![Vec::new(); skills],
            open_classes: Vec::new(),
            timers: Timers::default(),
            timer_compact_at: 1024,
            counters: vec![QueueCounters::default(); queues],
            dirty_lines: Vec::new(),
            position_tick_at: None,
            actions: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Switches to a new plan (a configuration reload) without losing anyone: waiting,
    /// offered and assigned contacts keep their place, their requirement and their SLA
    /// clocks; contacts that arrive from now on get the new queue rules, and waiting contacts'
    /// next escalation step is re-timed from the new steps. The new plan must keep every
    /// skill and queue of the old one at the same id, so ids held by contacts and agents stay
    /// meaningful; a queue or skill removed from the configuration stays in the plan (with its
    /// last rules) until its contacts drain.
    pub fn update_plan(&mut self, plan: RoutingPlan) -> Result<(), RouterError> {
        if let Some(i) =
            (0..self.plan.skills.len()).find(|&i| plan.skills.get(i) != Some(&self.plan.skills[i]))
        {
            return Err(RouterError::PlanRenumbers(format!(
                "skill {:?}",
                self.plan.skills[i]
            )));
        }
        if let Some(i) = (0..self.plan.queues.len())
            .find(|&i| plan.queues.get(i).map(|q| &q.name) != Some(&self.plan.queues[i].name))
        {
            return Err(RouterError::PlanRenumbers(format!(
                "queue {:?}",
                self.plan.queues[i].name
            )));
        }
        if let Some(i) = (0..self.plan.sla_policies.len()).find(|&i| {
            plan.sla_policies.get(i).map(|p| &p.name) != Some(&self.plan.sla_policies[i].name)
        }) {
            return Err(RouterError::PlanRenumbers(format!(
                "SLA policy {:?}",
                self.plan.sla_policies[i].name
            )));
        }
        let (queues, skills) = (plan.queues.len(), plan.skills.len());
        let reranked: Vec<bool> = (0..self.plan.queues.len())
            .map(|q| self.plan.queues[q].selection != plan.queues[q].selection)
            .collect();
        self.plan = plan;
        // A queue whose selection policy changed ranks its ready agents again under the new
        // policy (its classes may also need the other kind of container).
        for class in &mut self.classes {
            if !reranked[usize::from(class.queue.0)] {
                continue;
            }
            let selection = self.plan.queue(class.queue).selection;
            let mut entries: Vec<ReadyEntry> = class
                .ready
                .entries()
                .filter(|e| self.epochs[e.agent as usize] == e.epoch)
                .map(|e| ReadyEntry {
                    key: ready_key(
                        selection,
                        &class.requirement,
                        &self.agents[e.agent as usize],
                        &self.seats[e.agent as usize],
                    ),
                    ..e
                })
                .collect();
            entries.sort_unstable();
            class.ready = ReadyLine::new(selection);
            class.live_at_sweep = entries.len() as u32;
            for entry in entries {
                class.ready.push(entry);
            }
        }
        // Cached entry classes were computed from the old queue requirements.
        self.entry_classes = EntryClasses::new(queues);
        self.counters.resize(queues, QueueCounters::default());
        self.skill_agents.resize(skills, Vec::new());
        self.skill_classes.resize(skills, Vec::new());
        let waiting: Vec<ContactId> = self
            .contacts
            .values()
            .filter(|c| {
                c.next_step_at.get().is_some()
                    || matches!(c.whereabouts, Whereabouts::Waiting { .. })
            })
            .map(|c| c.id)
            .collect();
        for id in waiting {
            self.contacts.get_mut(&id).expect("listed").next_step_at = Deadline::UNSET;
            self.schedule_next_step(id);
        }
        Ok(())
    }

    /// Applies an event at time `now` (timers due by then fire first). On error nothing changed
    /// because of the event.
    pub fn handle(&mut self, now: Millis, mut event: Event) -> Result<(), RouterError> {
        self.advance(now);
        // An arrival is read where the caller put it. Moved out first, it was copied into
        // this frame with loads that each spanned two of the caller's stores, which cannot be
        // forwarded: the loads waited for those stores to reach the cache, and likely for
        // every older store too (reading in place measured 0.91 of the time:
        // docs/performance.md, sixth pass).
        if let Event::ContactQueued(contact) = &mut event {
            return self.contact_queued(contact);
        }
        match event {
            Event::ContactQueued(_) => unreachable!("arrivals return above"),
            Event::ContactWithdrawn { contact, reason } => self.contact_withdrawn(contact, reason),
            Event::ContactTransferred { contact, to } => self.contact_transferred(contact, to),
            Event::ContactResponded { contact } => {
                let c = self.contact_mut(contact)?;
                c.sla.responded = true;
                Ok(())
            }
            Event::ContactCompleted { contact } => self.contact_completed(contact),
            Event::AgentOnline { profile, presence } => self.agent_online(profile, presence),
            Event::AgentOffline { agent } => {
                let a = self.agent_idx(&agent)?;
                self.set_presence(a, Presence::Offline);
                Ok(())
            }
            Event::AgentPresence { agent, presence } => {
                let a = self.agent_idx(&agent)?;
                self.set_presence(a, presence);
                Ok(())
            }
            Event::AgentProfileChanged { profile } => {
                self.check_profile(&profile)?;
                let a = self.agent_idx(&profile.id)?;
                self.set_profile(a, profile);
                self.fill(a);
                Ok(())
            }
            Event::OfferAccepted { contact, agent } => self.offer_accepted(contact, agent),
            Event::OfferRejected { contact, agent } => self.offer_rejected(contact, agent),
            Event::WrapUpDone { agent, contact } => self.wrap_up_done(agent, contact),
            Event::Tick => Ok(()),
        }
    }

    /// Fires every timer due by `now`.
    pub fn tick(&mut self, now: Millis) {
        self.advance(now);
    }

    /// The earliest time at which [`Router::tick`] has something to do. May be early (a timer
    /// that turns out to be stale), never late.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.next_at()
    }

    /// Actions produced since the last drain, in the order they happened.
    pub fn drain_actions(&mut self) -> std::vec::Drain<'_, Action> {
        self.actions.drain(..)
    }

    /// The router's clock: the latest `now` it has been given.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// The routing plan in force.
    pub fn plan(&self) -> &RoutingPlan {
        &self.plan
    }

    // ----- contacts -------------------------------------------------------------------------

    /// A new contact, read in place (see [`Router::handle`]): its skills and preferred agent
    /// are taken from it, the rest is left.
    fn contact_queued(&mut self, nc: &mut NewContact) -> Result<(), RouterError> {
        if usize::from(nc.queue.0) >= self.plan.queues.len() {
            return Err(RouterError::UnknownQueue(nc.queue));
        }
        // The router's records use the largest id for "no contact" (a seat with no offer).
        if nc.id.0 == u64::MAX {
            return Err(RouterError::ReservedContactId(nc.id));
        }
        for req in &nc.skills {
            self.check_skill(req.skill, req.min_level)?;
        }
        // The decision reads cold lines one after another: the class's ready line, the entry
        // at its front, the seat of that agent. When the class is known already (nearly
        // always), the first starts loading now, under the insertion's own misses (measured:
        // docs/performance.md, sixth pass).
        let known_class = self.entry_classes.get(nc.queue, nc.channel, &nc.skills);
        if let Some(ci) = known_class {
            prefetch_index::prefetch_index(&self.classes, ci as usize);
        }
        let queue = self.plan.queue(nc.queue);
        let priority = nc.priority.raised_by(queue.priority);
        let policy = nc
            .sla
            .and_then(|id| self.plan.sla_policies.get(usize::from(id.0)))
            .unwrap_or(&queue.sla);
        let preferred_timeout = queue.preferred_agent_timeout;
        // An arrival "in the future" (a sender's clock ahead of ours) counts as now.
        let arrived_at = nc.arrived_at.min(self.now);
        let entered = arrived_at;
        let first_step_at = queue.step_due(0, entered);
        let id = nc.id;
        let make = |slot| Contact {
            id,
            slot,
            channel: nc.channel,
            queue: nc.queue,
            // Both set right after the insertion (below).
            class: ClassIdx::MAX,
            own_skills: Box::default(),
            base_priority: nc.priority,
            boost: 0,
            priority,
            arrived_at,
            queue_entered_at: entered,
            whereabouts: Whereabouts::Detached,
            announce_position: nc.announce_position,
            preferred: None,
            excluded: Vec::new(),
            next_step: 0,
            next_step_at: first_step_at.into(),
            step_pending: None,
            // Made here, in the slot, not on the stack first: copying it in made the record's
            // store wait on a stack load that straddled two earlier stores (perf put 42 % of
            // the insertion's samples on that one load; in time the change was within the
            // machine's noise, docs/performance.md, fifth pass).
            sla: SlaClock::new(policy, arrived_at),
            answered: false,
            last_announced: None,
        };
        // The store is probed once, by the insertion, which also refuses a duplicate id.
        let Some(slot) = self.contacts.insert_new(id, make) else {
            return Err(RouterError::DuplicateContact(id));
        };
        // A new class only now: creating it is for contacts that are stored, not refused.
        let class = match known_class {
            Some(ci) => ci,
            None => self.entry_class(nc.queue, nc.channel, &nc.skills),
        };
        let c = self.contacts.at_mut(slot);
        c.class = class;
        c.own_skills = std::mem::take(&mut nc.skills).into_boxed_slice();
        // After the insertion: a duplicate must not log an unknown preferred agent in.
        if let Some(name) = nc.preferred_agent.take() {
            let until = self.now + preferred_timeout;
            let a = self.agent_slot(&name);
            self.contacts.at_mut(slot).preferred = Some((a, until));
            self.schedule_after_delay(until, Due::PreferredTimeout(id, slot));
        }
        if let Some(at) = first_step_at {
            self.schedule(at, Due::Escalation(id, slot));
        }
        self.counters[usize::from(nc.queue.0)].arrived += 1;
        self.place_at(slot);
        // After placing: a replayed contact's overdue breach may move it (raise, escalate).
        self.schedule_sla_at(slot, id);
        Ok(())
    }

    fn contact_withdrawn(
        &mut self,
        id: ContactId,
        reason: WithdrawReason,
    ) -> Result<(), RouterError> {
        self.contact_mut(id)?;
        let freed = self.detach(id, RevokeReason::ContactLeft, true);
        let c = self.contacts.remove(&id).expect("checked above");
        let q = self.plan.queue(c.queue);
        let counters = &mut self.counters[usize::from(c.queue.0)];
        let outcome = match reason {
            WithdrawReason::Abandoned => Outcome::Abandoned,
            WithdrawReason::Cancelled => Outcome::Cancelled,
        };
        if !c.answered && reason == WithdrawReason::Abandoned {
            counters.abandoned += 1;
            if self.now.saturating_sub(c.queue_entered_at) < q.short_abandon {
                counters.abandoned_short += 1;
            }
        }
        self.actions.push(Action::ContactLeft {
            contact: id,
            queue: c.queue,
            outcome,
        });
        if let Some(a) = freed {
            self.fill(a);
        }
        Ok(())
    }

    fn contact_completed(&mut self, id: ContactId) -> Result<(), RouterError> {
        let c = self.contact_mut(id)?;
        let Whereabouts::Assigned { .. } = c.whereabouts else {
            return Err(RouterError::NotAssigned(id));
        };
        let freed = self.detach(id, RevokeReason::ContactLeft, true);
        let c = self.contacts.remove(&id).expect("checked above");
        self.counters[usize::from(c.queue.0)].completed += 1;
        self.actions.push(Action::ContactLeft {
            contact: id,
            queue: c.queue,
            outcome: Outcome::Completed,
        });
        if let Some(a) = freed {
            self.fill(a);
        }
        Ok(())
    }

    fn contact_transferred(
        &mut self,
        id: ContactId,
        to: TransferTarget,
    ) -> Result<(), RouterError> {
        self.contact_mut(id)?;
        if let TransferTarget::Queue(q) = to
            && usize::from(q.0) >= self.plan.queues.len()
        {
            return Err(RouterError::UnknownQueue(q));
        }
        let freed = self.detach(id, RevokeReason::Transferred, true);
        let from = self.contacts[&id].queue;
        self.counters[usize::from(from.0)].transferred_out += 1;
        match &to {
            TransferTarget::Queue(q) => {
                self.move_to_queue(id, *q);
                self.counters[usize::from(q.0)].entered_from_elsewhere += 1;
                let c = self.contacts.get_mut(&id).expect("checked above");
                c.preferred = None;
            }
            TransferTarget::Agent(name) => {
                let a = self.agent_slot(name);
                let timeout = self.plan.queue(from).preferred_agent_timeout;
                let until = self.now + timeout;
                let c = self.contacts.get_mut(&id).expect("checked above");
                c.preferred = Some((a, until));
                // An explicit transfer overrides an earlier refusal.
                c.excluded.retain(|r| r.agent != a);
                let slot = c.slot;
                self.schedule_after_delay(until, Due::PreferredTimeout(id, slot));
            }
        }
        self.actions.push(Action::Transferred {
            contact: id,
            from,
            to,
        });
        self.place(id);
        if let Some(a) = freed {
            self.fill(a);
        }
        Ok(())
    }

    /// Takes a contact out of wherever it is, leaving it `Detached`. An outstanding offer is
    /// revoked with `reason`; an assigned contact's slot goes to wrap-up when `wrap_up` is set.
    /// Returns the agent whose slot was freed, which the caller must `fill` once the contact is
    /// settled.
    fn detach(&mut self, id: ContactId, reason: RevokeReason, wrap_up: bool) -> Option<AgentIdx> {
        let c = self
            .contacts
            .get_mut(&id)
            .expect("caller checked the contact exists");
        let was = std::mem::replace(&mut c.whereabouts, Whereabouts::Detached);
        let (channel, queue) = (c.channel, c.queue);
        match was {
            Whereabouts::Detached => None,
            Whereabouts::Waiting { place, line } => {
                self.line_mut(line).remove(&place);
                self.sync_head(line);
                self.mark_dirty(line);
                None
            }
            Whereabouts::Offered { agent, .. } => {
                self.seats[agent as usize].free_slot(channel, self.now);
                self.release_offer(agent, id);
                let ag = &self.agents[agent as usize];
                self.counters[usize::from(queue.0)].offers_revoked += 1;
                self.actions.push(Action::RevokeOffer {
                    contact: id,
                    agent: ag.profile.id.clone(),
                    reason,
                });
                self.await_fill(agent);
                Some(agent)
            }
            Whereabouts::Assigned { agent } => {
                remove_item(&mut self.agents[agent as usize].assigned, &id);
                let wrap = self.plan.queue(queue).wrap_up;
                if wrap_up && wrap > 0 {
                    let until = self.now + wrap;
                    let ag = &mut self.agents[agent as usize];
                    ag.wrap_ups.push(WrapUp {
                        contact: id,
                        channel,
                        until,
                    });
                    self.actions.push(Action::WrapUpStarted {
                        agent: ag.profile.id.clone(),
                        contact: id,
                        until,
                    });
                    self.schedule_after_delay(until, Due::WrapUpEnd(agent, id));
                    None
                } else {
                    self.seats[agent as usize].free_slot(channel, self.now);
                    self.await_fill(agent);
                    Some(agent)
                }
            }
        }
    }

    /// Puts a detached contact where it belongs: offered to a ready agent, or waiting in line.
    fn place(&mut self, id: ContactId) {
        let slot = self
            .contacts
            .slot(&id)
            .expect("placing a contact in the router");
        self.place_at(slot);
    }

    /// [`Router::place`] for a contact whose slot the caller holds.
    fn place_at(&mut self, slot: Slot) {
        let id = self.contacts.at(slot).id;
        if let Some(forced) = self.contacts.at(slot).step_pending {
            self.contacts.at_mut(slot).step_pending = None;
            self.apply_steps(id, forced);
        }
        let c = self.contacts.at(slot);
        debug_assert_eq!(c.whereabouts, Whereabouts::Detached);
        let (class, channel) = (c.class, c.channel);
        if let Some((a, until)) = c.preferred {
            if until > self.now {
                let (agent, seat) = (&self.agents[a as usize], &self.seats[a as usize]);
                if !agent.known || self.qualifies(a, class) {
                    if !c.refused_by(a, self.now)
                        && !seat.awaiting_fill
                        && seat.can_take(channel, self.voice_blocks())
                    {
                        self.offer(slot, a);
                        self.refresh_ready(a);
                        return;
                    }
                    if !c.refused_by(a, self.now) {
                        self.wait_in(id, LineRef::Preferred(a));
                        return;
                    }
                }
            }
            self.contacts.at_mut(slot).preferred = None;
        }
        if let Some(a) = self.pop_ready_agent(class, slot) {
            self.offer(slot, a);
            self.refresh_ready(a);
        } else {
            self.wait_in(id, LineRef::Class(class));
        }
    }

    fn wait_in(&mut self, id: ContactId, line: LineRef) {
        let c = &self.contacts[&id];
        let place = c.place();
        let announce = c.announce_position;
        let now = self.now;
        let l = self.line_mut(line);
        let at_back = l.insert(place);
        let position = l.len();
        let estimate = l.estimated_wait(position, now);
        self.sync_head(line);
        let c = self.contacts.get_mut(&id).expect("present");
        c.whereabouts = Whereabouts::Waiting { place, line };
        if at_back {
            if announce {
                c.last_announced = Some((position, estimate));
                self.actions.push(Action::Position {
                    contact: id,
                    position,
                    estimated_wait: estimate,
                });
            }
        } else {
            self.mark_dirty(line);
        }
    }

    /// Pops the best ready agent of a class that has not refused the contact. Valid entries
    /// skipped because of a refusal go back in the ready line. Then looks ahead: drops the
    /// stale entries now at the front and prefetches the seat of the first live one.
    fn pop_ready_agent(&mut self, class: ClassIdx, slot: Slot) -> Option<AgentIdx> {
        let contact = self.contacts.at(slot);
        let now = self.now;
        let voice_blocks = self.voice_blocks();
        let channel = self.class_channels[class as usize];
        let ready = &mut self.classes[class as usize].ready;
        let mut skipped = std::mem::take(&mut self.scratch);
        let found = loop {
            let Some(entry) = ready.pop() else {
                break None;
            };
            // A stale entry is dropped, and a live one checked, without touching the record.
            if self.epochs[entry.agent as usize] != entry.epoch
                || !self.seats[entry.agent as usize].can_take(channel, voice_blocks)
            {
                continue;
            }
            if contact.refused_by(entry.agent, now) {
                skipped.push(entry);
                continue;
            }
            break Some(entry.agent);
        };
        for entry in skipped.drain(..) {
            ready.push(entry);
        }
        // Look-ahead: the first live entry now at the front is the agent this class's next
        // contact will most likely be offered to. Its seat is the coldest line an arrival
        // reads (under longest idle, the default, it was last touched when the agent became
        // ready), so its load starts now, with a prefetch that does not wait for it, and is
        // mostly done by the time that contact comes (measured: docs/performance.md, fifth
        // pass). Stale entries ahead of it are dropped now rather than then; nothing else
        // changes.
        while let Some(next) = ready.peek() {
            if self.epochs[next.agent as usize] == next.epoch {
                prefetch_index::prefetch_index(&self.seats, next.agent as usize);
                break;
            }
            ready.pop();
        }
        self.scratch = skipped;
        found
    }

    fn offer(&mut self, slot: Slot, a: AgentIdx) {
        let c = self.contacts.at_mut(slot);
        let id = c.id;
        let q = self.plan.queue(c.queue);
        let expires_at = self.now + q.offer_timeout;
        c.whereabouts = Whereabouts::Offered {
            agent: a,
            expires_at,
        };
        let seat = &mut self.seats[a as usize];
        debug_assert!(
            seat.can_take(c.channel, self.plan.voice_blocks_other_channels),
            "offering {id} to agent #{a} who cannot take {:?}: {seat:?}",
            c.channel,
        );
        seat.take_slot(c.channel);
        seat.idle_since = self.now;
        bump(&mut self.epochs, a);
        seat.hold_offer(id, &mut self.agents[a as usize].more_offers);
        self.counters[usize::from(c.queue.0)].offers += 1;
        self.actions.push(Action::Offer {
            contact: id,
            agent: seat.name.clone(),
            queue: c.queue,
            channel: c.channel,
            priority: c.priority,
            expires_at,
        });
        self.schedule_after_delay(expires_at, Due::OfferExpiry(id, slot));
    }

    fn offer_accepted(&mut self, id: ContactId, name: AgentId) -> Result<(), RouterError> {
        let a = self.offered_to(id, &name)?;
        let now = self.now;
        let c = self.contacts.get_mut(&id).expect("checked by offered_to");
        c.whereabouts = Whereabouts::Assigned { agent: a };
        if c.channel == Channel::Voice {
            c.sla.responded = true;
        }
        let first_answer = !c.answered;
        c.answered = true;
        let (queue, waited, in_queue) = (
            c.queue,
            now - c.arrived_at.min(now),
            now - c.queue_entered_at,
        );
        self.release_offer(a, id);
        let agent = &mut self.agents[a as usize];
        agent.assigned.push(id);
        agent.missed_in_row = 0;
        if first_answer {
            let threshold = self.plan.queue(queue).service_level_threshold;
            let counters = &mut self.counters[usize::from(queue.0)];
            counters.answered += 1;
            counters.answered_wait_ms += in_queue;
            if in_queue <= threshold {
                counters.answered_within_threshold += 1;
            }
        }
        self.actions.push(Action::Assigned {
            contact: id,
            agent: name,
            queue,
            waited,
        });
        Ok(())
    }

    fn offer_rejected(&mut self, id: ContactId, name: AgentId) -> Result<(), RouterError> {
        let a = self.offered_to(id, &name)?;
        self.refuse(id, a, None);
        let queue = self.contacts[&id].queue;
        self.counters[usize::from(queue.0)].offers_rejected += 1;
        self.place(id);
        self.fill(a);
        Ok(())
    }

    /// Takes an offer back from an agent that refused it and excludes the agent for this
    /// contact: for good after a reject, until `until` after a missed offer. Leaves the contact
    /// detached.
    fn refuse(&mut self, id: ContactId, a: AgentIdx, until: Option<Millis>) {
        let c = self.contacts.get_mut(&id).expect("present");
        c.whereabouts = Whereabouts::Detached;
        c.excluded.retain(|r| r.agent != a);
        c.excluded.push(Refusal { agent: a, until });
        let (channel, slot) = (c.channel, c.slot);
        self.release_offer(a, id);
        self.seats[a as usize].free_slot(channel, self.now);
        self.await_fill(a);
        if let Some(at) = until {
            self.schedule(at, Due::RefusalLapse(id, slot));
        }
    }

    fn offered_to(&self, id: ContactId, name: &AgentId) -> Result<AgentIdx, RouterError> {
        let c = self
            .contacts
            .get(&id)
            .ok_or(RouterError::UnknownContact(id))?;
        let a = self.agent_idx(name)?;
        match c.whereabouts {
            Whereabouts::Offered { agent, .. } if agent == a => Ok(a),
            _ => Err(RouterError::NotOffered {
                contact: id,
                agent: name.clone(),
            }),
        }
    }

    /// Moves a detached contact into another queue: that queue's requirement plus the contact's
    /// own skills, its escalation steps from the start, its priority; the contact keeps its age.
    fn move_to_queue(&mut self, id: ContactId, queue: QueueId) {
        let c = &self.contacts[&id];
        let channel = c.channel;
        let own = c.own_skills.clone();
        let class = self.entry_class(queue, channel, &own);
        let queue_priority = self.plan.queue(queue).priority;
        let now = self.now;
        let c = self.contacts.get_mut(&id).expect("present");
        c.queue = queue;
        c.class = class;
        c.queue_entered_at = now;
        c.priority = c.base_priority.raised_by(queue_priority).raised_by(c.boost);
        c.next_step = 0;
        c.next_step_at = Deadline::UNSET;
        // Steps pending from the old queue do not carry over to the new one.
        c.step_pending = None;
        self.schedule_next_step(id);
    }

    // ----- escalation and SLA ---------------------------------------------------------------

    fn schedule_next_step(&mut self, id: ContactId) {
        if let Some(slot) = self.contacts.slot(&id) {
            self.schedule_next_step_at(slot);
        }
    }

    fn schedule_next_step_at(&mut self, slot: Slot) {
        let c = self.contacts.at(slot);
        let id = c.id;
        let due = self
            .plan
            .queue(c.queue)
            .step_due(c.next_step, c.queue_entered_at);
        if let Some(at) = due {
            self.contacts.at_mut(slot).next_step_at = Deadline::at(at);
            self.schedule(at, Due::Escalation(id, slot));
        }
    }

    /// Applies every escalation step that is due (and one more if `forced`) to a detached
    /// contact.
    fn apply_steps(&mut self, id: ContactId, mut forced: bool) {
        loop {
            let c = &self.contacts[&id];
            let queue = c.queue;
            let steps = &self.plan.queue(queue).escalation;
            let Some(step) = steps.get(c.next_step) else {
                return;
            };
            if !(forced || c.queue_entered_at + step.after <= self.now) {
                return;
            }
            forced = false;
            let step_index = c.next_step;
            let step = step.clone();
            let mut requirement = self.classes[c.class as usize].requirement.clone();
            for &(skill, level) in &step.relax {
                requirement.relax(skill, level);
            }
            if step.drop_optional {
                requirement.drop_optional();
            }
            let channel = c.channel;
            let c = self.contacts.get_mut(&id).expect("present");
            c.boost = c.boost.saturating_add(step.raise_priority);
            c.next_step += 1;
            c.next_step_at = Deadline::UNSET;
            self.counters[usize::from(queue.0)].escalations += 1;
            if let Some(target) = step.overflow_to {
                self.counters[usize::from(queue.0)].overflowed_out += 1;
                self.counters[usize::from(target.0)].entered_from_elsewhere += 1;
                self.move_to_queue(id, target);
            } else {
                let class = self.class_for(queue, channel, requirement);
                let queue_priority = self.plan.queue(queue).priority;
                let c = self.contacts.get_mut(&id).expect("present");
                c.class = class;
                c.priority = c.base_priority.raised_by(queue_priority).raised_by(c.boost);
                self.schedule_next_step(id);
            }
            let c = &self.contacts[&id];
            self.actions.push(Action::Escalated {
                contact: id,
                queue: c.queue,
                step: step_index,
                overflowed_from: step.overflow_to.map(|_| queue),
            });
        }
    }

    /// Applies due steps (or a forced one) to a contact wherever it is: waiting contacts move
    /// at once, offered ones when the offer resolves, assigned ones are past escalation.
    fn escalate(&mut self, id: ContactId, forced: bool) {
        let c = self.contacts.get_mut(&id).expect("present");
        match c.whereabouts {
            Whereabouts::Waiting { .. } => {
                self.detach(id, RevokeReason::ContactLeft, false);
                self.apply_steps(id, forced);
                self.place(id);
            }
            // Applied if and when the contact comes back to waiting (offer refused, agent
            // gone), so that a requeued contact is not stuck behind a step that came due.
            Whereabouts::Offered { .. } | Whereabouts::Assigned { .. } => {
                c.step_pending = Some(c.step_pending.unwrap_or(false) || forced);
            }
            Whereabouts::Detached => {}
        }
    }

    /// The contact's next SLA event not yet raised: (time, kind, is it the breach).
    fn next_sla_event(sla: &SlaClock) -> Option<(Millis, SlaKind, bool)> {
        let first = if sla.responded {
            None
        } else if !sla.first_response_warned {
            Some((sla.first_response_warn, SlaKind::FirstResponse, false))
        } else if !sla.first_response_breached {
            Some((sla.first_response_due, SlaKind::FirstResponse, true))
        } else {
            None
        };
        let resolution = match (sla.resolution_warn.get(), sla.resolution_due.get()) {
            (Some(warn), _) if !sla.resolution_warned => Some((warn, SlaKind::Resolution, false)),
            (_, Some(due)) if !sla.resolution_breached => Some((due, SlaKind::Resolution, true)),
            _ => None,
        };
        match (first, resolution) {
            // The earlier; the first response on a tie.
            (Some(first), Some(resolution)) if resolution.0 < first.0 => Some(resolution),
            (first, resolution) => first.or(resolution),
        }
    }

    /// Raises every SLA event of the contact that is due, then schedules the next one.
    fn schedule_sla(&mut self, id: ContactId) {
        if let Some(slot) = self.contacts.slot(&id) {
            self.schedule_sla_at(slot, id);
        }
    }

    /// [`Router::schedule_sla`] for a contact whose slot the caller holds.
    fn schedule_sla_at(&mut self, slot: Slot, id: ContactId) {
        loop {
            let Some(c) = self.contacts.at_if_mut(slot, id) else {
                return;
            };
            let Some((at, kind, breach)) = Self::next_sla_event(&c.sla) else {
                c.sla.next_at = Deadline::UNSET;
                return;
            };
            if at > self.now {
                c.sla.next_at = Deadline::at(at);
                self.schedule(at, Due::Sla(id, slot));
                return;
            }
            if breach {
                self.sla_breach(id, kind);
            } else {
                self.sla_warning(id, kind);
            }
        }
    }

    fn sla_warning(&mut self, id: ContactId, kind: SlaKind) {
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        let s = &mut c.sla;
        let deadline = match kind {
            SlaKind::FirstResponse if !s.responded && !s.first_response_warned => {
                s.first_response_warned = true;
                s.first_response_due
            }
            SlaKind::Resolution if !s.resolution_warned => {
                s.resolution_warned = true;
                s.resolution_due
                    .get()
                    .expect("scheduled only with a resolution deadline")
            }
            _ => return,
        };
        self.counters[usize::from(c.queue.0)].sla_warnings += 1;
        self.actions.push(Action::SlaWarning {
            contact: id,
            kind,
            deadline,
        });
    }

    fn sla_breach(&mut self, id: ContactId, kind: SlaKind) {
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        let s = &mut c.sla;
        let deadline = match kind {
            SlaKind::FirstResponse if !s.responded && !s.first_response_breached => {
                s.first_response_breached = true;
                s.first_response_due
            }
            SlaKind::Resolution if !s.resolution_breached => {
                s.resolution_breached = true;
                s.resolution_due
                    .get()
                    .expect("scheduled only with a resolution deadline")
            }
            _ => return,
        };
        let on_breach = s.on_breach;
        self.counters[usize::from(c.queue.0)].sla_breaches += 1;
        self.actions.push(Action::SlaBreach {
            contact: id,
            kind,
            deadline,
            notify: on_breach.notify,
        });
        if on_breach.raise_priority != 0 {
            let queue_priority = self.plan.queue(c.queue).priority;
            c.boost = c.boost.saturating_add(on_breach.raise_priority);
            c.priority = c.base_priority.raised_by(queue_priority).raised_by(c.boost);
            if let Whereabouts::Waiting { .. } = c.whereabouts {
                // Re-placing at the new priority; no agent can be ready for it (fixed point),
                // so this only moves it up its line.
                self.detach(id, RevokeReason::ContactLeft, false);
                self.place(id);
            }
        }
        if on_breach.escalate {
            self.escalate(id, true);
        }
    }

    // ----- agents ---------------------------------------------------------------------------

    fn agent_online(
        &mut self,
        profile: AgentProfile,
        presence: Presence,
    ) -> Result<(), RouterError> {
        self.check_profile(&profile)?;
        let a = self.agent_slot(&profile.id);
        self.agents[a as usize].known = true;
        self.set_profile(a, profile);
        self.set_presence(a, presence);
        Ok(())
    }

    fn check_profile(&self, profile: &AgentProfile) -> Result<(), RouterError> {
        for (skill, level) in profile.skills.iter() {
            self.check_skill(skill, level)?;
        }
        for q in &profile.queues {
            if usize::from(q.0) >= self.plan.queues.len() {
                return Err(RouterError::UnknownQueue(*q));
            }
        }
        Ok(())
    }

    fn check_skill(&self, skill: SkillId, level: u8) -> Result<(), RouterError> {
        if usize::from(skill.0) >= self.plan.skills.len() {
            return Err(RouterError::UnknownSkill(skill));
        }
        if !SKILL_LEVELS.contains(&level) {
            return Err(RouterError::SkillLevelOutOfRange { skill, level });
        }
        Ok(())
    }

    /// The agent's slot, creating an offline placeholder for a name never seen (a contact may
    /// prefer an agent who has not logged in yet).
    fn agent_slot(&mut self, id: &AgentId) -> AgentIdx {
        if let Some(&a) = self.agent_index.get(id) {
            return a;
        }
        let a = self.agents.len() as AgentIdx;
        let profile = AgentProfile {
            id: id.clone(),
            skills: Default::default(),
            capacity: Capacity([0; 6]),
            queues: Vec::new(),
        };
        let mut agent = Agent::new(profile);
        agent.known = false;
        self.agents.push(agent);
        self.seats.push(Seat::new(id.clone(), self.now));
        self.epochs.push(0);
        self.agent_index.insert(id.clone(), a);
        a
    }

    fn agent_idx(&self, id: &AgentId) -> Result<AgentIdx, RouterError> {
        match self.agent_index.get(id) {
            Some(&a) if self.agents[a as usize].known => Ok(a),
            _ => Err(RouterError::UnknownAgent(id.clone())),
        }
    }

    /// Replaces an agent's profile and recomputes the classes it qualifies for. Offers that no
    /// longer fit are revoked; assigned contacts stay even above a lowered capacity.
    fn set_profile(&mut self, a: AgentIdx, profile: AgentProfile) {
        let agent = &mut self.agents[a as usize];
        for (skill, _) in agent.profile.skills.iter() {
            remove_item(&mut self.skill_agents[usize::from(skill.0)], &a);
        }
        for (skill, _) in profile.skills.iter() {
            self.skill_agents[usize::from(skill.0)].push(a);
        }
        let seat = &mut self.seats[a as usize];
        seat.capacity = profile.capacity;
        agent.profile = profile;
        // Skills or capacity may have shrunk: no old ready entry may be trusted.
        bump(&mut self.epochs, a);
        let mut classes = std::mem::take(&mut agent.classes);
        classes.clear();
        let candidates: Vec<ClassIdx> = agent
            .profile
            .skills
            .iter()
            .flat_map(|(skill, _)| &self.skill_classes[usize::from(skill.0)])
            .chain(&self.open_classes)
            .copied()
            .collect();
        for ci in candidates {
            if self.qualifies(a, ci) {
                classes.push(ci);
            }
        }
        self.agents[a as usize].classes = classes;
        // Offers the agent no longer qualifies or has room for go back to the queue; assigned
        // contacts stay.
        for id in self.offers_of(a) {
            let c = &self.contacts[&id];
            let seat = &self.seats[a as usize];
            let over = seat.load[c.channel.index()] > seat.capacity.of(c.channel);
            if over || !self.qualifies(a, c.class) {
                self.detach(id, RevokeReason::AgentUnavailable, false);
                self.place(id);
            }
        }
    }

    fn set_presence(&mut self, a: AgentIdx, presence: Presence) {
        let agent = &mut self.agents[a as usize];
        let seat = &mut self.seats[a as usize];
        if presence == Presence::Available && !seat.available {
            seat.idle_since = self.now;
            agent.missed_in_row = 0;
        }
        seat.available = presence == Presence::Available;
        agent.presence = presence.clone();
        // Its ready entries must not be used from here on (an away agent's offers are being
        // returned to the queue right below).
        bump(&mut self.epochs, a);
        match presence {
            Presence::Available => {
                self.fill(a);
            }
            Presence::Away { .. } => {
                self.revoke_offers(a);
                self.refresh_ready(a);
            }
            Presence::Offline => {
                self.revoke_offers(a);
                self.requeue_assigned(a);
                let agent = &mut self.agents[a as usize];
                for w in std::mem::take(&mut agent.wrap_ups) {
                    self.seats[a as usize].free_slot(w.channel, self.now);
                    self.actions.push(Action::WrapUpEnded {
                        agent: agent.profile.id.clone(),
                        contact: w.contact,
                    });
                }
                self.refresh_ready(a);
            }
        }
    }

    /// Returns every outstanding offer of an agent that is no longer available to the queue.
    fn revoke_offers(&mut self, a: AgentIdx) {
        let ids = self.offers_of(a);
        for &id in &ids {
            self.detach(id, RevokeReason::AgentUnavailable, false);
        }
        self.place_in_service_order(ids);
    }

    /// Places several detached contacts best first, so that when they compete for the same
    /// ready agents the higher-ranked one gets served first.
    fn place_in_service_order(&mut self, mut ids: Vec<ContactId>) {
        ids.sort_by_key(|id| self.contacts[id].place());
        for id in ids {
            self.place(id);
        }
    }

    /// Returns an offline agent's assigned contacts to the queue, held for it as preferred.
    fn requeue_assigned(&mut self, a: AgentIdx) {
        let ids = self.agents[a as usize].assigned.clone();
        for &id in &ids {
            self.detach(id, RevokeReason::AgentUnavailable, false);
            let c = self.contacts.get_mut(&id).expect("assigned contacts exist");
            let until = self.now + self.plan.queue(c.queue).preferred_agent_timeout;
            c.preferred = Some((a, until));
            let slot = c.slot;
            self.schedule_after_delay(until, Due::PreferredTimeout(id, slot));
            self.actions.push(Action::Requeued {
                contact: id,
                agent: self.agents[a as usize].profile.id.clone(),
            });
        }
        self.place_in_service_order(ids);
    }

    fn wrap_up_done(
        &mut self,
        name: AgentId,
        contact: Option<ContactId>,
    ) -> Result<(), RouterError> {
        let a = self.agent_idx(&name)?;
        let agent = &mut self.agents[a as usize];
        // The wrap-ups that end are moved to the end of the list and cut off there, so the
        // list keeps its allocation for the next one.
        let first_ended = match contact {
            Some(id) => {
                let Some(i) = agent.wrap_ups.iter().position(|w| w.contact == id) else {
                    return Err(RouterError::UnknownContact(id));
                };
                let last = agent.wrap_ups.len() - 1;
                agent.wrap_ups.swap(i, last);
                last
            }
            None => 0,
        };
        for k in first_ended..agent.wrap_ups.len() {
            let w = agent.wrap_ups[k];
            self.seats[a as usize].free_slot(w.channel, self.now);
            self.actions.push(Action::WrapUpEnded {
                agent: name.clone(),
                contact: w.contact,
            });
        }
        agent.wrap_ups.truncate(first_ended);
        self.fill(a);
        Ok(())
    }

    /// Offers an agent the best waiting contacts it can take until it is full or nothing is
    /// left, then records it as ready in its classes.
    fn fill(&mut self, a: AgentIdx) {
        self.seats[a as usize].awaiting_fill = false;
        while self.seats[a as usize].can_take_any(self.voice_blocks()) {
            let Some((slot, line)) = self.best_waiting_for(a) else {
                break;
            };
            let Whereabouts::Waiting { place, .. } = self.contacts.at(slot).whereabouts else {
                unreachable!("the best waiting contact is waiting");
            };
            let now = self.now;
            let l = self.line_mut(line);
            l.remove(&place);
            self.sync_head(line);
            let l = self.line_mut(line);
            l.record_departure(now);
            self.mark_dirty(line);
            self.contacts.at_mut(slot).whereabouts = Whereabouts::Detached;
            self.offer(slot, a);
        }
        self.refresh_ready(a);
    }

    /// The best waiting contact this agent may take now, by slot and line: the heads of the
    /// classes it qualifies for, and its own preferred line.
    fn best_waiting_for(&self, a: AgentIdx) -> Option<(Slot, LineRef)> {
        let (agent, seat) = (&self.agents[a as usize], &self.seats[a as usize]);
        let voice_blocks = self.voice_blocks();
        let mut best: Option<Candidate> = None;
        for &ci in &agent.classes {
            let head = self.class_heads[ci as usize];
            if head.is_empty() {
                continue;
            }
            let (urgency, arrived_at) = head.rank();
            let candidate = Candidate {
                urgency,
                arrived_at,
                slot: head.slot(),
                line: LineRef::Class(ci),
            };
            if best.is_some_and(|b| !self.serves_before(&candidate, &b))
                || !seat.can_take(self.class_channels[ci as usize], voice_blocks)
            {
                continue;
            }
            if !head.has_exclusions() || !self.contacts.at(head.slot()).refused_by(a, self.now) {
                best = Some(candidate);
                continue;
            }
            // The head refused this agent: walk on to the first contact it may take.
            for place in self.classes[ci as usize].line.iter().skip(1) {
                let candidate = Candidate::waiting_at(place, LineRef::Class(ci));
                if best.is_some_and(|b| !self.serves_before(&candidate, &b)) {
                    break;
                }
                if place.has_exclusions && self.contacts.at(place.slot).refused_by(a, self.now) {
                    continue;
                }
                best = Some(candidate);
                break;
            }
        }
        for place in agent.preferred_line().iter() {
            let candidate = Candidate::waiting_at(place, LineRef::Preferred(a));
            if best.is_some_and(|b| !self.serves_before(&candidate, &b)) {
                break;
            }
            let c = self.contacts.at(place.slot);
            if seat.can_take(c.channel, voice_blocks)
                && self.qualifies(a, c.class)
                && !c.refused_by(a, self.now)
            {
                best = Some(candidate);
                break;
            }
        }
        best.map(|b| (b.slot, b.line))
    }

    /// True when `x` comes before `y` in service order: higher priority, then earlier arrival,
    /// then (rarely needed) the lower id, read from the slots.
    fn serves_before(&self, x: &Candidate, y: &Candidate) -> bool {
        match (x.urgency, x.arrived_at).cmp(&(y.urgency, y.arrived_at)) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => self.contacts.id_at(x.slot) < self.contacts.id_at(y.slot),
        }
    }

    /// Bumps the agent's epoch (making its old ready entries stale) and, if it can take more,
    /// records it as ready in each class whose channel has a free slot.
    fn refresh_ready(&mut self, a: AgentIdx) {
        let voice_blocks = self.voice_blocks();
        let Router {
            agents,
            seats,
            epochs,
            classes,
            class_channels,
            plan,
            ..
        } = self;
        let epoch = bump(epochs, a);
        let seat = &seats[a as usize];
        if seat.awaiting_fill || !seat.can_take_any(voice_blocks) {
            return;
        }
        let agent = &agents[a as usize];
        for &ci in &agent.classes {
            let class = &mut classes[ci as usize];
            if !seat.can_take(class_channels[ci as usize], voice_blocks) {
                continue;
            }
            let selection = plan.queue(class.queue).selection;
            let key = ready_key(selection, &class.requirement, agent, seat);
            class.ready.push(ReadyEntry {
                key,
                agent: a,
                epoch,
            });
            // Stale entries are swept out once they are about a third of the line. Why so
            // soon: a contact pops every stale entry ahead of the first live one, and most of
            // them gather at the front (agents long idle there, since picked through another
            // class); a sweep reads only the entries and the small epoch array. The line never
            // holds more than one and a half times the live entries of its last sweep, plus a
            // few (and those were at most the agents qualified for the class).
            let live = class.live_at_sweep as usize;
            if class.ready.len() > live + live / 2 + 8 {
                class.ready.retain(|e| epochs[e.agent as usize] == e.epoch);
                class.live_at_sweep = class.ready.len() as u32;
            }
        }
    }

    /// Marks the agent as having a freed slot it has not yet used (see `Seat::awaiting_fill`)
    /// and makes its ready entries stale.
    fn await_fill(&mut self, a: AgentIdx) {
        self.seats[a as usize].awaiting_fill = true;
        bump(&mut self.epochs, a);
    }

    /// Forgets an offer outstanding with an agent.
    fn release_offer(&mut self, a: AgentIdx, id: ContactId) {
        let more = &mut self.agents[a as usize].more_offers;
        self.seats[a as usize].release_offer(id, more);
    }

    /// An agent's outstanding offers, in the order made.
    fn offers_of(&self, a: AgentIdx) -> Vec<ContactId> {
        self.seats[a as usize].offers(&self.agents[a as usize].more_offers)
    }

    fn qualifies(&self, a: AgentIdx, ci: ClassIdx) -> bool {
        let agent = &self.agents[a as usize];
        let class = &self.classes[ci as usize];
        agent.known
            && (agent.profile.queues.is_empty() || agent.profile.queues.contains(&class.queue))
            && agent.profile.capacity.of(self.class_channels[ci as usize]) > 0
            && class.requirement.is_met_by(&agent.profile.skills)
    }

    /// The class a contact enters a queue in: the queue's requirement plus its own skills.
    /// Most contacts bring no skill of their own, or one; their class comes from a cache
    /// without building and hashing a requirement.
    fn entry_class(&mut self, queue: QueueId, channel: Channel, own: &[SkillReq]) -> ClassIdx {
        if let Some(ci) = self.entry_classes.get(queue, channel, own) {
            return ci;
        }
        let ci = self.class_for(queue, channel, requirement_for(self.plan.queue(queue), own));
        self.entry_classes.remember(queue, channel, own, ci);
        ci
    }

    /// The class for (queue, channel, requirement), created on first use together with its list
    /// of qualified agents, found through the rarest required skill.
    fn class_for(
        &mut self,
        queue: QueueId,
        channel: Channel,
        requirement: Requirement,
    ) -> ClassIdx {
        let key = (queue, channel, requirement);
        if let Some(&ci) = self.class_index.get(&key) {
            return ci;
        }
        let ci = self.classes.len() as ClassIdx;
        let rarest = key
            .2
            .skills()
            .iter()
            .map(|r| usize::from(r.skill.0))
            .min_by_key(|&s| self.skill_agents[s].len());
        self.class_heads.push(Head::EMPTY);
        self.class_channels.push(channel);
        self.classes.push(Class {
            queue,
            requirement: key.2.clone(),
            line: Line::default(),
            ready: ReadyLine::new(self.plan.queue(queue).selection),
            live_at_sweep: 0,
        });
        match key.2.skills().first() {
            Some(first) => self.skill_classes[usize::from(first.skill.0)].push(ci),
            None => self.open_classes.push(ci),
        }
        self.class_index.insert(key, ci);
        let candidates: Vec<AgentIdx> = match rarest {
            Some(s) => self.skill_agents[s].clone(),
            None => (0..self.agents.len() as AgentIdx).collect(),
        };
        // Qualified agents that are ready now get an entry; their epoch does not change, so
        // their entries elsewhere stay valid.
        let voice_blocks = self.voice_blocks();
        let selection = self.plan.queue(queue).selection;
        let mut ready = std::mem::take(&mut self.scratch);
        for a in candidates {
            if !self.qualifies(a, ci) {
                continue;
            }
            let agent = &mut self.agents[a as usize];
            agent.classes.push(ci);
            let class = &self.classes[ci as usize];
            let seat = &self.seats[a as usize];
            if !seat.awaiting_fill && seat.can_take(channel, voice_blocks) {
                let key = ready_key(selection, &class.requirement, agent, seat);
                ready.push(ReadyEntry {
                    key,
                    agent: a,
                    epoch: self.epochs[a as usize],
                });
            }
        }
        // Entered best first, so a sorted line takes each at its back.
        ready.sort_unstable();
        let class = &mut self.classes[ci as usize];
        class.live_at_sweep = ready.len() as u32;
        for entry in ready.drain(..) {
            class.ready.push(entry);
        }
        self.scratch = ready;
        ci
    }

    fn voice_blocks(&self) -> bool {
        self.plan.voice_blocks_other_channels
    }

    // ----- timers ---------------------------------------------------------------------------

    fn schedule(&mut self, at: Millis, due: Due) {
        self.timers.at(at, due);
    }

    /// Schedules a timer at `at`, which is now plus a configured delay (see `timers`).
    fn schedule_after_delay(&mut self, at: Millis, due: Due) {
        self.timers.after(self.now, at, due);
    }

    fn advance(&mut self, now: Millis) {
        let now = now.max(self.now);
        while let Some(timer) = self.timers.pop_due(now) {
            self.now = self.now.max(timer.at);
            self.fire(timer);
        }
        self.now = now;
        // Timers of departed contacts (and other stale ones) are dropped in bulk once they
        // are twice the rest: amortised O(1) per timer, never on every event (a sweep reads
        // every timer, so the more it drops at once the less each costs; at twice rather than
        // once, a sweep reads 1.5 timers per one dropped instead of 2). The sweep keeps
        // every timer of a contact still in the router without reading its record (a stale
        // one among them is recognised when it fires), so it reads small arrays, not records.
        if self.timers.len() > self.timer_compact_at {
            let Router {
                timers,
                contacts,
                agents,
                position_tick_at,
                ..
            } = self;
            timers.retain(|t| match t.due {
                Due::OfferExpiry(id, slot)
                | Due::Escalation(id, slot)
                | Due::Sla(id, slot)
                | Due::PreferredTimeout(id, slot)
                | Due::RefusalLapse(id, slot) => contacts.holds(slot, id),
                Due::WrapUpEnd(a, id) => agents[a as usize]
                    .wrap_ups
                    .iter()
                    .any(|w| w.contact == id && w.until == t.at),
                Due::PositionTick => *position_tick_at == Some(t.at),
            });
            self.timer_compact_at = 3 * self.timers.len() + 1024;
        }
    }

    fn timer_is_live(&self, t: &Timer) -> bool {
        let contact = |id: ContactId, slot: Slot| self.contacts.at_if(slot, id);
        match t.due {
            Due::OfferExpiry(id, slot) => contact(id, slot).is_some_and(|c| {
                matches!(c.whereabouts, Whereabouts::Offered { expires_at, .. } if expires_at == t.at)
            }),
            Due::Escalation(id, slot) => {
                contact(id, slot).is_some_and(|c| c.next_step_at.get() == Some(t.at))
            }
            Due::Sla(id, slot) => contact(id, slot).is_some_and(|c| c.sla.next_at.get() == Some(t.at)),
            Due::PreferredTimeout(id, slot) => contact(id, slot)
                .is_some_and(|c| c.preferred.is_some_and(|(_, until)| until == t.at)),
            Due::WrapUpEnd(a, id) => self.agents[a as usize]
                .wrap_ups
                .iter()
                .any(|w| w.contact == id && w.until == t.at),
            Due::RefusalLapse(id, slot) => contact(id, slot)
                .is_some_and(|c| c.excluded.iter().any(|r| r.until == Some(t.at))),
            Due::PositionTick => self.position_tick_at == Some(t.at),
        }
    }

    fn fire(&mut self, t: Timer) {
        if !self.timer_is_live(&t) {
            return;
        }
        match t.due {
            Due::OfferExpiry(id, _) => self.offer_expired(id),
            Due::Escalation(id, slot) => {
                self.contacts.at_mut(slot).next_step_at = Deadline::UNSET;
                self.escalate(id, false);
            }
            Due::Sla(id, _) => self.schedule_sla(id),
            Due::PreferredTimeout(id, slot) => {
                let c = self.contacts.at_mut(slot);
                c.preferred = None;
                if let Whereabouts::Waiting {
                    line: LineRef::Preferred(_),
                    ..
                } = c.whereabouts
                {
                    self.detach(id, RevokeReason::ContactLeft, false);
                    self.place(id);
                }
            }
            Due::WrapUpEnd(a, id) => {
                let agent = &mut self.agents[a as usize];
                let this = |w: &WrapUp| w.contact == id && w.until == t.at;
                if let Some(i) = agent.wrap_ups.iter().position(this) {
                    let w = agent.wrap_ups.swap_remove(i);
                    self.seats[a as usize].free_slot(w.channel, self.now);
                    self.actions.push(Action::WrapUpEnded {
                        agent: agent.profile.id.clone(),
                        contact: id,
                    });
                    self.fill(a);
                }
            }
            Due::RefusalLapse(id, slot) => {
                let now = self.now;
                let c = self.contacts.at_mut(slot);
                c.excluded
                    .retain(|r| r.until.is_none_or(|until| until > now));
                // A waiting contact may now go to the agent whose exclusion ended.
                if let Whereabouts::Waiting { .. } = c.whereabouts {
                    self.detach(id, RevokeReason::ContactLeft, false);
                    self.place(id);
                }
            }
            Due::PositionTick => {
                self.position_tick_at = None;
                self.announce_positions();
            }
        }
    }

    fn offer_expired(&mut self, id: ContactId) {
        let Whereabouts::Offered { agent: a, .. } = self.contacts[&id].whereabouts else {
            return;
        };
        // The agent missed it: others get the next chance, this agent again one offer timeout
        // later (if it has not been put away by then).
        let queue = self.contacts[&id].queue;
        let lapse = self.now + self.plan.queue(queue).offer_timeout;
        self.refuse(id, a, Some(lapse));
        self.counters[usize::from(queue.0)].offers_expired += 1;
        let agent = &mut self.agents[a as usize];
        agent.missed_in_row += 1;
        self.actions.push(Action::RevokeOffer {
            contact: id,
            agent: agent.profile.id.clone(),
            reason: RevokeReason::Expired,
        });
        let pause = agent.missed_in_row >= self.plan.max_missed_offers
            && agent.presence == Presence::Available;
        self.place(id);
        if pause {
            let reason = "missed offers".to_string();
            self.actions.push(Action::AgentAutoPaused {
                agent: self.agents[a as usize].profile.id.clone(),
                reason: reason.clone(),
            });
            self.set_presence(a, Presence::Away { reason });
        } else {
            self.fill(a);
        }
    }

    // ----- positions ------------------------------------------------------------------------

    /// Refreshes the cached head of a class line after it changed.
    fn sync_head(&mut self, line: LineRef) {
        if let LineRef::Class(ci) = line {
            self.class_heads[ci as usize] = Head::of(self.classes[ci as usize].line.head());
        }
    }

    fn line_mut(&mut self, line: LineRef) -> &mut Line {
        match line {
            LineRef::Class(ci) => &mut self.classes[ci as usize].line,
            LineRef::Preferred(a) => self.agents[a as usize].preferred_line_mut(),
        }
    }

    fn line(&self, line: LineRef) -> &Line {
        match line {
            LineRef::Class(ci) => &self.classes[ci as usize].line,
            LineRef::Preferred(a) => self.agents[a as usize].preferred_line(),
        }
    }

    /// Notes that positions in a line changed; the next position tick tells the customers.
    fn mark_dirty(&mut self, line: LineRef) {
        let interval = self.plan.position_update_interval;
        let l = self.line_mut(line);
        if l.dirty || !l.has_listeners() {
            return;
        }
        l.dirty = true;
        self.dirty_lines.push(line);
        if self.position_tick_at.is_none() {
            let at = self.now + interval;
            self.position_tick_at = Some(at);
            self.schedule_after_delay(at, Due::PositionTick);
        }
    }

    fn announce_positions(&mut self) {
        let now = self.now;
        for line in std::mem::take(&mut self.dirty_lines) {
            let Router {
                classes,
                agents,
                contacts,
                actions,
                ..
            } = self;
            let l = match line {
                LineRef::Class(ci) => &mut classes[ci as usize].line,
                LineRef::Preferred(a) => agents[a as usize].preferred_line_mut(),
            };
            l.dirty = false;
            if !l.has_listeners() {
                continue;
            }
            for (i, place) in l.iter().enumerate() {
                if !place.announce {
                    continue;
                }
                let c = contacts
                    .get_mut(&place.contact)
                    .expect("waiting contacts exist");
                let now_standing = (i + 1, l.estimated_wait(i + 1, now));
                if c.last_announced != Some(now_standing) {
                    c.last_announced = Some(now_standing);
                    actions.push(Action::Position {
                        contact: place.contact,
                        position: now_standing.0,
                        estimated_wait: now_standing.1,
                    });
                }
            }
        }
    }

    // ----- queries --------------------------------------------------------------------------

    fn contact_mut(&mut self, id: ContactId) -> Result<&mut Contact, RouterError> {
        self.contacts
            .get_mut(&id)
            .ok_or(RouterError::UnknownContact(id))
    }

    /// A contact still in the router (waiting, offered or assigned).
    pub fn contact(&self, id: ContactId) -> Option<ContactView> {
        let c = self.contacts.get(&id)?;
        let name = |a: AgentIdx| self.agents[a as usize].profile.id.clone();
        let (status, agent, position, estimated_wait) = match c.whereabouts {
            Whereabouts::Waiting { line, .. } => {
                let l = self.line(line);
                let position = l.position_of(id);
                let wait = position.and_then(|p| l.estimated_wait(p, self.now));
                (ContactStatus::Waiting, None, position, wait)
            }
            Whereabouts::Offered { agent, .. } => {
                (ContactStatus::Offered, Some(name(agent)), None, None)
            }
            Whereabouts::Assigned { agent } => {
                (ContactStatus::Assigned, Some(name(agent)), None, None)
            }
            Whereabouts::Detached => unreachable!("contacts are never detached between events"),
        };
        Some(ContactView {
            id,
            queue: c.queue,
            channel: c.channel,
            status,
            agent,
            priority: c.priority,
            arrived_at: c.arrived_at,
            queue_entered_at: c.queue_entered_at,
            requirement: self.classes[c.class as usize].requirement.clone(),
            position,
            estimated_wait,
            first_response_due: c.sla.first_response_due,
            responded: c.sla.responded,
            resolution_due: c.sla.resolution_due.get(),
            preferred_agent: c.preferred.map(|(a, until)| (name(a), until)),
            excluded_agents: c
                .excluded
                .iter()
                .filter(|r| r.until.is_none_or(|until| until > self.now))
                .map(|r| name(r.agent))
                .collect(),
        })
    }

    /// Ids of every contact in the router, in no particular order.
    pub fn contact_ids(&self) -> impl Iterator<Item = ContactId> + '_ {
        self.contacts.all_ids()
    }

    /// Number of contacts in the router (waiting, offered or assigned).
    pub fn contact_count(&self) -> usize {
        self.contacts.len()
    }

    /// An agent the router has seen log in.
    pub fn agent(&self, id: &AgentId) -> Option<AgentView> {
        let a = self.agent_idx(id).ok()?;
        let (agent, seat) = (&self.agents[a as usize], &self.seats[a as usize]);
        let activity = match &agent.presence {
            Presence::Offline => AgentActivity::Offline,
            Presence::Away { reason } => AgentActivity::Away(reason.clone()),
            Presence::Available if seat.has_offers() || !agent.assigned.is_empty() => {
                AgentActivity::Busy
            }
            Presence::Available if !agent.wrap_ups.is_empty() => AgentActivity::WrapUp,
            Presence::Available => AgentActivity::Idle,
        };
        Some(AgentView {
            id: id.clone(),
            presence: agent.presence.clone(),
            activity,
            profile: agent.profile.clone(),
            load: seat.load,
            offers: self.offers_of(a),
            assigned: agent.assigned.clone(),
            wrap_ups: agent.wrap_ups.iter().map(|w| w.contact).collect(),
            missed_in_row: agent.missed_in_row,
        })
    }

    /// Every agent the router has seen log in.
    pub fn agent_ids(&self) -> impl Iterator<Item = &AgentId> + '_ {
        self.agents
            .iter()
            .filter(|a| a.known)
            .map(|a| &a.profile.id)
    }

    /// A queue's counters and what is waiting in it now. Walks the queue's lines: meant for
    /// metrics scrapes and dashboards, not for every event.
    pub fn queue(&self, queue: QueueId) -> QueueSnapshot {
        let mut waiting = 0;
        let mut oldest: Option<Millis> = None;
        let mut ready = Vec::new();
        for class in self.classes.iter().filter(|c| c.queue == queue) {
            waiting += class.line.len();
            if let Some(t) = class.line.iter().map(|p| p.arrived_at).min() {
                oldest = Some(oldest.map_or(t, |o| o.min(t)));
            }
            for e in class.ready.entries() {
                if self.epochs[e.agent as usize] == e.epoch {
                    ready.push(e.agent);
                }
            }
        }
        ready.sort_unstable();
        ready.dedup();
        let offered = self
            .contacts
            .values()
            .filter(|c| c.queue == queue && matches!(c.whereabouts, Whereabouts::Offered { .. }))
            .count();
        QueueSnapshot {
            counters: self.counters[usize::from(queue.0)],
            waiting,
            offered,
            oldest_arrival: oldest,
            agents_ready: ready.len(),
        }
    }

    /// Checks the router's internal bookkeeping: every contact is in exactly one place, agents'
    /// loads match what they hold, offered and assigned contacts meet their requirement. For
    /// tests; returns the first inconsistency found.
    pub fn audit(&self) -> Result<(), String> {
        if self.epochs.len() != self.agents.len() || self.seats.len() != self.agents.len() {
            return Err(format!(
                "{} agents, {} seats, {} epochs",
                self.agents.len(),
                self.seats.len(),
                self.epochs.len()
            ));
        }
        for (i, class) in self.classes.iter().enumerate() {
            if self.class_heads[i] != Head::of(class.line.head()) {
                return Err(format!("class {i} head cache is stale"));
            }
            // A live ready entry is the agent's only one in the class, for a class it is
            // qualified for.
            let mut live = std::collections::HashSet::new();
            for e in class.ready.entries() {
                if self.epochs[e.agent as usize] != e.epoch {
                    continue;
                }
                if !live.insert(e.agent) {
                    return Err(format!(
                        "agent #{} has two live entries in class {i}",
                        e.agent
                    ));
                }
                if !self.agents[e.agent as usize]
                    .classes
                    .contains(&(i as ClassIdx))
                {
                    return Err(format!(
                        "agent #{} ready in class {i} it does not serve",
                        e.agent
                    ));
                }
            }
        }
        let mut in_lines = std::collections::HashSet::new();
        let lines = self
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| (LineRef::Class(i as ClassIdx), &c.line))
            .chain(
                self.agents
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (LineRef::Preferred(i as AgentIdx), a.preferred_line())),
            );
        for (line_ref, line) in lines {
            for place in line.iter() {
                if !in_lines.insert(place.contact) {
                    return Err(format!("contact {} stands in two lines", place.contact));
                }
                let c = self
                    .contacts
                    .get(&place.contact)
                    .ok_or_else(|| format!("line holds departed contact {}", place.contact))?;
                if c.whereabouts
                    != (Whereabouts::Waiting {
                        place: *place,
                        line: line_ref,
                    })
                {
                    return Err(format!(
                        "contact {} in a line but {:?}",
                        c.id, c.whereabouts
                    ));
                }
            }
        }
        let mut load = vec![[0u8; 6]; self.agents.len()];
        for c in self.contacts.values() {
            match c.whereabouts {
                Whereabouts::Detached => return Err(format!("contact {} detached", c.id)),
                Whereabouts::Waiting { .. } => {
                    if !in_lines.contains(&c.id) {
                        return Err(format!("contact {} waiting in no line", c.id));
                    }
                }
                Whereabouts::Offered { agent, .. } | Whereabouts::Assigned { agent } => {
                    let ag = &self.agents[agent as usize];
                    let offers = self.offers_of(agent);
                    let list: &[ContactId] = if matches!(c.whereabouts, Whereabouts::Offered { .. })
                    {
                        &offers
                    } else {
                        &ag.assigned
                    };
                    if list.iter().filter(|&&x| x == c.id).count() != 1 {
                        return Err(format!(
                            "contact {} not held exactly once by {}",
                            c.id, ag.profile.id
                        ));
                    }
                    load[agent as usize][c.channel.index()] += 1;
                    if matches!(c.whereabouts, Whereabouts::Offered { .. })
                        && !self.classes[c.class as usize]
                            .requirement
                            .is_met_by(&ag.profile.skills)
                    {
                        return Err(format!(
                            "contact {} offered to unqualified {}",
                            c.id, ag.profile.id
                        ));
                    }
                }
            }
        }
        for (i, agent) in self.agents.iter().enumerate() {
            for w in &agent.wrap_ups {
                load[i][w.channel.index()] += 1;
            }
            let seat = &self.seats[i];
            if let Some(problem) = seat.offers_out_of_step(&agent.more_offers) {
                return Err(format!("agent {} offers: {problem}", agent.profile.id));
            }
            if seat.name != agent.profile.id {
                return Err(format!("seat {} for agent {}", seat.name, agent.profile.id));
            }
            if load[i] != seat.load {
                return Err(format!(
                    "agent {} load {:?} but holds {:?}",
                    agent.profile.id, seat.load, load[i]
                ));
            }
            if seat.available != (agent.presence == Presence::Available)
                || seat.capacity != agent.profile.capacity
            {
                return Err(format!(
                    "agent {} seat {seat:?} out of step with presence {:?}, capacity {:?}",
                    agent.profile.id, agent.presence, agent.profile.capacity
                ));
            }
            for id in self.offers_of(i as AgentIdx).iter().chain(&agent.assigned) {
                if !self.contacts.contains_key(id) {
                    return Err(format!(
                        "agent {} holds departed contact {id}",
                        agent.profile.id
                    ));
                }
            }
        }
        Ok(())
    }

    /// True when the agent could be offered this waiting contact right now: available with a
    /// free slot, qualified, not refused, and the contact not held for someone else. Lets tests
    /// check the fixed point from outside.
    pub fn could_offer(&self, agent: &AgentId, contact: ContactId) -> bool {
        let (Ok(a), Some(c)) = (self.agent_idx(agent), self.contacts.get(&contact)) else {
            return false;
        };
        let Whereabouts::Waiting { line, .. } = c.whereabouts else {
            return false;
        };
        let held_for_other = matches!(line, LineRef::Preferred(p) if p != a);
        !held_for_other
            && self.seats[a as usize].can_take(c.channel, self.voice_blocks())
            && self.qualifies(a, c.class)
            && !c.refused_by(a, self.now)
    }
}

/// Makes every ready entry of agent `a` pushed so far stale; returns its new epoch.
fn bump(epochs: &mut [u32], a: AgentIdx) -> u32 {
    let epoch = &mut epochs[a as usize];
    *epoch = epoch.wrapping_add(1);
    *epoch
}

/// An agent's place in a class's ready line under the queue's selection policy, packed into one
/// integer (smaller first): the idle-since time in the low bits breaks ties by longest idle.
/// Idle times are milliseconds on the driver's epoch (Unix time fits in 41 bits), so 44 bits of
/// them leave room for the occupancy (in millionths, 20 bits) or the skill score (16 bits).
fn ready_key(selection: Selection, requirement: &Requirement, agent: &Agent, seat: &Seat) -> u64 {
    const IDLE_44: u64 = (1 << 44) - 1;
    const IDLE_48: u64 = (1 << 48) - 1;
    match selection {
        Selection::LongestIdle => seat.idle_since,
        Selection::MostSkilled => {
            let score = u64::from(requirement.score(&agent.profile.skills)).min(0xFFFF);
            ((0xFFFF - score) << 48) | (seat.idle_since & IDLE_48)
        }
        Selection::LeastOccupied => {
            (seat.occupancy_ppm().min(0xF_FFFF) << 44) | (seat.idle_since & IDLE_44)
        }
    }
}

/// Merges the queue's skills with the contact's own into one requirement.
pub fn requirement_for(queue: &QueuePlan, own: &[SkillReq]) -> Requirement {
    Requirement::new(queue.skills.iter().chain(own).copied())
}
