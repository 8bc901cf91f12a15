//! Durations as operators write them, in settings and on the command line: `30s`,
//! `15m`, `1h`, `7d` — humantime's grammar, so `1h 30m` and `2weeks` work too — and
//! schedules of them, `1m,5m,15m`.

use std::time::Duration;

/// Why a duration or a schedule was refused. The text is echoed: a duration is never
/// a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not humantime's grammar: a number with no unit, an unknown unit, a typo.
    #[error("{text:?} is not a duration like 30s, 15m, 1h or 7d ({reason})")]
    Invalid {
        /// The text as given.
        text: String,
        /// humantime's own account of what is wrong.
        reason: String,
    },
    /// Zero, or less than the smallest duration the setting can use.
    #[error("{text:?} is too short: the duration must be at least {minimum}")]
    TooShort {
        /// The text as given.
        text: String,
        /// The smallest accepted duration, as humantime writes it.
        minimum: String,
    },
    /// A schedule with no delay, or an empty delay between two commas.
    #[error("{0:?} is not a schedule like 1m,5m,15m: every delay between commas is needed")]
    EmptyDelay(String),
}

/// Parses one duration; zero is refused, since no setting means "never" by it.
///
/// # Errors
/// [`DurationError::Invalid`] outside humantime's grammar (a bare number included,
/// for it says no unit); [`DurationError::TooShort`] for zero.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    at_least(text, Duration::from_nanos(1))
}

/// Parses a comma-separated list of durations, in order, e.g. the delays between
/// verification attempts. White space around each is ignored.
///
/// # Errors
/// [`DurationError::EmptyDelay`] for an empty list or an empty item, otherwise the
/// first item's error from [`parse_duration`].
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, DurationError> {
    text.split(',')
        .map(|delay| match delay.trim() {
            "" => Err(DurationError::EmptyDelay(text.to_owned())),
            delay => parse_duration(delay),
        })
        .collect()
}

/// The lifetime of a dashboard JWT (`jwt issue --ttl`): a duration of at least one
/// second, or a bare number of seconds as the command has always accepted.
///
/// # Errors
/// As [`parse_duration`]; [`DurationError::TooShort`] under a second, since `exp`
/// counts whole seconds.
pub fn parse_ttl(text: &str) -> Result<Duration, DurationError> {
    const SECOND: Duration = Duration::from_secs(1);
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return match trimmed.parse() {
            Ok(0) => Err(too_short(text, SECOND)),
            Ok(seconds) => Ok(Duration::from_secs(seconds)),
            Err(e) => Err(DurationError::Invalid {
                text: text.to_owned(),
                reason: format!("{e}"),
            }),
        };
    }
    at_least(text, SECOND)
}

fn at_least(text: &str, minimum: Duration) -> Result<Duration, DurationError> {
    let duration = humantime::parse_duration(text).map_err(|e| DurationError::Invalid {
        text: text.to_owned(),
        reason: e.to_string(),
    })?;
    if duration < minimum {
        return Err(too_short(text, minimum));
    }
    Ok(duration)
}

fn too_short(text: &str, minimum: Duration) -> DurationError {
    DurationError::TooShort {
        text: text.to_owned(),
        minimum: humantime::format_duration(minimum).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn parses_the_units_settings_are_written_in() {
        for (text, expected) in [
            ("30s", secs(30)),
            ("5m", secs(300)),
            ("1h", secs(3600)),
            ("7d", secs(604_800)),
            ("1h 30m", secs(5400)),
            (" 2days ", secs(172_800)),
            ("250ms", Duration::from_millis(250)),
        ] {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn refuses_zero_a_bare_number_and_unknown_units() {
        assert_eq!(
            parse_duration("0s").unwrap_err().to_string(),
            r#""0s" is too short: the duration must be at least 1ns"#
        );
        for text in ["", "7", "7x", "soon", "-1h", "1h,2h"] {
            let error = parse_duration(text).unwrap_err();
            assert!(
                matches!(error, DurationError::Invalid { .. }),
                "{text}: {error}"
            );
            assert!(
                error
                    .to_string()
                    .contains("is not a duration like 30s, 15m, 1h or 7d ("),
                "{error}"
            );
        }
    }

    #[test]
    fn parses_a_schedule_in_order_keeping_repeats() {
        assert_eq!(
            parse_schedule("1m,5m,15m"),
            Ok(vec![secs(60), secs(300), secs(900)])
        );
        assert_eq!(
            parse_schedule("5s, 10h ,10h"),
            Ok(vec![secs(5), secs(36_000), secs(36_000)])
        );
        assert_eq!(parse_schedule("24h"), Ok(vec![secs(86_400)]));
    }

    #[test]
    fn refuses_a_schedule_with_an_empty_or_bad_delay() {
        for text in ["", "1m,,5m", "1m,", ",1m"] {
            assert_eq!(
                parse_schedule(text),
                Err(DurationError::EmptyDelay(text.to_owned())),
                "{text}"
            );
        }
        assert!(matches!(
            parse_schedule("1m,5x"),
            Err(DurationError::Invalid { text, .. }) if text == "5x"
        ));
        assert!(matches!(
            parse_schedule("1m,0s"),
            Err(DurationError::TooShort { .. })
        ));
    }

    #[test]
    fn parses_ttls() {
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_ttl("0h").is_err());
        // humantime's grammar has weeks; the hand-made parser before it had not.
        assert_eq!(parse_ttl("1w"), Ok(Duration::from_secs(604_800)));
        assert!(parse_ttl("1x").is_err());
        assert!(parse_ttl("soon").is_err());
        assert!(parse_ttl("99999999999999999999").is_err());
    }

    #[test]
    fn refuses_a_ttl_under_a_second_saying_so() {
        for text in ["0", "0h", "500ms"] {
            assert_eq!(
                parse_ttl(text).unwrap_err().to_string(),
                format!("{text:?} is too short: the duration must be at least 1s"),
            );
        }
    }
}
