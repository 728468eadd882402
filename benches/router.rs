//! Routing decisions per second of the pure router, against a naive reference router measured in
//! the same run, plus the router's memory per waiting contact.
//!
//! Run: `cargo bench --bench router` (figures and method in docs/performance.md).
//!
//! The contact center: 200 skills; 50 queues, queue `i` requiring skill `i` at level 3 or more;
//! agents have one queue skill (level 5-10) and seven of the other 150 skills (languages,
//! products) at levels 1-10; every contact is drawn from some agent's skills (its queue, and for
//! 30 % of contacts one of its other skills at a tier 1, 4 or 7 it meets), so all work is
//! servable. Voice only, so every offer fills an agent.
//!
//! - `arrival`: a contact arrives while qualified agents are idle (and a backlog of `waiting`
//!   contacts sits in classes whose agents are all busy). One decision: pick the agent.
//! - `agent_free`: an agent ends its wrap-up (says ready) while `waiting` contacts are queued
//!   across the classes it serves. One decision: pick the contact. (The completion before it,
//!   which only books the call and starts wrap-up, is not timed.)
//!
//! Only the deciding event is timed: batches of decisions are timed together, and the untimed
//! part of each round (accepting offers, topping the queue back up) restores the state.

use std::alloc::System;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use switchboard::model::{
    AgentId, AgentProfile, AgentSkills, Capacity, Channel, ContactId, Millis, NewContact, Priority,
    QueueId, SkillId, SkillReq,
};
use switchboard::router::{
    Action, Event, Presence, QueuePlan, Router, RoutingPlan, WithdrawReason,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SKILLS: u16 = 200;
const QUEUES: u16 = 50;
const AGENT_SKILLS: usize = 8;
/// Decisions timed together.
const BATCH: usize = 64;

/// xorshift64*: deterministic, dependency-free randomness for building the center.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The center's queues; `wrap_up` is the after-call work each queue asks for.
fn plan(wrap_up: Millis) -> RoutingPlan {
    let queues = (0..QUEUES)
        .map(|q| {
            let mut plan = QueuePlan::new(format!("q{q}"));
            plan.skills = vec![SkillReq {
                skill: SkillId(q),
                min_level: 3,
                optional: false,
            }];
            plan.offer_timeout = 3_600_000;
            plan.sla.first_response = 30 * 86_400_000;
            plan.wrap_up = wrap_up;
            plan
        })
        .collect();
    RoutingPlan::new((0..SKILLS).map(|s| format!("skill{s}")).collect(), queues)
}

/// Agent skills as (skill, level); `queues` restricts which queue skills it gets.
/// Eight skills: one queue skill (level 5-10) from `queue_skills`, seven others (level 1-10).
fn agent_skills(rng: &mut Rng, queue_skills: std::ops::Range<u16>) -> Vec<(SkillId, u8)> {
    let span = u64::from(queue_skills.end - queue_skills.start);
    let mut skills = vec![(
        SkillId(queue_skills.start + rng.below(span) as u16),
        5 + rng.below(6) as u8,
    )];
    while skills.len() < AGENT_SKILLS {
        let s = QUEUES + rng.below(u64::from(SKILLS - QUEUES)) as u16;
        skills.push((SkillId(s), 1 + rng.below(10) as u8));
    }
    skills
}

/// A contact that the agent with these skills qualifies for: the agent's queue, and for 30 % of
/// contacts one of its other skills at or below its level. Drawing every contact from some
/// agent's skills keeps all work servable, so every timed event is a real decision.
fn contact_for(rng: &mut Rng, id: u64, skills: &[(SkillId, u8)], now: Millis) -> NewContact {
    let (queue, _) = skills[0];
    let extra = (rng.below(10) < 3).then(|| {
        let (skill, level) = skills[1 + rng.below(skills.len() as u64 - 1) as usize];
        // Minimum levels come in tiers (basic 1, intermediate 4, expert 7), as routing rules
        // write them; any tier at or below the agent's level.
        let tiers: Vec<u8> = [1, 4, 7].into_iter().filter(|&t| t <= level).collect();
        let min_level = tiers[rng.below(tiers.len() as u64) as usize];
        SkillReq {
            skill,
            min_level,
            optional: false,
        }
    });
    NewContact {
        id: ContactId(id),
        channel: Channel::Voice,
        queue: QueueId(queue.0),
        skills: extra.into_iter().collect(),
        priority: Priority(rng.below(3) as i32),
        arrived_at: now,
        preferred_agent: None,
        announce_position: false,
        sla: None,
    }
}

fn online(router: &mut Router, now: Millis, name: &AgentId, skills: Vec<(SkillId, u8)>) {
    router
        .handle(
            now,
            Event::AgentOnline {
                profile: AgentProfile {
                    id: name.clone(),
                    skills: AgentSkills::new(skills),
                    capacity: Capacity([1, 0, 0, 0, 0, 0]),
                    queues: Vec::new(),
                },
                presence: Presence::Available,
            },
        )
        .expect("valid agent");
}

fn offers(router: &mut Router) -> Vec<(ContactId, AgentId)> {
    router
        .drain_actions()
        .filter_map(|a| match a {
            Action::Offer { contact, agent, .. } => Some((contact, agent)),
            _ => None,
        })
        .collect()
}

// ----- the naive reference ------------------------------------------------------------------

/// The router a first draft would be: one list of waiting contacts, one list of agents, and a
/// full scan of the other side for every decision. Same rules (skills, priority then age,
/// longest idle), no indexes.
struct NaiveRouter {
    agents: Vec<NaiveAgent>,
    waiting: Vec<NaiveContact>,
}

struct NaiveAgent {
    levels: [u8; SKILLS as usize],
    busy: bool,
    idle_since: Millis,
}

#[derive(Clone)]
struct NaiveContact {
    id: u64,
    needs: Vec<(u16, u8)>,
    priority: i32,
    arrived_at: Millis,
}

impl NaiveRouter {
    fn qualifies(agent: &NaiveAgent, contact: &NaiveContact) -> bool {
        contact
            .needs
            .iter()
            .all(|&(s, l)| agent.levels[s as usize] >= l)
    }

    /// A contact arrives: scan every agent for the longest-idle qualified one.
    fn arrive(&mut self, contact: NaiveContact, now: Millis) -> Option<usize> {
        let best = self
            .agents
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.busy && Self::qualifies(a, &contact))
            .min_by_key(|(_, a)| a.idle_since)
            .map(|(i, _)| i);
        match best {
            Some(i) => {
                self.agents[i].busy = true;
                self.agents[i].idle_since = now;
            }
            None => self.waiting.push(contact),
        }
        best
    }

    /// An agent frees up: scan every waiting contact for the best one it qualifies for.
    fn free(&mut self, agent: usize) -> Option<NaiveContact> {
        let a = &self.agents[agent];
        let best = self
            .waiting
            .iter()
            .enumerate()
            .filter(|(_, c)| Self::qualifies(a, c))
            .min_by_key(|(_, c)| (std::cmp::Reverse(c.priority), c.arrived_at, c.id))
            .map(|(i, _)| i);
        match best {
            Some(i) => Some(self.waiting.swap_remove(i)),
            None => {
                self.agents[agent].busy = false;
                None
            }
        }
    }
}

fn naive_contact(c: &NewContact) -> NaiveContact {
    let mut needs = vec![(c.queue.0, 3)];
    needs.extend(c.skills.iter().map(|r| (r.skill.0, r.min_level)));
    NaiveContact {
        id: c.id.0,
        needs,
        priority: c.priority.0,
        arrived_at: c.arrived_at,
    }
}

fn naive_agent(skills: &[(SkillId, u8)]) -> NaiveAgent {
    let mut levels = [0u8; SKILLS as usize];
    for &(s, l) in skills {
        levels[s.0 as usize] = levels[s.0 as usize].max(l);
    }
    NaiveAgent {
        levels,
        busy: false,
        idle_since: 0,
    }
}

/// Runs `iters` decisions in batches of at most [`BATCH`]; `round(n)` runs one batch of `n` and
/// returns the time of its timed part.
fn in_batches(iters: u64, mut round: impl FnMut(usize) -> Duration) -> Duration {
    let mut timed = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = BATCH.min((iters - done) as usize);
        timed += round(n);
        done += n as u64;
    }
    timed
}

/// (agents, waiting contacts) for both decision scenarios.
const SIZES: [(usize, usize); 4] = [
    (1_000, 1_000),
    (1_000, 100_000),
    (10_000, 1_000),
    (10_000, 100_000),
];

fn decision_group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    group
}

/// `ROUTER_BENCH=arrival` (or `agent_free`, `position_tick`, `deep_line`, `memory`,
/// comma-separated) runs those groups only, skipping the others' setup, which would dominate a
/// profile.
fn wanted(group: &str) -> bool {
    std::env::var("ROUTER_BENCH").map_or(true, |only| only.split(',').any(|g| g == group))
}

/// A simulated contact center shared by the two routers of one scenario: agents' skills, a
/// virtual clock that moves 1 ms per event (as it would at a thousand events a second), and
/// counts of timed events and the offers they produced (to show every event was a decision).
struct Center {
    router: Router,
    naive: NaiveRouter,
    rng: Rng,
    now: Millis,
    next_id: u64,
    skills: Vec<Vec<(SkillId, u8)>>,
    events: [u64; 2],
    decisions: [u64; 2],
}

impl Center {
    fn new(seed: u64, wrap_up: Millis) -> Self {
        Center {
            router: Router::new(plan(wrap_up)),
            naive: NaiveRouter {
                agents: Vec::new(),
                waiting: Vec::new(),
            },
            rng: Rng(seed),
            now: 0,
            next_id: 0,
            skills: Vec::new(),
            events: [0; 2],
            decisions: [0; 2],
        }
    }

    fn tick(&mut self) -> Millis {
        self.now += 1;
        self.now
    }

    /// Logs an agent into both routers.
    fn hire(&mut self, skills: Vec<(SkillId, u8)>) -> usize {
        let i = self.skills.len();
        let now = self.tick();
        online(&mut self.router, now, &agent_name(i), skills.clone());
        self.naive.agents.push(naive_agent(&skills));
        self.skills.push(skills);
        i
    }

    /// A new contact servable by agent `i`.
    fn contact_for(&mut self, i: usize) -> NewContact {
        self.next_id += 1;
        contact_for(&mut self.rng, self.next_id, &self.skills[i], self.now)
    }

    fn handle(&mut self, event: Event) {
        let now = self.tick();
        self.router
            .handle(now, event)
            .expect("the bench sends valid events");
    }

    fn report(&self, scenario: &str, label: &str) {
        println!(
            "{scenario} {label}: router made {} offers in {} timed events, naive {} in {}",
            self.decisions[0], self.events[0], self.decisions[1], self.events[1]
        );
    }
}

fn agent_name(i: usize) -> AgentId {
    AgentId::new(format!("agent{i}"))
}

// ----- scenario (a): a contact arrives while agents are idle --------------------------------

/// The timed part of an arrival round, apart so that a profiler can count it alone
/// (`valgrind --tool=callgrind --toggle-collect='*timed_arrivals*'`).
#[inline(never)]
fn timed_arrivals(router: &mut Router, now: &mut Millis, batch: Vec<NewContact>) {
    for contact in batch {
        *now += 1;
        router
            .handle(*now, Event::ContactQueued(contact))
            .expect("valid");
    }
}

/// Half the agents serve queues 0-24 and sit idle; the other half serve queues 25-49 and are
/// away, with `waiting` contacts backed up in those queues.
fn arrival_center(agents: usize, waiting: usize) -> (Center, Vec<usize>) {
    let mut center = Center::new(0x5eed_0001, 0);
    let mut idle = Vec::new();
    for i in 0..agents {
        let serves = if i % 2 == 0 {
            0..QUEUES / 2
        } else {
            QUEUES / 2..QUEUES
        };
        let skills = agent_skills(&mut center.rng, serves);
        let a = center.hire(skills);
        if i % 2 == 0 {
            idle.push(a);
        } else {
            center.handle(Event::AgentPresence {
                agent: agent_name(a),
                presence: Presence::Away {
                    reason: "training".into(),
                },
            });
            center.naive.agents[a].busy = true;
        }
    }
    for k in 0..waiting {
        let away = 2 * (k % (agents / 2)) + 1;
        let c = center.contact_for(away);
        center.naive.waiting.push(naive_contact(&c));
        center.handle(Event::ContactQueued(c));
    }
    center.router.drain_actions().for_each(drop);
    (center, idle)
}

fn bench_arrival(c: &mut Criterion) {
    if !wanted("arrival") {
        return;
    }
    let mut group = decision_group(c, "arrival");
    for (agents, waiting) in SIZES {
        let label = format!("{agents}_agents/{waiting}_waiting");
        let (mut center, idle) = arrival_center(agents, waiting);
        let arriving = |center: &mut Center| {
            let i = idle[center.rng.below(idle.len() as u64) as usize];
            center.contact_for(i)
        };
        group.bench_function(BenchmarkId::new("router", &label), |b| {
            b.iter_custom(|iters| {
                in_batches(iters, |n| {
                    let batch: Vec<NewContact> = (0..n).map(|_| arriving(&mut center)).collect();
                    let start = Instant::now();
                    timed_arrivals(&mut center.router, &mut center.now, batch);
                    let timed = start.elapsed();
                    // Untimed: answer and finish the offered contacts, freeing the agents (a
                    // freed agent may be offered a rare arrival that found every qualified
                    // agent taken: finish those too, until everyone is idle again).
                    let mut offered = offers(&mut center.router);
                    center.events[0] += n as u64;
                    center.decisions[0] += offered.len() as u64;
                    while !offered.is_empty() {
                        for (contact, agent) in offered {
                            center.handle(Event::OfferAccepted { contact, agent });
                            center.handle(Event::ContactCompleted { contact });
                        }
                        offered = offers(&mut center.router);
                    }
                    timed
                })
            });
        });
        group.bench_function(BenchmarkId::new("naive", &label), |b| {
            b.iter_custom(|iters| {
                in_batches(iters, |n| {
                    let batch: Vec<NaiveContact> = (0..n)
                        .map(|_| naive_contact(&arriving(&mut center)))
                        .collect();
                    let mut served = Vec::with_capacity(n);
                    let start = Instant::now();
                    for contact in batch {
                        center.now += 1;
                        served.push(center.naive.arrive(contact, center.now));
                    }
                    let timed = start.elapsed();
                    center.events[1] += n as u64;
                    for agent in served.into_iter().flatten() {
                        center.decisions[1] += 1;
                        center.now += 1;
                        center.naive.agents[agent].busy = false;
                        center.naive.agents[agent].idle_since = center.now;
                    }
                    center.naive.waiting.truncate(waiting);
                    timed
                })
            });
        });
        center.report("arrival", &label);
    }
    group.finish();
}

// ----- scenario (b): an agent frees up with a deep queue ------------------------------------

/// The timed part of an agent-free round: each agent says ready (see `timed_arrivals`).
#[inline(never)]
fn timed_ready(router: &mut Router, now: &mut Millis, agents: Vec<AgentId>) {
    for agent in agents {
        *now += 1;
        let ready = Event::WrapUpDone {
            agent,
            contact: None,
        };
        router.handle(*now, ready).expect("in wrap-up");
    }
}

/// Every agent busy on a call, `waiting` contacts queued behind them, each servable by some
/// agent. Returns the center and the (contact, agent index) pairs assigned.
fn busy_center(agents: usize, waiting: usize) -> (Center, Vec<(ContactId, usize)>) {
    let mut center = Center::new(0x5eed_0002, 60_000);
    for _ in 0..agents {
        let skills = agent_skills(&mut center.rng, 0..QUEUES);
        center.hire(skills);
        center.handle(Event::AgentPresence {
            agent: agent_name(center.skills.len() - 1),
            presence: Presence::Away {
                reason: "login".into(),
            },
        });
    }
    // Each agent's own first contact, then the backlog drawn from random agents' skills.
    for i in 0..agents {
        let c = center.contact_for(i);
        center.naive.waiting.push(naive_contact(&c));
        center.handle(Event::ContactQueued(c));
    }
    for _ in 0..waiting {
        let i = center.rng.below(agents as u64) as usize;
        let c = center.contact_for(i);
        center.naive.waiting.push(naive_contact(&c));
        center.handle(Event::ContactQueued(c));
    }
    let mut assigned = Vec::new();
    for i in 0..agents {
        if center.naive.free(i).is_some() {
            center.naive.agents[i].busy = true;
        }
        center.handle(Event::AgentPresence {
            agent: agent_name(i),
            presence: Presence::Available,
        });
        for (contact, agent) in offers(&mut center.router) {
            center.handle(Event::OfferAccepted { contact, agent });
            assigned.push((contact, i));
        }
    }
    center.router.drain_actions().for_each(drop);
    (center, assigned)
}

fn bench_agent_free(c: &mut Criterion) {
    if !wanted("agent_free") {
        return;
    }
    let mut group = decision_group(c, "agent_free");
    for (agents, waiting) in SIZES {
        let label = format!("{agents}_agents/{waiting}_waiting");
        let (mut center, mut assigned) = busy_center(agents, waiting);
        assert!(assigned.len() > agents * 9 / 10, "agents start busy");
        group.bench_function(BenchmarkId::new("router", &label), |b| {
            b.iter_custom(|iters| {
                in_batches(iters, |n| {
                    let finishing: Vec<(ContactId, usize)> = (0..n)
                        .map(|_| {
                            assigned.swap_remove(center.rng.below(assigned.len() as u64) as usize)
                        })
                        .collect();
                    // Untimed: the calls end and the agents go into wrap-up.
                    for &(contact, _) in &finishing {
                        center.handle(Event::ContactCompleted { contact });
                    }
                    center.router.drain_actions().for_each(drop);
                    // Timed: each agent says ready, and the router picks its next contact.
                    let ready: Vec<AgentId> =
                        finishing.iter().map(|&(_, i)| agent_name(i)).collect();
                    let start = Instant::now();
                    timed_ready(&mut center.router, &mut center.now, ready);
                    let timed = start.elapsed();
                    // Untimed: each freed agent's work is replaced by a new contact it could
                    // serve, so the backlog keeps its depth, and the offers are accepted.
                    let offered = offers(&mut center.router);
                    center.events[0] += n as u64;
                    center.decisions[0] += offered.len() as u64;
                    for &(_, i) in &finishing {
                        let c = center.contact_for(i);
                        center.handle(Event::ContactQueued(c));
                    }
                    let topped_up = offers(&mut center.router);
                    for (contact, agent) in offered.into_iter().chain(topped_up) {
                        let i: usize = agent.as_str()["agent".len()..]
                            .parse()
                            .expect("bench agent name");
                        center.handle(Event::OfferAccepted { contact, agent });
                        assigned.push((contact, i));
                    }
                    timed
                })
            });
        });
        let busy: Vec<usize> = (0..agents)
            .filter(|&i| center.naive.agents[i].busy)
            .collect();
        group.bench_function(BenchmarkId::new("naive", &label), |b| {
            b.iter_custom(|iters| {
                in_batches(iters, |n| {
                    let freeing: Vec<usize> = (0..n)
                        .map(|_| busy[center.rng.below(busy.len() as u64) as usize])
                        .collect();
                    let mut served = Vec::with_capacity(n);
                    let start = Instant::now();
                    for &agent in &freeing {
                        served.push(center.naive.free(agent));
                    }
                    let timed = start.elapsed();
                    // Untimed: every freed agent is busy again, and the backlog gets a new
                    // contact each freed agent could serve.
                    center.events[1] += n as u64;
                    center.decisions[1] += served.iter().flatten().count() as u64;
                    for &agent in &freeing {
                        center.naive.agents[agent].busy = true;
                        let c = center.contact_for(agent);
                        center.naive.waiting.push(naive_contact(&c));
                    }
                    timed
                })
            });
        });
        center.report("agent_free", &label);
    }
    group.finish();
}

// ----- position updates ---------------------------------------------------------------------

/// Cost of one position tick when `waiting` live customers (chat/voice) all moved up a place.
fn bench_position_tick(c: &mut Criterion) {
    if !wanted("position_tick") {
        return;
    }
    let mut group = c.benchmark_group("position_tick");
    group.sample_size(10);
    for waiting in [1_000u64, 100_000] {
        group.throughput(Throughput::Elements(waiting));
        group.bench_function(BenchmarkId::from_parameter(waiting), |b| {
            let mut q = QueuePlan::new("q");
            q.offer_timeout = 3_600_000;
            q.sla.first_response = 30 * 86_400_000;
            let mut router = Router::new(RoutingPlan::new(vec!["s".into()], vec![q]));
            for id in 0..waiting {
                router
                    .handle(0, Event::ContactQueued(live_contact(id, 0)))
                    .expect("valid");
            }
            let name = AgentId::new("a");
            online(&mut router, 0, &name, vec![]);
            let mut outstanding = offers(&mut router)
                .pop()
                .expect("the agent is offered the head");
            let mut now = 0;
            let mut next = waiting;
            b.iter(|| {
                // The head is served and a newcomer joins: everyone moves up one place.
                let (contact, agent) = outstanding.clone();
                router
                    .handle(now, Event::OfferAccepted { contact, agent })
                    .expect("offered");
                router
                    .handle(now, Event::ContactCompleted { contact })
                    .expect("assigned");
                next += 1;
                router
                    .handle(now, Event::ContactQueued(live_contact(next, now)))
                    .expect("valid");
                outstanding = offers(&mut router).pop().expect("the next head is offered");
                now += 1_000;
                router.tick(now);
                black_box(router.drain_actions().count())
            });
        });
    }
    group.finish();
}

fn live_contact(id: u64, now: Millis) -> NewContact {
    NewContact {
        id: ContactId(id),
        channel: Channel::Voice,
        queue: QueueId(0),
        skills: Vec::new(),
        priority: Priority(0),
        arrived_at: now,
        preferred_agent: None,
        announce_position: true,
        sla: None,
    }
}

// ----- one deep line ------------------------------------------------------------------------

/// What a line's deque costs where a tree did not: a contact joining the middle of one class
/// of 100,000 waiting (a replayed or overflowing contact that keeps its age), against one joining
/// at the back, in the same run. Each timed arrival is withdrawn (untimed) so the line keeps its
/// depth. No agents: the arrival only waits.
fn bench_deep_line(c: &mut Criterion) {
    if !wanted("deep_line") {
        return;
    }
    const DEPTH: u64 = 100_000;
    let mut group = c.benchmark_group("deep_line");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    let mut q = QueuePlan::new("q");
    q.offer_timeout = 3_600_000;
    q.sla.first_response = 30 * 86_400_000;
    let mut router = Router::new(RoutingPlan::new(vec!["s".into()], vec![q]));
    let mut now: Millis = 2 * DEPTH;
    for id in 0..DEPTH {
        // Arrived a millisecond apart, in order: the line is sorted by arrival.
        let mut contact = live_contact(id, 2 * id);
        contact.announce_position = false;
        router
            .handle(now, Event::ContactQueued(contact))
            .expect("valid");
    }
    let mut next = DEPTH;
    for (label, arrived_at) in [("back", None), ("middle", Some(DEPTH + 1))] {
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    next += 1;
                    now += 1;
                    let mut contact = live_contact(next, arrived_at.unwrap_or(now));
                    contact.announce_position = false;
                    let start = Instant::now();
                    router
                        .handle(now, Event::ContactQueued(contact))
                        .expect("valid");
                    timed += start.elapsed();
                    router
                        .handle(
                            now,
                            Event::ContactWithdrawn {
                                contact: ContactId(next),
                                reason: WithdrawReason::Cancelled,
                            },
                        )
                        .expect("waiting");
                    router.drain_actions().for_each(drop);
                }
                timed
            });
        });
    }
    group.finish();
}

// ----- memory -------------------------------------------------------------------------------

/// Heap bytes the router holds per waiting contact: 100 000 contacts queued into the 10k-agent
/// center with every agent away, measured by the instrumented allocator.
fn report_memory(_c: &mut Criterion) {
    if !wanted("memory") {
        return;
    }
    let mut center = Center::new(0x5eed_0003, 0);
    for i in 0..10_000 {
        let skills = agent_skills(&mut center.rng, 0..QUEUES);
        center.hire(skills);
        center.handle(Event::AgentPresence {
            agent: agent_name(i),
            presence: Presence::Away {
                reason: "meeting".into(),
            },
        });
    }
    center.router.drain_actions().for_each(drop);
    let contacts: Vec<NewContact> = (0..100_000)
        .map(|k| center.contact_for(k % 10_000))
        .collect();
    let region = Region::new(GLOBAL);
    for c in contacts {
        center.handle(Event::ContactQueued(c));
    }
    center.router.drain_actions().for_each(drop);
    let change = region.change();
    let net = change.bytes_allocated as i64 - change.bytes_deallocated as i64
        + change.bytes_reallocated as i64;
    println!(
        "memory: {} bytes of router heap per waiting contact (100000 waiting, 10000 agents; net {} bytes)",
        net / 100_000,
        net
    );
    black_box(&center.router);
}

criterion_group!(
    benches,
    report_memory,
    bench_arrival,
    bench_agent_free,
    bench_position_tick,
    bench_deep_line
);
criterion_main!(benches);
