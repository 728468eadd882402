//! Property tests: random sequences of contact-center events against the pure router, checking
//! after every event the invariants a contact center relies on.
//!
//! - No contact is offered to an agent lacking its required skills at the required level (after
//!   any relaxation), nor to an agent without a free slot for its channel.
//! - Every queued contact is at all times in exactly one of waiting / offered / assigned, or has
//!   left exactly once through completion, abandonment or cancellation.
//! - After every event no available agent could take a waiting contact it has not refused
//!   (nobody idles while a customer it could serve waits).
//! - Among the waiting contacts an agent could take, the one it is offered ranks first
//!   (priority, then arrival).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use switchboard::model::{
    AgentId, AgentProfile, AgentSkills, Capacity, Channel, ContactId, Millis, NewContact, Priority,
    QueueId, SkillId, SkillReq,
};
use switchboard::router::{
    Action, BreachActions, ContactStatus, ContactView, EscalationStep, Event, Presence, QueuePlan,
    Router, RoutingPlan, Selection, TransferTarget, WithdrawReason,
};

const SKILLS: u16 = 4;
const QUEUES: u16 = 3;
const AGENTS: usize = 6;
const CHANNELS: [Channel; 3] = [Channel::Voice, Channel::Chat, Channel::Email];

fn plan() -> RoutingPlan {
    let req = |s: u16, l: u8, optional: bool| SkillReq {
        skill: SkillId(s),
        min_level: l,
        optional,
    };
    let mut a = QueuePlan::new("a");
    a.skills = vec![req(0, 3, false), req(1, 6, true)];
    a.offer_timeout = 5_000;
    a.escalation = vec![
        EscalationStep {
            after: 10_000,
            relax: vec![(SkillId(0), 1)],
            ..Default::default()
        },
        EscalationStep {
            after: 20_000,
            drop_optional: true,
            raise_priority: 3,
            ..Default::default()
        },
        EscalationStep {
            after: 40_000,
            overflow_to: Some(QueueId(1)),
            ..Default::default()
        },
    ];
    let mut b = QueuePlan::new("b");
    b.skills = vec![req(2, 4, false)];
    b.selection = Selection::MostSkilled;
    b.wrap_up = 3_000;
    b.offer_timeout = 8_000;
    b.sla.first_response = 15_000;
    b.sla.on_breach = BreachActions {
        raise_priority: 5,
        escalate: true,
        notify: true,
    };
    b.escalation = vec![EscalationStep {
        after: 30_000,
        relax: vec![(SkillId(2), 1)],
        ..Default::default()
    }];
    let mut c = QueuePlan::new("c");
    c.selection = Selection::LeastOccupied;
    c.priority = 2;
    c.preferred_agent_timeout = 7_000;
    let mut plan = RoutingPlan::new(
        (0..SKILLS).map(|s| format!("s{s}")).collect(),
        vec![a, b, c],
    );
    plan.max_missed_offers = 2;
    plan
}

#[derive(Clone, Debug)]
enum Op {
    Login {
        agent: usize,
        levels: [u8; 4],
        capacity: [u8; 3],
        away: bool,
    },
    Logout {
        agent: usize,
    },
    Presence {
        agent: usize,
        available: bool,
    },
    Profile {
        agent: usize,
        levels: [u8; 4],
        capacity: [u8; 3],
    },
    Queue {
        queue: u16,
        channel: usize,
        own: Option<(u16, u8)>,
        priority: i32,
        preferred: Option<usize>,
        back: Millis,
    },
    Accept(usize),
    Reject(usize),
    Complete(usize),
    Withdraw(usize, bool),
    Transfer(usize, Option<u16>, usize),
    Respond(usize),
    WrapUpDone(usize),
    Advance(Millis),
}

fn op() -> impl Strategy<Value = Op> {
    let levels = prop::array::uniform4(0u8..=10);
    let capacity = prop::array::uniform3(0u8..=3);
    prop_oneof![
        2 => (0..AGENTS, levels.clone(), capacity.clone(), any::<bool>())
            .prop_map(|(agent, levels, capacity, away)| Op::Login { agent, levels, capacity, away }),
        1 => (0..AGENTS).prop_map(|agent| Op::Logout { agent }),
        1 => (0..AGENTS, any::<bool>()).prop_map(|(agent, available)| Op::Presence { agent, available }),
        1 => (0..AGENTS, levels, capacity).prop_map(|(agent, levels, capacity)| Op::Profile { agent, levels, capacity }),
        5 => (
            0..QUEUES,
            0..CHANNELS.len(),
            prop::option::weighted(0.3, (0..SKILLS, 1u8..=10)),
            -2i32..5,
            prop::option::weighted(0.2, 0..AGENTS),
            prop_oneof![3 => Just(0u64), 1 => 0u64..60_000],
        )
            .prop_map(|(queue, channel, own, priority, preferred, back)| Op::Queue {
                queue, channel, own, priority, preferred, back
            }),
        4 => any::<usize>().prop_map(Op::Accept),
        2 => any::<usize>().prop_map(Op::Reject),
        3 => any::<usize>().prop_map(Op::Complete),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(k, abandoned)| Op::Withdraw(k, abandoned)),
        1 => (any::<usize>(), prop::option::of(0..QUEUES), 0..AGENTS).prop_map(|(k, q, a)| Op::Transfer(k, q, a)),
        1 => any::<usize>().prop_map(Op::Respond),
        1 => (0..AGENTS).prop_map(Op::WrapUpDone),
        4 => prop_oneof![0u64..2_000, 2_000u64..30_000].prop_map(Op::Advance),
    ]
}

fn agent_name(i: usize) -> AgentId {
    AgentId::new(format!("agent{i}"))
}

fn profile(agent: usize, levels: [u8; 4], capacity: [u8; 3]) -> AgentProfile {
    let skills = levels
        .iter()
        .enumerate()
        .filter(|(_, l)| **l > 0)
        .map(|(s, l)| (SkillId(s as u16), *l));
    AgentProfile {
        id: agent_name(agent),
        skills: AgentSkills::new(skills),
        capacity: Capacity([capacity[0], capacity[1], capacity[2], 0, 0, 0]),
        queues: Vec::new(),
    }
}

/// Rank in service order: smaller is served first.
fn rank(
    priority: Priority,
    arrived_at: Millis,
    id: ContactId,
) -> (Reverse<Priority>, Millis, ContactId) {
    (Reverse(priority), arrived_at, id)
}

/// Whether `agent` could serve `c` by skills, queue and channel (ignoring free slots).
fn skill_fit(router: &Router, agent: &AgentId, c: &ContactView) -> bool {
    let Some(a) = router.agent(agent) else {
        return false;
    };
    (a.profile.queues.is_empty() || a.profile.queues.contains(&c.queue))
        && a.profile.capacity.of(c.channel) > 0
        && c.requirement.is_met_by(&a.profile.skills)
}

struct World {
    router: Router,
    now: Millis,
    next_id: u64,
    queued: BTreeSet<ContactId>,
    left: BTreeSet<ContactId>,
    logged_in: BTreeSet<usize>,
}

impl World {
    fn contacts_with(&self, status: ContactStatus) -> Vec<ContactView> {
        let mut v: Vec<ContactView> = self
            .router
            .contact_ids()
            .filter_map(|id| self.router.contact(id))
            .filter(|c| c.status == status)
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    fn pick(&self, status: ContactStatus, k: usize) -> Option<ContactView> {
        let v = self.contacts_with(status);
        (!v.is_empty()).then(|| v[k % v.len()].clone())
    }

    fn event_for(&mut self, op: &Op) -> Option<Event> {
        Some(match op.clone() {
            Op::Login {
                agent,
                levels,
                capacity,
                away,
            } => {
                self.logged_in.insert(agent);
                let presence = if away {
                    Presence::Away {
                        reason: "break".into(),
                    }
                } else {
                    Presence::Available
                };
                Event::AgentOnline {
                    profile: profile(agent, levels, capacity),
                    presence,
                }
            }
            Op::Logout { agent } => {
                if !self.logged_in.contains(&agent) {
                    return None;
                }
                Event::AgentOffline {
                    agent: agent_name(agent),
                }
            }
            Op::Presence { agent, available } => {
                if !self.logged_in.contains(&agent) {
                    return None;
                }
                let presence = if available {
                    Presence::Available
                } else {
                    Presence::Away {
                        reason: "lunch".into(),
                    }
                };
                Event::AgentPresence {
                    agent: agent_name(agent),
                    presence,
                }
            }
            Op::Profile {
                agent,
                levels,
                capacity,
            } => {
                if !self.logged_in.contains(&agent) {
                    return None;
                }
                Event::AgentProfileChanged {
                    profile: profile(agent, levels, capacity),
                }
            }
            Op::Queue {
                queue,
                channel,
                own,
                priority,
                preferred,
                back,
            } => {
                self.next_id += 1;
                let id = ContactId(self.next_id);
                self.queued.insert(id);
                Event::ContactQueued(NewContact {
                    id,
                    channel: CHANNELS[channel],
                    queue: QueueId(queue),
                    skills: own
                        .map(|(s, l)| SkillReq {
                            skill: SkillId(s),
                            min_level: l,
                            optional: false,
                        })
                        .into_iter()
                        .collect(),
                    priority: Priority(priority),
                    arrived_at: self.now.saturating_sub(back),
                    preferred_agent: preferred.map(agent_name),
                    announce_position: true,
                    sla: None,
                })
            }
            Op::Accept(k) | Op::Reject(k) => {
                let c = self.pick(ContactStatus::Offered, k)?;
                let agent = c.agent.expect("offered contacts have an agent");
                if matches!(op, Op::Accept(_)) {
                    Event::OfferAccepted {
                        contact: c.id,
                        agent,
                    }
                } else {
                    Event::OfferRejected {
                        contact: c.id,
                        agent,
                    }
                }
            }
            Op::Complete(k) => Event::ContactCompleted {
                contact: self.pick(ContactStatus::Assigned, k)?.id,
            },
            Op::Respond(k) => Event::ContactResponded {
                contact: self.pick(ContactStatus::Assigned, k)?.id,
            },
            Op::Withdraw(k, abandoned) => {
                let ids: Vec<ContactId> = self
                    .router
                    .contact_ids()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if ids.is_empty() {
                    return None;
                }
                let reason = if abandoned {
                    WithdrawReason::Abandoned
                } else {
                    WithdrawReason::Cancelled
                };
                Event::ContactWithdrawn {
                    contact: ids[k % ids.len()],
                    reason,
                }
            }
            Op::Transfer(k, queue, agent) => {
                let ids: Vec<ContactId> = self
                    .router
                    .contact_ids()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if ids.is_empty() {
                    return None;
                }
                let to = match queue {
                    Some(q) => TransferTarget::Queue(QueueId(q)),
                    None => TransferTarget::Agent(agent_name(agent)),
                };
                Event::ContactTransferred {
                    contact: ids[k % ids.len()],
                    to,
                }
            }
            Op::WrapUpDone(agent) => {
                if !self.logged_in.contains(&agent) {
                    return None;
                }
                Event::WrapUpDone {
                    agent: agent_name(agent),
                    contact: None,
                }
            }
            Op::Advance(dt) => {
                self.now += dt;
                Event::Tick
            }
        })
    }
}

fn check_invariants(
    world: &mut World,
    op: &Op,
    waiting_before: &BTreeMap<ContactId, ContactView>,
) -> Result<(), TestCaseError> {
    let router = &mut world.router;
    router.audit().map_err(TestCaseError::fail)?;
    let actions: Vec<Action> = router.drain_actions().collect();
    let router = &world.router;

    // Conservation: every contact queued is in the router or has left, never both, never twice.
    for a in &actions {
        if let Action::ContactLeft { contact, .. } = a {
            prop_assert!(world.left.insert(*contact), "contact {contact} left twice");
        }
    }
    let inside: BTreeSet<ContactId> = router.contact_ids().collect();
    prop_assert!(
        inside.is_disjoint(&world.left),
        "a departed contact is still inside"
    );
    let all: BTreeSet<ContactId> = inside.union(&world.left).copied().collect();
    prop_assert_eq!(&all, &world.queued, "contacts lost or invented");

    let waiting = world.contacts_with(ContactStatus::Waiting);
    for a in &actions {
        let Action::Offer {
            contact,
            agent,
            channel,
            priority,
            ..
        } = a
        else {
            continue;
        };
        let view = router.agent(agent).expect("offers go to known agents");
        let Some(c) = router.contact(*contact) else {
            continue;
        };
        if c.agent.as_ref() != Some(agent) {
            continue; // offered and taken back within the same event
        }
        // Capacity.
        prop_assert!(
            view.load[channel.index()] <= view.profile.capacity.of(*channel),
            "{agent} above capacity"
        );
        // Skills after relaxation.
        prop_assert!(
            c.requirement.is_met_by(&view.profile.skills),
            "{contact} offered to unqualified {agent}"
        );
        // Order: no contact that waited through this event and that the agent could have
        // taken instead ranks before the one offered. (Timers fire only on Advance: the loop
        // ticks before every other event.)
        if matches!(op, Op::Advance(_)) {
            continue;
        }
        for w in &waiting {
            if !waiting_before.contains_key(&w.id) || w.channel != *channel {
                continue;
            }
            let held_for_other = w.preferred_agent.as_ref().is_some_and(|(p, _)| p != agent);
            if held_for_other || w.excluded_agents.contains(agent) || !skill_fit(router, agent, w) {
                continue;
            }
            prop_assert!(
                rank(*priority, c.arrived_at, c.id) <= rank(w.priority, w.arrived_at, w.id),
                "{agent} was offered {contact} while better-ranked {} waited",
                w.id
            );
        }
    }

    // Fixed point: nobody available idles while a contact it could take waits.
    for agent in router.agent_ids() {
        for w in &waiting {
            prop_assert!(
                !router.could_offer(agent, w.id),
                "{agent} could take waiting {} but was not offered it",
                w.id
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn routing_invariants_hold_over_random_event_sequences(ops in prop::collection::vec(op(), 1..160)) {
        let mut world = World {
            router: Router::new(plan()),
            now: 100_000,
            next_id: 0,
            queued: BTreeSet::new(),
            left: BTreeSet::new(),
            logged_in: BTreeSet::new(),
        };
        for op in &ops {
            // Fire the timers due by now first (a replayed contact's steps may be overdue), so
            // that the event's own effects can be checked on their own.
            let now = world.now;
            world.router.tick(now);
            check_invariants(&mut world, &Op::Advance(0), &BTreeMap::new())?;
            let Some(event) = world.event_for(op) else { continue };
            let waiting_before: BTreeMap<ContactId, ContactView> = world
                .contacts_with(ContactStatus::Waiting)
                .into_iter()
                .map(|c| (c.id, c))
                .collect();
            let now = world.now;
            world.router.handle(now, event.clone()).map_err(|e| TestCaseError::fail(format!("{event:?} refused: {e}")))?;
            check_invariants(&mut world, op, &waiting_before)?;
        }
        // Draining time: every contact is eventually offered, answered or still legitimately
        // waiting; the invariants still hold after every timer has fired.
        let mut guard = 0;
        while let Some(t) = world.router.next_deadline() {
            guard += 1;
            if guard > 10_000 || t > world.now + 10_000_000 { break; }
            world.now = world.now.max(t);
            let now = world.now;
            world.router.tick(now);
            check_invariants(&mut world, &Op::Advance(0), &BTreeMap::new())?;
        }
    }
}
