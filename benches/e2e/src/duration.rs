//! Durations on the command line: `10s`, `500ms`, `250us`, `2m`.

use std::time::Duration;

/// Why a duration did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseDurationError(String);

impl std::fmt::Display for ParseDurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} is not a duration: expected a whole number and a unit (us, ms, s, m), e.g. 10s or 1ms",
            self.0
        )
    }
}

impl std::error::Error for ParseDurationError {}

/// Parses a whole number followed by `us`, `ms`, `s` or `m`.
///
/// # Errors
///
/// When the number or the unit is missing or unknown, or the value overflows.
pub fn parse(text: &str) -> Result<Duration, ParseDurationError> {
    let fail = || ParseDurationError(text.to_owned());
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(fail)?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| fail())?;
    match unit {
        "us" => Ok(Duration::from_micros(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs).ok_or_else(fail),
        _ => Err(fail()),
    }
}
