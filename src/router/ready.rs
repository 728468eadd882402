//! The agents ready for one routing class, best first under the queue's selection policy.
//!
//! Under longest idle (the default) an agent's key is the time its workload last changed, and
//! an agent is (re)entered exactly when that happens, so entries arrive in key order: the line
//! is a sorted deque, entered at the back and served from the front, one cache line touched
//! per pop. The other policies rank agents by occupancy or skill, whose keys arrive in any
//! order: they keep a binary heap. The deque still accepts an out-of-order key (a profile
//! change re-enters an agent under its old key) by inserting it in place, so its order is
//! always the heap's order and the choice of agent never depends on the container.
//!
//! Entries are invalidated lazily: an agent's epoch moves on every change that affects its
//! readiness, and an entry with an old epoch is dropped when it reaches the front (popped, or
//! found there by the router's look-ahead after a pop).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::AgentIdx;
use super::plan::Selection;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ReadyEntry {
    /// Selection key: smaller is picked first (see `ready_key`).
    pub key: u64,
    pub agent: AgentIdx,
    /// The agent's epoch when pushed. 32 bits keep entries at 16 bytes; a popped entry is also
    /// checked against the agent's state, so even a wrapped epoch cannot hand a contact to an
    /// agent that cannot take it.
    pub epoch: u32,
}

/// Ready agents of one class, smallest entry first.
#[derive(Debug)]
pub(crate) enum ReadyLine {
    /// Keys that mostly arrive in order (longest idle).
    Sorted(VecDeque<ReadyEntry>),
    /// Keys in any order (most skilled, least occupied).
    Ranked(BinaryHeap<Reverse<ReadyEntry>>),
}

impl ReadyLine {
    pub fn new(selection: Selection) -> Self {
        match selection {
            Selection::LongestIdle => ReadyLine::Sorted(VecDeque::new()),
            Selection::MostSkilled | Selection::LeastOccupied => {
                ReadyLine::Ranked(BinaryHeap::new())
            }
        }
    }

    pub fn push(&mut self, entry: ReadyEntry) {
        match self {
            ReadyLine::Sorted(line) => {
                if line.back().is_none_or(|last| *last <= entry) {
                    line.push_back(entry);
                } else {
                    let at = line.partition_point(|e| *e <= entry);
                    line.insert(at, entry);
                }
            }
            ReadyLine::Ranked(heap) => heap.push(Reverse(entry)),
        }
    }

    /// Removes and returns the best entry.
    pub fn pop(&mut self) -> Option<ReadyEntry> {
        match self {
            ReadyLine::Sorted(line) => line.pop_front(),
            ReadyLine::Ranked(heap) => heap.pop().map(|Reverse(e)| e),
        }
    }

    /// The best entry, left in the line.
    pub fn peek(&self) -> Option<ReadyEntry> {
        match self {
            ReadyLine::Sorted(line) => line.front().copied(),
            ReadyLine::Ranked(heap) => heap.peek().map(|Reverse(e)| *e),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ReadyLine::Sorted(line) => line.len(),
            ReadyLine::Ranked(heap) => heap.len(),
        }
    }

    /// Keeps only the entries `keep` accepts (used to sweep stale ones).
    pub fn retain(&mut self, mut keep: impl FnMut(&ReadyEntry) -> bool) {
        match self {
            ReadyLine::Sorted(line) => line.retain(|e| keep(e)),
            ReadyLine::Ranked(heap) => heap.retain(|Reverse(e)| keep(e)),
        }
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> Box<dyn Iterator<Item = ReadyEntry> + '_> {
        match self {
            ReadyLine::Sorted(line) => Box::new(line.iter().copied()),
            ReadyLine::Ranked(heap) => Box::new(heap.iter().map(|Reverse(e)| *e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: u64, agent: AgentIdx) -> ReadyEntry {
        ReadyEntry {
            key,
            agent,
            epoch: 0,
        }
    }

    /// Pops everything, checking on the way that `peek` shows what `pop` takes next.
    fn drain(mut line: ReadyLine) -> Vec<(u64, AgentIdx)> {
        std::iter::from_fn(|| {
            let next = line.peek();
            let popped = line.pop();
            assert_eq!(next, popped, "peek shows the entry pop takes");
            popped
        })
        .map(|e| (e.key, e.agent))
        .collect()
    }

    #[test]
    fn both_containers_serve_the_same_order_whatever_the_order_of_entry() {
        let keys = [(30, 1), (10, 2), (20, 3), (10, 1), (40, 4), (20, 0)];
        let mut sorted = ReadyLine::new(Selection::LongestIdle);
        let mut ranked = ReadyLine::new(Selection::MostSkilled);
        for (key, agent) in keys {
            sorted.push(entry(key, agent));
            ranked.push(entry(key, agent));
        }
        let expected = vec![(10, 1), (10, 2), (20, 0), (20, 3), (30, 1), (40, 4)];
        assert_eq!(drain(sorted), expected);
        assert_eq!(drain(ranked), expected);
    }

    #[test]
    fn retain_keeps_the_order() {
        let mut line = ReadyLine::new(Selection::LongestIdle);
        for k in 0..10 {
            line.push(entry(k, k as AgentIdx));
        }
        line.retain(|e| e.key % 3 == 0);
        assert_eq!(drain(line), vec![(0, 0), (3, 3), (6, 6), (9, 9)]);
    }
}
