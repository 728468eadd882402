//! Durations as people write them in the config file: `"30s"`, `"4h"`, `"1h 30m"`.
//!
//! Parsed with `humantime`, so every unit it knows works (`ms`, `s`, `m`, `h`, `d`, `w`, ...).
//! Note `m` is minutes and `M` is months, as in humantime. Bare numbers are refused: `20` could be
//! seconds or milliseconds, and a routing timeout off by a factor of a thousand is a bad outage.

use std::fmt;
use std::time::Duration;

use serde::Deserializer;
use serde::de::{self, Visitor};

use crate::model::Millis;

/// Longest duration the config accepts. Nothing in a contact center waits ten years, and the
/// bound keeps `now + duration` in the router far away from overflowing a `u64` of milliseconds.
pub const MAX: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// Parses one duration, with an error message that quotes the text and says what would work.
pub fn parse(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration {text:?}: {e}; write it like \"30s\", \"4h\" or \"1h 30m\"")
    })?;
    if duration > MAX {
        return Err(format!(
            "duration {text:?} is too long: at most {}",
            display(MAX)
        ));
    }
    Ok(duration)
}

/// Whole milliseconds, the router's unit. Sub-millisecond parts are dropped.
pub fn millis(duration: Duration) -> Millis {
    // Cannot saturate for durations that passed `parse`, which caps them at `MAX`.
    Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX)
}

/// Formats a duration the way it could be written in the config (`"1m 30s"`), for messages.
pub fn display(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// For `#[serde(deserialize_with = "duration::deserialize")]` on a `Duration` field.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_str(DurationVisitor)
}

/// For `#[serde(default, deserialize_with = "duration::deserialize_option")]` on an
/// `Option<Duration>` field: a missing key is `None`, a present one must be a valid duration.
pub fn deserialize_option<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    deserialize(deserializer).map(Some)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration string like \"30s\", \"4h\" or \"1h 30m\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        parse(text).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_people_write() {
        let cases = [
            ("30s", 30_000),
            ("4h", 4 * 3_600_000),
            ("1h 30m", 90 * 60_000),
            ("1h30m", 90 * 60_000),
            ("250ms", 250),
            ("2d", 2 * 86_400_000),
            (" 20s ", 20_000),
            ("0s", 0),
        ];
        for (text, want) in cases {
            let got = parse(text).map(millis);
            assert_eq!(got, Ok(want), "{text:?}");
        }
    }

    #[test]
    fn refuses_bad_text_and_quotes_it() {
        for text in ["", "30", "30 seconds please", "1x", "-5s", "soon"] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(&format!("{text:?}")), "{text:?}: {err}");
        }
    }

    #[test]
    fn refuses_durations_past_the_ceiling() {
        let err = parse("11y").expect_err("too long");
        assert!(err.contains("too long"), "{err}");
        assert!(parse("9y").is_ok());
    }

    #[test]
    fn display_round_trips_through_parse() {
        for text in ["90s", "4h", "1h 30m", "250ms"] {
            let d = parse(text).expect("valid");
            assert_eq!(parse(&display(d)), Ok(d), "{text}");
        }
    }

    #[test]
    fn a_number_instead_of_a_string_is_refused_by_serde() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            #[serde(deserialize_with = "deserialize")]
            wait: Duration,
        }
        let err = toml::from_str::<T>("wait = 20").expect_err("bare number");
        assert!(err.to_string().contains("a duration string like"), "{err}");
        let err = toml::from_str::<T>("wait = \"20 parsecs\"").expect_err("bad unit");
        assert!(err.to_string().contains("\"20 parsecs\""), "{err}");
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
