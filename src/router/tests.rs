//! Scenario tests in virtual time: each one reads as the routing rule it pins down.

use super::*;
use crate::model::{AgentSkills, Capacity};

const ENGLISH: SkillId = SkillId(0);
const SPANISH: SkillId = SkillId(1);
const BILLING: SkillId = SkillId(2);
const TECHNICAL: SkillId = SkillId(3);

const SUPPORT: QueueId = QueueId(0);
const BILLING_Q: QueueId = QueueId(1);

fn req(skill: SkillId, min_level: u8) -> SkillReq {
    SkillReq {
        skill,
        min_level,
        optional: false,
    }
}

fn plan() -> RoutingPlan {
    let mut support = QueuePlan::new("support");
    support.skills = vec![req(ENGLISH, 1)];
    let mut billing = QueuePlan::new("billing");
    billing.skills = vec![req(BILLING, 3)];
    RoutingPlan::new(
        ["english", "spanish", "billing", "technical"]
            .map(String::from)
            .to_vec(),
        vec![support, billing],
    )
}

/// A contact center in a test tube: a router, a clock, and everything it said.
struct Desk {
    router: Router,
    now: Millis,
}

impl Desk {
    fn new(plan: RoutingPlan) -> Self {
        Desk {
            router: Router::new(plan),
            now: 0,
        }
    }

    fn send(&mut self, event: Event) -> Vec<Action> {
        self.router.handle(self.now, event).expect("event accepted");
        self.settle()
    }

    fn settle(&mut self) -> Vec<Action> {
        self.router.audit().expect("router bookkeeping consistent");
        self.router.drain_actions().collect()
    }

    /// Moves the clock to `t` and returns what the timers did.
    fn at(&mut self, t: Millis) -> Vec<Action> {
        self.now = t;
        self.router.tick(t);
        self.settle()
    }

    fn login(&mut self, name: &str, skills: &[(SkillId, u8)], capacity: [u8; 6]) -> Vec<Action> {
        self.send(Event::AgentOnline {
            profile: profile(name, skills, capacity),
            presence: Presence::Available,
        })
    }

    fn contact(&mut self, id: u64, queue: QueueId, channel: Channel) -> Vec<Action> {
        self.send(Event::ContactQueued(new_contact(
            id, queue, channel, self.now,
        )))
    }

    fn queue_contact(&mut self, contact: NewContact) -> Vec<Action> {
        self.send(Event::ContactQueued(contact))
    }

    fn accept(&mut self, id: u64, agent: &str) -> Vec<Action> {
        self.send(Event::OfferAccepted {
            contact: ContactId(id),
            agent: agent.into(),
        })
    }

    fn reject(&mut self, id: u64, agent: &str) -> Vec<Action> {
        self.send(Event::OfferRejected {
            contact: ContactId(id),
            agent: agent.into(),
        })
    }

    fn complete(&mut self, id: u64) -> Vec<Action> {
        self.send(Event::ContactCompleted {
            contact: ContactId(id),
        })
    }

    fn presence(&mut self, agent: &str, presence: Presence) -> Vec<Action> {
        self.send(Event::AgentPresence {
            agent: agent.into(),
            presence,
        })
    }

    fn status(&self, id: u64) -> ContactStatus {
        self.router
            .contact(ContactId(id))
            .expect("contact in router")
            .status
    }
}

const VOICE_ONLY: [u8; 6] = [1, 0, 0, 0, 0, 0];
const CHAT_3: [u8; 6] = [0, 3, 0, 0, 0, 0];
const BLEND: [u8; 6] = [1, 3, 5, 0, 0, 0];

fn profile(name: &str, skills: &[(SkillId, u8)], capacity: [u8; 6]) -> AgentProfile {
    AgentProfile {
        id: name.into(),
        skills: AgentSkills::new(skills.iter().copied()),
        capacity: Capacity(capacity),
        queues: Vec::new(),
    }
}

fn new_contact(id: u64, queue: QueueId, channel: Channel, now: Millis) -> NewContact {
    NewContact {
        id: ContactId(id),
        channel,
        queue,
        skills: Vec::new(),
        priority: Priority(0),
        arrived_at: now,
        preferred_agent: None,
        announce_position: false,
        sla: None,
    }
}

/// (contact, agent) of every offer among the actions.
fn offers(actions: &[Action]) -> Vec<(u64, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Offer { contact, agent, .. } => Some((contact.0, agent.to_string())),
            _ => None,
        })
        .collect()
}

fn offer(id: u64, agent: &str) -> Vec<(u64, String)> {
    vec![(id, agent.to_string())]
}

// ----- skills -------------------------------------------------------------------------------

#[test]
fn an_idle_qualified_agent_is_offered_a_new_contact_at_once() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(BILLING, 5)], VOICE_ONLY);
    desk.now = 1_000;
    let actions = desk.contact(1, BILLING_Q, Channel::Voice);
    assert_eq!(
        actions,
        vec![Action::Offer {
            contact: ContactId(1),
            agent: "alice".into(),
            queue: BILLING_Q,
            channel: Channel::Voice,
            priority: Priority(0),
            expires_at: 21_000,
        }]
    );
    assert_eq!(desk.status(1), ContactStatus::Offered);
}

#[test]
fn a_contact_waits_for_an_agent_with_the_required_level() {
    let mut desk = Desk::new(plan());
    desk.login("bob", &[(BILLING, 2)], VOICE_ONLY);
    assert!(offers(&desk.contact(1, BILLING_Q, Channel::Voice)).is_empty());
    assert_eq!(desk.status(1), ContactStatus::Waiting);
    assert_eq!(
        offers(&desk.login("alice", &[(BILLING, 3)], VOICE_ONLY)),
        offer(1, "alice")
    );
}

#[test]
fn a_contact_with_its_own_skill_needs_an_agent_with_both() {
    let mut desk = Desk::new(plan());
    desk.login("bob", &[(BILLING, 9)], VOICE_ONLY);
    let mut c = new_contact(1, BILLING_Q, Channel::Voice, 0);
    c.skills = vec![req(SPANISH, 4)];
    assert!(offers(&desk.queue_contact(c)).is_empty());
    let actions = desk.login("carmen", &[(BILLING, 3), (SPANISH, 6)], VOICE_ONLY);
    assert_eq!(offers(&actions), offer(1, "carmen"));
}

#[test]
fn an_agent_limited_to_some_queues_is_not_offered_others() {
    let mut desk = Desk::new(plan());
    let mut p = profile("dana", &[(ENGLISH, 9), (BILLING, 9)], VOICE_ONLY);
    p.queues = vec![BILLING_Q];
    desk.send(Event::AgentOnline {
        profile: p,
        presence: Presence::Available,
    });
    assert!(offers(&desk.contact(1, SUPPORT, Channel::Voice)).is_empty());
    assert_eq!(
        offers(&desk.contact(2, BILLING_Q, Channel::Voice)),
        offer(2, "dana")
    );
}

// ----- order --------------------------------------------------------------------------------

#[test]
fn higher_priority_is_served_first_then_the_oldest() {
    let mut desk = Desk::new(plan());
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.now = 10;
    let mut urgent = new_contact(2, SUPPORT, Channel::Voice, 10);
    urgent.priority = Priority(5);
    desk.queue_contact(urgent);
    desk.now = 20;
    desk.contact(3, SUPPORT, Channel::Voice);

    assert_eq!(
        offers(&desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY)),
        offer(2, "alice")
    );
    desk.accept(2, "alice");
    assert_eq!(offers(&desk.complete(2)), offer(1, "alice"));
    desk.accept(1, "alice");
    assert_eq!(offers(&desk.complete(1)), offer(3, "alice"));
}

#[test]
fn a_free_agent_takes_the_best_contact_across_the_classes_it_serves() {
    let mut desk = Desk::new(plan());
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.now = 5;
    let mut billing = new_contact(2, BILLING_Q, Channel::Voice, 5);
    billing.priority = Priority(3);
    desk.queue_contact(billing);
    let actions = desk.login("alice", &[(ENGLISH, 5), (BILLING, 5)], VOICE_ONLY);
    assert_eq!(
        offers(&actions),
        offer(2, "alice"),
        "priority beats age across queues"
    );
}

// ----- agent selection ----------------------------------------------------------------------

#[test]
fn the_longest_idle_agent_gets_the_next_contact() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.now = 10;
    desk.login("bob", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.now = 20;
    assert_eq!(
        offers(&desk.contact(1, SUPPORT, Channel::Voice)),
        offer(1, "alice")
    );
    assert_eq!(
        offers(&desk.contact(2, SUPPORT, Channel::Voice)),
        offer(2, "bob")
    );
}

#[test]
fn longest_idle_counts_from_the_end_of_the_last_contact_not_from_its_offer() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.now = 10;
    desk.login("bob", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.now = 20;
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.accept(1, "alice");
    desk.now = 30;
    desk.contact(2, SUPPORT, Channel::Voice);
    desk.accept(2, "bob");
    // Bob, offered last, hangs up first: he has been idle longer when the next call comes.
    desk.now = 50;
    desk.complete(2);
    desk.now = 100;
    desk.complete(1);
    desk.now = 200;
    assert_eq!(
        offers(&desk.contact(3, SUPPORT, Channel::Voice)),
        offer(3, "bob")
    );
    assert_eq!(
        offers(&desk.contact(4, SUPPORT, Channel::Voice)),
        offer(4, "alice")
    );
}

#[test]
fn most_skilled_selection_prefers_the_higher_level() {
    let mut p = plan();
    p.queues[1].selection = Selection::MostSkilled;
    let mut desk = Desk::new(p);
    desk.login("alice", &[(BILLING, 4)], VOICE_ONLY);
    desk.now = 10;
    desk.login("bob", &[(BILLING, 9)], VOICE_ONLY);
    assert_eq!(
        offers(&desk.contact(1, BILLING_Q, Channel::Voice)),
        offer(1, "bob")
    );
}

#[test]
fn least_occupied_selection_prefers_the_agent_with_more_free_capacity() {
    let mut p = plan();
    p.queues[0].selection = Selection::LeastOccupied;
    let mut desk = Desk::new(p);
    desk.login("alice", &[(ENGLISH, 5)], CHAT_3);
    desk.now = 10;
    desk.login("bob", &[(ENGLISH, 5)], CHAT_3);
    desk.now = 20;
    assert_eq!(
        offers(&desk.contact(1, SUPPORT, Channel::Chat)),
        offer(1, "alice")
    );
    desk.accept(1, "alice");
    desk.now = 30;
    // Alice has been idle longer than Bob? No: she was offered at 20. Either way Bob holds
    // nothing, so he is least occupied.
    assert_eq!(
        offers(&desk.contact(2, SUPPORT, Channel::Chat)),
        offer(2, "bob")
    );
    desk.accept(2, "bob");
    desk.complete(2);
    desk.now = 40;
    assert_eq!(
        offers(&desk.contact(3, SUPPORT, Channel::Chat)),
        offer(3, "bob")
    );
}

// ----- capacity -----------------------------------------------------------------------------

#[test]
fn a_multitasking_agent_takes_chats_up_to_its_capacity() {
    let mut desk = Desk::new(plan());
    for id in 1..=4 {
        desk.now = id;
        desk.contact(id, SUPPORT, Channel::Chat);
    }
    let actions = desk.login("alice", &[(ENGLISH, 5)], CHAT_3);
    let ids: Vec<u64> = offers(&actions).into_iter().map(|(c, _)| c).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(desk.status(4), ContactStatus::Waiting);
}

#[test]
fn a_voice_contact_blocks_other_channels() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], BLEND);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.accept(1, "alice");
    assert!(offers(&desk.contact(2, SUPPORT, Channel::Chat)).is_empty());
    assert_eq!(offers(&desk.complete(1)), offer(2, "alice"));
    // A call may still reach an agent who is chatting.
    assert_eq!(
        offers(&desk.contact(3, SUPPORT, Channel::Voice)),
        offer(3, "alice")
    );
}

#[test]
fn voice_blocking_can_be_turned_off() {
    let mut p = plan();
    p.voice_blocks_other_channels = false;
    let mut desk = Desk::new(p);
    desk.login("alice", &[(ENGLISH, 5)], BLEND);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.accept(1, "alice");
    assert_eq!(
        offers(&desk.contact(2, SUPPORT, Channel::Chat)),
        offer(2, "alice")
    );
}

// ----- offers -------------------------------------------------------------------------------

#[test]
fn a_rejected_contact_keeps_its_place_and_is_not_offered_to_that_agent_again() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.now = 10;
    desk.contact(2, SUPPORT, Channel::Voice);
    assert_eq!(offers(&desk.reject(1, "alice")), offer(2, "alice"));
    assert_eq!(desk.status(1), ContactStatus::Waiting);
    desk.now = 20;
    desk.contact(3, SUPPORT, Channel::Voice);
    // Bob arrives: contact 1 is still at the head of the line, ahead of contact 3.
    assert_eq!(
        offers(&desk.login("bob", &[(ENGLISH, 5)], VOICE_ONLY)),
        offer(1, "bob")
    );
    // Alice frees up: she gets 3, never 1 again.
    desk.accept(2, "alice");
    assert_eq!(offers(&desk.complete(2)), offer(3, "alice"));
}

#[test]
fn an_expired_offer_is_revoked_and_offered_to_the_next_agent() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.now = 1;
    desk.login("bob", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.now = 2;
    assert_eq!(
        offers(&desk.contact(1, SUPPORT, Channel::Voice)),
        offer(1, "alice")
    );
    assert_eq!(desk.router.next_deadline(), Some(20_002));
    let actions = desk.at(20_002);
    assert_eq!(
        actions[0],
        Action::RevokeOffer {
            contact: ContactId(1),
            agent: "alice".into(),
            reason: RevokeReason::Expired
        }
    );
    assert_eq!(offers(&actions), offer(1, "bob"));
}

#[test]
fn an_agent_who_misses_n_offers_in_a_row_is_put_away() {
    let mut p = plan();
    p.max_missed_offers = 2;
    let mut desk = Desk::new(p);
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.contact(2, SUPPORT, Channel::Voice);
    let first = desk.at(20_000);
    assert_eq!(
        offers(&first),
        offer(2, "alice"),
        "contact 1 is excluded for alice now"
    );
    let second = desk.at(40_000);
    assert!(second.contains(&Action::AgentAutoPaused {
        agent: "alice".into(),
        reason: "missed offers".into()
    }));
    let alice = desk.router.agent(&"alice".into()).expect("alice");
    assert_eq!(
        alice.presence,
        Presence::Away {
            reason: "missed offers".into()
        }
    );
    assert!(offers(&desk.contact(3, SUPPORT, Channel::Voice)).is_empty());
}

#[test]
fn accepting_resets_the_missed_offer_count() {
    let mut p = plan();
    p.max_missed_offers = 2;
    let mut desk = Desk::new(p);
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.at(20_000); // missed once
    desk.contact(2, SUPPORT, Channel::Voice);
    desk.accept(2, "alice");
    desk.complete(2);
    desk.contact(3, SUPPORT, Channel::Voice);
    let actions = desk.at(40_000); // missed once more, but not in a row
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::AgentAutoPaused { .. }))
    );
}

// ----- wrap-up ------------------------------------------------------------------------------

#[test]
fn wrap_up_holds_the_slot_for_the_queue_time() {
    let mut p = plan();
    p.queues[0].wrap_up = 30_000;
    let mut desk = Desk::new(p);
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.accept(1, "alice");
    desk.now = 100_000;
    let done = desk.complete(1);
    assert!(done.contains(&Action::WrapUpStarted {
        agent: "alice".into(),
        contact: ContactId(1),
        until: 130_000
    }));
    assert_eq!(
        desk.router.agent(&"alice".into()).expect("alice").activity,
        AgentActivity::WrapUp
    );
    assert!(offers(&desk.contact(2, SUPPORT, Channel::Voice)).is_empty());
    let later = desk.at(130_000);
    assert!(later.contains(&Action::WrapUpEnded {
        agent: "alice".into(),
        contact: ContactId(1)
    }));
    assert_eq!(offers(&later), offer(2, "alice"));
}

#[test]
fn an_agent_ends_wrap_up_early_by_saying_ready() {
    let mut p = plan();
    p.queues[0].wrap_up = 30_000;
    let mut desk = Desk::new(p);
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.accept(1, "alice");
    desk.complete(1);
    desk.contact(2, SUPPORT, Channel::Voice);
    desk.now = 5_000;
    let ready = desk.send(Event::WrapUpDone {
        agent: "alice".into(),
        contact: None,
    });
    assert_eq!(offers(&ready), offer(2, "alice"));
}

// ----- escalation ---------------------------------------------------------------------------

#[test]
fn an_escalation_step_relaxes_the_skill_level_after_its_wait() {
    let mut p = plan();
    p.queues[1].skills = vec![req(BILLING, 6)];
    p.queues[1].escalation = vec![EscalationStep {
        after: 30_000,
        relax: vec![(BILLING, 2)],
        ..Default::default()
    }];
    let mut desk = Desk::new(p);
    desk.login("junior", &[(BILLING, 3)], VOICE_ONLY);
    assert!(offers(&desk.contact(1, BILLING_Q, Channel::Voice)).is_empty());
    assert!(desk.at(29_999).is_empty());
    let actions = desk.at(30_000);
    assert_eq!(
        actions[0],
        Action::Escalated {
            contact: ContactId(1),
            queue: BILLING_Q,
            step: 0,
            overflowed_from: None
        }
    );
    assert_eq!(offers(&actions), offer(1, "junior"));
}

#[test]
fn an_escalation_step_drops_optional_skills() {
    let mut p = plan();
    p.queues[0].skills = vec![
        req(ENGLISH, 1),
        SkillReq {
            skill: SPANISH,
            min_level: 5,
            optional: true,
        },
    ];
    p.queues[0].escalation = vec![EscalationStep {
        after: 10_000,
        drop_optional: true,
        ..Default::default()
    }];
    let mut desk = Desk::new(p);
    desk.login("eve", &[(ENGLISH, 5)], VOICE_ONLY);
    assert!(offers(&desk.contact(1, SUPPORT, Channel::Voice)).is_empty());
    assert_eq!(offers(&desk.at(10_000)), offer(1, "eve"));
}

#[test]
fn an_escalation_step_raises_priority_so_old_contacts_are_not_starved() {
    let mut p = plan();
    p.queues[0].escalation = vec![EscalationStep {
        after: 60_000,
        raise_priority: 10,
        ..Default::default()
    }];
    let mut desk = Desk::new(p);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.now = 50_000;
    let mut urgent = new_contact(2, SUPPORT, Channel::Voice, 50_000);
    urgent.priority = Priority(5);
    desk.queue_contact(urgent);
    desk.at(60_000);
    assert_eq!(
        desk.router.contact(ContactId(1)).expect("c1").priority,
        Priority(10)
    );
    assert_eq!(
        offers(&desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY)),
        offer(1, "alice")
    );
}

#[test]
fn overflow_moves_a_contact_to_another_queue_keeping_its_age() {
    let mut p = plan();
    p.queues[1].escalation = vec![EscalationStep {
        after: 60_000,
        overflow_to: Some(SUPPORT),
        ..Default::default()
    }];
    let mut desk = Desk::new(p);
    desk.contact(1, BILLING_Q, Channel::Voice);
    desk.now = 30_000;
    desk.contact(2, SUPPORT, Channel::Voice);
    let actions = desk.at(60_000);
    assert_eq!(
        actions,
        vec![Action::Escalated {
            contact: ContactId(1),
            queue: SUPPORT,
            step: 0,
            overflowed_from: Some(BILLING_Q)
        }]
    );
    let view = desk.router.contact(ContactId(1)).expect("c1");
    assert_eq!(view.requirement, Requirement::new([req(ENGLISH, 1)]));
    // An English speaker without billing skills now serves it, before the younger contact 2.
    assert_eq!(
        offers(&desk.login("sam", &[(ENGLISH, 5)], VOICE_ONLY)),
        offer(1, "sam")
    );
    assert_eq!(desk.router.queue(BILLING_Q).counters.overflowed_out, 1);
}

#[test]
fn a_step_due_while_offered_applies_when_the_offer_comes_back() {
    let mut p = plan();
    p.queues[0].escalation = vec![EscalationStep {
        after: 10_000,
        raise_priority: 7,
        ..Default::default()
    }];
    let mut desk = Desk::new(p);
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.at(10_000);
    assert_eq!(
        desk.router.contact(ContactId(1)).expect("c1").priority,
        Priority(0)
    );
    desk.now = 15_000;
    desk.reject(1, "alice");
    assert_eq!(
        desk.router.contact(ContactId(1)).expect("c1").priority,
        Priority(7)
    );
}

// ----- preferred agent ----------------------------------------------------------------------

#[test]
fn a_contact_waits_for_its_preferred_agent_until_the_timeout() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.login("bob", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.accept(1, "alice");
    let mut sticky = new_contact(2, SUPPORT, Channel::Voice, 0);
    sticky.preferred_agent = Some("alice".into());
    assert!(
        offers(&desk.queue_contact(sticky)).is_empty(),
        "bob is idle but must not get it"
    );
    assert_eq!(offers(&desk.at(60_000)), offer(2, "bob"));
}

#[test]
fn the_preferred_agent_gets_the_contact_when_it_frees_up_in_time() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.login("bob", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.accept(1, "alice");
    let mut sticky = new_contact(2, SUPPORT, Channel::Voice, 0);
    sticky.preferred_agent = Some("alice".into());
    desk.queue_contact(sticky);
    desk.now = 30_000;
    assert_eq!(offers(&desk.complete(1)), offer(2, "alice"));
}

#[test]
fn a_contact_may_prefer_an_agent_who_has_not_logged_in_yet() {
    let mut desk = Desk::new(plan());
    let mut sticky = new_contact(1, SUPPORT, Channel::Voice, 0);
    sticky.preferred_agent = Some("zoe".into());
    desk.queue_contact(sticky);
    desk.now = 10_000;
    assert_eq!(
        offers(&desk.login("zoe", &[(ENGLISH, 5)], VOICE_ONLY)),
        offer(1, "zoe")
    );
}

// ----- SLA ----------------------------------------------------------------------------------

fn sla_plan() -> RoutingPlan {
    let mut p = plan();
    p.queues[0].sla = SlaPolicy {
        name: "live".into(),
        first_response: 100_000,
        resolution: Some(1_000_000),
        warn_at: 0.8,
        on_breach: BreachActions {
            raise_priority: 20,
            escalate: false,
            notify: true,
        },
    };
    p
}

#[test]
fn an_sla_warning_comes_at_the_fraction_and_a_breach_at_the_deadline() {
    let mut desk = Desk::new(sla_plan());
    desk.contact(1, SUPPORT, Channel::Chat);
    assert_eq!(
        desk.at(80_000),
        vec![Action::SlaWarning {
            contact: ContactId(1),
            kind: SlaKind::FirstResponse,
            deadline: 100_000
        }]
    );
    assert_eq!(
        desk.at(100_000),
        vec![Action::SlaBreach {
            contact: ContactId(1),
            kind: SlaKind::FirstResponse,
            deadline: 100_000,
            notify: true
        }]
    );
    assert_eq!(
        desk.router.contact(ContactId(1)).expect("c1").priority,
        Priority(20)
    );
    assert_eq!(desk.router.queue(SUPPORT).counters.sla_breaches, 1);
}

#[test]
fn the_first_response_stops_the_first_response_clock() {
    let mut desk = Desk::new(sla_plan());
    desk.login("alice", &[(ENGLISH, 5)], CHAT_3);
    desk.contact(1, SUPPORT, Channel::Chat);
    desk.accept(1, "alice");
    desk.now = 50_000;
    desk.send(Event::ContactResponded {
        contact: ContactId(1),
    });
    assert!(desk.at(200_000).is_empty());
    // The resolution clock still runs.
    let late = desk.at(800_000);
    assert_eq!(
        late,
        vec![Action::SlaWarning {
            contact: ContactId(1),
            kind: SlaKind::Resolution,
            deadline: 1_000_000
        }]
    );
}

#[test]
fn answering_a_call_is_its_first_response() {
    let mut desk = Desk::new(sla_plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.accept(1, "alice");
    assert!(desk.at(150_000).is_empty());
}

#[test]
fn a_breach_can_trigger_the_next_escalation_step_at_once() {
    let mut p = sla_plan();
    p.queues[0].sla.on_breach = BreachActions {
        raise_priority: 0,
        escalate: true,
        notify: false,
    };
    p.queues[0].escalation = vec![EscalationStep {
        after: 600_000,
        overflow_to: Some(BILLING_Q),
        ..Default::default()
    }];
    let mut desk = Desk::new(p);
    desk.contact(1, SUPPORT, Channel::Chat);
    let actions = desk.at(100_000);
    assert!(actions.contains(&Action::Escalated {
        contact: ContactId(1),
        queue: BILLING_Q,
        step: 0,
        overflowed_from: Some(SUPPORT)
    }));
}

#[test]
fn a_replayed_contact_keeps_its_arrival_so_its_sla_clock_keeps_running() {
    let mut desk = Desk::new(sla_plan());
    desk.now = 500_000;
    let mut replayed = new_contact(1, SUPPORT, Channel::Chat, 450_000);
    replayed.announce_position = false;
    desk.queue_contact(replayed);
    assert!(
        desk.at(549_999)
            .iter()
            .all(|a| !matches!(a, Action::SlaBreach { .. }))
    );
    let actions = desk.at(550_000);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::SlaBreach {
            deadline: 550_000,
            ..
        }
    )));
    // And it ranks ahead of a contact that arrived later but was queued earlier.
    desk.contact(2, SUPPORT, Channel::Chat);
    let got = offers(&desk.login("alice", &[(ENGLISH, 5)], [0, 1, 0, 0, 0, 0]));
    assert_eq!(got, offer(1, "alice"));
}

// ----- service level ------------------------------------------------------------------------

#[test]
fn service_level_counts_answers_within_the_threshold_and_the_aware_variant_long_abandons() {
    let mut desk = Desk::new(plan()); // threshold 20 s, short abandon 5 s
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.contact(2, SUPPORT, Channel::Voice);
    desk.contact(3, SUPPORT, Channel::Voice);
    desk.contact(4, SUPPORT, Channel::Voice);
    desk.now = 2_000;
    desk.send(Event::ContactWithdrawn {
        contact: ContactId(3),
        reason: WithdrawReason::Abandoned,
    });
    desk.now = 10_000;
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.accept(1, "alice");
    desk.complete(1);
    desk.now = 29_000;
    desk.accept(2, "alice");
    desk.now = 60_000;
    desk.send(Event::ContactWithdrawn {
        contact: ContactId(4),
        reason: WithdrawReason::Abandoned,
    });
    let q = desk.router.queue(SUPPORT).counters;
    assert_eq!(
        (
            q.answered,
            q.answered_within_threshold,
            q.abandoned,
            q.abandoned_short
        ),
        (2, 1, 2, 1)
    );
    assert_eq!(q.service_level(), Some(0.5));
    assert_eq!(q.service_level_abandon_aware(), Some(1.0 / 3.0));
    assert_eq!(q.average_speed_of_answer(), Some(19_500));
}

// ----- positions ----------------------------------------------------------------------------

#[test]
fn waiting_customers_hear_their_position_on_joining_and_when_it_changes() {
    let mut desk = Desk::new(plan());
    let mut positions = Vec::new();
    for id in 1..=3 {
        desk.now = id * 1_000;
        let mut c = new_contact(id, SUPPORT, Channel::Chat, desk.now);
        c.announce_position = true;
        positions.extend(desk.queue_contact(c));
    }
    assert_eq!(
        positions,
        (1..=3)
            .map(|p| Action::Position {
                contact: ContactId(p),
                position: p as usize,
                estimated_wait: None
            })
            .collect::<Vec<_>>()
    );
    desk.now = 10_000;
    desk.login("alice", &[(ENGLISH, 5)], [0, 1, 0, 0, 0, 0]);
    desk.accept(1, "alice");
    desk.now = 20_000;
    desk.complete(1);
    // Two departures (at 10 s and 20 s) in the 11 s since the first: 5.5 s per position.
    let updates = desk.at(21_000);
    assert_eq!(
        updates,
        vec![Action::Position {
            contact: ContactId(3),
            position: 1,
            estimated_wait: Some(5_500)
        }]
    );
    let view = desk.router.contact(ContactId(3)).expect("c3");
    assert_eq!(view.position, Some(1));
}

// ----- transfer -----------------------------------------------------------------------------

#[test]
fn an_agent_transfers_a_contact_to_another_queue_and_goes_to_wrap_up() {
    let mut p = plan();
    p.queues[0].wrap_up = 10_000;
    let mut desk = Desk::new(p);
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.accept(1, "alice");
    desk.now = 40_000;
    let actions = desk.send(Event::ContactTransferred {
        contact: ContactId(1),
        to: TransferTarget::Queue(BILLING_Q),
    });
    assert!(actions.contains(&Action::Transferred {
        contact: ContactId(1),
        from: SUPPORT,
        to: TransferTarget::Queue(BILLING_Q)
    }));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::WrapUpStarted { .. }))
    );
    assert_eq!(desk.status(1), ContactStatus::Waiting);
    assert_eq!(
        offers(&desk.login("bill", &[(BILLING, 5)], VOICE_ONLY)),
        offer(1, "bill")
    );
}

#[test]
fn a_contact_transferred_to_a_named_agent_goes_to_that_agent() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.now = 1;
    desk.login("bob", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.accept(1, "alice");
    desk.contact(2, SUPPORT, Channel::Voice);
    desk.accept(2, "bob");
    desk.complete(2);
    let actions = desk.send(Event::ContactTransferred {
        contact: ContactId(1),
        to: TransferTarget::Agent("bob".into()),
    });
    assert_eq!(offers(&actions), offer(1, "bob"));
}

// ----- presence -----------------------------------------------------------------------------

#[test]
fn an_agent_going_away_gets_no_offers_and_returns_pending_ones() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    let actions = desk.presence(
        "alice",
        Presence::Away {
            reason: "lunch".into(),
        },
    );
    assert_eq!(
        actions,
        vec![Action::RevokeOffer {
            contact: ContactId(1),
            agent: "alice".into(),
            reason: RevokeReason::AgentUnavailable
        }]
    );
    assert_eq!(desk.status(1), ContactStatus::Waiting);
    assert!(offers(&desk.contact(2, SUPPORT, Channel::Voice)).is_empty());
    assert_eq!(
        offers(&desk.presence("alice", Presence::Available)),
        offer(1, "alice")
    );
}

#[test]
fn an_agent_going_offline_gets_its_assigned_contacts_back_on_reconnect() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], [0, 0, 5, 0, 0, 0]);
    desk.contact(1, SUPPORT, Channel::Email);
    desk.accept(1, "alice");
    let gone = desk.send(Event::AgentOffline {
        agent: "alice".into(),
    });
    assert_eq!(
        gone,
        vec![Action::Requeued {
            contact: ContactId(1),
            agent: "alice".into()
        }]
    );
    desk.login("bob", &[(ENGLISH, 5)], [0, 0, 5, 0, 0, 0]);
    assert_eq!(
        desk.status(1),
        ContactStatus::Waiting,
        "held for alice, not given to bob"
    );
    desk.now = 30_000;
    assert_eq!(
        offers(&desk.login("alice", &[(ENGLISH, 5)], [0, 0, 5, 0, 0, 0])),
        offer(1, "alice")
    );
}

#[test]
fn a_profile_change_takes_effect_at_once() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, BILLING_Q, Channel::Voice);
    let actions = desk.send(Event::AgentProfileChanged {
        profile: profile("alice", &[(ENGLISH, 5), (BILLING, 4)], VOICE_ONLY),
    });
    assert_eq!(offers(&actions), offer(1, "alice"));
}

// ----- bad input ----------------------------------------------------------------------------

#[test]
fn a_refused_duplicate_leaves_no_trace() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.login("bob", &[(ENGLISH, 5)], CHAT_3);
    desk.contact(1, SUPPORT, Channel::Voice);
    let ready_before = desk.router.queue(SUPPORT).agents_ready;
    // The same id again, on a channel no contact of the queue has used yet, held for someone
    // never seen: a first arrival like it would make a chat class (bob would be ready in it)
    // and a placeholder agent.
    let mut again = new_contact(1, SUPPORT, Channel::Chat, 0);
    again.preferred_agent = Some(AgentId::new("carol"));
    assert_eq!(
        desk.router.handle(0, Event::ContactQueued(again)),
        Err(RouterError::DuplicateContact(ContactId(1)))
    );
    assert_eq!(desk.router.queue(SUPPORT).agents_ready, ready_before);
    assert!(desk.router.agent(&AgentId::new("carol")).is_none());
    desk.router.audit().unwrap();
    // A genuine chat contact does make the class, and bob is offered it.
    assert_eq!(
        offers(&desk.contact(2, SUPPORT, Channel::Chat)),
        offer(2, "bob")
    );
}

#[test]
fn events_that_do_not_fit_the_state_are_refused_without_changing_it() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    let r = &mut desk.router;
    assert_eq!(
        r.handle(
            0,
            Event::ContactQueued(new_contact(1, SUPPORT, Channel::Voice, 0))
        ),
        Err(RouterError::DuplicateContact(ContactId(1)))
    );
    assert_eq!(
        r.handle(
            0,
            Event::ContactQueued(new_contact(u64::MAX, SUPPORT, Channel::Voice, 0))
        ),
        Err(RouterError::ReservedContactId(ContactId(u64::MAX)))
    );
    assert_eq!(
        r.handle(
            0,
            Event::OfferAccepted {
                contact: ContactId(1),
                agent: "bob".into()
            }
        ),
        Err(RouterError::UnknownAgent("bob".into()))
    );
    assert_eq!(
        r.handle(
            0,
            Event::ContactCompleted {
                contact: ContactId(1)
            }
        ),
        Err(RouterError::NotAssigned(ContactId(1)))
    );
    assert_eq!(
        r.handle(
            0,
            Event::ContactQueued(new_contact(2, QueueId(9), Channel::Voice, 0))
        ),
        Err(RouterError::UnknownQueue(QueueId(9)))
    );
    let mut bad = new_contact(3, SUPPORT, Channel::Voice, 0);
    bad.skills = vec![req(TECHNICAL, 11)];
    assert_eq!(
        r.handle(0, Event::ContactQueued(bad)),
        Err(RouterError::SkillLevelOutOfRange {
            skill: TECHNICAL,
            level: 11
        })
    );
    assert_eq!(
        r.handle(
            0,
            Event::ContactWithdrawn {
                contact: ContactId(7),
                reason: WithdrawReason::Cancelled
            }
        ),
        Err(RouterError::UnknownContact(ContactId(7)))
    );
    desk.router.audit().expect("still consistent");
    assert_eq!(desk.status(1), ContactStatus::Offered);
}

#[test]
fn an_accept_after_expiry_is_refused() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.now = 20_000;
    assert_eq!(
        desk.router.handle(
            20_000,
            Event::OfferAccepted {
                contact: ContactId(1),
                agent: "alice".into()
            }
        ),
        Err(RouterError::NotOffered {
            contact: ContactId(1),
            agent: "alice".into()
        })
    );
}

// ----- regressions found in review ----------------------------------------------------------

#[test]
fn a_step_that_came_due_while_assigned_applies_when_the_contact_is_requeued() {
    let mut p = plan();
    p.queues[1].escalation = vec![EscalationStep {
        after: 10_000,
        relax: vec![(BILLING, 1)],
        ..Default::default()
    }];
    let mut desk = Desk::new(p);
    desk.login("alice", &[(BILLING, 5)], VOICE_ONLY);
    desk.contact(1, BILLING_Q, Channel::Voice);
    desk.accept(1, "alice");
    desk.at(10_000); // the step comes due while alice holds the contact
    desk.now = 20_000;
    desk.send(Event::AgentOffline {
        agent: "alice".into(),
    });
    desk.login("bob", &[(BILLING, 2)], VOICE_ONLY);
    // Once the hold for alice times out, the relaxed requirement lets bob take it.
    assert_eq!(offers(&desk.at(80_000)), offer(1, "bob"));
}

#[test]
fn offers_returned_by_an_agent_going_away_are_re_offered_best_first() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], CHAT_3);
    desk.contact(1, SUPPORT, Channel::Chat);
    let mut vip = new_contact(2, SUPPORT, Channel::Chat, 0);
    vip.priority = Priority(5);
    desk.queue_contact(vip);
    desk.login("bob", &[(ENGLISH, 5)], [0, 1, 0, 0, 0, 0]);
    let returned = desk.presence(
        "alice",
        Presence::Away {
            reason: "break".into(),
        },
    );
    assert_eq!(offers(&returned), offer(2, "bob"));
}

#[test]
fn a_wrap_up_timer_ends_its_own_wrap_up_when_a_contact_wraps_twice() {
    let mut p = plan();
    p.queues[0].wrap_up = 30_000;
    let mut desk = Desk::new(p);
    desk.login("alice", &[(ENGLISH, 5)], CHAT_3);
    desk.contact(7, SUPPORT, Channel::Chat);
    desk.contact(5, SUPPORT, Channel::Chat);
    desk.accept(7, "alice");
    desk.accept(5, "alice");
    desk.now = 1_000;
    desk.complete(7);
    desk.now = 2_000;
    desk.send(Event::ContactTransferred {
        contact: ContactId(5),
        to: TransferTarget::Queue(SUPPORT),
    });
    desk.accept(5, "alice");
    desk.now = 3_000;
    desk.complete(5); // contact 5 now has two wrap-ups on alice: until 32 s and 33 s
    desk.send(Event::WrapUpDone {
        agent: "alice".into(),
        contact: Some(ContactId(7)),
    });
    desk.at(1_000_000);
    let alice = desk.router.agent(&"alice".into()).expect("alice");
    assert_eq!((alice.wrap_ups, alice.load), (vec![], [0; 6]));
}

#[test]
fn stale_timers_are_swept_in_bulk_not_on_every_event() {
    let mut p = plan();
    p.queues[0].sla.resolution = Some(86_400_000);
    p.queues[0].escalation = vec![EscalationStep {
        after: 3_600_000,
        raise_priority: 1,
        ..Default::default()
    }];
    let mut r = Router::new(p);
    for i in 0..10_000 {
        r.handle(
            1,
            Event::ContactQueued(new_contact(i, SUPPORT, Channel::Email, 1)),
        )
        .expect("queued");
    }
    let live = r.timers.len();
    r.handle(2, Event::Tick).expect("tick");
    assert!(
        r.timer_compact_at > live,
        "the sweep threshold stays above the live timers"
    );
    assert!(
        r.timers.len() <= 2 * 10_000 + 1024,
        "at most one SLA and one step timer per contact"
    );
}

#[test]
fn timers_of_departed_contacts_do_not_pile_up() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    // Each call leaves its offer timer and SLA timer behind, due in minutes.
    for id in 0..10_000 {
        desk.now = id;
        desk.contact(id, SUPPORT, Channel::Voice);
        desk.accept(id, "alice");
        desk.complete(id);
    }
    assert!(
        desk.router.timers.len() <= 2 * 1024 + 2,
        "{} timers kept for no contact",
        desk.router.timers.len()
    );
}

#[test]
fn a_lone_agent_who_missed_an_offer_gets_it_again_one_offer_timeout_later() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    let missed = desk.at(20_000);
    assert!(offers(&missed).is_empty(), "nobody else can take it yet");
    assert_eq!(offers(&desk.at(40_000)), offer(1, "alice"));
}

#[test]
fn a_reject_is_for_good_even_for_a_lone_agent() {
    let mut desk = Desk::new(plan());
    desk.login("alice", &[(ENGLISH, 5)], VOICE_ONLY);
    desk.contact(1, SUPPORT, Channel::Voice);
    desk.reject(1, "alice");
    assert!(offers(&desk.at(3_600_000)).is_empty());
    assert_eq!(desk.status(1), ContactStatus::Waiting);
}

#[test]
fn a_new_plan_keeps_waiting_contacts_and_times_their_new_escalation_steps() {
    let mut desk = Desk::new(plan());
    desk.contact(1, BILLING_Q, Channel::Email);
    assert_eq!(desk.status(1), ContactStatus::Waiting);

    // The reload gives billing an overflow to support after a minute; the contact has
    // waited 40 s already.
    desk.at(40_000);
    let mut reloaded = plan();
    reloaded.queues[1].escalation = vec![EscalationStep {
        after: 60_000,
        overflow_to: Some(SUPPORT),
        ..EscalationStep::default()
    }];
    reloaded.skills.push("french".into());
    reloaded.queues.push(QueuePlan::new("french"));
    desk.router.update_plan(reloaded).expect("ids kept");
    assert_eq!(desk.status(1), ContactStatus::Waiting, "still in line");
    assert!(desk.at(59_000).is_empty(), "not before its minute");
    let actions = desk.at(60_000);
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Escalated {
                contact: ContactId(1),
                queue: SUPPORT,
                ..
            }
        )),
        "{actions:?}"
    );

    // The new queue and skill work for new contacts.
    desk.login("amelie", &[(SkillId(4), 5)], [0, 0, 5, 0, 0, 0]);
    let actions = desk.contact(2, QueueId(2), Channel::Email);
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Offer {
                contact: ContactId(2),
                ..
            }
        )),
        "{actions:?}"
    );
}

#[test]
fn a_plan_that_renumbers_queues_skills_or_sla_policies_is_refused() {
    let mut base = plan();
    base.sla_policies = vec![QueuePlan::new("x").sla];
    let mut router = Router::new(base.clone());
    let mut swapped = base.clone();
    swapped.queues.swap(0, 1);
    assert!(matches!(
        router.update_plan(swapped),
        Err(RouterError::PlanRenumbers(_))
    ));
    let mut fewer = base.clone();
    fewer.skills.pop();
    assert!(router.update_plan(fewer).is_err());
    let mut no_policies = base.clone();
    no_policies.sla_policies.clear();
    assert!(router.update_plan(no_policies).is_err());
    assert!(
        router.update_plan(base).is_ok(),
        "the same plan again is fine"
    );
}
