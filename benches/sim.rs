//! Simulated contacts per second of wall time, through the real router, beside two baselines
//! measured in the same run.
//!
//! Run: `cargo bench --bench sim` (figures and method in docs/performance.md).
//!
//! - `simulate`: a million contacts (one queue, 200 single-call agents at 90 % occupancy,
//!   exponential handle times, 1 % of offers rejected, patience of 2 minutes) through
//!   `switchboard::sim`, the scenario compiled once and run `RUNS` times.
//! - `bare loop`: the same arrivals, handle times and patience drawn from the same generator and
//!   run through a textbook M/M/n+M event loop (binary heap of events, a FIFO line, a count of
//!   free agents): what simulating costs without routing, the floor the router sits on.
//! - `erlang`: `staffing` for the same load by Erlang C and by Erlang A, for scale.
//!
//! Plain `main` rather than criterion: one run takes seconds, and the figure a reader wants is
//! the median contacts per second over a few runs.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hint::black_box;
use std::time::Instant;

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use switchboard::sim::erlang::{Load, StaffingRequest};
use switchboard::sim::{Scenario, simulate};

const RUNS: usize = 5;
const AGENTS: u32 = 200;
const AHT_S: f64 = 240.0;
const PATIENCE_S: f64 = 120.0;
/// Contacts per hour for 90 % occupancy.
const PER_HOUR: f64 = 0.9 * AGENTS as f64 * 3600.0 / AHT_S;
/// Hours that bring a million contacts.
const HOURS: u32 = (1_000_000.0 / PER_HOUR) as u32 + 1;

fn scenario() -> Scenario {
    let text = format!(
        r#"
        seed = 1
        interval = "1h"
        intervals = {HOURS}
        [config]
        skills = ["support"]
        [config.routing]
        default_queue = "support"
        [config.sla.standard]
        first_response = "5m"
        [config.queues.support]
        sla = "standard"
        skills = {{ support = 3 }}
        [[traffic]]
        queue = "support"
        arrivals_per_hour = {PER_HOUR}
        handle_time = {{ distribution = "exponential", mean = "{AHT_S}s" }}
        patience = {{ distribution = "exponential", mean = "{PATIENCE_S}s" }}
        [[agents]]
        name = "agent"
        count = {AGENTS}
        skills = {{ support = 5 }}
        capacity = {{ voice = 1 }}
        reject = 0.01
        "#
    );
    Scenario::from_toml_str(&text, "bench.toml", ".").expect("valid")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What the bare loop reports, so the work cannot be optimised away.
struct Bare {
    contacts: u64,
    answered: u64,
    abandoned: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum What {
    Arrival,
    Done,
    GiveUp(u64),
}

/// M/M/n+M with a heap of events and a FIFO line, milliseconds as in the simulator.
fn bare_loop() -> Bare {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let mut uniform = move || (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    let mut heap: BinaryHeap<Reverse<(u64, u64, What)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |heap: &mut BinaryHeap<_>, at: u64, what| {
        seq += 1;
        heap.push(Reverse((at, seq, what)));
    };
    let rate_ms = PER_HOUR / 3_600_000.0;
    let end = u64::from(HOURS) * 3_600_000;
    let mut free = AGENTS;
    let mut line: VecDeque<u64> = VecDeque::new();
    let mut waiting = rustc_hash::FxHashMap::default();
    let mut out = Bare {
        contacts: 0,
        answered: 0,
        abandoned: 0,
    };
    let first = (-(1.0 - uniform()).ln() / rate_ms) as u64;
    push(&mut heap, first, What::Arrival);
    while let Some(Reverse((now, _, what))) = heap.pop() {
        match what {
            What::Arrival => {
                out.contacts += 1;
                let id = out.contacts;
                let handle = (-(1.0 - uniform()).ln() * AHT_S * 1000.0) as u64;
                let patience = (-(1.0 - uniform()).ln() * PATIENCE_S * 1000.0) as u64;
                if free > 0 {
                    free -= 1;
                    out.answered += 1;
                    push(&mut heap, now + handle, What::Done);
                } else {
                    line.push_back(id);
                    waiting.insert(id, handle);
                    push(&mut heap, now + patience, What::GiveUp(id));
                }
                let next = now + (-(1.0 - uniform()).ln() / rate_ms) as u64;
                if next < end {
                    push(&mut heap, next, What::Arrival);
                }
            }
            What::Done => {
                free += 1;
                while let Some(id) = line.pop_front() {
                    if let Some(handle) = waiting.remove(&id) {
                        free -= 1;
                        out.answered += 1;
                        push(&mut heap, now + handle, What::Done);
                        break;
                    }
                }
            }
            What::GiveUp(id) => {
                if waiting.remove(&id).is_some() {
                    out.abandoned += 1;
                }
            }
        }
    }
    out
}

fn main() {
    let scenario = scenario();
    println!("{AGENTS} agents, {PER_HOUR} contacts/h, {HOURS} simulated hours, {RUNS} runs each");

    let mut rates = Vec::new();
    let mut seconds = Vec::new();
    let mut contacts = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let report = simulate(black_box(&scenario)).expect("runs");
        let elapsed = started.elapsed().as_secs_f64();
        contacts = report.contacts;
        rates.push(report.contacts as f64 / elapsed);
        seconds.push(elapsed);
        let all = report.queues.last().expect("all");
        black_box(all.service_level);
    }
    let simulate_rate = median(rates);
    println!(
        "simulate (real router): {contacts} contacts, median {:.2} s, {:.0} contacts/s",
        median(seconds),
        simulate_rate
    );

    let mut rates = Vec::new();
    let mut seconds = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let bare = black_box(bare_loop());
        let elapsed = started.elapsed().as_secs_f64();
        black_box((bare.answered, bare.abandoned));
        rates.push(bare.contacts as f64 / elapsed);
        seconds.push(elapsed);
        contacts = bare.contacts;
    }
    let bare_rate = median(rates);
    println!(
        "bare M/M/n+M loop (no router): {contacts} contacts, median {:.2} s, {:.0} contacts/s",
        median(seconds),
        bare_rate
    );
    println!(
        "the router's share: {:.2} µs per contact ({:.1}x the bare loop's time)",
        (1.0 / simulate_rate - 1.0 / bare_rate) * 1e6,
        bare_rate / simulate_rate
    );

    let load = Load::per_hour(PER_HOUR, AHT_S);
    for (name, patience) in [("Erlang C", None), ("Erlang A", Some(PATIENCE_S))] {
        let request = StaffingRequest {
            load,
            target: 0.8,
            within: 20.0,
            max_occupancy: None,
            patience,
        };
        let mut times = Vec::new();
        let mut agents = 0;
        for _ in 0..RUNS {
            let started = Instant::now();
            agents = black_box(request.staff()).expect("staffable").agents;
            times.push(started.elapsed().as_secs_f64());
        }
        println!(
            "staffing by {name} for the same load: {agents} agents, median {:.3} ms",
            median(times) * 1000.0
        );
    }
}
