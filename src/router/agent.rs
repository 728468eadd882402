//! The router's record of one agent (profile, presence, the routing classes it qualifies for,
//! its assigned contacts and wrap-ups) and its seat: the few fields routing reads on nearly
//! every decision (availability, load per channel, idle time, first offer, name), kept dense.

use crate::model::{AgentId, AgentProfile, Capacity, Channel, ContactId, Millis};

use super::ClassIdx;
use super::contacts::NO_CONTACT;
use super::line::Line;

/// What the agent has said about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presence {
    /// Logged out: nothing is offered, contacts are not held for it beyond their preference
    /// timeout.
    Offline,
    /// Ready for offers.
    Available,
    /// Logged in but not taking new offers (break, meeting, training, "missed offers").
    Away {
        /// Free text shown to supervisors.
        reason: String,
    },
}

/// A contact held in after-contact work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WrapUp {
    pub contact: ContactId,
    pub channel: Channel,
    pub until: Millis,
}

/// One agent as the router sees it.
#[derive(Debug)]
pub(crate) struct Agent {
    pub profile: AgentProfile,
    pub presence: Presence,
    /// Routing classes whose requirement this agent meets.
    pub classes: Vec<ClassIdx>,
    /// Outstanding offers after the seat's first, in the order made (only a multitasking agent
    /// has any).
    pub more_offers: Vec<ContactId>,
    pub assigned: Vec<ContactId>,
    pub wrap_ups: Vec<WrapUp>,
    /// Consecutive offers that expired unanswered.
    pub missed_in_row: u32,
    /// Contacts waiting for this agent in particular (sticky routing, transfers to an agent).
    /// Boxed, and only once used: most agents never have one, and a line inline would double
    /// the record every offer reads.
    preferred_line: Option<Box<Line>>,
    /// False for a placeholder created because a contact named an agent we have never seen.
    pub known: bool,
}

impl Agent {
    pub fn new(profile: AgentProfile) -> Self {
        Agent {
            profile,
            presence: Presence::Offline,
            classes: Vec::new(),
            more_offers: Vec::new(),
            assigned: Vec::new(),
            wrap_ups: Vec::new(),
            missed_in_row: 0,
            preferred_line: None,
            known: true,
        }
    }

    /// Contacts waiting for this agent in particular.
    pub fn preferred_line(&self) -> &Line {
        static NONE: Line = Line::EMPTY;
        self.preferred_line.as_deref().unwrap_or(&NONE)
    }

    pub fn preferred_line_mut(&mut self) -> &mut Line {
        self.preferred_line.get_or_insert_default()
    }
}

/// What routing reads and writes of an agent on nearly every decision, kept apart from its
/// record in one dense array: whether it may take a contact of a channel now, where it ranks
/// in a ready line, its first outstanding offer and its name (copied into every offer). One
/// cache line: checking a live ready entry and making an offer touch this, not the record
/// (several cache lines of profile, lists and presence, read far less often). Whether an entry
/// is stale at all is told by the agent's epoch, in a smaller array still (`Router::epochs`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(align(64))]
pub(crate) struct Seat {
    /// The record's presence is `Available` (kept in step by `Router::set_presence`).
    pub available: bool,
    /// A slot was freed and the agent has not yet picked its next contact: it must not be
    /// found as ready by a contact being placed in the meantime, or that contact would jump
    /// ahead of better-ranked ones the agent could serve.
    pub awaiting_fill: bool,
    /// Slots used per channel: outstanding offers, assigned contacts and wrap-ups.
    pub load: [u8; 6],
    /// The profile's capacity (kept in step by `Router::set_profile`).
    pub capacity: Capacity,
    /// When the agent's workload last changed (an offer, a freed slot) or it became available:
    /// the longest-idle policy picks the oldest, so an agent who just finished a contact goes
    /// to the back of the line. Never older than any ready entry pushed before it, which keeps
    /// longest-idle lines sorted by entry.
    pub idle_since: Millis,
    /// The oldest outstanding offer, [`NO_OFFER`] when none; the others are in the record's
    /// `more_offers` (a voice agent never has more than one). An id rather than an `Option`
    /// keeps the seat in one cache line.
    first_offer: ContactId,
    /// The record's `more_offers` is not empty: releasing the first offer looks there only then.
    has_more_offers: bool,
    /// The agent's login name (as in its profile, which never changes for a seat).
    pub name: AgentId,
}

/// What a seat's first offer holds when there is none (reserved: never a contact's id).
const NO_OFFER: ContactId = NO_CONTACT;

impl Seat {
    /// The seat of an agent not yet logged in: unavailable, no capacity.
    pub fn new(name: AgentId, now: Millis) -> Self {
        Seat {
            available: false,
            awaiting_fill: false,
            load: [0; 6],
            capacity: Capacity([0; 6]),
            idle_since: now,
            first_offer: NO_OFFER,
            has_more_offers: false,
            name,
        }
    }

    /// Records an offer made to the agent; `more` is its record's `more_offers`, touched only
    /// when an offer is already outstanding.
    pub fn hold_offer(&mut self, contact: ContactId, more: &mut Vec<ContactId>) {
        if self.first_offer == NO_OFFER {
            self.first_offer = contact;
        } else {
            more.push(contact);
            self.has_more_offers = true;
        }
    }

    /// Forgets an outstanding offer (accepted, refused, expired or revoked); `more` as above.
    pub fn release_offer(&mut self, contact: ContactId, more: &mut Vec<ContactId>) {
        if !self.has_more_offers {
            if self.first_offer == contact {
                self.first_offer = NO_OFFER;
            }
            return;
        }
        if self.first_offer == contact {
            self.first_offer = more.remove(0);
        } else if let Some(i) = more.iter().position(|&c| c == contact) {
            more.remove(i);
        }
        self.has_more_offers = !more.is_empty();
    }

    /// Outstanding offers in the order made; `more` is the record's `more_offers`.
    pub fn offers(&self, more: &[ContactId]) -> Vec<ContactId> {
        let first = (self.first_offer != NO_OFFER).then_some(self.first_offer);
        first.into_iter().chain(more.iter().copied()).collect()
    }

    /// True when an offer is outstanding.
    pub fn has_offers(&self) -> bool {
        self.first_offer != NO_OFFER
    }

    /// What is wrong with the seat's offer bookkeeping against the record's `more_offers`, if
    /// anything (for `Router::audit`).
    pub fn offers_out_of_step(&self, more: &[ContactId]) -> Option<String> {
        if self.has_more_offers == more.is_empty() || (!self.has_offers() && !more.is_empty()) {
            return Some(format!(
                "first offer {:?}, more flag {}, more {more:?}",
                self.first_offer, self.has_more_offers
            ));
        }
        None
    }

    /// True when a new contact of `channel` may be offered now.
    pub fn can_take(&self, channel: Channel, voice_blocks: bool) -> bool {
        self.available
            && self.load[channel.index()] < self.capacity.of(channel)
            && !(voice_blocks && channel != Channel::Voice && self.load[Channel::Voice.index()] > 0)
    }

    /// True when any channel could take an offer: [`Seat::can_take`] for some channel, asked
    /// after every offer, so without going through the channels one by one.
    pub fn can_take_any(&self, voice_blocks: bool) -> bool {
        let voice = Channel::Voice.index();
        if !self.available {
            false
        } else if voice_blocks && self.load[voice] > 0 {
            self.load[voice] < self.capacity.0[voice]
        } else {
            self.load
                .iter()
                .zip(self.capacity.0)
                .any(|(&used, slots)| used < slots)
        }
    }

    /// Used slots over total slots, in millionths (for the least-occupied policy).
    pub fn occupancy_ppm(&self) -> u64 {
        let total = u64::from(self.capacity.total().max(1));
        let used: u64 = self.load.iter().map(|&n| u64::from(n)).sum();
        used * 1_000_000 / total
    }

    pub fn take_slot(&mut self, channel: Channel) {
        self.load[channel.index()] = self.load[channel.index()].saturating_add(1);
    }

    pub fn free_slot(&mut self, channel: Channel, now: Millis) {
        self.load[channel.index()] = self.load[channel.index()].saturating_sub(1);
        self.idle_since = now;
    }
}

/// Removes the first occurrence of `item`; returns whether it was there.
pub(crate) fn remove_item<T: PartialEq>(list: &mut Vec<T>, item: &T) -> bool {
    match list.iter().position(|x| x == item) {
        Some(i) => {
            list.swap_remove(i);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_channel_can_take_exactly_when_one_of_them_can() {
        let mut seat = Seat::new(AgentId::new("alice"), 0);
        // Every load and capacity from 0 to 2 on voice, chat and email, the others closed.
        for state in 0..3u32.pow(6) {
            let digit = |i: u32| (state / 3u32.pow(i) % 3) as u8;
            seat.load = [digit(0), digit(1), digit(2), 0, 0, 0];
            seat.capacity = Capacity([digit(3), digit(4), digit(5), 0, 0, 0]);
            for (available, voice_blocks) in [(true, true), (true, false), (false, true)] {
                seat.available = available;
                let one_by_one = Channel::ALL.iter().any(|&c| seat.can_take(c, voice_blocks));
                assert_eq!(seat.can_take_any(voice_blocks), one_by_one, "{seat:?}");
            }
        }
    }

    #[test]
    fn a_seat_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Seat>(), 64);
    }

    #[test]
    fn offers_are_listed_in_the_order_made_whichever_is_released() {
        let mut seat = Seat::new(AgentId::new("alice"), 0);
        let mut more = Vec::new();
        assert!(!seat.has_offers());
        for id in [7, 3, 9] {
            seat.hold_offer(ContactId(id), &mut more);
        }
        assert_eq!(seat.offers(&more), [7, 3, 9].map(ContactId));
        seat.release_offer(ContactId(7), &mut more);
        assert_eq!(seat.offers(&more), [3, 9].map(ContactId));
        seat.release_offer(ContactId(9), &mut more);
        seat.hold_offer(ContactId(4), &mut more);
        assert_eq!(seat.offers(&more), [3, 4].map(ContactId));
        seat.release_offer(ContactId(3), &mut more);
        seat.release_offer(ContactId(4), &mut more);
        seat.release_offer(ContactId(5), &mut more);
        assert!(!seat.has_offers());
        assert!(more.is_empty());
    }

    #[test]
    fn a_single_offer_never_touches_the_record_list() {
        let mut seat = Seat::new(AgentId::new("bob"), 0);
        let mut more = Vec::new();
        seat.hold_offer(ContactId(1), &mut more);
        seat.release_offer(ContactId(1), &mut more);
        seat.hold_offer(ContactId(2), &mut more);
        assert_eq!(
            (seat.offers(&more), more.capacity()),
            (vec![ContactId(2)], 0)
        );
    }
}
