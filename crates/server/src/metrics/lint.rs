//! The rules `promtool check metrics` applies (its `promlint` package), for tests that must
//! hold whether or not promtool is installed. Each problem reads like promtool's own.
//!
//! The input is the Prometheus text format 0.0.4, which is what promtool reads; an
//! OpenMetrics exposition is checked through [`super::format::to_prometheus_text`].

use std::collections::BTreeMap;

/// A family as the text declares it.
#[derive(Default)]
struct Family {
    help: Option<String>,
    kind: Option<String>,
    labels: Vec<String>,
}

/// Abbreviations promlint refuses as name parts.
const ABBREVIATIONS: &[&str] = &[
    "g", "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d",
];
/// Units promlint asks to replace with their base unit.
const NON_BASE_UNITS: &[(&str, &str)] = &[
    ("milliseconds", "seconds"),
    ("microseconds", "seconds"),
    ("nanoseconds", "seconds"),
    ("minutes", "seconds"),
    ("hours", "seconds"),
    ("days", "seconds"),
    ("weeks", "seconds"),
    ("kilobytes", "bytes"),
    ("megabytes", "bytes"),
    ("gigabytes", "bytes"),
    ("terabytes", "bytes"),
    ("petabytes", "bytes"),
    ("bits", "bytes"),
    ("celsius", "celsius"),
    ("fahrenheit", "celsius"),
    ("percent", "ratio"),
];
const TYPES: &[&str] = &["counter", "gauge", "histogram", "summary", "untyped"];

/// Every problem promtool would report for `text`, as `name: problem` lines; also any line
/// that is not a comment, a declaration or a well-formed sample.
pub(super) fn problems(text: &str) -> Vec<String> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut problems = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let family = families.entry(name.to_owned()).or_default();
            if family.help.replace(help.to_owned()).is_some() {
                problems.push(format!("{name}: second HELP line"));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            if !TYPES.contains(&kind) {
                problems.push(format!("{name}: unknown type {kind:?}"));
            }
            let family = families.entry(name.to_owned()).or_default();
            if family.kind.replace(kind.to_owned()).is_some() {
                problems.push(format!("{name}: second TYPE line"));
            }
        } else if line.starts_with('#') {
            continue;
        } else {
            match sample(line) {
                Some((name, labels)) => {
                    let family = family_of(&families, &name);
                    let entry = families.entry(family).or_default();
                    entry.labels.extend(labels);
                }
                None => problems.push(format!("malformed sample line {line:?}")),
            }
        }
    }
    for (name, family) in &families {
        problems.extend(
            lint(name, family)
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
    }
    problems
}

/// The family a sample belongs to: its own name, or a histogram's or summary's whose
/// reserved suffix it carries.
fn family_of(families: &BTreeMap<String, Family>, sample: &str) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = sample.strip_suffix(suffix)
            && families
                .get(base)
                .and_then(|f| f.kind.as_deref())
                .is_some_and(|k| k == "histogram" || k == "summary")
        {
            return base.to_owned();
        }
    }
    sample.to_owned()
}

/// A sample line's metric name and label names, or `None` if it does not parse.
fn sample(line: &str) -> Option<(String, Vec<String>)> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return None;
    }
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut label_start = 0;
        let close = loop {
            let (i, c) = chars.next()?;
            match c {
                '=' => {
                    let label = inner[label_start..i].trim_start_matches(',').trim();
                    if !valid_name(label) {
                        return None;
                    }
                    labels.push(label.to_owned());
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    // The quoted value, with `\\`, `\"` and `\n` escapes.
                    loop {
                        match chars.next()?.1 {
                            '\\' => {
                                chars.next()?;
                            }
                            '"' => break,
                            _ => {}
                        }
                    }
                    label_start = chars.clone().next().map_or(inner.len(), |(j, _)| j);
                }
                '}' => break i,
                _ => {}
            }
        };
        rest = &inner[close + 1..];
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next()?;
    let valid_value = value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value);
    let timestamp_ok = fields.next().is_none_or(|t| t.parse::<i64>().is_ok());
    (valid_value && timestamp_ok && fields.next().is_none()).then(|| (name.to_owned(), labels))
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn lint(name: &str, family: &Family) -> Vec<String> {
    let mut problems = Vec::new();
    let kind = family.kind.as_deref().unwrap_or("untyped");
    if family.help.as_deref().is_none_or(|h| h.trim().is_empty()) {
        problems.push("no help text".to_owned());
    }
    let parts: Vec<&str> = name.split('_').collect();
    for (unit, base) in NON_BASE_UNITS {
        if parts.contains(unit) && unit != base {
            problems.push(format!("use base unit {base:?} instead of {unit:?}"));
        }
    }
    if parts.iter().any(|p| ABBREVIATIONS.contains(p)) {
        problems.push("metric names should not contain abbreviated units".to_owned());
    }
    match (kind, name.ends_with("_total")) {
        ("counter", false) => problems.push("counter metrics should have \"_total\" suffix".into()),
        ("counter", true) | (_, false) => {}
        (_, true) => problems.push("non-counter metrics should not have \"_total\" suffix".into()),
    }
    if kind != "histogram" && kind != "summary" {
        for suffix in ["_sum", "_count", "_bucket"] {
            if name.ends_with(suffix) {
                problems.push(format!(
                    "non-histogram and non-summary metrics should not have {suffix:?} suffix"
                ));
            }
        }
    }
    if kind != "histogram" && family.labels.iter().any(|l| l == "le") {
        problems.push("non-histogram metrics should not have \"le\" label".to_owned());
    }
    if kind != "summary" && family.labels.iter().any(|l| l == "quantile") {
        problems.push("non-summary metrics should not have \"quantile\" label".to_owned());
    }
    for t in TYPES {
        if parts.contains(t) {
            problems.push(format!("metric name should not include type '{t}'"));
        }
    }
    if name.contains(':') {
        problems.push("metric names should not contain ':'".to_owned());
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        problems.push("metric names should be written in 'snake_case' not 'camelCase'".into());
    }
    if family
        .labels
        .iter()
        .any(|l| l.chars().any(|c| c.is_ascii_uppercase()))
    {
        problems.push("label names should be written in 'snake_case' not 'camelCase'".into());
    }
    problems
}
