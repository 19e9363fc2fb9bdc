//! Human-friendly sizes and durations: `64MiB`, `1500ms`, `5m`.

use std::time::Duration;

/// What a size may look like, for error messages.
pub(crate) const SIZE_FORMS: &str = "a byte count like 1048576, or a number with a unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), e.g. \"64MiB\"";

/// What a duration may look like, for error messages.
pub(crate) const DURATION_FORMS: &str =
    "a whole number with a unit: ms, s, m or h, e.g. \"500ms\", \"2s\", \"5m\"";

/// Splits `text` (trimmed) into its leading whole number and the rest, e.g. "64MiB" into
/// (64, "MiB"); `None` when there is no leading number or it overflows.
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return None;
    }
    Some((number.parse().ok()?, unit))
}

/// Parses a byte size: a plain number of bytes, or a number followed by a unit.
///
/// Decimal (`MB`) and binary (`MiB`) units are both accepted because people write both; they
/// differ by 5% at the mebibyte, which matters when sizing a cache against a memory limit.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let (number, unit) = number_and_unit(text)?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Parses a duration: a whole number followed by `ms`, `s`, `m` or `h`.
///
/// A bare number is refused: "30" could mean seconds or milliseconds, and guessing wrong by a
/// factor of a thousand is the kind of mistake that only shows in production.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = number_and_unit(text)?;
    match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => number.checked_mul(60).map(Duration::from_secs),
        "h" => number.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// Formats a byte count the way the config accepts it back, for logs and tables.
pub(crate) fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, factor) in UNITS {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{}{unit}", bytes / factor);
        }
    }
    for (unit, factor) in UNITS {
        if bytes >= factor {
            return format!("{:.1}{unit}", bytes as f64 / factor as f64);
        }
    }
    format!("{bytes}B")
}

/// Formats a duration the way the config accepts it back.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}
