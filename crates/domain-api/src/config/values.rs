//! Conversions from a setting's text to its value, each failing with the variable's
//! name and a reason that never echoes a secret.

use std::time::Duration;

use super::ConfigError;

/// One bad setting, by its variable.
pub(super) fn invalid(variable: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        reason: reason.into(),
    }
}

/// A setting with no default: `None` when unset or blank.
pub(super) fn given(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// The comma-separated items of a list setting, blanks dropped.
pub(super) fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Each item of a list setting, converted; the first bad one names the variable.
pub(super) fn list_of<T>(
    value: &str,
    variable: &'static str,
    convert: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, ConfigError> {
    list(value)
        .map(|item| convert(item).map_err(|reason| invalid(variable, reason)))
        .collect()
}

/// A whole number within `range`.
pub(super) fn number(
    value: &str,
    variable: &'static str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let value = value.trim();
    let parsed: u64 = value
        .parse()
        .map_err(|_| invalid(variable, format!("expected a whole number, got {value:?}")))?;
    if range.contains(&parsed) {
        Ok(parsed)
    } else {
        Err(invalid(
            variable,
            format!("must be between {} and {}", range.start(), range.end()),
        ))
    }
}

/// A whole number within `range`, as the type the program counts in.
pub(super) fn count<T: TryFrom<u64>>(
    value: &str,
    variable: &'static str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<T, ConfigError> {
    T::try_from(number(value, variable, range)?).map_err(|_| invalid(variable, "out of range"))
}

/// Milliseconds within `range`.
pub(super) fn millis(
    value: &str,
    variable: &'static str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    number(value, variable, range).map(Duration::from_millis)
}

/// A duration (`30s`, `5m`, `7d`; see `durations`).
pub(super) fn std_duration(value: &str, variable: &'static str) -> Result<Duration, ConfigError> {
    crate::durations::parse_duration(value.trim()).map_err(|e| invalid(variable, e.to_string()))
}

/// A duration as the domain's calendar counts it.
pub(super) fn duration(
    value: &str,
    variable: &'static str,
) -> Result<chrono::TimeDelta, ConfigError> {
    chrono::TimeDelta::from_std(std_duration(value, variable)?)
        .map_err(|_| invalid(variable, "too long"))
}

/// A list of durations, e.g. `1m,5m,15m`.
pub(super) fn schedule(value: &str, variable: &'static str) -> Result<Vec<Duration>, ConfigError> {
    crate::durations::parse_schedule(value).map_err(|e| invalid(variable, e.to_string()))
}

/// A `1`/`0` (or `true`/`false`) setting.
pub(super) fn flag(value: &str, variable: &'static str) -> Result<bool, ConfigError> {
    match value.trim() {
        "0" | "false" => Ok(false),
        "1" | "true" => Ok(true),
        _ => Err(invalid(variable, "expected 1 or 0")),
    }
}

/// An `on`/`off` setting.
pub(super) fn on_off(value: &str, variable: &'static str) -> Result<bool, ConfigError> {
    match value.trim() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(invalid(variable, "expected on or off")),
    }
}
