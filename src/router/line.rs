//! A line of waiting contacts, kept in service order, with the recent service rate that turns a
//! position into an estimated wait.

use std::cmp::Reverse;
use std::collections::VecDeque;

use crate::model::{ContactId, Millis, Priority};

use super::contacts::Slot;

/// A contact's place in a line. The derived order is the service order: higher priority first,
/// then earlier arrival, then lower id so that ties are broken the same way on every run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Place {
    pub urgency: Reverse<Priority>,
    pub arrived_at: Millis,
    pub contact: ContactId,
    /// The contact's slot in the store, so that whoever takes it from the line reaches its
    /// record without a lookup. Never decides the order (`contact` is unique).
    pub slot: Slot,
    /// Set when some agent has rejected or missed this contact. Lets an agent walking the head
    /// of a line skip the contact lookup in the common case. Never affects the order, because
    /// `contact` is unique.
    pub has_exclusions: bool,
    /// The customer is waiting live and hears position updates; lets the position tick skip
    /// lines and places nobody is listening to.
    pub announce: bool,
}

/// A class line's head as an agent becoming free compares it: the service-order rank and the
/// slot, 16 bytes, four to a cache line. The scan over the heads of an agent's classes is the
/// hot loop of routing, and its cost is the cache lines it reads: at 16 bytes the heads of
/// 20,000 classes take 312 KiB and stay in a core's L2. The contact id that breaks ties between
/// equal ranks is left out: ties are rare, and the caller reads it from the slot then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    priority: i32,
    /// `slot << 1 | has_exclusions`, or [`Head::EMPTY`]'s `u32::MAX` for an empty line.
    tagged_slot: u32,
    arrived_at: Millis,
}

impl Head {
    /// The head of an empty line.
    pub const EMPTY: Head = Head {
        priority: 0,
        tagged_slot: u32::MAX,
        arrived_at: 0,
    };

    /// The head for a line's first place (`None`: the line is empty).
    pub fn of(place: Option<Place>) -> Head {
        match place {
            None => Head::EMPTY,
            Some(p) => {
                // 2^31 - 1 live contacts would be some 600 GB of records; checked anyway, as a
                // wrapped slot would point the head at another contact.
                assert!(p.slot < u32::MAX >> 1, "slots stay below 2^31 - 1");
                Head {
                    priority: p.urgency.0.0,
                    tagged_slot: p.slot << 1 | u32::from(p.has_exclusions),
                    arrived_at: p.arrived_at,
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tagged_slot == u32::MAX
    }

    pub fn slot(&self) -> Slot {
        self.tagged_slot >> 1
    }

    /// Some agent has rejected or missed the head (see [`Place::has_exclusions`]).
    pub fn has_exclusions(&self) -> bool {
        self.tagged_slot & 1 == 1
    }

    /// The service order without the tie-breaking id: higher priority, then earlier arrival.
    pub fn rank(&self) -> (Reverse<Priority>, Millis) {
        (Reverse(Priority(self.priority)), self.arrived_at)
    }
}

/// How many recent departures feed the service-rate estimate.
const RATE_WINDOW: usize = 16;

/// The slot of a tombstone: a place removed from the middle of a line.
const GONE: Slot = Slot::MAX;

/// Tombstones a line tolerates before it sweeps them out.
const SWEEP_AT: usize = 32;

/// The part of a place that decides the service order (`contact` is unique).
fn rank(place: &Place) -> (Reverse<Priority>, Millis, ContactId) {
    (place.urgency, place.arrived_at, place.contact)
}

/// Waiting contacts of one routing class (or of one agent's preferred list), in service order.
///
/// A sorted deque rather than a tree: the common moves are a newcomer joining at the back and
/// the head leaving at the front, each touching one cache line, where a B-tree walks down and
/// rebalances its nodes. A place leaving from the middle (an abandon, a transfer) becomes a
/// tombstone, found by binary search and swept out in bulk, so no removal moves the line. A
/// place joining in the middle (a higher priority, or a contact keeping its age on overflow)
/// shifts the shorter side of the line: about 18 µs in the middle of 100,000, against 0.2 µs
/// for the tree (the `deep_line` bench).
#[derive(Debug)]
pub(crate) struct Line {
    /// Places in service order, tombstones (slot [`GONE`]) among them; the first and the last
    /// are always live.
    places: VecDeque<Place>,
    /// Tombstones in `places`.
    gone: usize,
    /// Times at which the most recent contacts left the line to be offered.
    departures: [Millis; RATE_WINDOW],
    departures_seen: usize,
    /// Places with `announce` set.
    announcing: usize,
    /// Positions changed since the last position update went out.
    pub dirty: bool,
}

impl Default for Line {
    fn default() -> Self {
        Line::EMPTY
    }
}

impl Line {
    /// A line nobody stands in.
    pub const EMPTY: Line = Line {
        places: VecDeque::new(),
        gone: 0,
        departures: [0; RATE_WINDOW],
        departures_seen: 0,
        announcing: 0,
        dirty: false,
    };

    /// Adds a place; returns true when it went to the back of the line (nobody's position
    /// changed, so only the newcomer needs telling).
    pub fn insert(&mut self, place: Place) -> bool {
        debug_assert_ne!(place.slot, GONE, "a live place");
        let at_back = self
            .places
            .back()
            .is_none_or(|last| rank(last) < rank(&place));
        if at_back {
            self.places.push_back(place);
        } else {
            match self.places.binary_search_by(|p| rank(p).cmp(&rank(&place))) {
                // The contact's own tombstone: it left and comes back at the same rank.
                Ok(i) if self.places[i].slot == GONE => {
                    self.places[i] = place;
                    self.gone -= 1;
                }
                Ok(_) => return false,
                Err(i) => self.places.insert(i, place),
            }
        }
        if place.announce {
            self.announcing += 1;
        }
        at_back
    }

    /// The contact to be served next, if any.
    pub fn head(&self) -> Option<Place> {
        self.places.front().copied()
    }

    /// Removes a place; returns whether it was there. The rank (priority, arrival, contact)
    /// finds it; the flags of the stored place are the ones that count.
    pub fn remove(&mut self, place: &Place) -> bool {
        let i = if self.places.front().is_some_and(|p| rank(p) == rank(place)) {
            0
        } else {
            match self.places.binary_search_by(|p| rank(p).cmp(&rank(place))) {
                Ok(i) => i,
                Err(_) => return false,
            }
        };
        let removed = self.places[i];
        if removed.slot == GONE {
            return false;
        }
        if i == 0 {
            self.places.pop_front();
        } else if i + 1 == self.places.len() {
            self.places.pop_back();
        } else {
            self.places[i].slot = GONE;
            self.gone += 1;
        }
        // Keep both ends live.
        while self.places.front().is_some_and(|p| p.slot == GONE) {
            self.places.pop_front();
            self.gone -= 1;
        }
        while self.places.back().is_some_and(|p| p.slot == GONE) {
            self.places.pop_back();
            self.gone -= 1;
        }
        if self.gone > SWEEP_AT && 2 * self.gone > self.places.len() {
            self.places.retain(|p| p.slot != GONE);
            self.gone = 0;
        }
        // A line that was deep gives back most of its memory once it has drained.
        if self.places.capacity() > 64 && 4 * self.places.len() < self.places.capacity() {
            self.places.shrink_to(self.places.capacity() / 2);
        }
        if removed.announce {
            self.announcing -= 1;
        }
        true
    }

    /// True when some customer in this line hears position updates.
    pub fn has_listeners(&self) -> bool {
        self.announcing > 0
    }

    /// Notes that a contact left the line to be served, for the service-rate estimate.
    pub fn record_departure(&mut self, now: Millis) {
        self.departures[self.departures_seen % RATE_WINDOW] = now;
        self.departures_seen += 1;
    }

    /// Places in service order.
    pub fn iter(&self) -> impl Iterator<Item = &Place> {
        self.places.iter().filter(|p| p.slot != GONE)
    }

    /// Number of waiting contacts.
    pub fn len(&self) -> usize {
        self.places.len() - self.gone
    }

    /// Estimated wait for the contact at `position` (1 = next to be served): the position times
    /// the mean time between recent departures. The time since the last departure counts as an
    /// open interval, so a line that has stopped moving shows a growing estimate rather than an
    /// old optimistic one. `None` until two departures have been seen.
    pub fn estimated_wait(&self, position: usize, now: Millis) -> Option<Millis> {
        let n = self.departures_seen.min(RATE_WINDOW);
        if n < 2 {
            return None;
        }
        let oldest = if self.departures_seen > RATE_WINDOW {
            self.departures[self.departures_seen % RATE_WINDOW]
        } else {
            self.departures[0]
        };
        let span = now.saturating_sub(oldest);
        // n departures observed over `span`: mean gap span / n (the open interval included).
        let gap = span / n as u64;
        Some(gap.saturating_mul(position as u64))
    }

    /// 1-based position of a contact, by walking the line: for queries, not the hot path.
    pub fn position_of(&self, contact: ContactId) -> Option<usize> {
        self.iter()
            .position(|p| p.contact == contact)
            .map(|i| i + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(priority: i32, arrived_at: Millis, id: u64) -> Place {
        Place {
            urgency: Reverse(Priority(priority)),
            arrived_at,
            contact: ContactId(id),
            slot: 0,
            has_exclusions: false,
            announce: false,
        }
    }

    #[test]
    fn a_class_head_fits_a_quarter_of_a_cache_line() {
        assert_eq!(std::mem::size_of::<Head>(), 16);
    }

    #[test]
    fn a_head_keeps_rank_slot_and_exclusions() {
        let mut p = place(-3, 42, 7);
        p.slot = 1 << 30;
        p.has_exclusions = true;
        let head = Head::of(Some(p));
        assert!(!head.is_empty());
        assert_eq!(head.rank(), (p.urgency, 42));
        assert_eq!(head.slot(), 1 << 30);
        assert!(head.has_exclusions());
        assert!(Head::of(None).is_empty());
        assert!(!Head::of(Some(place(0, 0, 0))).has_exclusions());
    }

    #[test]
    fn higher_priority_is_served_before_older_contacts() {
        let mut line = Line::default();
        line.insert(place(0, 10, 1));
        line.insert(place(5, 20, 2));
        line.insert(place(0, 5, 3));
        let order: Vec<u64> = line.iter().map(|p| p.contact.0).collect();
        assert_eq!(order, vec![2, 3, 1]);
    }

    #[test]
    fn insert_reports_whether_the_newcomer_went_to_the_back() {
        let mut line = Line::default();
        assert!(line.insert(place(0, 10, 1)));
        assert!(line.insert(place(0, 20, 2)));
        assert!(!line.insert(place(1, 30, 3)), "higher priority jumps ahead");
    }

    #[test]
    fn estimated_wait_follows_the_recent_departure_rate() {
        let mut line = Line::default();
        assert_eq!(line.estimated_wait(1, 0), None);
        for t in [0, 10_000, 20_000, 30_000] {
            line.record_departure(t);
        }
        // Four departures in 30 s, asked at 40 s: a mean gap of 10 s.
        assert_eq!(line.estimated_wait(3, 40_000), Some(30_000));
        // A line that stops moving shows a growing estimate.
        assert_eq!(line.estimated_wait(3, 400_000), Some(300_000));
    }

    #[test]
    fn a_contact_leaving_from_the_middle_keeps_the_others_in_order() {
        let mut line = Line::default();
        for id in 1..=5 {
            line.insert(place(0, id * 10, id));
        }
        assert!(line.remove(&place(0, 30, 3)));
        assert!(!line.remove(&place(0, 30, 3)), "already gone");
        assert_eq!(line.len(), 4);
        assert_eq!(line.position_of(ContactId(4)), Some(3));
        // It comes back at the same rank (a refusal re-files it) and takes its old place.
        assert!(!line.insert(place(0, 30, 3)));
        let order: Vec<u64> = line.iter().map(|p| p.contact.0).collect();
        assert_eq!(order, vec![1, 2, 3, 4, 5]);
    }

    proptest::proptest! {
        /// The line agrees with an ordered set under any mix of arrivals and departures from
        /// anywhere: same order, same length, same head.
        #[test]
        fn the_line_orders_like_a_sorted_set(
            ops in proptest::collection::vec((0u8..4, 0i32..3, 0u64..400), 1..600)
        ) {
            let mut line = Line::default();
            let mut model = std::collections::BTreeSet::new();
            for (op, priority, at) in ops {
                if op == 0 && !model.is_empty() {
                    // The head is served.
                    let head = *model.iter().next().unwrap();
                    proptest::prop_assert_eq!(line.head(), Some(head));
                    proptest::prop_assert!(line.remove(&head));
                    model.remove(&head);
                } else if op == 1 && !model.is_empty() {
                    // Someone abandons, wherever they are.
                    let gone = *model.iter().nth(at as usize % model.len()).unwrap();
                    proptest::prop_assert!(line.remove(&gone));
                    model.remove(&gone);
                } else {
                    let p = place(priority, at, model.len() as u64 * 1000 + at);
                    if model.insert(p) {
                        let at_back = model.iter().next_back() == Some(&p);
                        proptest::prop_assert_eq!(line.insert(p), at_back);
                    }
                }
                proptest::prop_assert_eq!(line.len(), model.len());
                proptest::prop_assert_eq!(line.head(), model.iter().next().copied());
            }
            let order: Vec<Place> = line.iter().copied().collect();
            let expected: Vec<Place> = model.into_iter().collect();
            proptest::prop_assert_eq!(order, expected);
        }
    }
}
