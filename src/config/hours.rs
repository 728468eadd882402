//! `business_hours` of a queue: when live channels are staffed, in the queue's own time zone.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use serde::Deserialize;

/// `[queues.NAME.business_hours]`: opening times per weekday in a time zone. A day left out is
/// closed all day.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursConfig {
    /// IANA time zone, e.g. "Europe/Berlin" (daylight saving time follows it).
    pub time_zone: String,
    /// Day (`mon` ... `sun`) to opening ranges, e.g. `"08:00-12:00, 13:00-18:00"`.
    #[serde(default)]
    pub days: BTreeMap<String, String>,
}

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

impl BusinessHoursConfig {
    /// Every problem with the schedule, as (key, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if TimeZone::get(&self.time_zone).is_err() {
            problems.push((
                "time_zone".into(),
                format!(
                    "unknown time zone {:?} (use an IANA name like \"Europe/Berlin\")",
                    self.time_zone
                ),
            ));
        }
        for (day, ranges) in &self.days {
            if !DAYS.iter().any(|(name, _)| name == day) {
                problems.push((
                    format!("days.{day}"),
                    "days are mon, tue, wed, thu, fri, sat, sun".into(),
                ));
            }
            if let Err(e) = ranges_of(ranges) {
                problems.push((format!("days.{day}"), e));
            }
        }
        problems
    }

    /// True when the queue is open at `unix_ms`. A schedule that does not validate is open
    /// (validation refuses it before the daemon runs).
    pub fn is_open(&self, unix_ms: u64) -> bool {
        let Ok(zone) = TimeZone::get(&self.time_zone) else {
            return true;
        };
        let Ok(at) = Timestamp::from_millisecond(unix_ms as i64) else {
            return true;
        };
        let local = at.to_zoned(zone);
        let minute = u32::from(local.hour() as u8) * 60 + u32::from(local.minute() as u8);
        let weekday = local.weekday();
        let Some((day, _)) = DAYS.iter().find(|(_, w)| *w == weekday) else {
            return true;
        };
        self.days
            .get(*day)
            .and_then(|ranges| ranges_of(ranges).ok())
            .is_some_and(|ranges| {
                ranges
                    .iter()
                    .any(|&(from, to)| (from..to).contains(&minute))
            })
    }
}

/// `"08:00-12:00, 13:00-18:00"` as minute ranges of the day.
fn ranges_of(text: &str) -> Result<Vec<(u32, u32)>, String> {
    let minute = |hm: &str| -> Result<u32, String> {
        let (h, m) = hm
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("{hm:?} is not a time like \"08:30\""))?;
        let (h, m): (u32, u32) = (
            h.parse().map_err(|_| format!("bad hour in {hm:?}"))?,
            m.parse().map_err(|_| format!("bad minute in {hm:?}"))?,
        );
        if h > 24 || m > 59 || (h == 24 && m > 0) {
            return Err(format!("{hm:?} is not a time of day"));
        }
        Ok(h * 60 + m)
    };
    text.split(',')
        .filter(|r| !r.trim().is_empty())
        .map(|range| {
            let (from, to) = range
                .split_once('-')
                .ok_or_else(|| format!("{range:?} is not a range like \"08:00-18:00\""))?;
            let (from, to) = (minute(from)?, minute(to)?);
            if from >= to {
                return Err(format!("{range:?} ends before it starts"));
            }
            Ok((from, to))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(zone: &str, days: &[(&str, &str)]) -> BusinessHoursConfig {
        BusinessHoursConfig {
            time_zone: zone.into(),
            days: days
                .iter()
                .map(|(d, r)| (d.to_string(), r.to_string()))
                .collect(),
        }
    }

    fn ms(rfc3339: &str) -> u64 {
        rfc3339.parse::<Timestamp>().expect("time").as_millisecond() as u64
    }

    #[test]
    fn opening_hours_are_read_in_the_queue_time_zone() {
        let berlin = hours("Europe/Berlin", &[("mon", "08:00-12:00, 13:00-18:00")]);
        // Monday 30 November 2026: Berlin is UTC+1.
        assert!(
            berlin.is_open(ms("2026-11-30T07:30:00Z")),
            "08:30 in Berlin"
        );
        assert!(!berlin.is_open(ms("2026-11-30T11:30:00Z")), "12:30: lunch");
        assert!(berlin.is_open(ms("2026-11-30T16:59:00Z")), "17:59");
        assert!(!berlin.is_open(ms("2026-11-30T17:00:00Z")), "18:00: closed");
        assert!(
            !berlin.is_open(ms("2026-12-01T08:00:00Z")),
            "Tuesday is not listed"
        );
        // Summer time: Monday 6 July 2026, UTC+2.
        assert!(berlin.is_open(ms("2026-07-06T06:30:00Z")), "08:30 CEST");
        assert!(!berlin.is_open(ms("2026-07-06T05:30:00Z")), "07:30 CEST");
    }

    #[test]
    fn bad_schedules_are_reported_with_their_key() {
        let bad = hours(
            "Mars/Olympus",
            &[("monday", "8-18"), ("tue", "18:00-08:00")],
        );
        let keys: Vec<String> = bad.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["time_zone", "days.monday", "days.monday", "days.tue"]
        );
        assert!(
            hours("UTC", &[("sat", "10:00-14:00")])
                .problems()
                .is_empty()
        );
    }
}
