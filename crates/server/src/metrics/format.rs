//! The two exposition formats a scraper may ask for, and which one it gets.
//!
//! The registry encodes OpenMetrics only. Prometheus reads it natively and asks for it first,
//! but older scrapers, `promtool check metrics` and some agents read only the Prometheus text
//! format 0.0.4. Rather than a second encoder walking every collector again (two lists of
//! metrics to keep in step), the 0.0.4 text is rewritten from the OpenMetrics text: the two
//! differ in a handful of line-level rules, listed at [`to_prometheus_text`].

use std::fmt::Write as _;

/// The `Content-Type` of the OpenMetrics text format.
pub(crate) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The `Content-Type` of the Prometheus text format 0.0.4.
pub(crate) const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// OpenMetrics 1.0 text.
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    PrometheusText,
}

impl Format {
    /// The format to answer a request with `Accept: accept`: the Prometheus text format when
    /// the client prefers `text/plain` to `application/openmetrics-text`, OpenMetrics
    /// otherwise (no header, `*/*`, a tie, or a header naming neither).
    ///
    /// Prometheus itself sends `application/openmetrics-text;version=1.0.0,...,
    /// text/plain;version=0.0.4;q=0.5,*/*;q=0.1` and gets OpenMetrics; a scraper that sends
    /// only `text/plain` gets what it can parse.
    pub(crate) fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::OpenMetrics;
        };
        let (mut openmetrics, mut text) = (Preference::NONE, Preference::NONE);
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, v)| v.trim().parse::<f32>().ok())
                .filter(|q| q.is_finite())
                .unwrap_or(1.0);
            openmetrics.offer(&media, q, "application", "openmetrics-text");
            text.offer(&media, q, "text", "plain");
        }
        if text.q() > openmetrics.q() {
            Format::PrometheusText
        } else {
            Format::OpenMetrics
        }
    }

    /// The `Content-Type` of this format.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS,
            Format::PrometheusText => PROMETHEUS_TEXT,
        }
    }
}

/// How much a client wants one media type: the quality of the most specific range naming it
/// (an exact type beats `type/*`, which beats `*/*`, as RFC 9110 §12.5.1 orders them).
#[derive(Clone, Copy)]
struct Preference {
    specificity: u8,
    q: f32,
}

impl Preference {
    const NONE: Preference = Preference {
        specificity: 0,
        q: 0.0,
    };

    fn offer(&mut self, media: &str, q: f32, kind: &str, subtype: &str) {
        let specificity = match media.split_once('/') {
            Some((k, s)) if k == kind && s == subtype => 3,
            Some((k, "*")) if k == kind => 2,
            Some(("*", "*")) => 1,
            _ => return,
        };
        if specificity > self.specificity {
            *self = Preference { specificity, q };
        }
    }

    fn q(self) -> f32 {
        self.q
    }
}

/// Rewrites an OpenMetrics exposition as the Prometheus text format 0.0.4:
///
/// - a counter is declared under its samples' name: OpenMetrics says `# TYPE x counter` and
///   samples `x_total`; 0.0.4 says `# TYPE x_total counter`, or every sample would be an
///   undocumented, untyped series of its own;
/// - `unknown` is `untyped`;
/// - `# UNIT` and `# EOF` have no meaning in 0.0.4 and are left out, and so are `_created`
///   samples and exemplars (` # {...}` after a value), which 0.0.4 cannot say.
pub(crate) fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // `# HELP` comes before `# TYPE`, whose type decides the name the help goes under.
    let mut pending_help: Option<(&str, &str)> = None;
    // The family being written, whose `_created` samples are left out.
    let mut family = "";
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help = Some((name, help));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (declared, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "unknown" => (name.to_owned(), "untyped"),
                other => (name.to_owned(), other),
            };
            family = name;
            if let Some((help_name, help)) = pending_help.take()
                && help_name == name
            {
                let _ = writeln!(out, "# HELP {declared} {help}");
            }
            let _ = writeln!(out, "# TYPE {declared} {kind}");
            continue;
        }
        if line.starts_with('#') {
            // `# UNIT`, `# EOF` and any other comment.
            continue;
        }
        let sample = line
            .split_once(" # ")
            .map_or(line, |(sample, _exemplar)| sample);
        let name = sample.split(['{', ' ']).next().unwrap_or("");
        if name.strip_prefix(family) == Some("_created") {
            continue;
        }
        let _ = writeln!(out, "{sample}");
    }
    out
}
