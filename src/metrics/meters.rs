//! Metric handles of one queue, registered once and kept by the router task.
//!
//! A `counter!`/`histogram!` macro builds its label vector, clones the queue name and looks the
//! series up in the recorder's registry on every update: about 200 ns each, more than the router
//! spends deciding a contact. The router task is the one serial thread every contact passes
//! through, so it keeps these handles instead (registered at start and when a reload adds a
//! queue) and an update is an atomic add or a histogram push (docs/performance.md, "Metrics on
//! the hot path").

use metrics::{Counter, Gauge, Histogram};

use super::{
    ANSWERED, ANSWERED_WITHIN_THRESHOLD, CONTACTS_ABANDONED, HANDLE_SECONDS, OFFERS,
    QUEUE_OLDEST_WAIT, QUEUE_WAITING, SERVICE_LEVEL, SERVICE_LEVEL_TARGET, SERVICE_LEVEL_THRESHOLD,
    SLA_BREACHES, SLA_FIRST_RESPONSE, SLA_WARNINGS, WAIT_SECONDS,
};
use crate::model::Channel;

/// How an offer ended, as the `outcome` label of `switchboard_offers_total` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferOutcome {
    /// The agent took the contact.
    Accepted,
    /// The agent said no.
    Rejected,
    /// Nobody answered before the offer ran out.
    Expired,
    /// Taken back: the contact left, was transferred, or the agent became unavailable.
    Revoked,
}

/// Every per-queue series the router task updates, for one queue. Counters and the line gauges
/// are registered up front, so a queue shows zeros before its first contact (an alert on a rate
/// needs the series to exist); the histograms, fifteen series each, only for the channels a
/// queue actually serves; the service level only once it has a value (a queue that answered
/// nobody yet has none, and a 0 would read as a breached target).
#[derive(Clone, Debug)]
pub struct QueueMeters {
    queue: String,
    offers: [Counter; 4],
    sla_warnings: Counter,
    sla_breaches: Counter,
    abandoned: Counter,
    /// Waits and handle times by channel, indexed like `Channel::ALL`, registered on first use.
    waits: [Option<Histogram>; Channel::ALL.len()],
    handles: [Option<Histogram>; Channel::ALL.len()],
    waiting: Gauge,
    oldest_wait: Gauge,
    service_level: Option<Gauge>,
    /// The router's running answer counts, published as counters.
    answered: Counter,
    answered_within_threshold: Counter,
    /// The queue's configuration, so alerts can compare each queue with its own target.
    target: Gauge,
    threshold: Gauge,
    first_response_sla: Gauge,
}

impl QueueMeters {
    /// Registers the queue's series with the installed recorder (a no-op recorder when none is).
    pub fn register(queue: &str) -> Self {
        let offer = |outcome: &'static str| metrics::counter!(OFFERS, "queue" => queue.to_owned(), "outcome" => outcome);
        QueueMeters {
            queue: queue.to_owned(),
            offers: [
                offer("accepted"),
                offer("rejected"),
                offer("expired"),
                offer("revoked"),
            ],
            sla_warnings: metrics::counter!(SLA_WARNINGS, "queue" => queue.to_owned()),
            sla_breaches: metrics::counter!(SLA_BREACHES, "queue" => queue.to_owned()),
            abandoned: metrics::counter!(CONTACTS_ABANDONED, "queue" => queue.to_owned()),
            waits: Default::default(),
            handles: Default::default(),
            waiting: metrics::gauge!(QUEUE_WAITING, "queue" => queue.to_owned()),
            oldest_wait: metrics::gauge!(QUEUE_OLDEST_WAIT, "queue" => queue.to_owned()),
            service_level: None,
            answered: metrics::counter!(ANSWERED, "queue" => queue.to_owned()),
            answered_within_threshold: metrics::counter!(
                ANSWERED_WITHIN_THRESHOLD, "queue" => queue.to_owned()
            ),
            target: metrics::gauge!(SERVICE_LEVEL_TARGET, "queue" => queue.to_owned()),
            threshold: metrics::gauge!(SERVICE_LEVEL_THRESHOLD, "queue" => queue.to_owned()),
            first_response_sla: metrics::gauge!(SLA_FIRST_RESPONSE, "queue" => queue.to_owned()),
        }
    }

    /// Counts an offer that ended.
    pub fn offer(&self, outcome: OfferOutcome) {
        self.offers[outcome as usize].increment(1);
    }

    /// Records the time a contact waited before an agent took it.
    pub fn answered(&mut self, channel: Channel, waited_seconds: f64) {
        by_channel(&mut self.waits, WAIT_SECONDS, &self.queue, channel).record(waited_seconds);
    }

    /// Records the time from answer to completion.
    pub fn handled(&mut self, channel: Channel, handle_seconds: f64) {
        by_channel(&mut self.handles, HANDLE_SECONDS, &self.queue, channel).record(handle_seconds);
    }

    /// Counts an SLA warning: a deadline is near and the contact is not yet served.
    pub fn sla_warned(&self) {
        self.sla_warnings.increment(1);
    }

    /// Counts a missed SLA deadline.
    pub fn sla_breached(&self) {
        self.sla_breaches.increment(1);
    }

    /// Counts a customer who gave up before an answer.
    pub fn abandoned(&self) {
        self.abandoned.increment(1);
    }

    /// Publishes the router's answer counts (they only grow while the daemon runs, as counters
    /// must) and the queue's configured targets, which a reload may change. Alerts divide the
    /// two counters' rates for the service level over any window and compare it with the
    /// target, so every queue is watched against its own numbers.
    pub fn answers_and_targets(
        &self,
        answered: u64,
        answered_within_threshold: u64,
        target: f64,
        threshold_seconds: f64,
        first_response_seconds: f64,
    ) {
        self.answered.absolute(answered);
        self.answered_within_threshold
            .absolute(answered_within_threshold);
        self.target.set(target);
        self.threshold.set(threshold_seconds);
        self.first_response_sla.set(first_response_seconds);
    }

    /// Sets the queue's gauges from a router snapshot.
    pub fn line(&mut self, waiting: usize, oldest_wait_seconds: f64, service_level: Option<f64>) {
        self.waiting.set(waiting as f64);
        self.oldest_wait.set(oldest_wait_seconds);
        if let Some(sl) = service_level {
            let queue = &self.queue;
            self.service_level
                .get_or_insert_with(|| metrics::gauge!(SERVICE_LEVEL, "queue" => queue.clone()))
                .set(sl);
        }
    }
}

/// The queue's histogram `name` for `channel`, registered on first use.
fn by_channel<'a>(
    slots: &'a mut [Option<Histogram>; Channel::ALL.len()],
    name: &'static str,
    queue: &str,
    channel: Channel,
) -> &'a Histogram {
    slots[channel.index()].get_or_insert_with(
        || metrics::histogram!(name, "queue" => queue.to_owned(), "channel" => channel.as_str()),
    )
}
