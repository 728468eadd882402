//! The contact-id index: from a contact's id to its slot in the store.
//!
//! Why not only a hash map: the daemon hands out contact ids from one counter, so the ids in
//! the router are mostly a run of recent ones. A map puts each arrival's entry in a scattered
//! (cold) bucket behind a control byte that is cold too: about a tenth of an arrival's time
//! at 100k waiting (docs/performance.md). Here the recent ids sit in a window, one 4-byte entry
//! per id in order, so an arrival writes next to the entry the previous arrival wrote. Ids
//! older than the window (a contact that has waited while a hundred thousand others came and
//! went) and ids from anywhere else go to the map.
//!
//! Memory stays bounded whatever order ids come in: the window is kept at least a quarter
//! full (plus [`MIN_WINDOW`] entries), shedding its oldest entries to the map when it is not.
//! Every id moves at most once, from the window to the map, so the cost of shedding is
//! bounded by the arrivals that filled the window.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use crate::model::ContactId;

use super::contacts::Slot;

/// Window entries that need no live contacts to justify them (16 KiB): a window this short is
/// never shed, so a quiet center's contacts all stay in it.
const MIN_WINDOW: usize = 4_096;

/// A window entry for an id with no contact.
const VACANT: Slot = Slot::MAX;

#[derive(Debug, Default)]
pub(crate) struct IdIndex {
    /// The id of `window[0]`; every id in `older` is below it.
    base: u64,
    /// The slot of contact `base + i` at `i`, or [`VACANT`].
    window: VecDeque<Slot>,
    /// Entries in `window` that are not [`VACANT`].
    in_window: usize,
    /// Contacts whose ids are below `base`.
    older: HashMap<ContactId, Slot, BuildHasherDefault<IdHasher>>,
}

impl IdIndex {
    /// Records the slot of a new id; false (and nothing recorded) when the id is present.
    pub fn insert(&mut self, id: ContactId, slot: Slot) -> bool {
        let Some(mut offset) = self.offset(id) else {
            return match self.older.entry(id) {
                std::collections::hash_map::Entry::Occupied(_) => false,
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(slot);
                    true
                }
            };
        };
        if offset >= self.window.len() {
            offset = self.make_room(id);
        }
        let entry = &mut self.window[offset];
        if *entry != VACANT {
            return false;
        }
        *entry = slot;
        self.in_window += 1;
        true
    }

    /// Forgets an id, returning its slot.
    pub fn remove(&mut self, id: &ContactId) -> Option<Slot> {
        let Some(offset) = self.offset(*id) else {
            return self.older.remove(id);
        };
        let entry = self.window.get_mut(offset)?;
        let slot = std::mem::replace(entry, VACANT);
        if slot == VACANT {
            return None;
        }
        self.in_window -= 1;
        if offset == 0 {
            // Most contacts leave in about the order they came: the window follows them.
            self.drop_vacant_front();
        }
        Some(slot)
    }

    fn drop_vacant_front(&mut self) {
        while self.window.front() == Some(&VACANT) {
            self.window.pop_front();
            self.base += 1;
        }
    }

    pub fn get(&self, id: &ContactId) -> Option<Slot> {
        match self.offset(*id) {
            Some(offset) => self.window.get(offset).copied().filter(|&s| s != VACANT),
            None => self.older.get(id).copied(),
        }
    }

    pub fn len(&self) -> usize {
        self.in_window + self.older.len()
    }

    pub fn ids(&self) -> impl Iterator<Item = ContactId> + '_ {
        let base = self.base;
        let recent = (0u64..)
            .zip(&self.window)
            .filter(|&(_, &slot)| slot != VACANT)
            .map(move |(i, _)| ContactId(base + i));
        self.older.keys().copied().chain(recent)
    }

    /// Where an id's entry is (or would be) in the window; `None` for an id below it.
    fn offset(&self, id: ContactId) -> Option<usize> {
        let offset = id.0.checked_sub(self.base)?;
        // An offset past the address space is past any window: `make_room` rebases for it.
        Some(usize::try_from(offset).unwrap_or(usize::MAX))
    }

    /// Extends the window to reach `id` (at or past its end), first shedding its oldest
    /// entries to the map while reaching `id` would leave it less than a quarter full.
    /// Returns `id`'s offset.
    fn make_room(&mut self, id: ContactId) -> usize {
        let span_ok = |index: &Self| {
            let span = id.0 - index.base;
            span < (4 * (index.in_window + 1) + MIN_WINDOW) as u64
        };
        while !self.window.is_empty() && !span_ok(self) {
            let slot = self.window.pop_front().expect("not empty");
            if slot != VACANT {
                self.older.insert(ContactId(self.base), slot);
                self.in_window -= 1;
            }
            self.base += 1;
        }
        self.drop_vacant_front();
        if self.window.is_empty() {
            self.base = id.0;
        }
        let offset = (id.0 - self.base) as usize;
        self.window.resize(offset + 1, VACANT);
        offset
    }
}

/// Hashes contact ids for the map of older ids, keeping runs of consecutive ids together.
///
/// Why: a mixing hash sends each id to a random (cold) bucket, and the older ids are mostly
/// runs too (a backlog that built up together). Here each run of [`RUN`] consecutive ids
/// shares one scattered block of buckets, in order.
///
/// Why short runs: with the ids' low bits kept whole (one long run), a backlog of old contacts
/// fills one dense stretch of the table, and every newer id whose low bits fall in it probes to
/// the stretch's end, dozens of groups (measured: the lookup became the costliest step of an
/// arrival). And a run as long as a probe group (16 on x86) fills whole groups: the table marks
/// a departure from a stretch of a group's width or more as a tombstone, which it clears only
/// by rehashing everything (one callgrind window each: 110 instructions of rehash per arrival
/// at 16, 57 at 8; 4, 8 and 16 took the same time per arrival, alternating). Scattered short
/// runs leave the table's occupancy random, as a mixing hash does.
/// The run's block comes from a folded 128-bit product, so every bit of the id reaches it (ids
/// that differ only in a high prefix do not collide), and the top seven bits, which the table
/// compares first to tell the keys of a group apart, are mixed from the whole id.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

/// Consecutive ids kept together: 128 bytes of buckets, half an x86 probe group.
const RUN: u64 = 8;

impl Hasher for IdHasher {
    fn write_u64(&mut self, id: u64) {
        const TOP_SEVEN: u64 = 0x7F << 57;
        const MIX: u64 = 0x9E37_79B9_7F4A_7C15;
        let id = id ^ self.0.rotate_left(5);
        let product = u128::from(id / RUN) * u128::from(MIX);
        let block = ((product as u64) ^ ((product >> 64) as u64)).wrapping_mul(RUN);
        self.0 = ((block | (id % RUN)) & !TOP_SEVEN) | (id.wrapping_mul(MIX) & TOP_SEVEN);
    }

    /// Not used by `ContactId` (which hashes as one `u64`); folds bytes in for completeness.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    fn hash(id: u64) -> u64 {
        BuildHasherDefault::<IdHasher>::default().hash_one(ContactId(id))
    }

    /// The window's share of memory, in entries.
    fn window_len(index: &IdIndex) -> usize {
        index.window.len()
    }

    #[test]
    fn counter_ids_stay_in_the_window_and_the_window_follows_departures() {
        let mut index = IdIndex::default();
        for id in 1..=1_000 {
            assert!(index.insert(ContactId(id), id as Slot));
        }
        assert!(!index.insert(ContactId(500), 0), "a present id is refused");
        assert_eq!(index.len(), 1_000);
        assert!(index.older.is_empty());
        for id in 1..=990 {
            assert_eq!(index.remove(&ContactId(id)), Some(id as Slot));
        }
        assert_eq!(index.remove(&ContactId(7)), None, "gone already");
        assert_eq!(
            window_len(&index),
            10,
            "departed ids at the front are dropped"
        );
        assert_eq!(index.get(&ContactId(995)), Some(995));
        assert_eq!(index.get(&ContactId(5)), None);
    }

    #[test]
    fn a_backlog_of_old_contacts_moves_to_the_map_and_leaves_the_window_short() {
        let mut index = IdIndex::default();
        for id in 1..=100_000 {
            index.insert(ContactId(id), (id % 7) as Slot);
        }
        // A million arrivals, each leaving before the next comes, behind the backlog.
        for id in 100_001..1_100_000 {
            assert!(index.insert(ContactId(id), 1));
            assert_eq!(index.remove(&ContactId(id)), Some(1));
            assert!(window_len(&index) <= 4 * (index.in_window + 1) + MIN_WINDOW);
        }
        assert_eq!(index.len(), 100_000);
        assert_eq!(
            index.older.len(),
            100_000,
            "the backlog was shed to the map"
        );
        assert_eq!(window_len(&index), 0);
        for id in (1..=100_000).step_by(997) {
            assert_eq!(index.get(&ContactId(id)), Some((id % 7) as Slot));
        }
        let mut ids: Vec<u64> = index.ids().map(|id| id.0).collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=100_000).collect::<Vec<_>>());
    }

    #[test]
    fn ids_from_anywhere_are_found_once_in_bounded_memory() {
        let mut index = IdIndex::default();
        let ids: Vec<u64> = (1..=5_000u64)
            .map(|k| if k % 2 == 0 { k << 24 } else { 5_000 - k })
            .chain([u64::MAX - 1, 0, u64::MAX - 2])
            .collect();
        for (slot, &id) in ids.iter().enumerate() {
            assert!(index.insert(ContactId(id), slot as Slot), "{id}");
            assert!(window_len(&index) <= 4 * (index.in_window + 1) + MIN_WINDOW);
        }
        for (slot, &id) in ids.iter().enumerate() {
            assert!(!index.insert(ContactId(id), 0), "{id} again");
            assert_eq!(index.get(&ContactId(id)), Some(slot as Slot), "{id}");
        }
        assert_eq!(index.len(), ids.len());
        for (slot, &id) in ids.iter().enumerate() {
            assert_eq!(index.remove(&ContactId(id)), Some(slot as Slot), "{id}");
            assert_eq!(index.get(&ContactId(id)), None);
        }
        assert_eq!(index.len(), 0);
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// The next id from the counter.
        Arrive,
        /// An id from anywhere (restored from a store, another node's counter).
        ArriveAs(u64),
        /// The k-th of the present ids (modulo their number) leaves.
        Leave(usize),
        /// An id that may or may not be present leaves.
        LeaveAs(u64),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            6 => Just(Step::Arrive),
            1 => prop_oneof![0..50_000u64, any::<u64>()].prop_map(Step::ArriveAs),
            6 => any::<usize>().prop_map(Step::Leave),
            1 => (0..50_000u64).prop_map(Step::LeaveAs),
        ]
    }

    proptest::proptest! {
        /// Whatever order ids come and go in, the index answers as a map would, and its window
        /// stays at least a quarter full.
        #[test]
        fn the_index_agrees_with_a_map(
            start in 0..10_000u64,
            steps in proptest::collection::vec(step(), 1..2_000),
        ) {
            let mut index = IdIndex::default();
            let mut model = std::collections::BTreeMap::new();
            let mut counter = start;
            for (n, step) in steps.into_iter().enumerate() {
                let slot = n as Slot;
                match step {
                    Step::Arrive | Step::ArriveAs(_) => {
                        let id = match step {
                            Step::ArriveAs(id) => id,
                            _ => {
                                counter += 1;
                                counter
                            }
                        };
                        let fresh = !model.contains_key(&id);
                        proptest::prop_assert_eq!(index.insert(ContactId(id), slot), fresh);
                        model.entry(id).or_insert(slot);
                    }
                    Step::Leave(k) => {
                        if let Some(&id) = model.keys().nth(k % model.len().max(1)) {
                            proptest::prop_assert_eq!(index.remove(&ContactId(id)), model.remove(&id));
                        }
                    }
                    Step::LeaveAs(id) => {
                        proptest::prop_assert_eq!(index.remove(&ContactId(id)), model.remove(&id));
                    }
                }
                proptest::prop_assert_eq!(index.len(), model.len());
                proptest::prop_assert!(window_len(&index) <= 4 * (index.in_window + 1) + MIN_WINDOW);
            }
            for (&id, &slot) in &model {
                proptest::prop_assert_eq!(index.get(&ContactId(id)), Some(slot));
            }
            let mut ids: Vec<u64> = index.ids().map(|id| id.0).collect();
            ids.sort_unstable();
            proptest::prop_assert_eq!(ids, model.keys().copied().collect::<Vec<_>>());
        }
    }

    #[test]
    fn runs_of_consecutive_ids_stay_together_and_runs_scatter() {
        let index_bits = |id: u64| hash(id) & ((1 << 57) - 1);
        for first in [0, 16, 4_096, 1 << 40] {
            for k in 1..RUN {
                assert_eq!(index_bits(first + k), index_bits(first) + k);
            }
        }
        // Neighbouring runs land far apart (a backlog does not become one dense stretch).
        let gaps =
            (0..64).filter(|r| index_bits((r + 1) * RUN).abs_diff(index_bits(r * RUN)) > 1 << 20);
        assert!(gaps.count() > 60);
        // Every bit of the id reaches the block: ids that differ only in a high prefix (a
        // shard or node tag) land apart.
        for tag in [1 << 50, 1 << 56, 1 << 63] {
            assert!(index_bits(tag | 42).abs_diff(index_bits(42)) > 1 << 20);
        }
        // The bits compared first still tell neighbours apart, mostly.
        let tops: std::collections::HashSet<u64> = (0..64).map(|id| hash(id) >> 57).collect();
        assert!(tops.len() > 32, "{} distinct tags in 64 ids", tops.len());
    }
}
