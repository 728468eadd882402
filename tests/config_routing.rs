//! The shipped configuration, compiled and routed: the demo center behaves as its comments say.

use switchboard::config::Config;
use switchboard::model::{Channel, ContactId, NewContact, Priority};
use switchboard::router::{Action, Event, Presence, Router};

fn demo_center() -> Router {
    let config = Config::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/switchboard.toml"
    ))
    .expect("the shipped config loads");
    let mut router = Router::new(config.routing_plan());
    for profile in config.agent_profiles() {
        router
            .handle(
                0,
                Event::AgentOnline {
                    profile,
                    presence: Presence::Available,
                },
            )
            .expect("demo agents are valid");
    }
    router.drain_actions().for_each(drop);
    router
}

fn offered_to(router: &mut Router) -> Vec<String> {
    router
        .drain_actions()
        .filter_map(|a| match a {
            Action::Offer { agent, .. } => Some(agent.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_billing_email_goes_to_the_most_skilled_billing_agent() {
    let mut router = demo_center();
    let billing = router.plan().queue_id("billing").expect("billing queue");
    let email = NewContact {
        id: ContactId(1),
        channel: Channel::Email,
        queue: billing,
        skills: Vec::new(),
        priority: Priority(0),
        arrived_at: 0,
        preferred_agent: None,
        announce_position: false,
        sla: None,
    };
    router
        .handle(1_000, Event::ContactQueued(email))
        .expect("valid contact");
    // Billing needs billing 5 and, until its second escalation step, technical 3 (optional):
    // alice (billing 6, technical 4) is the only one who meets both.
    assert_eq!(offered_to(&mut router), vec!["alice"]);
}

#[test]
fn a_vip_call_outranks_a_sales_call_for_an_agent_who_serves_both() {
    let mut router = demo_center();
    let vip = router.plan().queue_id("vip").expect("vip queue");
    let sales = router.plan().queue_id("sales").expect("sales queue");
    // Everyone who could take a call steps away; two calls wait; dana comes back.
    for agent in ["alice", "bruno", "dana"] {
        let away = Presence::Away {
            reason: "meeting".into(),
        };
        router
            .handle(
                0,
                Event::AgentPresence {
                    agent: agent.into(),
                    presence: away,
                },
            )
            .expect("known");
    }
    let call = |id, queue| NewContact {
        id: ContactId(id),
        channel: Channel::Voice,
        queue,
        skills: Vec::new(),
        priority: Priority(0),
        arrived_at: 0,
        preferred_agent: None,
        announce_position: true,
        sla: None,
    };
    router
        .handle(1_000, Event::ContactQueued(call(1, sales)))
        .expect("valid");
    router
        .handle(2_000, Event::ContactQueued(call(2, vip)))
        .expect("valid");
    router.drain_actions().for_each(drop);
    router
        .handle(
            3_000,
            Event::AgentPresence {
                agent: "dana".into(),
                presence: Presence::Available,
            },
        )
        .expect("known");
    let first = router.drain_actions().find_map(|a| match a {
        Action::Offer { contact, .. } => Some(contact),
        _ => None,
    });
    assert_eq!(
        first,
        Some(ContactId(2)),
        "the VIP queue's priority of 100 goes first"
    );
}
