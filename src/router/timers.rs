//! The router's timers: a heap for deadlines at any time, and lanes for deadlines a fixed delay
//! after now.
//!
//! Why lanes: most timers are "now plus a configured delay" (an offer's expiry, a wrap-up's
//! end, a preferred agent's timeout). The clock never goes back, so the deadlines of one delay
//! arrive in order, and a deque per delay takes each at its back with no sifting. In a heap, a
//! new offer expiry (an hour away) climbs past every SLA timer (days away) on its way up, each
//! step a cold cache line; a lane writes one entry. The few distinct delays a plan has make
//! few lanes: the first [`MAX_LANES`] distinct delays get one, later ones go to the heap (lanes
//! are never given back, so a plan reloaded many times with new timeouts ends up using the
//! heap for them: slower, never out of order).
//!
//! Either way timers come out in exactly the order one heap would give, (time, then what is
//! due), so the choice of container never changes what the router does.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::model::Millis;

/// Distinct delays that get a lane of their own.
const MAX_LANES: usize = 8;

/// Something due at a time. Ordered by time, then by what is due (ties broken the same way
/// on every run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timer<D> {
    pub at: Millis,
    pub due: D,
}

#[derive(Debug)]
struct Lane<D> {
    delay: Millis,
    /// In timer order: mostly appended, inserted in place on a tie broken the other way.
    timers: VecDeque<Timer<D>>,
}

#[derive(Debug)]
pub(crate) struct Timers<D> {
    heap: BinaryHeap<Reverse<Timer<D>>>,
    lanes: Vec<Lane<D>>,
    len: usize,
    /// The earliest deadline, `Millis::MAX` when there is none: the router asks on every
    /// event whether something is due, and the answer is mostly no.
    earliest: Millis,
}

impl<D: Ord + Copy> Default for Timers<D> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            lanes: Vec::new(),
            len: 0,
            earliest: Millis::MAX,
        }
    }
}

impl<D: Ord + Copy> Timers<D> {
    /// Schedules a timer at any time.
    pub fn at(&mut self, at: Millis, due: D) {
        self.heap.push(Reverse(Timer { at, due }));
        self.len += 1;
        self.earliest = self.earliest.min(at);
    }

    /// Schedules a timer `at`, which is `now` plus a delay that recurs (a configured
    /// timeout). With a clock that never goes back, each lane is only ever appended to; a
    /// deadline out of order is inserted in place.
    pub fn after(&mut self, now: Millis, at: Millis, due: D) {
        let delay = at.saturating_sub(now);
        let lane = match self.lanes.iter().position(|l| l.delay == delay) {
            Some(i) => i,
            None if self.lanes.len() < MAX_LANES => {
                self.lanes.push(Lane {
                    delay,
                    timers: VecDeque::new(),
                });
                self.lanes.len() - 1
            }
            None => return self.at(at, due),
        };
        self.len += 1;
        self.earliest = self.earliest.min(at);
        let timers = &mut self.lanes[lane].timers;
        let timer = Timer { at, due };
        if timers.back().is_none_or(|last| *last <= timer) {
            timers.push_back(timer);
        } else {
            let i = timers.partition_point(|t| *t <= timer);
            timers.insert(i, timer);
        }
    }

    /// The earliest timer, without removing it.
    fn peek(&self) -> Option<Timer<D>> {
        let heap = self.heap.peek().map(|Reverse(t)| *t);
        self.lanes
            .iter()
            .filter_map(|l| l.timers.front().copied())
            .chain(heap)
            .min()
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: Millis) -> Option<Timer<D>> {
        if self.earliest > now {
            return None;
        }
        let first = self.peek()?;
        if self.heap.peek().is_some_and(|Reverse(t)| *t == first) {
            self.heap.pop();
        } else if let Some(lane) = self
            .lanes
            .iter_mut()
            .find(|l| l.timers.front() == Some(&first))
        {
            lane.timers.pop_front();
        }
        self.len -= 1;
        self.earliest = self.peek().map_or(Millis::MAX, |t| t.at);
        Some(first)
    }

    /// The earliest deadline, if any timer is set.
    pub fn next_at(&self) -> Option<Millis> {
        (self.len > 0).then_some(self.earliest)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Keeps only the timers `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&Timer<D>) -> bool) {
        self.heap.retain(|Reverse(t)| keep(t));
        for lane in &mut self.lanes {
            lane.timers.retain(&mut keep);
        }
        self.len = self.heap.len() + self.lanes.iter().map(|l| l.timers.len()).sum::<usize>();
        self.earliest = self.peek().map_or(Millis::MAX, |t| t.at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Timers come out in the order of one heap, however they are scheduled.
        #[test]
        fn timers_come_out_in_heap_order(
            steps in proptest::collection::vec((0u64..3, 0u64..50, 0u8..5, 0u32..5), 1..300)
        ) {
            let mut timers = Timers::default();
            let mut heap: BinaryHeap<Reverse<Timer<u32>>> = BinaryHeap::new();
            let mut now = 0;
            for (advance, delay, kind, due) in steps {
                now += advance;
                // Fixed delays (twelve distinct ones, so some overflow to the heap) or any time.
                let at = match kind {
                    0 | 1 => now + delay % 12 * 7,
                    2 => now + delay,
                    3 => {
                        // A sweep of stale timers.
                        timers.retain(|t| t.due % 2 == 0);
                        heap.retain(|Reverse(t)| t.due % 2 == 0);
                        proptest::prop_assert_eq!(timers.len(), heap.len());
                        proptest::prop_assert_eq!(timers.next_at(), heap.peek().map(|Reverse(t)| t.at));
                        continue;
                    }
                    _ => {
                        while let Some(t) = timers.pop_due(now) {
                            let Reverse(expected) = heap.pop().expect("as many timers");
                            proptest::prop_assert_eq!(t, expected);
                        }
                        proptest::prop_assert!(
                            heap.peek().is_none_or(|Reverse(t)| t.at > now)
                        );
                        continue;
                    }
                };
                if kind == 2 {
                    timers.at(at, due);
                } else {
                    timers.after(now, at, due);
                }
                heap.push(Reverse(Timer { at, due }));
                proptest::prop_assert_eq!(timers.len(), heap.len());
                proptest::prop_assert_eq!(timers.peek(), heap.peek().map(|Reverse(t)| *t));
                proptest::prop_assert_eq!(timers.next_at(), heap.peek().map(|Reverse(t)| t.at));
            }
        }
    }

    #[test]
    fn a_delay_beyond_the_lanes_goes_to_the_heap() {
        let mut timers = Timers::default();
        for delay in 0..(MAX_LANES as u64 + 3) {
            timers.after(100, 100 + delay * 10, delay);
        }
        assert_eq!(timers.lanes.len(), MAX_LANES);
        assert_eq!(timers.heap.len(), 3);
        let order: Vec<u64> = std::iter::from_fn(|| timers.pop_due(u64::MAX))
            .map(|t| t.due)
            .collect();
        assert_eq!(order, (0..(MAX_LANES as u64 + 3)).collect::<Vec<_>>());
    }
}
