//! Where the router keeps its contacts: records in fixed-size chunks, reached through a small
//! id index or directly by slot.
//!
//! Why not a hash map of records: a record is a few hundred bytes, and a map of them puts every
//! arrival's record in a random, cold bucket (five cache lines written) and doubles the whole
//! table when it grows. Here a new contact takes the slot the last departed contact left
//! (recently touched, and its first line prefetched when the previous arrival took its own),
//! the index holds 16-byte entries, growth adds one chunk, and lines and timers that hold a
//! slot reach the record without hashing at all.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Index;

use crate::model::ContactId;

use super::contact::Contact;

/// Hashes contact ids for the index, keeping runs of consecutive ids together.
///
/// Why: contact ids are the store's row ids, handed out in increasing order, and a contact
/// mostly leaves the router soon after it arrives. A mixing hash sends each arrival to a random
/// (cold) bucket: two cache misses on every arrival in a center with a hundred thousand
/// contacts. Here each run of [`RUN`] consecutive ids shares one scattered block of buckets,
/// in order, so arrivals mostly land where the previous one has just warmed the memory.
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

/// A contact's place in the store: valid while the contact is in the router; reused after.
pub(crate) type Slot = u32;

/// The id of no contact: marks a vacant slot here and a seat without an offer. Reserved: the
/// router refuses a contact with this id (`RouterError::ReservedContactId`).
pub(crate) const NO_CONTACT: ContactId = ContactId(u64::MAX);

/// Records per chunk: chunks never move, and at most one is partly empty.
const CHUNK: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct Contacts {
    index: HashMap<ContactId, Slot, BuildHasherDefault<IdHasher>>,
    chunks: Vec<Box<[Option<Contact>]>>,
    /// The id held in each slot, `NO_CONTACT` when none: tells a timer of a departed contact
    /// from a live one by reading 8 bytes of a small array instead of a cold record.
    ids: Vec<ContactId>,
    /// Vacated slots, the most recently vacated last (taken first: its memory is warm).
    free: Vec<Slot>,
    /// Slots handed out so far (vacated ones included).
    used: usize,
}

impl Contacts {
    /// Stores a new contact, made by `make` for its slot, and returns the slot; `None` (and
    /// nothing made or stored) when the id is already stored. Why a maker: the record is built
    /// where it is stored, not on the stack and then copied (a few hundred bytes an arrival).
    pub fn insert_new(
        &mut self,
        id: ContactId,
        make: impl FnOnce(Slot) -> Contact,
    ) -> Option<Slot> {
        let slot = match self.free.last() {
            Some(&slot) => slot,
            None => self.used as Slot,
        };
        match self.index.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => return None,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(slot);
            }
        }
        if self.free.pop().is_none() {
            if self.used == self.chunks.len() * CHUNK {
                self.chunks
                    .push(std::iter::repeat_with(|| None).take(CHUNK).collect());
            }
            self.used += 1;
            self.ids.push(NO_CONTACT);
        }
        self.ids[slot as usize] = id;
        match self.entry(slot) {
            vacant @ None => *vacant = Some(make(slot)),
            Some(_) => unreachable!("a free slot holds no contact"),
        }
        debug_assert_eq!(self.at(slot).id, id, "the maker keeps the id");
        // The next arrival most likely takes the slot vacated last (unless a contact leaves
        // first): start loading (the first line of) its record now, so that writing it there
        // waits less.
        if let Some(&next) = self.free.last() {
            let next = next as usize;
            prefetch_index::prefetch_index(&self.chunks[next / CHUNK], next % CHUNK);
        }
        Some(slot)
    }

    /// Removes a contact; its slot is free for the next arrival.
    pub fn remove(&mut self, id: &ContactId) -> Option<Contact> {
        let slot = self.index.remove(id)?;
        self.free.push(slot);
        self.ids[slot as usize] = NO_CONTACT;
        self.entry(slot).take()
    }

    pub fn contains_key(&self, id: &ContactId) -> bool {
        self.index.contains_key(id)
    }

    pub fn slot(&self, id: &ContactId) -> Option<Slot> {
        self.index.get(id).copied()
    }

    pub fn get(&self, id: &ContactId) -> Option<&Contact> {
        self.slot(id).map(|slot| self.at(slot))
    }

    pub fn get_mut(&mut self, id: &ContactId) -> Option<&mut Contact> {
        let slot = self.slot(id)?;
        Some(self.at_mut(slot))
    }

    /// The contact in a slot. Panics on a vacant slot: a slot held past its contact's
    /// departure is a bug.
    pub fn at(&self, slot: Slot) -> &Contact {
        let slot = slot as usize;
        self.chunks[slot / CHUNK][slot % CHUNK]
            .as_ref()
            .expect("slot of a contact in the router")
    }

    pub fn at_mut(&mut self, slot: Slot) -> &mut Contact {
        self.entry(slot)
            .as_mut()
            .expect("slot of a contact in the router")
    }

    /// The contact in a slot, if the slot still holds this contact (a timer's check).
    pub fn at_if(&self, slot: Slot, id: ContactId) -> Option<&Contact> {
        let slot = slot as usize;
        self.chunks
            .get(slot / CHUNK)
            .and_then(|chunk| chunk[slot % CHUNK].as_ref())
            .filter(|c| c.id == id)
    }

    /// [`Contacts::at_if`], mutable.
    pub fn at_if_mut(&mut self, slot: Slot, id: ContactId) -> Option<&mut Contact> {
        let slot = slot as usize;
        self.chunks
            .get_mut(slot / CHUNK)
            .and_then(|chunk| chunk[slot % CHUNK].as_mut())
            .filter(|c| c.id == id)
    }

    /// True when the slot still holds this contact.
    pub fn holds(&self, slot: Slot, id: ContactId) -> bool {
        self.ids.get(slot as usize) == Some(&id)
    }

    /// The id held in a slot (the tie-break between two contacts of equal rank, read without
    /// touching either record).
    pub fn id_at(&self, slot: Slot) -> ContactId {
        self.ids[slot as usize]
    }

    fn entry(&mut self, slot: Slot) -> &mut Option<Contact> {
        let slot = slot as usize;
        &mut self.chunks[slot / CHUNK][slot % CHUNK]
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn keys(&self) -> impl Iterator<Item = &ContactId> + '_ {
        self.index.keys()
    }

    pub fn values(&self) -> impl Iterator<Item = &Contact> + '_ {
        self.chunks.iter().flat_map(|chunk| chunk.iter().flatten())
    }
}

impl Index<&ContactId> for Contacts {
    type Output = Contact;

    fn index(&self, id: &ContactId) -> &Contact {
        self.get(id).expect("contact in the router")
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

    #[test]
    fn ids_sharing_their_low_bits_are_all_found() {
        let mut index: HashMap<ContactId, Slot, BuildHasherDefault<IdHasher>> = HashMap::default();
        let ids: Vec<u64> = (1..=5_000).map(|k| k << 24).collect();
        for (slot, &id) in ids.iter().enumerate() {
            index.insert(ContactId(id), slot as Slot);
        }
        for (slot, &id) in ids.iter().enumerate() {
            assert_eq!(index.get(&ContactId(id)), Some(&(slot as Slot)));
            assert_eq!(index.get(&ContactId(id + 1)), None);
        }
    }
}
