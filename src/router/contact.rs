//! The router's record of one contact: where it is, how it ranks, and its SLA clock.

use crate::model::{Channel, ContactId, Millis, Priority, QueueId, SkillReq};

use super::contacts::Slot;
use super::line::Place;
use super::plan::{BreachActions, SlaPolicy};
use super::{AgentIdx, ClassIdx};

/// Which line a waiting contact stands in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineRef {
    /// The line of a routing class.
    Class(ClassIdx),
    /// An agent's preferred line (sticky routing, transfer to a named agent).
    Preferred(AgentIdx),
}

/// Where a contact is. Exactly one of these at any time; `Detached` only inside one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Whereabouts {
    /// Between two states while the router moves it.
    Detached,
    Waiting {
        place: Place,
        line: LineRef,
    },
    Offered {
        agent: AgentIdx,
        expires_at: Millis,
    },
    Assigned {
        agent: AgentIdx,
    },
}

/// A time that may be unset, in 8 bytes rather than an `Option`'s 16: with these, a contact's
/// record fits in four cache lines (256 bytes) instead of spreading over five or six, and an
/// arrival writes, and a departure reads, that many fewer. `Millis::MAX` stands for unset: a
/// deadline at the end of time never comes due, so one that saturates there means what unset
/// means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deadline(Millis);

impl Deadline {
    pub const UNSET: Deadline = Deadline(Millis::MAX);

    pub fn at(at: Millis) -> Self {
        Deadline(at)
    }

    pub fn get(self) -> Option<Millis> {
        (self.0 != Millis::MAX).then_some(self.0)
    }
}

impl From<Option<Millis>> for Deadline {
    fn from(at: Option<Millis>) -> Self {
        at.map_or(Deadline::UNSET, Deadline)
    }
}

/// Deadlines from the contact's SLA policy, counted from its arrival.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlaClock {
    /// What a breach does, from the policy given on arrival (overflow and transfer keep it, as
    /// the promise was made to the customer on arrival).
    pub on_breach: BreachActions,
    pub first_response_due: Millis,
    pub first_response_warn: Millis,
    pub resolution_due: Deadline,
    pub resolution_warn: Deadline,
    pub responded: bool,
    pub first_response_warned: bool,
    pub first_response_breached: bool,
    pub resolution_warned: bool,
    pub resolution_breached: bool,
    /// When the pending SLA timer fires (validates it).
    pub next_at: Deadline,
}

impl SlaClock {
    pub fn new(policy: &SlaPolicy, arrived_at: Millis) -> Self {
        let warn =
            |target: Millis| arrived_at.saturating_add((target as f64 * policy.warn_at) as Millis);
        let resolution_due: Deadline = policy
            .resolution
            .map(|r| arrived_at.saturating_add(r))
            .into();
        SlaClock {
            on_breach: policy.on_breach,
            first_response_due: arrived_at.saturating_add(policy.first_response),
            first_response_warn: warn(policy.first_response),
            resolution_due,
            // No warning for a deadline that is never kept (one at the end of time).
            resolution_warn: match resolution_due.get() {
                Some(_) => policy.resolution.map(warn).into(),
                None => Deadline::UNSET,
            },
            responded: false,
            first_response_warned: false,
            first_response_breached: false,
            resolution_warned: false,
            resolution_breached: false,
            next_at: Deadline::UNSET,
        }
    }
}

/// An agent that must not be offered a contact (again), for good or until a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub agent: AgentIdx,
    pub until: Option<Millis>,
}

/// One contact inside the router: four cache lines, aligned to them (a test pins the size).
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct Contact {
    pub id: ContactId,
    /// Where the store keeps it (set by the store on entry).
    pub slot: Slot,
    pub channel: Channel,
    pub queue: QueueId,
    /// The routing class it is routed in now (queue, channel, current requirement).
    pub class: ClassIdx,
    /// Skills the contact itself asked for; merged with each queue's own on entry.
    pub own_skills: Box<[SkillReq]>,
    /// Priority from intake.
    pub base_priority: Priority,
    /// Raises from escalation steps and SLA breaches.
    pub boost: i32,
    /// Effective priority: base + queue priority + boost.
    pub priority: Priority,
    pub arrived_at: Millis,
    /// Entry into the current queue: escalation steps and the queue's service level count from
    /// here.
    pub queue_entered_at: Millis,
    pub whereabouts: Whereabouts,
    pub announce_position: bool,
    /// Preferred agent and the time after which anyone qualified may take the contact.
    pub preferred: Option<(AgentIdx, Millis)>,
    /// Agents that refused an offer of this contact: a reject is for good, a missed offer only
    /// until `until` (so a lone agent who missed it once gets it again rather than stranding it).
    pub excluded: Vec<Refusal>,
    /// Index of the next escalation step of the current queue.
    pub next_step: usize,
    pub next_step_at: Deadline,
    /// A step came due (or a breach asked for one) while the contact was offered; applied when
    /// it returns to waiting. The bool says whether it is forced (breach) rather than timed.
    pub step_pending: Option<bool>,
    pub sla: SlaClock,
    /// Answered at least once: later abandons and re-answers do not count again.
    pub answered: bool,
    /// Last position and wait sent to the customer, to send only changes.
    pub last_announced: Option<(usize, Option<Millis>)>,
}

impl Contact {
    /// True when `agent` refused this contact and the refusal still holds at `now`.
    pub fn refused_by(&self, agent: AgentIdx, now: Millis) -> bool {
        self.excluded
            .iter()
            .any(|r| r.agent == agent && r.until.is_none_or(|until| until > now))
    }

    /// The contact's place in line at its current priority.
    pub fn place(&self) -> Place {
        Place {
            urgency: std::cmp::Reverse(self.priority),
            arrived_at: self.arrived_at,
            contact: self.id,
            slot: self.slot,
            has_exclusions: !self.excluded.is_empty(),
            announce: self.announce_position,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_four_cache_lines_and_a_vacant_slot_costs_nothing_more() {
        assert_eq!(std::mem::size_of::<Contact>(), 256);
        assert_eq!(std::mem::align_of::<Contact>(), 64);
        assert_eq!(std::mem::size_of::<Option<Contact>>(), 256);
    }

    #[test]
    fn an_unset_deadline_and_one_at_the_end_of_time_are_the_same() {
        assert_eq!(Deadline::from(None).get(), None);
        assert_eq!(Deadline::from(Some(42)).get(), Some(42));
        assert_eq!(Deadline::at(0).get(), Some(0));
        assert_eq!(Deadline::at(Millis::MAX), Deadline::UNSET);
    }
}
