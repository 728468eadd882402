//! The cost of metrics on the routing hot path: contacts routed per second through the real
//! router plus the metric updates the daemon makes for each contact, with the daemon's
//! Prometheus recorder installed and with a no-op recorder, in the same run.
//!
//! Run: `cargo bench --bench metrics` (figures in docs/performance.md).
//!
//! The center: 8 queues, 200 voice agents (25 per queue), every agent busy and 400 contacts
//! waiting. One cycle is one contact's life as the router task sees it: an agent completes its
//! contact (`ContactLeft`: handle-time histogram), the router offers it the head of its line,
//! the agent accepts (`Assigned`: accepted-offer counter and wait histogram), and a new contact
//! arrives to keep the line steady (at intake: received counter, HTTP request counter,
//! classification and journal-commit histograms, as `POST /v1/contacts` records them). Label
//! values are built the way the daemon builds them (queue names cloned from the plan, channel
//! names from the contact).
//!
//! The router gauges (waiting, oldest wait, service level, agents) are refreshed once a second,
//! not per contact, and are left out. The exporter is rendered after every timed batch, outside
//! the timing, as a scrape would drain it.
//!
//! The router task keeps its handles registered once per queue (`switchboard::metrics::
//! QueueMeters`), as the daemon does; intake records through the macros, as `POST /v1/contacts`
//! does. A variant with a macro per update everywhere shows what the handles save, and a pair
//! without the intake updates isolates the router task: the one serial thread every contact
//! passes through, where metrics cost throughput (intake runs on many tasks at once).
//!
//! Besides criterion's measurements, `report` alternates the variants over ten rounds and
//! prints the median of each and the difference: the figures for docs/performance.md. The
//! no-op variants run the very same code with every handle registered with a no-op recorder.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};
use switchboard::metrics as m;
use switchboard::model::{
    AgentId, AgentProfile, AgentSkills, Capacity, Channel, ContactId, Millis, NewContact, Priority,
    QueueId, SkillId, SkillReq,
};
use switchboard::router::{Action, Event, Presence, QueuePlan, Router, RoutingPlan};

const QUEUES: u16 = 8;
const AGENTS: usize = 200;
const WAITING: usize = 400;

/// The router in steady state: every agent busy, a line of waiting contacts in every queue.
struct Center {
    router: Router,
    /// The contact each agent holds.
    holding: Vec<(AgentId, ContactId)>,
    next_id: u64,
    now: Millis,
    /// Which agent to free next.
    turn: usize,
    /// How metrics are recorded in the variant being measured.
    recording: Recording,
}

/// How the center records its metrics.
struct Recording {
    /// The router task's handles, as the daemon keeps them; `None`: a macro per update, as the
    /// daemon did before.
    meters: Option<Vec<m::QueueMeters>>,
    /// Whether intake's updates are made (off to time the router task alone).
    intake: bool,
}

impl Recording {
    /// The daemon's way, with every handle registered with the current recorder.
    fn daemon(plan: &RoutingPlan, intake: bool) -> Recording {
        let meters = plan
            .queues
            .iter()
            .map(|q| m::QueueMeters::register(&q.name))
            .collect();
        Recording {
            meters: Some(meters),
            intake,
        }
    }
}

fn plan() -> RoutingPlan {
    let queues = (0..QUEUES)
        .map(|q| {
            let mut plan = QueuePlan::new(format!("queue{q}"));
            plan.skills = vec![SkillReq {
                skill: SkillId(q),
                min_level: 3,
                optional: false,
            }];
            plan.offer_timeout = 3_600_000;
            plan.sla.first_response = 30 * 86_400_000;
            plan.wrap_up = 0;
            plan
        })
        .collect();
    RoutingPlan::new((0..QUEUES).map(|s| format!("skill{s}")).collect(), queues)
}

fn contact(id: u64, queue: u16, now: Millis) -> NewContact {
    NewContact {
        id: ContactId(id),
        channel: Channel::Voice,
        queue: QueueId(queue),
        skills: Vec::new(),
        priority: Priority(0),
        arrived_at: now,
        preferred_agent: None,
        announce_position: false,
        sla: None,
    }
}

impl Center {
    fn new() -> Center {
        let mut router = Router::new(plan());
        let mut now = 1_000;
        let mut center_agents = Vec::new();
        for a in 0..AGENTS {
            let id = AgentId::new(format!("agent{a}"));
            let profile = AgentProfile {
                id: id.clone(),
                skills: AgentSkills::new(vec![(SkillId((a % QUEUES as usize) as u16), 5)]),
                capacity: Capacity([1, 0, 0, 0, 0, 0]),
                queues: Vec::new(),
            };
            router
                .handle(
                    now,
                    Event::AgentOnline {
                        profile,
                        presence: Presence::Available,
                    },
                )
                .expect("agent online");
            center_agents.push(id);
        }
        router.drain_actions().for_each(drop);
        let mut next_id = 1;
        let mut holding = Vec::new();
        // One contact per agent (offered and accepted), then the waiting line.
        for a in 0..AGENTS + WAITING {
            now += 1;
            let queue = (a % QUEUES as usize) as u16;
            router
                .handle(now, Event::ContactQueued(contact(next_id, queue, now)))
                .expect("queued");
            next_id += 1;
            let offers: Vec<(ContactId, AgentId)> = router
                .drain_actions()
                .filter_map(|action| match action {
                    Action::Offer { contact, agent, .. } => Some((contact, agent)),
                    _ => None,
                })
                .collect();
            for (contact, agent) in offers {
                router
                    .handle(
                        now,
                        Event::OfferAccepted {
                            contact,
                            agent: agent.clone(),
                        },
                    )
                    .expect("accepted");
                holding.push((agent, contact));
            }
            router.drain_actions().for_each(drop);
        }
        assert_eq!(holding.len(), AGENTS, "every agent busy");
        Center {
            router,
            holding,
            next_id,
            now,
            turn: 0,
            recording: Recording {
                meters: None,
                intake: true,
            },
        }
    }

    /// One contact's life through the router, with the daemon's metric updates.
    fn cycle(&mut self) {
        self.now += 1;
        let now = self.now;
        let slot = self.turn % AGENTS;
        self.turn += 1;
        let (agent, done) = self.holding[slot].clone();
        self.router
            .handle(now, Event::ContactCompleted { contact: done })
            .expect("completed");
        let mut offered = None;
        let actions: Vec<Action> = self.router.drain_actions().collect();
        for action in actions {
            match action {
                Action::Offer { contact, agent, .. } => offered = Some((contact, agent)),
                other => self.record(other, now),
            }
        }
        let (next, to) = offered.expect("the freed agent is offered the head of its line");
        debug_assert_eq!(to, agent);
        self.router
            .handle(
                now,
                Event::OfferAccepted {
                    contact: next,
                    agent: to.clone(),
                },
            )
            .expect("accepted");
        let actions: Vec<Action> = self.router.drain_actions().collect();
        for action in actions {
            self.record(action, now);
        }
        self.holding[slot] = (to, next);
        // A new contact for the same queue keeps every line as long as it was.
        let queue = (slot % QUEUES as usize) as u16;
        let id = self.next_id;
        self.next_id += 1;
        self.intake(queue);
        self.router
            .handle(now, Event::ContactQueued(contact(id, queue, now)))
            .expect("queued");
        let actions: Vec<Action> = self.router.drain_actions().collect();
        for action in actions {
            self.record(action, now);
        }
    }

    fn queue_name(&self, q: QueueId) -> String {
        self.router.plan().queue(q).name.clone()
    }

    /// What `POST /v1/contacts` records for an accepted contact.
    fn intake(&self, queue: u16) {
        if !self.recording.intake {
            return;
        }
        let name = self.queue_name(QueueId(queue));
        metrics::histogram!(m::CLASSIFY_SECONDS).record(black_box(0.000_02));
        metrics::histogram!(m::JOURNAL_COMMIT_SECONDS).record(black_box(0.002));
        metrics::counter!(m::CONTACTS_RECEIVED, "channel" => "voice", "queue" => name).increment(1);
        metrics::counter!(m::HTTP_REQUESTS, "route" => "/v1/contacts", "status" => "202")
            .increment(1);
    }

    /// What the daemon's router task records for an action (daemon.rs `execute`).
    fn record(&mut self, action: Action, now: Millis) {
        if let Some(meters) = &mut self.recording.meters {
            match action {
                Action::Assigned { queue, waited, .. } => {
                    let q = &mut meters[usize::from(queue.0)];
                    q.offer(m::OfferOutcome::Accepted);
                    q.answered(Channel::Voice, waited as f64 / 1000.0);
                }
                Action::ContactLeft { queue, .. } => {
                    meters[usize::from(queue.0)]
                        .handled(Channel::Voice, now as f64 / 1000.0 % 600.0);
                }
                _ => {}
            }
            return;
        }
        match action {
            Action::Assigned { queue, waited, .. } => {
                let name = self.queue_name(queue);
                metrics::counter!(m::OFFERS, "queue" => name.clone(), "outcome" => "accepted")
                    .increment(1);
                metrics::histogram!(m::WAIT_SECONDS, "queue" => name, "channel" => Channel::Voice.as_str())
                    .record(waited as f64 / 1000.0);
            }
            Action::ContactLeft { queue, .. } => {
                let name = self.queue_name(queue);
                let channel = String::from("voice");
                metrics::histogram!(m::HANDLE_SECONDS, "queue" => name, "channel" => channel)
                    .record(now as f64 / 1000.0 % 600.0);
            }
            _ => {}
        }
    }
}

/// The daemon's recorder (the buckets of `switchboard::metrics::install`), not installed
/// globally so that the same process can also run without it.
fn prometheus() -> PrometheusRecorder {
    let wait = [
        1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0, 86400.0,
    ];
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(m::WAIT_SECONDS.into()), &wait)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(m::HANDLE_SECONDS.into()), &wait))
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(m::JOURNAL_COMMIT_SECONDS.into()),
                &[
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0,
                ],
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(m::CLASSIFY_SECONDS.into()),
                &[
                    0.00001, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.005, 0.01,
                ],
            )
        })
        .expect("buckets")
        .build_recorder()
}

/// Runs `n` cycles with `recorder` as this thread's recorder; the time they took.
fn timed(center: &mut Center, recorder: &dyn metrics::Recorder, n: u64) -> Duration {
    metrics::with_local_recorder(recorder, || {
        let started = Instant::now();
        for _ in 0..n {
            center.cycle();
        }
        started.elapsed()
    })
}

/// A center recording the daemon's way with `recorder`'s handles.
fn center_with(recorder: &dyn metrics::Recorder, intake: bool) -> Center {
    let mut center = Center::new();
    center.recording =
        metrics::with_local_recorder(recorder, || Recording::daemon(center.router.plan(), intake));
    center
}

fn bench_metrics_cost(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics_cost");
    group.throughput(Throughput::Elements(1));
    let recorder = prometheus();
    let handle = recorder.handle();
    let mut center = center_with(&recorder, true);
    group.bench_function("prometheus_daemon", |b| {
        b.iter_custom(|iters| {
            let took = timed(&mut center, &recorder, iters);
            black_box(handle.render());
            took
        })
    });
    let macros = prometheus();
    let macros_handle = macros.handle();
    let mut center = Center::new();
    group.bench_function("prometheus_macros_everywhere", |b| {
        b.iter_custom(|iters| {
            let took = timed(&mut center, &macros, iters);
            black_box(macros_handle.render());
            took
        })
    });
    let mut center = center_with(&metrics::NoopRecorder, true);
    group.bench_function("noop_recorder", |b| {
        b.iter_custom(|iters| timed(&mut center, &metrics::NoopRecorder, iters))
    });
    group.finish();
}

/// Ten alternating rounds of each variant; medians and the differences.
fn report(_c: &mut Criterion) {
    const ROUND: u64 = 200_000;
    let recorder = prometheus();
    let handle = recorder.handle();
    let noop = &metrics::NoopRecorder;
    let mut variants: Vec<(&str, Center, &dyn metrics::Recorder)> = vec![
        ("no-op recorder, whole cycle", center_with(noop, true), noop),
        (
            "Prometheus, the daemon (router task handles, intake macros)",
            center_with(&recorder, true),
            &recorder,
        ),
        (
            "Prometheus, a macro per update everywhere (before)",
            Center::new(),
            &recorder,
        ),
        (
            "no-op recorder, router task only",
            center_with(noop, false),
            noop,
        ),
        (
            "Prometheus, router task only (its handles)",
            center_with(&recorder, false),
            &recorder,
        ),
    ];
    // Warm every path (label registration, allocator).
    for (_, center, rec) in &mut variants {
        timed(center, *rec, ROUND / 4);
    }
    let mut rates = vec![Vec::new(); variants.len()];
    for _ in 0..10 {
        for (i, (_, center, rec)) in variants.iter_mut().enumerate() {
            let took = timed(center, *rec, ROUND);
            rates[i].push(ROUND as f64 / took.as_secs_f64());
            black_box(handle.render());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[4] + v[5]) / 2.0
    };
    let rates: Vec<f64> = rates.iter_mut().map(median).collect();
    println!("metrics cost (median of 10 alternating rounds of {ROUND} contacts):");
    for (i, (name, _, _)) in variants.iter().enumerate() {
        let baseline = if i < 3 { rates[0] } else { rates[3] };
        let rate = rates[i];
        if i == 0 || i == 3 {
            println!("  {name:<62} {rate:>9.0} contacts/s (baseline)");
        } else {
            println!(
                "  {name:<62} {rate:>9.0} contacts/s, {:>5.1} % fewer, {:>5.0} ns of metrics a contact",
                (1.0 - rate / baseline) * 100.0,
                (1.0 / rate - 1.0 / baseline) * 1e9
            );
        }
    }
}

criterion_group!(benches, bench_metrics_cost, report);
criterion_main!(benches);
