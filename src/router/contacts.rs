//! Where the router keeps its contacts: records in fixed-size chunks, reached through the id
//! index ([`IdIndex`]) or directly by slot.
//!
//! Why not a hash map of records: a record is a few hundred bytes, and a map of them puts every
//! arrival's record in a random, cold bucket (five cache lines written) and doubles the whole
//! table when it grows. Here a new contact takes the slot the last departed contact left
//! (recently touched, and its first line prefetched when the previous arrival took its own),
//! the index holds a 4-byte entry for a recent id (16 bytes for an older one), growth adds one
//! chunk, and lines and timers that hold a slot reach the record without hashing at all.

use std::ops::Index;

use crate::model::ContactId;

use super::contact::Contact;
use super::id_index::IdIndex;

/// A contact's place in the store: valid while the contact is in the router; reused after.
pub(crate) type Slot = u32;

/// The id of no contact: marks a vacant slot here and a seat without an offer. Reserved: the
/// router refuses a contact with this id (`RouterError::ReservedContactId`).
pub(crate) const NO_CONTACT: ContactId = ContactId(u64::MAX);

/// Records per chunk: chunks never move, and at most one is partly empty.
const CHUNK: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct Contacts {
    index: IdIndex,
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
        if !self.index.insert(id, slot) {
            return None;
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
        self.index.get(id).is_some()
    }

    pub fn slot(&self, id: &ContactId) -> Option<Slot> {
        self.index.get(id)
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

    pub fn all_ids(&self) -> impl Iterator<Item = ContactId> + '_ {
        self.index.ids()
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
