//! Per-queue counters and the service-level arithmetic built on them.

use crate::model::Millis;

/// Running totals for one queue since the router started. Counters only grow, which is what
/// Prometheus counters and the simulator's interval reports both want.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Contacts that entered the queue on arrival.
    pub arrived: u64,
    /// Contacts that entered by overflow or transfer from elsewhere.
    pub entered_from_elsewhere: u64,
    /// Contacts accepted by an agent while in this queue.
    pub answered: u64,
    /// Of those, answered within the queue's service-level threshold.
    pub answered_within_threshold: u64,
    /// Sum of waits of answered contacts in this queue (for average speed of answer).
    pub answered_wait_ms: u64,
    /// Contacts that gave up (or were withdrawn) before being answered.
    pub abandoned: u64,
    /// Of those, abandoned before the queue's short-abandon time.
    pub abandoned_short: u64,
    /// Contacts completed by an agent.
    pub completed: u64,
    /// Contacts that left by an escalation step's overflow.
    pub overflowed_out: u64,
    /// Contacts transferred out by an agent or supervisor.
    pub transferred_out: u64,
    /// Offers made.
    pub offers: u64,
    /// Offers rejected by the agent.
    pub offers_rejected: u64,
    /// Offers that expired unanswered.
    pub offers_expired: u64,
    /// Offers withdrawn because the agent left or the contact went away.
    pub offers_revoked: u64,
    /// Escalation steps applied.
    pub escalations: u64,
    /// SLA warnings raised.
    pub sla_warnings: u64,
    /// SLA deadlines missed.
    pub sla_breaches: u64,
}

impl QueueCounters {
    /// Share of answered contacts answered within the threshold; `None` before the first answer.
    pub fn service_level(&self) -> Option<f64> {
        ratio(self.answered_within_threshold, self.answered)
    }

    /// Abandon-aware service level: answered within the threshold over all contacts that were
    /// answered or abandoned, leaving out short abandons (customers who hung up before anyone
    /// could reasonably have answered). Long abandons count as failures.
    pub fn service_level_abandon_aware(&self) -> Option<f64> {
        let long_abandons = self.abandoned - self.abandoned_short;
        ratio(
            self.answered_within_threshold,
            self.answered + long_abandons,
        )
    }

    /// Mean wait of answered contacts.
    pub fn average_speed_of_answer(&self) -> Option<Millis> {
        self.answered_wait_ms.checked_div(self.answered)
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// A queue's counters plus what is waiting right now.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueSnapshot {
    /// Running totals.
    pub counters: QueueCounters,
    /// Contacts waiting in the queue's lines (not those offered or held for a preferred agent).
    pub waiting: usize,
    /// Contacts currently offered to an agent.
    pub offered: usize,
    /// Arrival time of the contact that has waited longest.
    pub oldest_arrival: Option<Millis>,
    /// Agents available with a free slot for at least one class of the queue.
    pub agents_ready: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_level_ignores_abandons_and_the_aware_variant_counts_long_ones() {
        let c = QueueCounters {
            answered: 8,
            answered_within_threshold: 6,
            abandoned: 4,
            abandoned_short: 2,
            ..QueueCounters::default()
        };
        assert_eq!(c.service_level(), Some(0.75));
        // 6 within / (8 answered + 2 long abandons)
        assert_eq!(c.service_level_abandon_aware(), Some(0.6));
    }

    #[test]
    fn no_answers_means_no_service_level_rather_than_zero() {
        assert_eq!(QueueCounters::default().service_level(), None);
        assert_eq!(QueueCounters::default().average_speed_of_answer(), None);
    }
}
