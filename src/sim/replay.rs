//! Recorded contacts to replay instead of synthetic traffic: a CSV with a header line
//!
//! ```csv
//! arrival,channel,queue,skills,handle_time,patience
//! 08:00:05,voice,billing,,312,
//! 08:00:09,chat,support,spanish:5 english:3,540,120
//! 95.5,email,support,,900,
//! ```
//!
//! `arrival` is a clock time (`HH:MM` or `HH:MM:SS`) on the scenario's day, or seconds from its
//! start; `skills` are `name:level` pairs separated by spaces or `;` on top of the queue's own;
//! `handle_time` and `patience` are seconds, and an empty or missing `patience` waits forever.
//! Rows need not be in order.

use serde::Deserialize;

use super::engine::ReplayContact;
use crate::config::Problem;
use crate::model::{Channel, Millis, SKILL_LEVELS, SkillReq};
use crate::router::RoutingPlan;

#[derive(Debug, Deserialize)]
struct Record {
    arrival: String,
    channel: Channel,
    queue: String,
    #[serde(default)]
    skills: String,
    handle_time: f64,
    #[serde(default)]
    patience: Option<f64>,
}

/// Reads a replay file; every bad row is a problem at `line N`. `opens` is the scenario's
/// clock time of its start, ms since midnight.
pub fn read(
    text: &str,
    plan: &RoutingPlan,
    opens: Millis,
) -> Result<Vec<ReplayContact>, Vec<Problem>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut contacts = Vec::new();
    let mut problems = Vec::new();
    for (i, record) in reader.deserialize::<Record>().enumerate() {
        let line = format!("line {}", i + 2);
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.push(Problem::new(line, e.to_string()));
                continue;
            }
        };
        match contact(&record, plan, opens) {
            Ok(c) => contacts.push(c),
            Err((field, message)) => {
                problems.push(Problem::new(format!("{line}.{field}"), message))
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    contacts.sort_by_key(|c| c.arrival);
    Ok(contacts)
}

fn seconds(field: &'static str, v: f64) -> Result<Millis, (&'static str, String)> {
    if (0.0..1e12).contains(&v) {
        Ok((v * 1000.0).round() as Millis)
    } else {
        Err((field, format!("{v} is not a number of seconds")))
    }
}

fn contact(
    r: &Record,
    plan: &RoutingPlan,
    opens: Millis,
) -> Result<ReplayContact, (&'static str, String)> {
    let arrival = if r.arrival.contains(':') {
        let mut parts = r.arrival.split(':').map(|p| p.parse::<u64>());
        let (h, m, s) = (parts.next(), parts.next(), parts.next().unwrap_or(Ok(0)));
        match (h, m, s, parts.next()) {
            (Some(Ok(h)), Some(Ok(m)), Ok(s), None) if h < 24 && m < 60 && s < 60 => {
                ((h * 60 + m) * 60 + s) * 1000
            }
            _ => return Err(("arrival", format!("{:?} is not a clock time", r.arrival))),
        }
        .checked_sub(opens)
        .ok_or((
            "arrival",
            format!("{} is before the scenario opens", r.arrival),
        ))?
    } else {
        let v: f64 = r.arrival.parse().map_err(|_| {
            (
                "arrival",
                format!("{:?} is neither seconds nor a clock time", r.arrival),
            )
        })?;
        seconds("arrival", v)?
    };
    let queue = plan
        .queue_id(&r.queue)
        .ok_or(("queue", format!("unknown queue {:?}", r.queue)))?;
    let mut skills = Vec::new();
    for pair in r.skills.split([' ', ';']).filter(|p| !p.is_empty()) {
        let (name, level) = pair
            .split_once(':')
            .ok_or(("skills", format!("{pair:?} is not name:level")))?;
        let skill = plan
            .skill_id(name)
            .ok_or(("skills", format!("unknown skill {name:?}")))?;
        let level: u8 = level
            .parse()
            .ok()
            .filter(|l| SKILL_LEVELS.contains(l))
            .ok_or(("skills", format!("{pair:?}: level must be 1-10")))?;
        skills.push(SkillReq {
            skill,
            min_level: level,
            optional: false,
        });
    }
    Ok(ReplayContact {
        arrival,
        channel: r.channel,
        queue,
        skills,
        handle_time: seconds("handle_time", r.handle_time)?,
        patience: r.patience.map(|p| seconds("patience", p)).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::QueuePlan;

    fn plan() -> RoutingPlan {
        RoutingPlan::new(
            vec!["english".into(), "spanish".into()],
            vec![QueuePlan::new("billing"), QueuePlan::new("support")],
        )
    }

    #[test]
    fn rows_take_clock_times_or_seconds_and_come_out_in_order() {
        let text = "arrival,channel,queue,skills,handle_time,patience\n\
                    08:00:09,chat,support,spanish:5 english:3,540,120\n\
                    5.5,voice,billing,,312,\n";
        let contacts = read(text, &plan(), 8 * 3_600_000).expect("valid");
        assert_eq!(contacts.len(), 2);
        assert_eq!(contacts[0].arrival, 5_500);
        assert_eq!(contacts[0].patience, None);
        assert_eq!(contacts[1].arrival, 9_000);
        assert_eq!(contacts[1].skills.len(), 2);
        assert_eq!(contacts[1].patience, Some(120_000));
        assert_eq!(contacts[1].channel, Channel::Chat);
    }

    #[test]
    fn bad_rows_are_reported_by_line_and_field() {
        let text = "arrival,channel,queue,skills,handle_time\n\
                    07:59,voice,billing,,10\n\
                    1,voice,sales,,10\n\
                    2,fax,billing,,10\n\
                    3,voice,billing,klingon:3,10\n";
        let problems = read(text, &plan(), 8 * 3_600_000).expect_err("invalid");
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths[0], "line 2.arrival");
        assert_eq!(paths[1], "line 3.queue");
        assert_eq!(paths[2], "line 4");
        assert_eq!(paths[3], "line 5.skills");
    }
}
