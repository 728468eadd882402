//! Every metric the daemon exports: name, unit and help text in one place, so that dashboards,
//! alerts and docs/metrics.md have a single source to agree with.
//!
//! Counters and histograms are recorded where things happen (intake, journal, router task);
//! gauges that describe the router's state (waiting, oldest wait, service level, agents by
//! state) are refreshed from router snapshots by the router task.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

mod meters;
pub use meters::{OfferOutcome, QueueMeters};

/// Contacts accepted at intake, by `channel` and `queue`.
pub const CONTACTS_RECEIVED: &str = "switchboard_contacts_received_total";
/// Contacts waiting in line now, by `queue`.
pub const QUEUE_WAITING: &str = "switchboard_queue_waiting";
/// Wait of the contact that has waited longest, by `queue`.
pub const QUEUE_OLDEST_WAIT: &str = "switchboard_queue_oldest_wait_seconds";
/// Time from arrival to answer, by `queue` and `channel`.
pub const WAIT_SECONDS: &str = "switchboard_wait_seconds";
/// Offers by `queue` and `outcome` (accepted, rejected, expired, revoked).
pub const OFFERS: &str = "switchboard_offers_total";
/// Agents by `state` (offline, available, away, busy, wrap_up).
pub const AGENTS: &str = "switchboard_agents";
/// SLA deadlines missed, by `queue`.
pub const SLA_BREACHES: &str = "switchboard_sla_breaches_total";
/// SLA warnings (a deadline close, at the policy's warning fraction), by `queue`.
pub const SLA_WARNINGS: &str = "switchboard_sla_warnings_total";
/// Share answered within the queue's threshold since start, by `queue`.
pub const SERVICE_LEVEL: &str = "switchboard_service_level";
/// Contacts answered (first answer in the queue), by `queue`: the denominator of the service
/// level over any window, `rate()`d by alerts.
pub const ANSWERED: &str = "switchboard_answered_total";
/// Of those, answered within the queue's service-level threshold, by `queue`.
pub const ANSWERED_WITHIN_THRESHOLD: &str = "switchboard_answered_within_threshold_total";
/// The queue's configured service-level target (0 to 1), by `queue`.
pub const SERVICE_LEVEL_TARGET: &str = "switchboard_service_level_target";
/// The queue's configured service-level threshold in seconds, by `queue`.
pub const SERVICE_LEVEL_THRESHOLD: &str = "switchboard_service_level_threshold_seconds";
/// First-response deadline of the queue's SLA policy in seconds, by `queue`.
pub const SLA_FIRST_RESPONSE: &str = "switchboard_sla_first_response_seconds";
/// Time from answer to completion, by `queue` and `channel`.
pub const HANDLE_SECONDS: &str = "switchboard_handle_seconds";
/// Contacts whose customer gave up before an answer, by `queue`.
pub const CONTACTS_ABANDONED: &str = "switchboard_contacts_abandoned_total";
/// Time to commit one journal batch (one fsync).
pub const JOURNAL_COMMIT_SECONDS: &str = "switchboard_journal_commit_seconds";
/// Journal batches that failed to commit.
pub const JOURNAL_ERRORS: &str = "switchboard_journal_errors_total";
/// HTTP requests by `route` and `status`.
pub const HTTP_REQUESTS: &str = "switchboard_http_requests_total";
/// Agent websocket connections open now.
pub const AGENT_CONNECTIONS: &str = "switchboard_agent_connections";
/// Customer chat websocket connections open now.
pub const CHAT_CONNECTIONS: &str = "switchboard_chat_connections";
/// Callback webhook events by `outcome` (delivered, failed after retries, dropped when the queue
/// was full).
pub const CALLBACKS: &str = "switchboard_callbacks_total";
/// Inbound email messages by `outcome` (new_contact, joined, reopened, duplicate, rate_limited).
pub const EMAIL_RECEIVED: &str = "switchboard_email_received_total";
/// SMTP/LMTP transactions refused or failed, by `reason` (unknown_mailbox, too_large,
/// rate_limited, journal, timeout, protocol).
pub const SMTP_REJECTED: &str = "switchboard_smtp_rejected_total";
/// Outgoing mail by `kind` (acknowledgement, reply) and `outcome` (queued, sent, retried,
/// failed).
pub const EMAIL_SENT: &str = "switchboard_email_outgoing_total";
/// Post-chat ratings by `queue` and `score` (1-5).
pub const CSAT_RATINGS: &str = "switchboard_csat_ratings_total";
/// Outgoing mail waiting in the outbox (not yet taken by the relay).
pub const EMAIL_OUTBOX: &str = "switchboard_email_outbox_pending";
/// Configuration reloads by `result` (ok, error).
pub const CONFIG_RELOADS: &str = "switchboard_config_reloads_total";
/// Contacts matched by a classification rule, by `rule`.
pub const RULE_MATCHES: &str = "switchboard_rule_matches_total";
/// Classification rules whose condition failed at run time on a contact, by `rule` (the
/// contact is routed as if the rule did not match).
pub const CLASSIFICATION_ERRORS: &str = "switchboard_classification_errors_total";
/// Time to classify one contact (signals, intent, rules).
pub const CLASSIFY_SECONDS: &str = "switchboard_classify_seconds";

/// What kind of series a metric is, by the name Prometheus (`# TYPE`) and docs/metrics.md use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (and back to zero at a restart); read with `rate()` or `increase()`.
    Counter,
    /// A value now.
    Gauge,
    /// Observations in buckets, served as `_bucket`, `_sum` and `_count` series.
    Histogram,
}

impl Kind {
    /// The name in `# TYPE` lines and in docs/metrics.md.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A metric's contract with dashboards, alerts and docs: its name, kind and label names.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    /// The name, one of the constants above.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// The label names every series of it carries (a histogram's `le` aside).
    pub labels: &'static [&'static str],
}

const fn metric(name: &'static str, kind: Kind, labels: &'static [&'static str]) -> Metric {
    Metric { name, kind, labels }
}

/// Every metric with its kind and labels. The recording sites must use exactly these labels:
/// tests/docs_metrics.rs holds docs/metrics.md to this list, and tests/ops.rs holds the series
/// the daemon serves to it.
pub const ALL: &[Metric] = &[
    metric(CONTACTS_RECEIVED, Kind::Counter, &["channel", "queue"]),
    metric(QUEUE_WAITING, Kind::Gauge, &["queue"]),
    metric(QUEUE_OLDEST_WAIT, Kind::Gauge, &["queue"]),
    metric(WAIT_SECONDS, Kind::Histogram, &["queue", "channel"]),
    metric(OFFERS, Kind::Counter, &["queue", "outcome"]),
    metric(AGENTS, Kind::Gauge, &["state"]),
    metric(SLA_BREACHES, Kind::Counter, &["queue"]),
    metric(SLA_WARNINGS, Kind::Counter, &["queue"]),
    metric(SERVICE_LEVEL, Kind::Gauge, &["queue"]),
    metric(ANSWERED, Kind::Counter, &["queue"]),
    metric(ANSWERED_WITHIN_THRESHOLD, Kind::Counter, &["queue"]),
    metric(SERVICE_LEVEL_TARGET, Kind::Gauge, &["queue"]),
    metric(SERVICE_LEVEL_THRESHOLD, Kind::Gauge, &["queue"]),
    metric(SLA_FIRST_RESPONSE, Kind::Gauge, &["queue"]),
    metric(HANDLE_SECONDS, Kind::Histogram, &["queue", "channel"]),
    metric(CONTACTS_ABANDONED, Kind::Counter, &["queue"]),
    metric(JOURNAL_COMMIT_SECONDS, Kind::Histogram, &[]),
    metric(JOURNAL_ERRORS, Kind::Counter, &[]),
    metric(HTTP_REQUESTS, Kind::Counter, &["route", "status"]),
    metric(AGENT_CONNECTIONS, Kind::Gauge, &[]),
    metric(CHAT_CONNECTIONS, Kind::Gauge, &[]),
    metric(CALLBACKS, Kind::Counter, &["outcome"]),
    metric(EMAIL_RECEIVED, Kind::Counter, &["outcome"]),
    metric(SMTP_REJECTED, Kind::Counter, &["reason"]),
    metric(EMAIL_SENT, Kind::Counter, &["kind", "outcome"]),
    metric(CSAT_RATINGS, Kind::Counter, &["queue", "score"]),
    metric(EMAIL_OUTBOX, Kind::Gauge, &[]),
    metric(CONFIG_RELOADS, Kind::Counter, &["result"]),
    metric(RULE_MATCHES, Kind::Counter, &["rule"]),
    metric(CLASSIFICATION_ERRORS, Kind::Counter, &["rule"]),
    metric(CLASSIFY_SECONDS, Kind::Histogram, &[]),
];

/// Histogram buckets for waits and handle times, in seconds: from a second to an email day.
const WAIT_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0, 86400.0,
];
/// Classification buckets, in seconds: tens of microseconds normally.
const CLASSIFY_BUCKETS: &[f64] = &[
    0.00001, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.005, 0.01,
];
/// Journal commit buckets, in seconds: fsync is milliseconds on a healthy disk.
const COMMIT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Installs the Prometheus recorder for this process and describes every metric. Returns the
/// handle that renders `/metrics`.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(WAIT_SECONDS.into()), WAIT_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(HANDLE_SECONDS.into()), WAIT_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(JOURNAL_COMMIT_SECONDS.into()), COMMIT_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(CLASSIFY_SECONDS.into()), CLASSIFY_BUCKETS)?
        .install_recorder()?;
    describe();
    Ok(handle)
}

/// Help text and units, as Prometheus shows them.
pub fn describe() {
    describe_counter!(
        CONTACTS_RECEIVED,
        "Contacts accepted (made durable) at intake."
    );
    describe_gauge!(QUEUE_WAITING, "Contacts waiting in line now.");
    describe_gauge!(
        QUEUE_OLDEST_WAIT,
        Unit::Seconds,
        "Wait of the contact that has waited longest."
    );
    describe_histogram!(WAIT_SECONDS, Unit::Seconds, "Time from arrival to answer.");
    describe_counter!(OFFERS, "Offers made to agents, by outcome.");
    describe_gauge!(AGENTS, "Agents by state.");
    describe_counter!(SLA_BREACHES, "SLA deadlines missed.");
    describe_counter!(
        SLA_WARNINGS,
        "SLA warnings: a deadline is near and the contact is not yet served."
    );
    describe_gauge!(
        SERVICE_LEVEL,
        "Share of answered contacts answered within the queue's threshold."
    );
    describe_counter!(
        ANSWERED,
        "Contacts answered in the queue (first answer), the service level's denominator."
    );
    describe_counter!(
        ANSWERED_WITHIN_THRESHOLD,
        "Contacts answered within the queue's service-level threshold."
    );
    describe_gauge!(
        SERVICE_LEVEL_TARGET,
        "The queue's configured service-level target (0 to 1)."
    );
    describe_gauge!(
        SERVICE_LEVEL_THRESHOLD,
        Unit::Seconds,
        "The queue's configured service-level threshold."
    );
    describe_gauge!(
        SLA_FIRST_RESPONSE,
        Unit::Seconds,
        "First-response deadline of the queue's SLA policy."
    );
    describe_histogram!(
        HANDLE_SECONDS,
        Unit::Seconds,
        "Time from answer to completion."
    );
    describe_counter!(
        CONTACTS_ABANDONED,
        "Contacts whose customer gave up before an answer."
    );
    describe_histogram!(
        JOURNAL_COMMIT_SECONDS,
        Unit::Seconds,
        "Time to commit one journal batch (group commit, one fsync)."
    );
    describe_counter!(JOURNAL_ERRORS, "Journal batches that failed to commit.");
    describe_counter!(HTTP_REQUESTS, "HTTP requests by route and status.");
    describe_gauge!(AGENT_CONNECTIONS, "Agent websocket connections open now.");
    describe_gauge!(
        CHAT_CONNECTIONS,
        "Customer chat websocket connections open now."
    );
    describe_counter!(CALLBACKS, "Callback webhook events, by outcome.");
    describe_counter!(EMAIL_RECEIVED, "Inbound email messages, by outcome.");
    describe_counter!(
        SMTP_REJECTED,
        "SMTP/LMTP transactions refused or failed, by reason."
    );
    describe_counter!(EMAIL_SENT, "Outgoing mail, by kind and outcome.");
    describe_counter!(CSAT_RATINGS, "Post-chat ratings, by queue and score.");
    describe_gauge!(
        EMAIL_OUTBOX,
        "Outgoing mail waiting in the outbox for the relay."
    );
    describe_counter!(CONFIG_RELOADS, "Configuration reloads, by result.");
    describe_counter!(RULE_MATCHES, "Contacts matched by a classification rule.");
    describe_counter!(
        CLASSIFICATION_ERRORS,
        "Classification rules that failed at run time on a contact."
    );
    describe_histogram!(
        CLASSIFY_SECONDS,
        Unit::Seconds,
        "Time to classify one contact (signals, intent, rules)."
    );
}
