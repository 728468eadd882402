//! Erlang B, Erlang C and Erlang A: the queueing formulas contact centers staff by. Pure maths
//! on plain numbers, no IO.
//!
//! - **Erlang B** is computed with its recursion `B(0) = 1`, `B(k) = a·B(k−1) / (k + a·B(k−1))`,
//!   which never forms `a^n` or `n!` and so stays exact in `f64` for thousands of agents.
//! - **Erlang C** (M/M/n, callers wait forever) follows from Erlang B:
//!   `C = n·B / (n − a·(1 − B))`.
//! - **Erlang A** (M/M/n+M, callers give up after an exponential patience) has no closed form for
//!   the service level, so it is computed numerically and exactly (up to a truncation below
//!   `1e-18` of probability): the number of contacts in the center is a birth-death chain whose
//!   stationary law is summed in log space; what a contact arriving behind `j` others experiences
//!   is a small absorbing chain (served or gone) solved by a recursion for the answer
//!   probability and mean wait, and by uniformization for the answer-within-threshold
//!   probability.
//!
//! Units: rates per second, times in seconds. "Traffic" `a = λ·AHT` is in erlangs.

use serde::Serialize;

/// What comes in: a Poisson arrival rate and the mean handle time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Load {
    /// Contacts per second.
    pub arrivals_per_second: f64,
    /// Mean handle time (talk plus after-contact work), seconds.
    pub handle_seconds: f64,
}

impl Load {
    /// A load given per hour, as planners write it.
    pub fn per_hour(arrivals_per_hour: f64, handle_seconds: f64) -> Self {
        Load {
            arrivals_per_second: arrivals_per_hour / 3600.0,
            handle_seconds,
        }
    }

    /// Offered traffic in erlangs: how many agents the work alone keeps busy.
    pub fn erlangs(&self) -> f64 {
        self.arrivals_per_second * self.handle_seconds
    }
}

/// What a number of agents gives for a load: one row of a staffing table.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// Agents staffed.
    pub agents: u32,
    /// Share of offered contacts answered within the threshold. Without abandonment this is
    /// the router's service level; with it, abandons count as misses (the router's
    /// abandon-aware service level with no short abandons).
    pub service_level: f64,
    /// Mean wait of answered contacts, seconds.
    pub asa_seconds: f64,
    /// Share of the agents' time spent handling contacts.
    pub occupancy: f64,
    /// Share of contacts that wait at all.
    pub waiting_probability: f64,
    /// Share of contacts that give up; only with patience.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abandon_rate: Option<f64>,
}

/// Erlang B: the probability that all `agents` are busy when offered `traffic` erlangs with
/// blocked contacts lost.
pub fn erlang_b(agents: u32, traffic: f64) -> f64 {
    let mut b = 1.0;
    for k in 1..=agents {
        b = traffic * b / (f64::from(k) + traffic * b);
    }
    b
}

/// Erlang C: the probability that a contact has to wait, with `agents` and `traffic` erlangs;
/// 1 when the agents cannot keep up (`traffic >= agents`).
pub fn erlang_c(agents: u32, traffic: f64) -> f64 {
    if traffic <= 0.0 {
        return 0.0;
    }
    let n = f64::from(agents);
    if traffic >= n {
        return 1.0;
    }
    let b = erlang_b(agents, traffic);
    n * b / (n - traffic * (1.0 - b))
}

/// Erlang C's prediction for `agents` on `load`, with the service level counted within
/// `threshold` seconds. `None` when the queue is unstable (`a >= n`): waits grow without bound.
pub fn erlang_c_prediction(load: Load, agents: u32, threshold: f64) -> Option<Prediction> {
    let a = load.erlangs();
    let n = f64::from(agents);
    if agents == 0 || a >= n {
        return None;
    }
    let c = erlang_c(agents, a);
    // The wait of a waiting contact is exponential with rate (n − a)/AHT.
    let rate = (n - a) / load.handle_seconds;
    Some(Prediction {
        agents,
        service_level: 1.0 - c * (-rate * threshold).exp(),
        asa_seconds: c / rate,
        occupancy: a / n,
        waiting_probability: c,
        abandon_rate: None,
    })
}

/// Relative probability below which states of the birth-death chain are left out.
const TRUNCATION_LOG: f64 = -42.0; // e^-42 ≈ 6e-19

/// Erlang A's prediction for `agents` on `load` when each waiting contact gives up after an
/// exponential patience of mean `patience` seconds. Always stable: a long line sheds contacts.
pub fn erlang_a_prediction(load: Load, agents: u32, patience: f64, threshold: f64) -> Prediction {
    let lambda = load.arrivals_per_second;
    let mu = 1.0 / load.handle_seconds;
    let theta = 1.0 / patience;
    let n = agents as usize;
    let serving = f64::from(agents) * mu;
    let death = |k: usize| {
        if k <= n {
            k as f64 * mu
        } else {
            serving + (k - n) as f64 * theta
        }
    };
    // Stationary law of the number of contacts in the center, in log space: the weights of a
    // few hundred agents reach e^200 and more.
    let mut log_w = vec![0.0_f64];
    let mut peak = 0.0_f64;
    loop {
        let k = log_w.len();
        let next = log_w[k - 1] + (lambda / death(k)).ln();
        log_w.push(next);
        peak = peak.max(next);
        // Past the agents and past the mode the weights only fall: stop once negligible.
        if k > n && death(k) > lambda && next - peak < TRUNCATION_LOG {
            break;
        }
    }
    let total: f64 = log_w.iter().map(|w| (w - peak).exp()).sum();
    let pi: Vec<f64> = log_w.iter().map(|w| (w - peak).exp() / total).collect();

    let immediate: f64 = pi[..n.min(pi.len())].iter().sum();
    // A contact that arrives with j contacts ahead of it in line: the line ahead moves at
    // r_i = nμ + iθ with i ahead, and the contact itself gives up at θ.
    let ahead: &[f64] = pi.get(n..).unwrap_or(&[]);
    let mut answered = immediate;
    let mut wait_of_answered = 0.0;
    let (mut s, mut m) = (1.0_f64, 0.0_f64);
    for (i, &p) in ahead.iter().enumerate() {
        let r = serving + i as f64 * theta;
        let q = r + theta;
        m = r / q * (s / q + m);
        s *= r / q;
        answered += p * s;
        wait_of_answered += p * m;
    }
    let within = immediate + answered_within(ahead, serving, theta, threshold);
    let waiting_probability: f64 = ahead.iter().sum();
    Prediction {
        agents,
        service_level: within,
        asa_seconds: if answered > 0.0 {
            wait_of_answered / answered
        } else {
            0.0
        },
        occupancy: if agents == 0 {
            0.0
        } else {
            (lambda * answered / serving).min(1.0)
        },
        waiting_probability,
        abandon_rate: Some((1.0 - answered).max(0.0)),
    }
}

/// Probability mass of `ahead` (arrivals finding i contacts ahead in line) that reaches an agent
/// within `t` seconds, by uniformization of the tagged contact's absorbing chain.
fn answered_within(ahead: &[f64], serving: f64, theta: f64, t: f64) -> f64 {
    if ahead.is_empty() || t <= 0.0 {
        return 0.0;
    }
    let last = ahead.len() - 1;
    let rate_out = |i: usize| serving + i as f64 * theta;
    let uniform = rate_out(last) + theta;
    // Steps of at most 30 expected jumps keep e^{-Λh} far from underflow.
    let chunks = (uniform * t / 30.0).ceil().max(1.0);
    let h = t / chunks;
    let lh = uniform * h;
    let mut x = ahead.to_vec();
    let mut served = 0.0;
    let mut y = vec![0.0; x.len()];
    let mut acc = vec![0.0; x.len()];
    for _ in 0..chunks as usize {
        acc.iter_mut().for_each(|v| *v = 0.0);
        let mut acc_served = 0.0;
        let mut weight = (-lh).exp();
        let mut cumulative = 0.0;
        let mut cur_served = served;
        let mut step = 0u32;
        loop {
            for (a, v) in acc.iter_mut().zip(&x) {
                *a += weight * v;
            }
            acc_served += weight * cur_served;
            cumulative += weight;
            if 1.0 - cumulative < 1e-15 || step > 10_000 {
                break;
            }
            // One jump of the uniformized chain.
            cur_served += x[0] * rate_out(0) / uniform;
            for i in 0..x.len() {
                let stay = 1.0 - (rate_out(i) + theta) / uniform;
                let from_behind = if i < last {
                    x[i + 1] * rate_out(i + 1) / uniform
                } else {
                    0.0
                };
                y[i] = x[i] * stay + from_behind;
            }
            std::mem::swap(&mut x, &mut y);
            step += 1;
            weight *= lh / f64::from(step);
        }
        // The Poisson tail not summed is below 1e-15; renormalising is not needed.
        std::mem::swap(&mut x, &mut acc);
        served = acc_served;
    }
    served
}

/// What the `staffing` command is asked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StaffingRequest {
    /// Offered load.
    pub load: Load,
    /// Service level to reach (0.8 for 80/20).
    pub target: f64,
    /// Threshold of the service level, seconds (20 for 80/20).
    pub within: f64,
    /// Highest acceptable occupancy, if any.
    pub max_occupancy: Option<f64>,
    /// Mean patience, seconds: Erlang A when given, Erlang C otherwise.
    pub patience: Option<f64>,
}

/// The answer: the agents needed and a table of agent counts around it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Staffing {
    /// Fewest agents meeting the target (and the occupancy cap).
    pub agents: u32,
    /// Offered traffic, erlangs.
    pub erlangs: f64,
    /// Predictions for agent counts around `agents`.
    pub table: Vec<Prediction>,
}

/// Most agents `staff` will consider; more is a typo in the load, not a contact center.
pub const MAX_AGENTS: u32 = 1_000_000;

impl StaffingRequest {
    /// The prediction for `agents`, by Erlang A with patience and Erlang C without.
    pub fn predict(&self, agents: u32) -> Option<Prediction> {
        match self.patience {
            Some(patience) => Some(erlang_a_prediction(
                self.load,
                agents,
                patience,
                self.within,
            )),
            None => erlang_c_prediction(self.load, agents, self.within),
        }
    }

    fn meets(&self, agents: u32) -> bool {
        self.predict(agents).is_some_and(|p| {
            p.service_level >= self.target
                && self.max_occupancy.is_none_or(|cap| p.occupancy <= cap)
        })
    }

    /// The fewest agents meeting the target, with a table from a few below to a few above.
    /// `None` when even [`MAX_AGENTS`] do not (a target of 1.0 with a positive threshold
    /// needs infinitely many).
    pub fn staff(&self) -> Option<Staffing> {
        // Service level rises and occupancy falls with every agent added, so the predicate is
        // monotone: bracket it by doubling, then bisect.
        let mut high = (self.load.erlangs().ceil() as u32).max(1);
        while !self.meets(high) {
            if high >= MAX_AGENTS {
                return None;
            }
            high = (high * 2).min(MAX_AGENTS);
        }
        let mut low = 0; // never meets: no agents answer nothing
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if self.meets(mid) {
                high = mid;
            } else {
                low = mid;
            }
        }
        let table = (high.saturating_sub(4).max(1)..=high + 4)
            .filter_map(|n| self.predict(n))
            .collect();
        Some(Staffing {
            agents: high,
            erlangs: self.load.erlangs(),
            table,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, tolerance: f64) -> bool {
        (got - want).abs() <= tolerance
    }

    /// Erlang B by its textbook definition, `(a^n/n!) / Σ a^k/k!`: fine in f64 for small n.
    fn erlang_b_by_definition(n: u32, a: f64) -> f64 {
        let term = |k: u32| a.powi(k as i32) / (1..=k).map(f64::from).product::<f64>();
        term(n) / (0..=n).map(term).sum::<f64>()
    }

    #[test]
    fn erlang_b_matches_the_definition_and_the_published_30_lines_at_25_erlangs() {
        for (n, a) in [(1, 0.5), (5, 3.0), (10, 8.5), (30, 25.0), (60, 58.0)] {
            let b = erlang_b(n, a);
            let want = erlang_b_by_definition(n, a);
            assert!(close(b, want, 1e-12), "B({n}, {a}) = {b}, want {want}");
        }
        // Wolfram Language documentation of ErlangB: "if there are 30 call lines and the
        // traffic is 25 Erlangs, then the blocking or loss probability is approximately 0.05".
        assert!(
            close(erlang_b(30, 25.0), 0.05, 0.005),
            "{}",
            erlang_b(30, 25.0)
        );
    }

    #[test]
    fn erlang_c_worked_examples() {
        // Westbay Engineers' step-by-step Erlang C example (erlang.com, "The Erlang-C
        // formula"): 360 calls per half hour, 4 minute calls, 55 agents, 15 s target:
        // traffic intensity 48 erlangs, occupancy 0.873.
        let load = Load::per_hour(720.0, 240.0);
        assert!(close(load.erlangs(), 48.0, 1e-9));
        let p = erlang_c_prediction(load, 55, 15.0).expect("stable");
        assert!(close(p.occupancy, 0.873, 0.0005), "{p:?}");
        // The same figures by the factorial form of the formula, which f64 still carries at
        // 55 agents: C = (a^n/n! · n/(n−a)) / (Σ_{k<n} a^k/k! + a^n/n! · n/(n−a)).
        let (n, a) = (55u32, 48.0_f64);
        let term = |k: u32| a.powi(k as i32) / (1..=k).map(f64::from).product::<f64>();
        let top = term(n) * f64::from(n) / (f64::from(n) - a);
        let c = top / ((0..n).map(term).sum::<f64>() + top);
        assert!(close(p.waiting_probability, c, 1e-12), "{p:?} vs {c}");
        assert!(close(p.asa_seconds, c * 240.0 / 7.0, 1e-9));
        assert!(close(
            p.service_level,
            1.0 - c * (-7.0 * 15.0 / 240.0_f64).exp(),
            1e-12
        ));

        // jonesthenet.com, "Erlang uplift": 250 calls an hour at 330 s AHT, 80 % in 30 s:
        // "Erlang ... thinks we need 28 advisors".
        let staffing = StaffingRequest {
            load: Load::per_hour(250.0, 330.0),
            target: 0.8,
            within: 30.0,
            max_occupancy: None,
            patience: None,
        }
        .staff()
        .expect("staffable");
        assert_eq!(staffing.agents, 28);
    }

    #[test]
    fn erlang_c_is_stable_for_thousands_of_agents() {
        // 2000 erlangs: a^n/n! overflows f64 long before this; the recursion does not.
        let c = erlang_c(2050, 2000.0);
        assert!(c.is_finite() && c > 0.0 && c < 1.0, "{c}");
        let staffing = StaffingRequest {
            load: Load::per_hour(30_000.0, 240.0),
            target: 0.8,
            within: 20.0,
            max_occupancy: None,
            patience: None,
        }
        .staff()
        .expect("staffable");
        assert!(
            staffing.agents > 2000 && staffing.agents < 2100,
            "{staffing:?}"
        );
    }

    #[test]
    fn the_issue_example_needs_more_agents_than_the_workload_and_respects_the_occupancy_cap() {
        let request = StaffingRequest {
            load: Load::per_hour(360.0, 240.0),
            target: 0.8,
            within: 20.0,
            max_occupancy: None,
            patience: None,
        };
        let plain = request.staff().expect("staffable");
        assert_eq!(plain.erlangs, 24.0);
        let row = |s: &Staffing, n: u32| *s.table.iter().find(|p| p.agents == n).expect("row");
        assert!(row(&plain, plain.agents).service_level >= 0.8);
        assert!(row(&plain, plain.agents - 1).service_level < 0.8);
        let capped = StaffingRequest {
            max_occupancy: Some(0.8),
            ..request
        }
        .staff()
        .expect("staffable");
        assert_eq!(
            capped.agents, 30,
            "24 erlangs at most 80 % occupied is 30 agents"
        );
    }

    #[test]
    fn erlang_a_tends_to_erlang_c_as_patience_grows() {
        let load = Load::per_hour(360.0, 240.0);
        for n in [25, 27, 30] {
            let c = erlang_c_prediction(load, n, 20.0).expect("stable");
            let a = erlang_a_prediction(load, n, 1e12, 20.0);
            assert!(close(a.service_level, c.service_level, 1e-5), "{a:?} {c:?}");
            assert!(close(a.asa_seconds, c.asa_seconds, 1e-3), "{a:?} {c:?}");
            assert!(close(a.waiting_probability, c.waiting_probability, 1e-6));
            assert!(a.abandon_rate.expect("patience") < 1e-8);
        }
    }

    #[test]
    fn erlang_a_abandonment_balances_the_flow_out_of_the_line() {
        // Little's law on the line: abandons per second = θ · mean line length. The prediction
        // computes abandons from each arrival's own fate, so the two agree only if both the
        // stationary law and the tagged-contact recursion are right.
        let load = Load::per_hour(720.0, 240.0);
        let (n, patience) = (45u32, 90.0);
        let p = erlang_a_prediction(load, n, patience, 20.0);
        let (lambda, mu, theta) = (720.0 / 3600.0, 1.0 / 240.0, 1.0 / patience);
        // Mean line length from the birth-death chain, computed independently here.
        let mut w = vec![1.0_f64];
        for k in 1..2000usize {
            let death = if k <= n as usize {
                k as f64 * mu
            } else {
                f64::from(n) * mu + (k - n as usize) as f64 * theta
            };
            w.push(w[k - 1] * lambda / death);
        }
        let total: f64 = w.iter().sum();
        let line: f64 = w
            .iter()
            .enumerate()
            .skip(n as usize)
            .map(|(k, x)| (k - n as usize) as f64 * x / total)
            .sum();
        let abandon = theta * line / lambda;
        let got = p.abandon_rate.expect("patience");
        assert!(close(got, abandon, 1e-9), "{got} vs {abandon}");
        // Overloaded (48 erlangs on 45 agents) yet stable, and fewer contacts answered means
        // occupancy below the offered 48/45.
        assert!(got > 0.05 && got < 0.5, "{got}");
        assert!(p.occupancy < 1.0 && p.occupancy > 0.9, "{p:?}");
        assert!(p.service_level > 0.0 && p.service_level < 1.0);
    }

    #[test]
    fn erlang_a_needs_no_more_agents_than_erlang_c() {
        let c = StaffingRequest {
            load: Load::per_hour(360.0, 240.0),
            target: 0.8,
            within: 20.0,
            max_occupancy: None,
            patience: None,
        };
        let a = StaffingRequest {
            patience: Some(120.0),
            ..c
        };
        let (c, a) = (c.staff().expect("c"), a.staff().expect("a"));
        assert!(a.agents <= c.agents, "{} > {}", a.agents, c.agents);
        assert!(a.table.iter().all(|p| p.abandon_rate.is_some()));
        let rates: Vec<f64> = a.table.iter().map(|p| p.abandon_rate.expect("a")).collect();
        assert!(rates.windows(2).all(|w| w[0] > w[1]), "{rates:?}");
    }
}
