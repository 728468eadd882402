//! Which routing class a new contact enters a queue in, remembered for the common shapes of
//! contact: one that brings no skill of its own, and one that brings one skill.
//!
//! Why not a hash map: every arrival asks, and a hash map of (queue, channel, skill
//! requirement) keys costs an arrival two dependent cache misses (the map's control bytes,
//! then its bucket) plus hashing and comparing the key. Here a contact without skills of its
//! own reads one small array that stays in cache, and a contact with one skill reads one entry
//! of a small per-(queue, channel) array (in cache too: a few hundred bytes each) and then one
//! cold 4-byte entry of a row made for that skill.

use crate::model::{Channel, QueueId, SKILL_LEVELS, SkillReq};

use super::ClassIdx;

/// Marks "no class remembered" in rows and "no row" in the per-skill index.
const NONE: u32 = u32::MAX;

/// One row per (queue, channel, skill): a class per minimum level and optional flag.
const ROW: usize = 2 * (*SKILL_LEVELS.end() as usize + 1);

#[derive(Debug, Default)]
pub(crate) struct EntryClasses {
    /// Per queue, per channel: the class of contacts that bring no skills of their own.
    plain: Vec<[Option<ClassIdx>; 6]>,
    /// Per queue × channel (`queue * 6 + channel`): per skill id, its row in `rows`, [`NONE`]
    /// when no contact brought that skill there yet. Grown on demand.
    row_of: Vec<Vec<u32>>,
    rows: Vec<[ClassIdx; ROW]>,
}

impl EntryClasses {
    /// Forgets everything (the plan changed: queues' own requirements may have).
    pub fn new(queues: usize) -> Self {
        EntryClasses {
            plain: vec![[None; 6]; queues],
            row_of: vec![Vec::new(); queues * 6],
            rows: Vec::new(),
        }
    }

    /// The remembered class for a contact bringing `own` skills, if its shape is remembered.
    pub fn get(&self, queue: QueueId, channel: Channel, own: &[SkillReq]) -> Option<ClassIdx> {
        match own {
            [] => self.plain[usize::from(queue.0)][channel.index()],
            [req] if SKILL_LEVELS.contains(&req.min_level) => {
                let row = *self.row_of[pair(queue, channel)].get(usize::from(req.skill.0))?;
                if row == NONE {
                    return None;
                }
                let ci = self.rows[row as usize][column(req)];
                (ci != NONE).then_some(ci)
            }
            _ => None,
        }
    }

    /// Remembers the class for contacts bringing `own` (kept only for no skill or one).
    pub fn remember(&mut self, queue: QueueId, channel: Channel, own: &[SkillReq], ci: ClassIdx) {
        match own {
            [] => self.plain[usize::from(queue.0)][channel.index()] = Some(ci),
            [req] if SKILL_LEVELS.contains(&req.min_level) => {
                let skill = usize::from(req.skill.0);
                let row_of = &mut self.row_of[pair(queue, channel)];
                if row_of.len() <= skill {
                    row_of.resize(skill + 1, NONE);
                }
                if row_of[skill] == NONE {
                    row_of[skill] = self.rows.len() as u32;
                    self.rows.push([NONE; ROW]);
                }
                self.rows[row_of[skill] as usize][column(req)] = ci;
            }
            _ => {}
        }
    }
}

fn pair(queue: QueueId, channel: Channel) -> usize {
    usize::from(queue.0) * 6 + channel.index()
}

/// Where in its row a requirement's class is (levels in range only: the router refuses others
/// on arrival, and a shape with one is not remembered).
fn column(req: &SkillReq) -> usize {
    usize::from(req.min_level) * 2 + usize::from(req.optional)
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
    fn contacts_bringing_two_skills_are_not_remembered() {
        let mut classes = EntryClasses::new(1);
        let own = [req(1, 1, false), req(2, 1, false)];
        classes.remember(QueueId(0), Channel::Sms, &own, 7);
        assert_eq!(classes.get(QueueId(0), Channel::Sms, &own), None);
    }
}
