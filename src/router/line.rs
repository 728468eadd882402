//! A line of waiting contacts, kept in service order, with the recent service rate that turns a
//! position into an estimated wait.

use std::cmp::Reverse;
use std::collections::BTreeSet;

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

/// How many recent departures feed the service-rate estimate.
const RATE_WINDOW: usize = 16;

/// Waiting contacts of one routing class (or of one agent's preferred list), in service order.
#[derive(Debug, Default)]
pub(crate) struct Line {
    places: BTreeSet<Place>,
    /// Times at which the most recent contacts left the line to be offered.
    departures: [Millis; RATE_WINDOW],
    departures_seen: usize,
    /// Places with `announce` set.
    announcing: usize,
    /// Positions changed since the last position update went out.
    pub dirty: bool,
}

impl Line {
    /// Adds a place; returns true when it went to the back of the line (nobody's position
    /// changed, so only the newcomer needs telling).
    pub fn insert(&mut self, place: Place) -> bool {
        let at_back = self.places.last().is_none_or(|last| *last < place);
        if self.places.insert(place) && place.announce {
            self.announcing += 1;
        }
        at_back
    }

    /// The contact to be served next, if any.
    pub fn head(&self) -> Option<Place> {
        self.places.first().copied()
    }

    /// Removes a place; returns whether it was there.
    pub fn remove(&mut self, place: &Place) -> bool {
        let removed = self.places.remove(place);
        if removed && place.announce {
            self.announcing -= 1;
        }
        removed
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
        self.places.iter()
    }

    /// Number of waiting contacts.
    pub fn len(&self) -> usize {
        self.places.len()
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
        self.places
            .iter()
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
    fn a_class_head_fits_half_a_cache_line() {
        assert!(std::mem::size_of::<Option<Place>>() <= 32);
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
}
