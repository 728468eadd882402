//! What a run measured, per queue and per interval, as a terminal table, CSV or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::engine::Outcomes;
use super::scenario::Scenario;
use crate::model::Millis;

/// Counts for one queue in one interval (contacts counted in the interval they arrived).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Contacts that arrived.
    pub offered: u64,
    /// Accepted by an agent.
    pub answered: u64,
    /// Of those, within the arrival queue's service-level threshold.
    pub answered_within: u64,
    /// Gave up before an answer.
    pub abandoned: u64,
    /// Of those, before the queue's short-abandon time.
    pub abandoned_short: u64,
    /// Still waiting when the run ended (nobody left to serve them).
    pub unanswered: u64,
    /// Completed by an agent.
    pub completed: u64,
    /// Sum of waits of answered contacts.
    pub wait_ms: u64,
    /// Sum of handle times of completed contacts.
    pub handle_ms: u64,
    /// Longest wait, answered or abandoned.
    pub longest_wait_ms: Millis,
    /// Escalation steps applied to these contacts.
    pub escalations: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.offered += o.offered;
        self.answered += o.answered;
        self.answered_within += o.answered_within;
        self.abandoned += o.abandoned;
        self.abandoned_short += o.abandoned_short;
        self.unanswered += o.unanswered;
        self.completed += o.completed;
        self.wait_ms += o.wait_ms;
        self.handle_ms += o.handle_ms;
        self.longest_wait_ms = self.longest_wait_ms.max(o.longest_wait_ms);
        self.escalations += o.escalations;
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Interval start as a clock time, or `"day"` for the summary.
    pub interval: String,
    /// Queue of arrival, or `"all"`.
    pub queue: String,
    /// Contacts that arrived.
    pub offered: u64,
    /// Contacts answered.
    pub answered: u64,
    /// Contacts that gave up.
    pub abandoned: u64,
    /// Contacts nobody was left to answer.
    pub unanswered: u64,
    /// Answered within the threshold over answered.
    pub service_level: Option<f64>,
    /// Answered within the threshold over answered plus long abandons.
    pub service_level_abandon_aware: Option<f64>,
    /// Average speed of answer, seconds.
    pub asa_seconds: Option<f64>,
    /// Average handle time, seconds.
    pub aht_seconds: Option<f64>,
    /// Occupancy of the agents qualified for the queue (center-wide on `"all"` rows); `None`
    /// when none of them was staffed.
    pub occupancy: Option<f64>,
    /// Longest wait, seconds.
    pub longest_wait_seconds: f64,
    /// Escalation steps applied.
    pub escalations: u64,
}

/// A whole run's report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The seed used.
    pub seed: u64,
    /// Contacts simulated.
    pub contacts: u64,
    /// Router events handled (contacts, answers, completions, presence changes, timer ticks).
    pub router_events: u64,
    /// Virtual time until the last contact left, seconds.
    pub simulated_seconds: f64,
    /// The day per queue of arrival (warm-up intervals left out), then all queues.
    pub queues: Vec<Row>,
    /// Each interval per queue, then all queues.
    pub intervals: Vec<Row>,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn row(interval: String, queue: String, t: &Tally, occupancy: Option<f64>) -> Row {
    Row {
        interval,
        queue,
        offered: t.offered,
        answered: t.answered,
        abandoned: t.abandoned,
        unanswered: t.unanswered,
        service_level: ratio(t.answered_within, t.answered),
        service_level_abandon_aware: ratio(
            t.answered_within,
            t.answered + t.abandoned - t.abandoned_short,
        ),
        asa_seconds: ratio(t.wait_ms, t.answered).map(|ms| ms / 1000.0),
        aht_seconds: ratio(t.handle_ms, t.completed).map(|ms| ms / 1000.0),
        occupancy,
        longest_wait_seconds: t.longest_wait_ms as f64 / 1000.0,
        escalations: t.escalations,
    }
}

/// `HH:MM` of a time of day in milliseconds, with a `+N` day prefix past midnight.
pub fn clock_label(ms: Millis) -> String {
    let minutes = ms / 60_000;
    let (days, minutes) = (minutes / (24 * 60), minutes % (24 * 60));
    let label = format!("{:02}:{:02}", minutes / 60, minutes % 60);
    if days > 0 {
        format!("+{days} {label}")
    } else {
        label
    }
}

impl Report {
    /// Turns a run's counts into rows. Queues without traffic are left out.
    pub fn new(scenario: &Scenario, out: &Outcomes) -> Report {
        let plan = &scenario.plan;
        let queues = plan.queues.len();
        let mut day = vec![Tally::default(); queues];
        let mut with_traffic = vec![false; queues];
        for (i, tallies) in out.tallies.iter().enumerate() {
            for (q, t) in tallies.iter().enumerate() {
                with_traffic[q] |= t.offered > 0;
                if i >= scenario.warmup_intervals {
                    day[q].add(t);
                }
            }
        }
        let shown: Vec<usize> = (0..queues).filter(|&q| with_traffic[q]).collect();
        let occupancy = |from: usize| {
            let busy: f64 = out.busy.iter().skip(from).sum();
            let staffed: f64 = out.staffed.iter().skip(from).sum();
            (staffed > 0.0).then(|| busy / staffed)
        };
        let queue_occupancy = |intervals: std::ops::Range<usize>, q: usize| {
            let busy: f64 = out.queue_busy[intervals.clone()].iter().map(|b| b[q]).sum();
            let staffed: f64 = out.queue_staffed[intervals].iter().map(|s| s[q]).sum();
            (staffed > 0.0).then(|| busy / staffed)
        };
        let counted = scenario.warmup_intervals.min(out.tallies.len())..out.tallies.len();
        let mut summary: Vec<Row> = shown
            .iter()
            .map(|&q| {
                let occ = queue_occupancy(counted.clone(), q);
                row("day".into(), plan.queues[q].name.clone(), &day[q], occ)
            })
            .collect();
        let mut all = Tally::default();
        day.iter().for_each(|t| all.add(t));
        summary.push(row(
            "day".into(),
            "all".into(),
            &all,
            occupancy(scenario.warmup_intervals),
        ));
        let mut intervals = Vec::new();
        for (i, tallies) in out.tallies.iter().enumerate() {
            let label = clock_label(scenario.opens + i as u64 * scenario.interval);
            let mut all = Tally::default();
            for &q in &shown {
                all.add(&tallies[q]);
                intervals.push(row(
                    label.clone(),
                    plan.queues[q].name.clone(),
                    &tallies[q],
                    queue_occupancy(i..i + 1, q),
                ));
            }
            let staffed = out.staffed[i];
            let occ = (staffed > 0.0).then(|| out.busy[i] / staffed);
            intervals.push(row(label, "all".into(), &all, occ));
        }
        Report {
            seed: scenario.seed,
            contacts: out.contacts,
            router_events: out.router_events,
            simulated_seconds: out.end as f64 / 1000.0,
            queues: summary,
            intervals,
        }
    }

    /// The summary and the all-queue interval rows, for a terminal.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} contacts, seed {}, {:.1} simulated hours",
            self.contacts,
            self.seed,
            self.simulated_seconds / 3600.0
        );
        let header = |s: &mut String, first: &str| {
            let _ = writeln!(
                s,
                "{first:<12} {:>8} {:>8} {:>9} {:>6} {:>7} {:>7} {:>7} {:>6} {:>8} {:>5}",
                "offered",
                "answered",
                "abandoned",
                "SL",
                "SL(ab)",
                "ASA",
                "AHT",
                "occ",
                "longest",
                "esc"
            );
        };
        let line = |s: &mut String, first: &str, r: &Row| {
            let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}%", v * 100.0));
            let secs = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}s"));
            let _ = writeln!(
                s,
                "{first:<12} {:>8} {:>8} {:>9} {:>6} {:>7} {:>7} {:>7} {:>6} {:>8} {:>5}",
                r.offered,
                r.answered,
                r.abandoned,
                pct(r.service_level),
                pct(r.service_level_abandon_aware),
                secs(r.asa_seconds),
                secs(r.aht_seconds),
                pct(r.occupancy),
                format!("{:.0}s", r.longest_wait_seconds),
                r.escalations
            );
        };
        header(&mut s, "queue");
        for r in &self.queues {
            line(&mut s, &r.queue, r);
        }
        let unanswered: u64 = self.queues.last().map_or(0, |r| r.unanswered);
        if unanswered > 0 {
            let _ = writeln!(s, "{unanswered} contacts were still waiting at the end");
        }
        let _ = writeln!(s);
        header(&mut s, "interval");
        for r in self.intervals.iter().filter(|r| r.queue == "all") {
            line(&mut s, &r.interval, r);
        }
        s
    }

    /// Every row (summary first, then intervals) as CSV with a header.
    pub fn csv(&self) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        for r in self.queues.iter().chain(&self.intervals) {
            writer.serialize(r).expect("rows serialize to memory");
        }
        String::from_utf8(writer.into_inner().expect("memory writer")).expect("CSV is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_labels_wrap_past_midnight() {
        assert_eq!(clock_label(8 * 3_600_000 + 30 * 60_000), "08:30");
        assert_eq!(clock_label(24 * 3_600_000 + 15 * 60_000), "+1 00:15");
    }

    #[test]
    fn service_levels_follow_the_router_definitions() {
        let t = Tally {
            offered: 12,
            answered: 8,
            answered_within: 6,
            abandoned: 4,
            abandoned_short: 2,
            completed: 8,
            wait_ms: 8_000,
            handle_ms: 80_000,
            ..Tally::default()
        };
        let r = row("day".into(), "q".into(), &t, None);
        assert_eq!(r.service_level, Some(0.75));
        assert_eq!(r.service_level_abandon_aware, Some(0.6));
        assert_eq!(r.asa_seconds, Some(1.0));
        assert_eq!(r.aht_seconds, Some(10.0));
    }
}
