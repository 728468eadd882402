//! The contact-id index: from a contact's id to its slot in the store.
//!
//! Why not only a hash map: the daemon hands out contact ids from one counter, so the ids in
//! the router are mostly a run of recent ones. A map puts each arrival's entry in a scattered
//! (cold) bucket behind a control byte that is cold too: about a tenth of an arrival's time
//! at 100k waiting (docs/performance.md). Here the recent ids sit in a window, one 4-byte entry
//! per id in order, so an arrival writes next to the entry the previous arrival wrote. Ids
//! that fall outside the window go to the map: a contact that has waited while a hundred
//! thousand others came and went, ids from another counter, ids from anywhere.
//!
//! The window only grows while it stays at least a quarter full (plus [`MIN_WINDOW`] entries),
//! shedding its oldest entries to the map when reaching a new id would break that. So its
//! length is bounded by four times the most contacts it has held, as a map's memory is by
//! its most entries. A contact moves from the window to the map at most once, never back.
//! One arrival may move many (a backlog shed, in the bench once, a hundred thousand), but
//! on average an arrival or departure costs a constant: the vacant entries it adds or skips
//! are bounded by the span rule, and for ids from a counter they are few.
//!
//! Which ids are where: the window holds ids in `base..base + window.len()`; the map holds
//! ids below `below_end` and ids at or above `fence`; ids in neither range are in neither
//! place, so an id near the window is answered without touching the map. An id far past the
//! window's end (a stray) goes to the map, not dragging the window along. When arrivals keep
//! going to the map (the window left behind by a run of old ids, or a counter that started a
//! new range), the window moves to where they arrive, its contacts going to the map, and the
//! map's bounds are taken afresh: about as many arrivals as the map and window hold pay for
//! that walk.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use crate::model::ContactId;

use super::contacts::Slot;

/// Window entries that need no live contacts to justify them (16 KiB): ids this close
/// together always share the window.
const MIN_WINDOW: usize = 4_096;

/// Arrivals sent to the map in a row, beyond what moving the window costs, after which the
/// window moves to where they arrive (see [`IdIndex::moving_pays`]).
const MISSES_BEFORE_MOVING: usize = 64;

/// How far below the window an arriving id still extends it (ids handed out by one counter
/// reach the router a little out of order, from intake tasks running side by side). Further
/// down, the id goes to the map: an extension down is walked again when the contact at the
/// window's front leaves, so a far one would be paid on every arrival and departure.
const NEAR_BELOW: u64 = 64;

/// A window entry for an id with no contact.
const VACANT: Slot = Slot::MAX;

#[derive(Debug)]
pub(crate) struct IdIndex {
    /// The id of `window[0]`.
    base: u64,
    /// The slot of contact `base + i` at `i`, or [`VACANT`].
    window: VecDeque<Slot>,
    /// Entries in `window` that are not [`VACANT`].
    in_window: usize,
    /// Every id in `older` below the window is below this; at most `base`.
    below_end: u64,
    /// Every id in `older` above the window is at or above this; at least the window's end.
    /// `u64::MAX` when there are none but `u64::MAX` itself, which the window never holds.
    fence: u64,
    /// Arrivals sent to the map since the window's last arrival.
    misses: usize,
    /// Ids in `older` below the window, and above it (when these reach zero, the bounds
    /// above go back to their widest).
    older_below: usize,
    older_above: usize,
    /// Contacts whose ids are outside the window: below `below_end` or at or above `fence`.
    older: HashMap<ContactId, Slot, BuildHasherDefault<IdHasher>>,
}

impl Default for IdIndex {
    fn default() -> Self {
        IdIndex {
            base: 0,
            window: VecDeque::new(),
            in_window: 0,
            older: HashMap::default(),
            below_end: 0,
            fence: u64::MAX,
            older_below: 0,
            older_above: 0,
            misses: 0,
        }
    }
}

/// Where an id is, or would be, kept.
enum Place {
    /// In the window, at this offset.
    Window(usize),
    /// In the map.
    Older,
    /// Past the window's end, short of `fence`: in neither place.
    Above,
    /// Below the window, at or above `below_end`: in neither place.
    Below,
}

impl IdIndex {
    /// Records the slot of a new id; false (and nothing recorded) when the id is present.
    pub fn insert(&mut self, id: ContactId, slot: Slot) -> bool {
        debug_assert_ne!(slot, VACANT, "four billion slots");
        // The arrival's path: the counter's next id, just past a window with room for it.
        let len = self.window.len();
        if id.0.checked_sub(self.base) == Some(len as u64)
            && len != 0
            && id.0 < self.fence
            && self.span_ok(len as u64 + 1)
        {
            self.window.push_back(slot);
            self.in_window += 1;
            self.misses = 0;
            return true;
        }
        self.insert_elsewhere(id, slot)
    }

    /// [`IdIndex::insert`] for every other id.
    #[inline(never)]
    fn insert_elsewhere(&mut self, id: ContactId, slot: Slot) -> bool {
        let offset = match self.place(id.0) {
            Place::Window(offset) => offset,
            Place::Above => match self.make_room_above(id.0) {
                Some(offset) => offset,
                None => {
                    self.fence = id.0;
                    return self.insert_older(id, slot);
                }
            },
            Place::Below if self.moving_pays() => self.move_to(id.0),
            Place::Below => match self.make_room_below(id.0) {
                Some(offset) => offset,
                None => {
                    self.below_end = id.0 + 1;
                    return self.insert_older(id, slot);
                }
            },
            Place::Older
                if id.0 < u64::MAX && self.moving_pays() && !self.older.contains_key(&id) =>
            {
                self.move_to(id.0)
            }
            Place::Older => return self.insert_older(id, slot),
        };
        let entry = &mut self.window[offset];
        if *entry != VACANT {
            return false;
        }
        *entry = slot;
        self.in_window += 1;
        self.misses = 0;
        true
    }

    /// Forgets an id, returning its slot.
    pub fn remove(&mut self, id: &ContactId) -> Option<Slot> {
        let offset = match self.place(id.0) {
            Place::Window(offset) => offset,
            Place::Older => {
                let slot = self.older.remove(id)?;
                if id.0 >= self.fence {
                    self.older_above -= 1;
                    if self.older_above == 0 {
                        self.fence = u64::MAX;
                    }
                } else {
                    self.older_below -= 1;
                    if self.older_below == 0 {
                        self.below_end = 0;
                    }
                }
                return Some(slot);
            }
            Place::Above | Place::Below => return None,
        };
        let slot = std::mem::replace(&mut self.window[offset], VACANT);
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

    pub fn get(&self, id: &ContactId) -> Option<Slot> {
        match self.place(id.0) {
            Place::Window(offset) => Some(self.window[offset]).filter(|&slot| slot != VACANT),
            Place::Older => self.older.get(id).copied(),
            Place::Above | Place::Below => None,
        }
    }

    pub fn len(&self) -> usize {
        self.in_window + self.older.len()
    }

    pub fn ids(&self) -> impl Iterator<Item = ContactId> + '_ {
        let recent = self
            .window
            .iter()
            .zip(self.base..)
            .filter(|&(&slot, _)| slot != VACANT)
            .map(|(_, id)| ContactId(id));
        self.older.keys().copied().chain(recent)
    }

    fn place(&self, id: u64) -> Place {
        match id.checked_sub(self.base) {
            Some(offset) if offset < self.window.len() as u64 => Place::Window(offset as usize),
            Some(_) if id < self.fence => Place::Above,
            None if id >= self.below_end => Place::Below,
            _ => Place::Older,
        }
    }

    /// Cold: ids from the counter reach the map by shedding, and otherwise only while the
    /// window is away from them.
    #[cold]
    fn insert_older(&mut self, id: ContactId, slot: Slot) -> bool {
        match self.older.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(slot);
                if id.0 >= self.fence {
                    self.older_above += 1;
                } else {
                    self.older_below += 1;
                }
                self.misses += 1;
                true
            }
        }
    }

    /// Whether enough arrivals have gone to the map in a row to pay for moving the window:
    /// about as many as the map held before them, plus the window's contacts. Each arrival
    /// in the run is one miss; a move walks the map and the window once.
    ///
    /// Why the window moves at all: after a run of old ids (restored, say), or when the
    /// counter starts a new range, the window can sit away from where the ids arrive, and
    /// they would go to the map one after another. One old id alone does not move a busy
    /// window.
    fn moving_pays(&self) -> bool {
        2 * self.misses >= self.older.len() + self.in_window + MISSES_BEFORE_MOVING
    }

    /// Moves the window's contacts to the map and starts the window again at `id` (in
    /// neither place), with the map's bounds taken afresh from its ids: the nearest below
    /// `id` and above it. Returns `id`'s offset.
    #[cold]
    fn move_to(&mut self, id: u64) -> usize {
        // The window first: the ids' range is not stepped past the window's end (u64::MAX).
        for (&slot, at) in self.window.iter().zip(self.base..) {
            if slot != VACANT {
                self.older.insert(ContactId(at), slot);
            }
        }
        let (mut below_end, mut fence) = (0, u64::MAX);
        let (mut below, mut above) = (0, 0);
        for other in self.older.keys() {
            if other.0 < id {
                below_end = below_end.max(other.0 + 1);
                below += 1;
            } else {
                fence = fence.min(other.0);
                above += 1;
            }
        }
        (self.below_end, self.fence) = (below_end, fence);
        (self.older_below, self.older_above) = (below, above);
        self.in_window = 0;
        self.window.clear();
        self.base = id;
        self.window.push_back(VACANT);
        0
    }

    /// Whether a window spanning `span` ids would be at least a quarter full with one more
    /// contact.
    fn span_ok(&self, span: u64) -> bool {
        span <= (4 * (self.in_window + 1) + MIN_WINDOW) as u64
    }

    /// Extends the window to reach `id` (past its end, short of `fence`), first shedding its
    /// oldest entries to the map while reaching `id` would leave it less than a quarter full.
    /// Returns `id`'s offset; `None` for an id far past the window's end, which goes to the
    /// map instead: one stray id (another system's, say) does not drag the window away from
    /// the counter. A run of them does, through [`IdIndex::moving_pays`].
    fn make_room_above(&mut self, id: u64) -> Option<usize> {
        if self.window.is_empty() || !self.span_ok(id - self.base + 1) {
            let end = self.base + self.window.len() as u64;
            if !self.window.is_empty() && id - end >= MIN_WINDOW as u64 {
                return None;
            }
            self.shed_for(id);
        }
        let offset = (id - self.base) as usize;
        if offset == self.window.len() {
            // The next id (into an empty window, or after a shed): no gap to fill.
            self.window.push_back(VACANT);
        } else {
            self.window.resize(offset + 1, VACANT);
        }
        Some(offset)
    }

    /// [`IdIndex::make_room_above`]'s rare part, kept out of an arrival's path: sheds the
    /// oldest entries until reaching `id` leaves the window a quarter full, and starts an
    /// empty window at `id`.
    #[cold]
    fn shed_for(&mut self, id: u64) {
        while !self.window.is_empty() && !self.span_ok(id - self.base + 1) {
            let slot = self.window.pop_front().expect("not empty");
            if slot != VACANT {
                self.older.insert(ContactId(self.base), slot);
                self.older_below += 1;
                self.below_end = self.base + 1;
                self.in_window -= 1;
            }
            self.base += 1;
        }
        self.drop_vacant_front();
        if self.window.is_empty() {
            self.base = id;
        }
    }

    /// Extends the window down to `id` (below it, at or above `below_end`) when `id` is near
    /// and the window stays a quarter full; `None` when the id should go to the map instead.
    fn make_room_below(&mut self, id: u64) -> Option<usize> {
        let end = self.base + self.window.len() as u64;
        if self.window.is_empty() {
            self.base = id;
            self.window.push_back(VACANT);
        } else if self.base - id <= NEAR_BELOW && self.span_ok(end - id) {
            for _ in id..self.base {
                self.window.push_front(VACANT);
            }
            self.base = id;
        } else {
            return None;
        }
        Some(0)
    }

    fn drop_vacant_front(&mut self) {
        while self.window.front() == Some(&VACANT) {
            self.window.pop_front();
            self.base += 1;
        }
        // A window that has lost most of its length gives back its buffer. Why: arrivals walk
        // the buffer around, and in a buffer many times the window each line they reach has
        // gone cold since they last passed it (measured: 1.2 times the arrival's time, after
        // the bench's backlog left a 2 MiB buffer behind a window of a few dozen).
        let wanted = 2 * self.window.len() + MIN_WINDOW;
        if self.window.capacity() > 4 * wanted {
            self.window.shrink_to(wanted);
        }
    }

    /// Checks the bounds that say where each id is (tests only).
    #[cfg(test)]
    fn assert_consistent(&self) {
        let end = self.base + self.window.len() as u64;
        assert!(self.below_end <= self.base && end <= self.fence);
        let above = self.older.keys().filter(|id| id.0 >= self.fence).count();
        let below = self.older.keys().filter(|id| id.0 < self.below_end).count();
        assert_eq!((below, above), (self.older_below, self.older_above));
        assert_eq!(
            below + above,
            self.older.len(),
            "an id in the map within the bounds"
        );
        let live = self.window.iter().filter(|&&slot| slot != VACANT).count();
        assert_eq!(live, self.in_window);
        assert_ne!(
            self.window.front(),
            Some(&VACANT),
            "the window starts at a contact"
        );
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
struct IdHasher(u64);

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
            index.window.len(),
            10,
            "departed ids at the front are dropped"
        );
        assert_eq!(index.get(&ContactId(995)), Some(995));
        assert_eq!(index.get(&ContactId(5)), None);
        index.assert_consistent();
    }

    #[test]
    fn a_backlog_of_old_contacts_moves_to_the_map_and_leaves_the_window_short() {
        let mut index = IdIndex::default();
        for id in 1..=100_000 {
            index.insert(ContactId(id), (id % 7) as Slot);
        }
        // A million arrivals, each leaving before the next comes, behind the backlog.
        for id in 100_001..=1_100_000 {
            assert!(index.insert(ContactId(id), 1));
            assert_eq!(index.remove(&ContactId(id)), Some(1));
            assert!(index.window.len() <= 4 * (index.in_window + 1) + MIN_WINDOW);
        }
        index.assert_consistent();
        assert_eq!(index.len(), 100_000);
        assert_eq!(
            index.older.len(),
            100_000,
            "the backlog was shed to the map"
        );
        assert_eq!(index.window.len(), 0);
        assert!(
            index.window.capacity() <= 4 * MIN_WINDOW,
            "the buffer given back: {} entries",
            index.window.capacity()
        );
        for id in (1..=100_000).step_by(997) {
            assert_eq!(index.get(&ContactId(id)), Some((id % 7) as Slot));
        }
        let mut ids: Vec<u64> = index.ids().map(|id| id.0).collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=100_000).collect::<Vec<_>>());
    }

    #[test]
    fn one_id_far_above_the_counter_does_not_keep_the_counter_out_of_the_window() {
        let mut index = IdIndex::default();
        for id in 1..=100 {
            index.insert(ContactId(id), 0);
        }
        assert!(index.insert(ContactId(1 << 40), 1));
        for id in 101..=1_000 {
            assert!(index.insert(ContactId(id), 2));
        }
        index.assert_consistent();
        assert!(
            index.older.len() < 200,
            "{} ids in the map, {} in the window",
            index.older.len(),
            index.in_window
        );
        assert_eq!(index.get(&ContactId(1 << 40)), Some(1));
        assert_eq!(index.get(&ContactId(50)), Some(0));
        assert_eq!(index.get(&ContactId(1_000)), Some(2));
        assert!(!index.insert(ContactId(1 << 40), 3));
        assert!(!index.insert(ContactId(1), 3));
    }

    #[test]
    fn one_old_id_does_not_move_a_busy_window() {
        let mut index = IdIndex::default();
        for id in 100_000..101_000 {
            index.insert(ContactId(id), 0);
        }
        assert!(
            index.insert(ContactId(5), 1),
            "restored from the journal, say"
        );
        for id in 101_000..102_000 {
            index.insert(ContactId(id), 0);
        }
        index.assert_consistent();
        assert_eq!(index.older.len(), 1);
        assert_eq!(index.get(&ContactId(5)), Some(1));
        assert_eq!(index.remove(&ContactId(5)), Some(1));
        assert_eq!(
            index.below_end, 0,
            "no ids below the window: the bound is reset"
        );
    }

    #[test]
    fn after_a_run_of_old_ids_the_window_comes_back_to_the_counter() {
        let mut index = IdIndex::default();
        assert!(index.insert(ContactId(1_000_000), 0));
        // Old contacts restored in a run: the window moves down to them.
        for id in 1..=100 {
            assert!(index.insert(ContactId(id), 1));
        }
        // The counter goes on: the window moves back up once its arrivals outnumber it.
        for id in 1_000_001..=1_001_000 {
            assert!(index.insert(ContactId(id), 2));
        }
        index.assert_consistent();
        assert!(
            index.in_window > 800,
            "{} ids in the map, {} in the window",
            index.older.len(),
            index.in_window
        );
        assert_eq!(index.get(&ContactId(1_000_000)), Some(0));
        assert_eq!(index.get(&ContactId(42)), Some(1));
        assert!(!index.insert(ContactId(1_000_500), 3));
        assert!(!index.insert(ContactId(1_000_000), 3));
    }

    /// Inserts the ids, returning how many of them are in the window afterwards.
    fn arrive(index: &mut IdIndex, ids: std::ops::Range<u64>) -> usize {
        for id in ids.clone() {
            assert!(index.insert(ContactId(id), 7), "{id}");
        }
        index.assert_consistent();
        ids.filter(|&id| matches!(index.place(id), Place::Window(_)))
            .count()
    }

    #[test]
    fn the_window_finds_the_counter_again_whatever_strays_came_before() {
        // A stray at the top of the id space, the counter, a run of old ids, the counter.
        let mut index = IdIndex::default();
        assert!(index.insert(ContactId(u64::MAX), 1));
        arrive(&mut index, 1_000..1_100);
        arrive(&mut index, 1..166);
        assert!(arrive(&mut index, 1_100..3_100) > 1_500);
        // The same, then a stray far above the counter.
        let mut index = IdIndex::default();
        arrive(&mut index, 1_000..1_100);
        arrive(&mut index, 1..166);
        arrive(&mut index, 1_100..1_165);
        assert!(index.insert(ContactId(1 << 40), 1));
        assert!(arrive(&mut index, 1_165..3_165) > 1_500);
        // The counter starts again far above (a new range): the window follows, once as
        // many have arrived there as it held.
        let mut index = IdIndex::default();
        arrive(&mut index, 1..1_000);
        assert!(arrive(&mut index, 1 << 32..(1 << 32) + 3_000) > 1_800);
        assert_eq!(index.get(&ContactId(500)), Some(7));
    }

    #[test]
    fn an_id_far_below_a_busy_window_does_not_stretch_it() {
        let mut index = IdIndex::default();
        for id in 1_000_000..1_100_000 {
            index.insert(ContactId(id), 0);
        }
        for _ in 0..100 {
            assert!(index.insert(ContactId(695_900), 1));
            assert_eq!(index.window.len(), 100_000);
            assert_eq!(index.remove(&ContactId(695_900)), Some(1));
        }
        // Near the front, it does: ids from one counter arrive a little out of order.
        assert!(index.insert(ContactId(999_990), 2));
        assert_eq!(index.window.len(), 100_010);
        index.assert_consistent();
    }

    #[test]
    fn the_largest_id_is_kept_like_any_other() {
        let mut index = IdIndex::default();
        for id in [5, u64::MAX, u64::MAX - 1, 6] {
            assert!(index.insert(ContactId(id), id as Slot % 1_000), "{id}");
            index.assert_consistent();
        }
        for id in [u64::MAX, u64::MAX - 1] {
            assert!(!index.insert(ContactId(id), 0), "{id} again");
            assert_eq!(index.remove(&ContactId(id)), Some(id as Slot % 1_000));
            index.assert_consistent();
        }
        assert_eq!(index.get(&ContactId(5)), Some(5));
        assert!(!index.insert(ContactId(5), 0), "5 again");
        assert_eq!(index.len(), 2);
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// The next id from the counter.
        Arrive,
        /// An id near the counter's (an older contact restored, a transfer back).
        ArriveNear(i64),
        /// An id from anywhere (another system's ids).
        ArriveAs(u64),
        /// The k-th of the present ids (modulo their number) leaves.
        Leave(usize),
        /// An id near the counter's, present or not, leaves.
        LeaveNear(i64),
        /// A run of consecutive ids from near the counter's (old contacts restored).
        ArriveRun(i64, u8),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            30 => Just(Step::Arrive),
            4 => (-20_000..10i64).prop_map(Step::ArriveNear),
            1 => any::<u64>().prop_map(Step::ArriveAs),
            24 => any::<usize>().prop_map(Step::Leave),
            4 => (-20_000..10i64).prop_map(Step::LeaveNear),
            1 => (-300_000..300_000i64, 1..200u8).prop_map(|(d, n)| Step::ArriveRun(d, n)),
        ]
    }

    proptest::proptest! {
        /// Whatever order ids come and go in, the index answers as a map would, and a window
        /// that grows is at least a quarter full.
        #[test]
        fn the_index_agrees_with_a_map(
            start in proptest::prop_oneof![0..10_000u64, u64::MAX - 10_000..u64::MAX],
            steps in proptest::collection::vec(step(), 1..3_000),
        ) {
            let mut index = IdIndex::default();
            let mut model = std::collections::BTreeMap::new();
            let mut counter = start;
            for (n, step) in steps.into_iter().enumerate() {
                let slot = n as Slot;
                let near = |d: i64| counter.saturating_add_signed(d);
                let window_before = index.window.len();
                match step {
                    Step::Arrive | Step::ArriveNear(_) | Step::ArriveAs(_) => {
                        let id = match step {
                            Step::ArriveNear(d) => near(d),
                            Step::ArriveAs(id) => id,
                            _ => {
                                counter = counter.saturating_add(1);
                                counter
                            }
                        };
                        let fresh = !model.contains_key(&id);
                        proptest::prop_assert_eq!(index.insert(ContactId(id), slot), fresh);
                        model.entry(id).or_insert(slot);
                    }
                    Step::Leave(k) => {
                        if let Some(&id) = model.keys().nth(k % model.len().max(1)) {
                            let left = index.remove(&ContactId(id));
                            proptest::prop_assert_eq!(left, model.remove(&id));
                        }
                    }
                    Step::LeaveNear(d) => {
                        let id = near(d);
                        proptest::prop_assert_eq!(index.remove(&ContactId(id)), model.remove(&id));
                    }
                    Step::ArriveRun(d, run) => {
                        for id in (0..u64::from(run)).map(|k| near(d).saturating_add(k)) {
                            let fresh = !model.contains_key(&id);
                            proptest::prop_assert_eq!(index.insert(ContactId(id), slot), fresh);
                            model.entry(id).or_insert(slot);
                        }
                    }
                }
                if n % 16 == 0 {
                    index.assert_consistent();
                }
                proptest::prop_assert_eq!(index.len(), model.len());
                if index.window.len() > window_before {
                    proptest::prop_assert!(
                        index.window.len() <= 4 * index.in_window + MIN_WINDOW
                    );
                }
            }
            index.assert_consistent();
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
