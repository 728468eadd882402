//! Which routing class a new contact enters a queue in, remembered for the common shapes of
//! contact: one that brings no skill of its own, and one that brings one skill.
//!
//! Why not a hash map: every arrival asks, and a hash map of (queue, channel, skill
//! requirement) keys costs an arrival two dependent cache misses (the map's control bytes,
//! then its bucket) plus hashing and comparing the key. Here a contact without skills of its
//! own reads one small array that stays in cache, and a contact with one skill reads one
//! 16-byte entry of a per-(queue, channel) array indexed by skill, which holds the classes of
//! up to four shapes (minimum level, optional) of that skill. Four entries share a cache line,
//! so the whole cache is a few kilobytes per (queue, channel) and mostly stays in cache. It
//! was a row of all 22 shapes per skill, reached through an index: 88 bytes a row, and an
//! arrival's most frequent miss (docs/performance.md, sixth pass).
//!
//! A fifth shape of one skill in one queue and channel, or a class index too large to pack, is
//! not remembered: such contacts find their class through the router's class index instead.

use crate::model::{Channel, QueueId, SKILL_LEVELS, SkillReq};

use super::ClassIdx;

/// Shapes of one skill remembered per (queue, channel, skill).
const SHAPES: usize = 4;

/// A remembered shape is `class << TAG_BITS | tag` (see [`tag`]); 0 is a free entry.
const TAG_BITS: u32 = 5;
const TAG_MASK: u32 = (1 << TAG_BITS) - 1;
const FREE: u32 = 0;
const _: () = assert!(*SKILL_LEVELS.end() as u32 * 2 + 2 <= TAG_MASK);

/// The largest class index that packs.
const MAX_PACKED: ClassIdx = ClassIdx::MAX >> TAG_BITS;

#[derive(Debug, Default)]
pub(crate) struct EntryClasses {
    /// Per queue, per channel: the class of contacts that bring no skills of their own.
    plain: Vec<[Option<ClassIdx>; 6]>,
    /// Per queue × channel (`queue * 6 + channel`): per skill id, the packed classes of the
    /// shapes of that skill remembered so far, filled from the front. Grown on demand.
    one_skill: Vec<Vec<[u32; SHAPES]>>,
}

impl EntryClasses {
    /// Forgets everything (the plan changed: queues' own requirements may have).
    pub fn new(queues: usize) -> Self {
        EntryClasses {
            plain: vec![[None; 6]; queues],
            one_skill: vec![Vec::new(); queues * 6],
        }
    }

    /// The remembered class for a contact bringing `own` skills, if its shape is remembered.
    pub fn get(&self, queue: QueueId, channel: Channel, own: &[SkillReq]) -> Option<ClassIdx> {
        match own {
            [] => self.plain[usize::from(queue.0)][channel.index()],
            [req] if SKILL_LEVELS.contains(&req.min_level) => {
                let shapes = self.one_skill[pair(queue, channel)].get(usize::from(req.skill.0))?;
                let tag = tag(req);
                shapes
                    .iter()
                    .find(|&&packed| packed & TAG_MASK == tag)
                    .map(|&packed| packed >> TAG_BITS)
            }
            _ => None,
        }
    }

    /// Remembers the class for contacts bringing `own` (kept only for no skill or one, and for
    /// one skill while its (queue, channel, skill) has room).
    pub fn remember(&mut self, queue: QueueId, channel: Channel, own: &[SkillReq], ci: ClassIdx) {
        match own {
            [] => self.plain[usize::from(queue.0)][channel.index()] = Some(ci),
            [req] if SKILL_LEVELS.contains(&req.min_level) && ci <= MAX_PACKED => {
                let skill = usize::from(req.skill.0);
                let per_skill = &mut self.one_skill[pair(queue, channel)];
                if per_skill.len() <= skill {
                    per_skill.resize(skill + 1, [FREE; SHAPES]);
                }
                let tag = tag(req);
                // Entries are never freed, so the first free one comes after every taken one.
                if let Some(entry) = per_skill[skill]
                    .iter_mut()
                    .find(|packed| **packed & TAG_MASK == tag || **packed == FREE)
                {
                    *entry = ci << TAG_BITS | tag;
                }
            }
            _ => {}
        }
    }
}

fn pair(queue: QueueId, channel: Channel) -> usize {
    usize::from(queue.0) * 6 + channel.index()
}

/// A requirement's shape, 3 to 22 for the levels in range (never 0, a free entry; the router
/// refuses other levels on arrival, and a shape with one is not remembered).
fn tag(req: &SkillReq) -> u32 {
    u32::from(req.min_level) * 2 + u32::from(req.optional) + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SkillId;

    fn req(skill: u16, min_level: u8, optional: bool) -> SkillReq {
        SkillReq {
            skill: SkillId(skill),
            min_level,
            optional,
        }
    }

    #[test]
    fn each_queue_channel_skill_level_and_flag_has_its_own_class() {
        let mut classes = EntryClasses::new(2);
        let (q0, q1) = (QueueId(0), QueueId(1));
        let shapes = [
            (q0, Channel::Chat, vec![]),
            (q1, Channel::Chat, vec![]),
            (q0, Channel::Email, vec![]),
            (q0, Channel::Chat, vec![req(3, 4, false)]),
            (q0, Channel::Chat, vec![req(3, 4, true)]),
            (q0, Channel::Chat, vec![req(3, 7, false)]),
            (q0, Channel::Chat, vec![req(40, 4, false)]),
            (q1, Channel::Chat, vec![req(3, 4, false)]),
            (q0, Channel::Voice, vec![req(3, 10, false)]),
        ];
        for (queue, channel, own) in &shapes {
            assert_eq!(classes.get(*queue, *channel, own), None);
        }
        for (ci, (queue, channel, own)) in shapes.iter().enumerate() {
            classes.remember(*queue, *channel, own, ci as ClassIdx);
        }
        for (ci, (queue, channel, own)) in shapes.iter().enumerate() {
            assert_eq!(classes.get(*queue, *channel, own), Some(ci as ClassIdx));
        }
        assert_eq!(classes.get(q0, Channel::Chat, &[req(3, 5, false)]), None);
        assert_eq!(classes.get(q0, Channel::Chat, &[req(41, 4, false)]), None);
    }

    #[test]
    fn a_level_out_of_range_is_never_remembered() {
        let mut classes = EntryClasses::new(1);
        for level in [0, 11, u8::MAX] {
            let own = [req(1, level, true)];
            classes.remember(QueueId(0), Channel::Chat, &own, 3);
            assert_eq!(classes.get(QueueId(0), Channel::Chat, &own), None);
        }
    }

    #[test]
    fn four_shapes_of_a_skill_are_remembered_and_a_fifth_is_left_to_the_class_index() {
        let mut classes = EntryClasses::new(1);
        let (q, ch) = (QueueId(0), Channel::Chat);
        let shapes = [
            req(9, 1, false),
            req(9, 1, true),
            req(9, 10, false),
            req(9, 10, true),
        ];
        for (ci, own) in shapes.iter().enumerate() {
            classes.remember(q, ch, std::slice::from_ref(own), ci as ClassIdx);
        }
        classes.remember(q, ch, &[req(9, 5, false)], 4);
        for (ci, own) in shapes.iter().enumerate() {
            assert_eq!(
                classes.get(q, ch, std::slice::from_ref(own)),
                Some(ci as ClassIdx)
            );
        }
        assert_eq!(classes.get(q, ch, &[req(9, 5, false)]), None);
        classes.remember(q, ch, &[req(8, 5, false)], 5);
        assert_eq!(classes.get(q, ch, &[req(8, 5, false)]), Some(5));
    }

    #[test]
    fn remembering_a_shape_again_takes_no_room() {
        let mut classes = EntryClasses::new(1);
        let (q, ch) = (QueueId(0), Channel::Email);
        let again = [req(4, 2, false)];
        classes.remember(q, ch, &again, 7);
        classes.remember(q, ch, &again, 7);
        let others = [req(4, 3, false), req(4, 6, true), req(4, 9, false)];
        for (ci, own) in (8..).zip(&others) {
            classes.remember(q, ch, std::slice::from_ref(own), ci);
        }
        assert_eq!(classes.get(q, ch, &again), Some(7));
        for (ci, own) in (8..).zip(&others) {
            assert_eq!(classes.get(q, ch, std::slice::from_ref(own)), Some(ci));
        }
    }

    #[test]
    fn a_class_index_too_large_to_pack_is_not_remembered() {
        let mut classes = EntryClasses::new(1);
        let own = [req(2, 3, false)];
        classes.remember(QueueId(0), Channel::Voice, &own, MAX_PACKED + 1);
        assert_eq!(classes.get(QueueId(0), Channel::Voice, &own), None);
        classes.remember(QueueId(0), Channel::Voice, &own, MAX_PACKED);
        assert_eq!(
            classes.get(QueueId(0), Channel::Voice, &own),
            Some(MAX_PACKED)
        );
    }

    #[test]
    fn contacts_bringing_two_skills_are_not_remembered() {
        let mut classes = EntryClasses::new(1);
        let own = [req(1, 1, false), req(2, 1, false)];
        classes.remember(QueueId(0), Channel::Sms, &own, 7);
        assert_eq!(classes.get(QueueId(0), Channel::Sms, &own), None);
    }
}
