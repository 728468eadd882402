//! The discrete-event loop: customers, agents and the clock around the real [`Router`].
//!
//! Virtual time jumps from one happening to the next (an arrival, an agent's answer, the end of
//! a contact, a shift or break boundary, a customer giving up) or to the router's own
//! [`Router::next_deadline`] (offer expiry, escalation steps, SLA timers, wrap-up ends), whichever
//! is first. Each happening becomes a router [`Event`]; the [`Action`]s the router returns are
//! what the simulated agents react to, exactly as agent clients react to them in production. A
//! single seeded generator draws every random number in event order, so a seed is a run.
//!
//! Decisions a reader may look for:
//!
//! - Contacts are counted in the interval and queue in which they **arrived**, and their wait
//!   runs from arrival to the agent's acceptance, so an overflowed contact still counts for the
//!   queue the customer called. The threshold is the arrival queue's.
//! - Service level is the router's: answered within the threshold over answered; the
//!   abandon-aware variant adds long abandons (beyond the queue's `short_abandon`) to the
//!   denominator.
//! - Occupancy is the time agents hold at least one contact (offered, assigned or in wrap-up)
//!   over the time they are logged in and not on a break (or still finishing a contact).
//!   Agents without a shift end serve every contact still waiting when the traffic ends, but
//!   their idle time after that end is not counted. A queue's occupancy is that of the agents
//!   who can take its contacts as they arrive (`qualified_queues`), whatever they hold: how
//!   busy the people who could answer the queue's next caller are.
//! - An agent the router puts away for missed offers makes itself available again after
//!   [`BACK_FROM_AUTO_PAUSE`], as a person would when the supervisor calls.
//! - Shift end and break start stop new offers at once; what the agent holds is finished, then
//!   the agent logs out (shift end) or goes on its break.
//! - Positions are not announced: nobody listens, and it would only add work.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rustc_hash::FxHashMap;

use super::report::Tally;
use super::scenario::{Distribution, Scenario};
use crate::model::{
    AgentId, Channel, ContactId, Millis, NewContact, Priority, QueueId, Requirement, SkillReq,
};
use crate::router::{
    Action, Event, Outcome, Presence, Router, RouterError, WithdrawReason, requirement_for,
};

/// How long an agent put away for missed offers stays away.
pub const BACK_FROM_AUTO_PAUSE: Millis = 60_000;

/// A recorded contact to replay instead of synthetic traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayContact {
    /// Arrival, ms from the start.
    pub arrival: Millis,
    /// Channel.
    pub channel: Channel,
    /// Queue of arrival.
    pub queue: QueueId,
    /// Skills on top of the queue's.
    pub skills: Vec<SkillReq>,
    /// Handle time, ms.
    pub handle_time: Millis,
    /// Patience, ms; `None` waits forever.
    pub patience: Option<Millis>,
}

/// How far a run has come, for progress display.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Virtual time reached, ms from the start.
    pub now: Millis,
    /// End of the traffic, ms from the start (the run goes on until the last contact leaves).
    pub traffic_end: Millis,
    /// Contacts arrived so far.
    pub contacts: u64,
}

/// The router refused an event the simulator sent: a bug in one or the other.
#[derive(Debug, thiserror::Error)]
#[error("at {at} ms the router refused {event}: {source}")]
pub struct SimError {
    /// Virtual time.
    pub at: Millis,
    /// What was sent.
    pub event: &'static str,
    /// Why it was refused.
    pub source: RouterError,
}

/// What the simulator counted, before it is turned into rows.
#[derive(Clone, Debug, Default)]
pub struct Outcomes {
    /// Per interval (by arrival), per queue.
    pub tallies: Vec<Vec<Tally>>,
    /// Per interval: agent time holding contacts, ms.
    pub busy: Vec<f64>,
    /// Per interval: agent time logged in and not on a break (or busy), ms.
    pub staffed: Vec<f64>,
    /// Per interval, per queue: time the agents qualified for the queue held contacts of any
    /// queue, ms.
    pub queue_busy: Vec<Vec<f64>>,
    /// Per interval, per queue: staffed time of the agents qualified for the queue, ms.
    pub queue_staffed: Vec<Vec<f64>>,
    /// Contacts that arrived.
    pub contacts: u64,
    /// Events the router handled (including timer ticks).
    pub router_events: u64,
    /// Virtual time at which the last contact left.
    pub end: Millis,
}

/// Things that happen outside the router, in time order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Happening {
    Arrival(u32),
    Replay(u32),
    GiveUp(u64),
    Answer { contact: u64, offer: u32 },
    Completion(u64),
    ShiftStart(u32),
    BreakStart(u32),
    BreakEnd(u32),
    ShiftEnd(u32),
    BackFromPause(u32),
}

/// A contact as the simulator follows it.
#[derive(Clone, Debug)]
struct Customer {
    queue: QueueId,
    arrived: Millis,
    interval: usize,
    handle_time: Millis,
    /// Number of the latest offer, so a late answer to an earlier one is recognised.
    offer: u32,
    /// The agent holding the contact (offered or assigned), as a simulator index.
    agent: Option<u32>,
    answered: bool,
    wrapping: bool,
}

#[derive(Clone, Debug, Default)]
struct Desk {
    holding: u32,
    on_shift: bool,
    on_break: bool,
    /// The shift is over (or the break has started) but contacts are still on hand.
    leaving: bool,
    /// Start of the span being accounted.
    mark: Millis,
}

impl Desk {
    fn staffed(&self) -> bool {
        (self.on_shift && !self.on_break) || self.holding > 0
    }
}

/// A random generator with the few draws the simulator needs.
struct Dice(Xoshiro256PlusPlus);

impl Dice {
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Exponential with mean 1.
    fn exponential(&mut self) -> f64 {
        -(1.0 - self.uniform()).ln()
    }

    /// Standard normal, by Box-Muller.
    fn normal(&mut self) -> f64 {
        let (u, v) = (1.0 - self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    fn sample(&mut self, d: &Distribution) -> Millis {
        let ms = match d {
            Distribution::Fixed(v) => *v,
            Distribution::Exponential(mean) => mean * self.exponential(),
            Distribution::LogNormal { mu, sigma } => (mu + sigma * self.normal()).exp(),
            Distribution::Empirical(values) => {
                values[((self.uniform() * values.len() as f64) as usize).min(values.len() - 1)]
            }
        };
        ms.round().clamp(0.0, 1e15) as Millis
    }
}

/// One run of a scenario.
struct Run<'a> {
    scenario: &'a Scenario,
    /// Intervals counted (the last one also takes whatever happens after it).
    intervals: usize,
    /// End of the last interval, ms.
    traffic_end: Millis,
    /// Each stream's latest arrival, exact.
    stream_clocks: Vec<f64>,
    replay: &'a [ReplayContact],
    router: Router,
    dice: Dice,
    now: Millis,
    seq: u64,
    agenda: BinaryHeap<Reverse<(Millis, u64, Happening)>>,
    customers: FxHashMap<u64, Customer>,
    desks: Vec<Desk>,
    /// Per agent, the queues whose occupancy its time counts in.
    qualified: Vec<Vec<usize>>,
    agent_index: FxHashMap<AgentId, u32>,
    actions: Vec<Action>,
    /// Events to send at the current instant (answers given at once, logouts).
    immediate: Vec<Event>,
    next_id: u64,
    out: Outcomes,
}

/// Runs a scenario (or a replay of recorded contacts with the scenario's agents and config),
/// calling `progress` now and then.
pub fn run(
    scenario: &Scenario,
    replay: Option<&[ReplayContact]>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcomes, SimError> {
    let queues = scenario.plan.queues.len();
    // A replay covers as many intervals as its recorded day, at least.
    let replayed = replay
        .and_then(|r| r.iter().map(|c| c.arrival).max())
        .map_or(0, |last| (last / scenario.interval) as usize + 1);
    let intervals = scenario.intervals.max(replayed).max(1);
    let mut run = Run {
        intervals,
        traffic_end: scenario.interval * intervals as u64,
        stream_clocks: vec![0.0; scenario.streams.len()],
        scenario,
        replay: replay.unwrap_or(&[]),
        router: Router::new(scenario.plan.clone()),
        dice: Dice(Xoshiro256PlusPlus::seed_from_u64(scenario.seed)),
        now: 0,
        seq: 0,
        agenda: BinaryHeap::new(),
        customers: FxHashMap::default(),
        desks: vec![Desk::default(); scenario.agents.len()],
        qualified: qualified_queues(scenario, replay),
        agent_index: scenario
            .agents
            .iter()
            .enumerate()
            .map(|(i, a)| (a.profile.id.clone(), i as u32))
            .collect(),
        actions: Vec::new(),
        immediate: Vec::new(),
        next_id: 1,
        out: Outcomes {
            tallies: vec![vec![Tally::default(); queues]; intervals],
            busy: vec![0.0; intervals],
            staffed: vec![0.0; intervals],
            queue_busy: vec![vec![0.0; queues]; intervals],
            queue_staffed: vec![vec![0.0; queues]; intervals],
            ..Outcomes::default()
        },
    };
    run.start(replay.is_some());
    let traffic_end = run.traffic_end;
    let mut steps = 0u64;
    loop {
        let ours = run.agenda.peek().map(|Reverse((at, _, _))| *at);
        let router = run.router.next_deadline();
        match (ours, router) {
            (None, None) => break,
            (ours, Some(due)) if ours.is_none_or(|at| due <= at) => {
                run.now = run.now.max(due);
                run.router.tick(run.now);
                run.out.router_events += 1;
            }
            _ => {
                let Reverse((at, _, what)) = run.agenda.pop().expect("peeked");
                run.now = at;
                run.happen(what)?;
            }
        }
        run.settle()?;
        steps += 1;
        if steps.is_multiple_of(65_536) {
            progress(Progress {
                now: run.now,
                traffic_end,
                contacts: run.out.contacts,
            });
        }
        if run.agenda.is_empty() && run.customers.is_empty() {
            break;
        }
    }
    let end = run.now;
    for a in 0..run.desks.len() {
        run.account(a as u32);
    }
    run.out.end = end;
    // Contacts still waiting when nothing more can happen (no agent left for them).
    for c in run.customers.values() {
        run.out.tallies[c.interval][usize::from(c.queue.0)].unanswered += 1;
    }
    Ok(run.out)
}

impl Run<'_> {
    fn schedule(&mut self, at: Millis, what: Happening) {
        self.seq += 1;
        self.agenda.push(Reverse((at, self.seq, what)));
    }

    fn start(&mut self, replaying: bool) {
        if replaying {
            if let Some(first) = self.replay.first() {
                self.schedule(first.arrival, Happening::Replay(0));
            }
        } else {
            for s in 0..self.scenario.streams.len() {
                if let Some(at) = self.next_arrival(s) {
                    self.schedule(at, Happening::Arrival(s as u32));
                }
            }
        }
        for (i, agent) in self.scenario.agents.iter().enumerate() {
            let i = i as u32;
            self.schedule(agent.shift_start, Happening::ShiftStart(i));
            for &(start, end) in &agent.breaks {
                self.schedule(start, Happening::BreakStart(i));
                self.schedule(end, Happening::BreakEnd(i));
            }
            if let Some(end) = agent.shift_end {
                self.schedule(end, Happening::ShiftEnd(i));
            }
        }
    }

    /// The next arrival of a stream: an inhomogeneous Poisson process with a constant rate per
    /// interval, drawn by spending one exponential unit of "work" across the intervals' rates
    /// (memorylessness makes restarting at a boundary exact). The stream keeps its clock in
    /// fractions of a millisecond: stepping from the rounded time would add half a millisecond
    /// to every gap, 0.2 % of the load at five calls a second.
    fn next_arrival(&mut self, stream: usize) -> Option<Millis> {
        let interval = self.scenario.interval as f64;
        let rates = &self.scenario.streams[stream].rates;
        let mut work = self.dice.exponential();
        let mut t = self.stream_clocks[stream];
        loop {
            let i = (t / interval) as usize;
            let rate = *rates.get(i)?;
            let end = (i + 1) as f64 * interval;
            let room = rate * (end - t);
            if room > work {
                t += work / rate;
                self.stream_clocks[stream] = t;
                return Some(t.ceil() as Millis);
            }
            work -= room;
            t = end;
        }
    }

    fn interval_of(&self, at: Millis) -> usize {
        ((at / self.scenario.interval) as usize).min(self.intervals - 1)
    }

    fn send(&mut self, event: Event) -> Result<(), SimError> {
        self.out.router_events += 1;
        let kind = kind_of(&event);
        // A reject ends the offer, but the router answers it with no action naming the agent
        // (it only offers the contact elsewhere), so the agent's hold is let go here, once the
        // router has taken the reject. Every other end of an offer comes back as an action.
        let rejected = match &event {
            Event::OfferRejected { contact, agent } => Some((contact.0, self.agent(agent))),
            _ => None,
        };
        self.router
            .handle(self.now, event)
            .map_err(|source| SimError {
                at: self.now,
                event: kind,
                source,
            })?;
        if let Some((contact, a)) = rejected {
            self.offer_ended(contact, a);
        }
        Ok(())
    }

    fn arrive(&mut self, contact: NewContactParts) -> Result<(), SimError> {
        let id = self.next_id;
        self.next_id += 1;
        self.out.contacts += 1;
        let interval = self.interval_of(self.now);
        self.out.tallies[interval][usize::from(contact.queue.0)].offered += 1;
        self.customers.insert(
            id,
            Customer {
                queue: contact.queue,
                arrived: self.now,
                interval,
                handle_time: contact.handle_time,
                offer: 0,
                agent: None,
                answered: false,
                wrapping: false,
            },
        );
        if let Some(patience) = contact.patience {
            self.schedule(self.now + patience, Happening::GiveUp(id));
        }
        self.send(Event::ContactQueued(NewContact {
            id: ContactId(id),
            channel: contact.channel,
            queue: contact.queue,
            skills: contact.skills,
            priority: Priority(contact.priority),
            arrived_at: self.now,
            preferred_agent: None,
            announce_position: false,
            sla: None,
        }))
    }

    fn happen(&mut self, what: Happening) -> Result<(), SimError> {
        match what {
            Happening::Arrival(s) => {
                let stream = &self.scenario.streams[s as usize];
                let parts = NewContactParts {
                    queue: stream.queue,
                    channel: stream.channel,
                    skills: stream.skills.clone(),
                    priority: stream.priority,
                    handle_time: self.dice.sample(&stream.handle_time),
                    patience: stream.patience.as_ref().map(|p| self.dice.sample(p)),
                };
                if let Some(at) = self.next_arrival(s as usize) {
                    self.schedule(at, Happening::Arrival(s));
                }
                self.arrive(parts)
            }
            Happening::Replay(i) => {
                let r = &self.replay[i as usize];
                let parts = NewContactParts {
                    queue: r.queue,
                    channel: r.channel,
                    skills: r.skills.clone(),
                    priority: 0,
                    handle_time: r.handle_time,
                    patience: r.patience,
                };
                if let Some(next) = self.replay.get(i as usize + 1) {
                    self.schedule(next.arrival.max(self.now), Happening::Replay(i + 1));
                }
                self.arrive(parts)
            }
            Happening::GiveUp(id) => match self.customers.get(&id) {
                Some(c) if !c.answered => self.send(Event::ContactWithdrawn {
                    contact: ContactId(id),
                    reason: WithdrawReason::Abandoned,
                }),
                _ => Ok(()),
            },
            Happening::Answer { contact, offer } => {
                let Some(c) = self.customers.get(&contact) else {
                    return Ok(());
                };
                let Some(a) = c.agent.filter(|_| c.offer == offer && !c.answered) else {
                    return Ok(());
                };
                let event = self.answer(contact, a);
                self.send(event)
            }
            Happening::Completion(id) => self.send(Event::ContactCompleted {
                contact: ContactId(id),
            }),
            Happening::ShiftStart(a) => {
                self.account(a);
                let desk = &mut self.desks[a as usize];
                desk.on_shift = true;
                desk.leaving = false;
                let presence = if desk.on_break {
                    Presence::Away {
                        reason: "break".into(),
                    }
                } else {
                    Presence::Available
                };
                let profile = self.scenario.agents[a as usize].profile.clone();
                self.send(Event::AgentOnline { profile, presence })
            }
            Happening::BreakStart(a) => {
                self.account(a);
                let desk = &mut self.desks[a as usize];
                desk.on_break = true;
                if !desk.on_shift {
                    return Ok(());
                }
                self.presence(
                    a,
                    Presence::Away {
                        reason: "break".into(),
                    },
                )
            }
            Happening::BreakEnd(a) => {
                self.account(a);
                let desk = &mut self.desks[a as usize];
                desk.on_break = false;
                if !desk.on_shift {
                    return Ok(());
                }
                self.presence(a, Presence::Available)
            }
            Happening::ShiftEnd(a) => {
                self.account(a);
                let desk = &mut self.desks[a as usize];
                desk.on_shift = false;
                if desk.holding == 0 {
                    self.send(Event::AgentOffline {
                        agent: self.scenario.agents[a as usize].profile.id.clone(),
                    })
                } else {
                    desk.leaving = true;
                    self.presence(
                        a,
                        Presence::Away {
                            reason: "end of shift".into(),
                        },
                    )
                }
            }
            Happening::BackFromPause(a) => {
                let desk = &self.desks[a as usize];
                if desk.on_shift && !desk.on_break {
                    self.presence(a, Presence::Available)
                } else {
                    Ok(())
                }
            }
        }
    }

    fn presence(&mut self, a: u32, presence: Presence) -> Result<(), SimError> {
        self.send(Event::AgentPresence {
            agent: self.scenario.agents[a as usize].profile.id.clone(),
            presence,
        })
    }

    /// The agent's answer to the outstanding offer of `contact`.
    fn answer(&mut self, contact: u64, a: u32) -> Event {
        let agent = &self.scenario.agents[a as usize];
        let reject = agent.reject > 0.0 && self.dice.uniform() < agent.reject;
        let (contact, agent) = (ContactId(contact), agent.profile.id.clone());
        if reject {
            Event::OfferRejected { contact, agent }
        } else {
            Event::OfferAccepted { contact, agent }
        }
    }

    /// Reacts to everything the router said until it has nothing more to say.
    fn settle(&mut self) -> Result<(), SimError> {
        loop {
            self.actions.extend(self.router.drain_actions());
            if self.actions.is_empty() && self.immediate.is_empty() {
                return Ok(());
            }
            let mut actions = std::mem::take(&mut self.actions);
            for action in actions.drain(..) {
                self.react(action);
            }
            self.actions = actions;
            for event in std::mem::take(&mut self.immediate) {
                self.send(event)?;
            }
        }
    }

    fn agent(&self, id: &AgentId) -> u32 {
        *self
            .agent_index
            .get(id)
            .expect("the router only names agents the simulator logged in")
    }

    fn react(&mut self, action: Action) {
        match action {
            Action::Offer {
                contact,
                agent,
                expires_at,
                ..
            } => {
                let a = self.agent(&agent);
                self.hold(a, 1);
                let c = self
                    .customers
                    .get_mut(&contact.0)
                    .expect("offered contacts are followed");
                c.offer += 1;
                c.agent = Some(a);
                let offer = c.offer;
                let delay = match &self.scenario.agents[a as usize].answer_time {
                    Some(d) => self.dice.sample(d),
                    None => 0,
                };
                if self.now + delay >= expires_at {
                    // The agent does not answer in time: the router's offer expiry decides.
                } else if delay == 0 {
                    let event = self.answer(contact.0, a);
                    self.immediate.push(event);
                } else {
                    self.schedule(
                        self.now + delay,
                        Happening::Answer {
                            contact: contact.0,
                            offer,
                        },
                    );
                }
            }
            Action::RevokeOffer { contact, agent, .. } => {
                let a = self.agent(&agent);
                self.offer_ended(contact.0, a);
            }
            Action::Assigned {
                contact, waited, ..
            } => {
                let c = self
                    .customers
                    .get_mut(&contact.0)
                    .expect("assigned contacts are followed");
                c.answered = true;
                let (queue, interval, handle) = (c.queue, c.interval, c.handle_time);
                let threshold = self.scenario.plan.queue(queue).service_level_threshold;
                let t = &mut self.out.tallies[interval][usize::from(queue.0)];
                t.answered += 1;
                t.wait_ms += waited;
                t.longest_wait_ms = t.longest_wait_ms.max(waited);
                if waited <= threshold {
                    t.answered_within += 1;
                }
                self.schedule(self.now + handle, Happening::Completion(contact.0));
            }
            Action::WrapUpStarted { contact, .. } => {
                if let Some(c) = self.customers.get_mut(&contact.0) {
                    c.wrapping = true;
                }
            }
            Action::WrapUpEnded { agent, .. } => {
                let a = self.agent(&agent);
                self.hold(a, -1);
            }
            Action::ContactLeft {
                contact, outcome, ..
            } => {
                let c = self
                    .customers
                    .remove(&contact.0)
                    .expect("departing contacts are followed");
                let t = &mut self.out.tallies[c.interval][usize::from(c.queue.0)];
                match outcome {
                    Outcome::Completed => {
                        t.completed += 1;
                        t.handle_ms += c.handle_time;
                    }
                    Outcome::Abandoned => {
                        let waited = self.now - c.arrived;
                        t.abandoned += 1;
                        t.longest_wait_ms = t.longest_wait_ms.max(waited);
                        if waited < self.scenario.plan.queue(c.queue).short_abandon {
                            t.abandoned_short += 1;
                        }
                    }
                    Outcome::Cancelled => {}
                }
                if let (Some(a), false) = (c.agent, c.wrapping) {
                    self.hold(a, -1);
                }
            }
            Action::Escalated { contact, .. } => {
                if let Some(c) = self.customers.get(&contact.0) {
                    self.out.tallies[c.interval][usize::from(c.queue.0)].escalations += 1;
                }
            }
            Action::AgentAutoPaused { agent, .. } => {
                let a = self.agent(&agent);
                self.schedule(self.now + BACK_FROM_AUTO_PAUSE, Happening::BackFromPause(a));
            }
            Action::Requeued { contact, agent } => {
                // Only an agent going offline with contacts on hand causes this, and the
                // simulator logs agents out only once they hold nothing.
                debug_assert!(false, "contact {contact} requeued from {agent}");
            }
            Action::Transferred { contact, .. } => {
                // Only a transfer event causes this, and the simulator sends none. Sending one
                // would take more than this arm: an assigned contact transferred from a queue
                // without wrap-up frees its agent with no action to say so, and one that goes
                // to wrap-up would be offered anew still marked as wrapping.
                debug_assert!(false, "contact {contact} transferred");
            }
            Action::Position { .. } | Action::SlaWarning { .. } | Action::SlaBreach { .. } => {}
        }
    }

    /// An offer is over without becoming an assignment (rejected, expired, taken back): the
    /// agent no longer holds it, and the contact no longer waits on the agent's answer.
    fn offer_ended(&mut self, contact: u64, a: u32) {
        self.hold(a, -1);
        if let Some(c) = self.customers.get_mut(&contact)
            && c.agent == Some(a)
        {
            c.agent = None;
        }
    }

    /// Changes what an agent holds, accounting its time first; an agent whose shift is over
    /// logs out when it holds nothing.
    fn hold(&mut self, a: u32, change: i32) {
        self.account(a);
        let desk = &mut self.desks[a as usize];
        desk.holding = desk.holding.checked_add_signed(change).expect("holds >= 0");
        if desk.holding == 0 && desk.leaving && !desk.on_shift {
            desk.leaving = false;
            self.immediate.push(Event::AgentOffline {
                agent: self.scenario.agents[a as usize].profile.id.clone(),
            });
        }
    }

    /// Adds the agent's time since its last change to the interval buckets.
    fn account(&mut self, a: u32) {
        let now = self.now;
        let desk = &mut self.desks[a as usize];
        let (from, busy, staffed) = (desk.mark, desk.holding > 0, desk.staffed());
        desk.mark = now;
        // An agent with no shift end stays for contacts still waiting when the traffic ends,
        // but its idle time after that is no part of the working day.
        let now = if !busy && self.scenario.agents[a as usize].shift_end.is_none() {
            now.min(self.traffic_end)
        } else {
            now
        };
        if from >= now || !staffed {
            return;
        }
        let interval = self.scenario.interval;
        let last = self.intervals - 1;
        let mut t = from;
        while t < now {
            let i = ((t / interval) as usize).min(last);
            let end = if i == last {
                now
            } else {
                now.min((i as u64 + 1) * interval)
            };
            let span = (end - t) as f64;
            self.out.staffed[i] += span;
            if busy {
                self.out.busy[i] += span;
            }
            for &q in &self.qualified[a as usize] {
                self.out.queue_staffed[i][q] += span;
                if busy {
                    self.out.queue_busy[i][q] += span;
                }
            }
            t = end;
        }
    }
}

/// Per agent, the queues it can take contacts of as they arrive: the queue is on its list (or
/// its list is empty), its skills meet the queue's own requirement, and it has a slot for a
/// channel the queue's contacts come on in this run. Escalation steps and a contact's own skills
/// are left out: they change who may take one contact, not whose work a queue rests on.
fn qualified_queues(scenario: &Scenario, replay: Option<&[ReplayContact]>) -> Vec<Vec<usize>> {
    let queues = &scenario.plan.queues;
    let mut channels = vec![[false; Channel::ALL.len()]; queues.len()];
    let arrivals: Vec<(QueueId, Channel)> = match replay {
        Some(records) => records.iter().map(|r| (r.queue, r.channel)).collect(),
        None => scenario
            .streams
            .iter()
            .map(|s| (s.queue, s.channel))
            .collect(),
    };
    for (queue, channel) in arrivals {
        channels[usize::from(queue.0)][channel.index()] = true;
    }
    let requirements: Vec<Requirement> = queues.iter().map(|q| requirement_for(q, &[])).collect();
    scenario
        .agents
        .iter()
        .map(|agent| {
            let profile = &agent.profile;
            (0..queues.len())
                .filter(|&q| {
                    (profile.queues.is_empty() || profile.queues.contains(&QueueId(q as u16)))
                        && requirements[q].is_met_by(&profile.skills)
                        && Channel::ALL
                            .iter()
                            .any(|&c| channels[q][c.index()] && profile.capacity.of(c) > 0)
                })
                .collect()
        })
        .collect()
}

/// The event's name, for errors (formatting the whole event on every send would cost more
/// than routing it).
fn kind_of(event: &Event) -> &'static str {
    match event {
        Event::ContactQueued(_) => "ContactQueued",
        Event::ContactWithdrawn { .. } => "ContactWithdrawn",
        Event::ContactTransferred { .. } => "ContactTransferred",
        Event::ContactResponded { .. } => "ContactResponded",
        Event::ContactCompleted { .. } => "ContactCompleted",
        Event::AgentOnline { .. } => "AgentOnline",
        Event::AgentOffline { .. } => "AgentOffline",
        Event::AgentPresence { .. } => "AgentPresence",
        Event::AgentProfileChanged { .. } => "AgentProfileChanged",
        Event::OfferAccepted { .. } => "OfferAccepted",
        Event::OfferRejected { .. } => "OfferRejected",
        Event::WrapUpDone { .. } => "WrapUpDone",
        Event::Tick => "Tick",
    }
}

/// What an arrival needs, from a stream or a replayed record.
struct NewContactParts {
    queue: QueueId,
    channel: Channel,
    skills: Vec<SkillReq>,
    priority: i32,
    handle_time: Millis,
    patience: Option<Millis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_rests_on_the_agents_who_can_take_its_contacts_as_they_arrive() {
        let scenario = Scenario::from_toml_str(
            r#"
            intervals = 1
            [config]
            skills = ["billing", "support"]
            [config.routing]
            default_queue = "support"
            [config.sla.standard]
            first_response = "1h"
            [config.queues.billing]
            sla = "standard"
            skills = { billing = 4 }
            [config.queues.support]
            sla = "standard"
            skills = { support = 4 }
            [[config.queues.support.escalation]]
            after = "30s"
            relax = { support = 1 }
            [config.queues.chat]
            sla = "standard"
            [[traffic]]
            queue = "billing"
            arrivals_per_hour = 10
            handle_time = { distribution = "fixed", value = "1m" }
            [[traffic]]
            queue = "support"
            arrivals_per_hour = 10
            handle_time = { distribution = "fixed", value = "1m" }
            [[traffic]]
            queue = "chat"
            channel = "chat"
            arrivals_per_hour = 10
            handle_time = { distribution = "fixed", value = "1m" }
            [[agents]]
            name = "both"
            skills = { billing = 5, support = 5 }
            capacity = { voice = 1, chat = 2 }
            [[agents]]
            name = "billing-only-by-choice"
            skills = { billing = 5, support = 5 }
            capacity = { voice = 1, chat = 2 }
            queues = ["billing"]
            [[agents]]
            name = "novice"
            skills = { support = 2 }
            capacity = { voice = 1, chat = 2 }
            [[agents]]
            name = "phones-only"
            skills = { support = 5 }
            capacity = { voice = 1, chat = 0 }
            "#,
            "t.toml",
            ".",
        )
        .expect("valid");
        let names = |pools: Vec<Vec<usize>>| -> Vec<Vec<&str>> {
            pools
                .iter()
                .map(|queues| {
                    let mut names: Vec<&str> = queues
                        .iter()
                        .map(|&q| scenario.plan.queues[q].name.as_str())
                        .collect();
                    names.sort_unstable();
                    names
                })
                .collect()
        };
        assert_eq!(
            names(qualified_queues(&scenario, None)),
            [
                vec!["billing", "chat", "support"],
                // Its queue list keeps it out of the others, skills or not.
                vec!["billing"],
                // Support level 2 takes support calls only after the escalation step.
                vec!["chat"],
                // No chat slot, no chat queue.
                vec!["support"],
            ]
        );
        // A replay brings its own channels: with only a voice contact recorded in the chat
        // queue, every agent with a voice slot that serves the queue is counted for it, the
        // phones-only agent too, and nobody for queues without contacts.
        let replay = [ReplayContact {
            arrival: 0,
            channel: Channel::Voice,
            queue: scenario.plan.queue_id("chat").expect("a chat queue"),
            skills: Vec::new(),
            handle_time: 60_000,
            patience: None,
        }];
        assert_eq!(
            names(qualified_queues(&scenario, Some(&replay))),
            [vec!["chat"], vec![], vec!["chat"], vec!["chat"]]
        );
    }
}
