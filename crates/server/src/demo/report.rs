//! The demo's tables, as plain text that reads the same in a terminal and in a CI log.

use std::fmt::Write as _;

use geecache_group::Stats;

use super::workload::Outcome;
use crate::config::units::format_size;
use crate::source::demo::LoadSummary;

/// One node's line.
pub(crate) struct NodeRow<'a> {
    /// e.g. "node 1".
    pub(crate) name: String,
    /// Its address.
    pub(crate) addr: String,
    /// Client requests the workload sent it.
    pub(crate) requests: u64,
    /// Its group's counters.
    pub(crate) stats: &'a Stats,
}

const HEADERS: [&str; 11] = [
    "node",
    "address",
    "requests",
    "from peers",
    "hits",
    "hot hits",
    "peer loads",
    "local loads",
    "loads deduped",
    "peer errors",
    "bytes cached",
];

/// The per-node table with a total line.
pub(crate) fn node_table(rows: &[NodeRow<'_>]) -> String {
    let cells = |r: &NodeRow<'_>| -> [String; 11] {
        let s = r.stats;
        [
            r.name.clone(),
            r.addr.clone(),
            r.requests.to_string(),
            s.server_requests.to_string(),
            s.cache_hits.to_string(),
            s.hot.hits.to_string(),
            s.peer_loads.to_string(),
            s.local_loads.to_string(),
            s.loads_deduped.to_string(),
            s.peer_errors.to_string(),
            format_size((s.main.bytes + s.hot.bytes) as u64),
        ]
    };
    let mut lines: Vec<[String; 11]> = vec![HEADERS.map(str::to_owned)];
    lines.extend(rows.iter().map(cells));
    let sum = |f: fn(&Stats) -> u64| rows.iter().map(|r| f(r.stats)).sum::<u64>();
    lines.push([
        "total".to_owned(),
        String::new(),
        rows.iter().map(|r| r.requests).sum::<u64>().to_string(),
        sum(|s| s.server_requests).to_string(),
        sum(|s| s.cache_hits).to_string(),
        sum(|s| s.hot.hits).to_string(),
        sum(|s| s.peer_loads).to_string(),
        sum(|s| s.local_loads).to_string(),
        sum(|s| s.loads_deduped).to_string(),
        sum(|s| s.peer_errors).to_string(),
        format_size(sum(|s| (s.main.bytes + s.hot.bytes) as u64)),
    ]);
    let widths: Vec<usize> = (0..HEADERS.len())
        .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i == lines.len() - 1 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "  {}", rule.join("  "));
        }
        let mut text = String::from("  ");
        for (c, cell) in line.iter().enumerate() {
            if c > 0 {
                text.push_str("  ");
            }
            // Names left, numbers right, as a reader scans them.
            if c < 2 {
                let _ = write!(text, "{cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(text, "{cell:>w$}", w = widths[c]);
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    }
    out
}

/// The counters of `now` minus those of `before`; sizes (bytes, items) as of `now`.
pub(crate) fn since(now: &Stats, before: &Stats) -> Stats {
    // `Stats` is non-exhaustive: start from `now` and rewrite the counters we know of.
    let mut d = *now;
    d.gets -= before.gets;
    d.cache_hits -= before.cache_hits;
    d.peer_loads -= before.peer_loads;
    d.peer_errors -= before.peer_errors;
    d.loads -= before.loads;
    d.loads_deduped -= before.loads_deduped;
    d.local_loads -= before.local_loads;
    d.local_load_errors -= before.local_load_errors;
    d.not_found -= before.not_found;
    d.server_requests -= before.server_requests;
    for (c, b) in [(&mut d.main, &before.main), (&mut d.hot, &before.hot)] {
        c.hits -= b.hits;
        c.evictions -= b.evictions;
        c.expirations -= b.expirations;
    }
    d
}

/// Hits over gets across the cluster, in percent.
pub(crate) fn hit_ratio(stats: &[&Stats]) -> f64 {
    let gets: u64 = stats.iter().map(|s| s.gets).sum();
    let hits: u64 = stats.iter().map(|s| s.cache_hits).sum();
    if gets == 0 {
        0.0
    } else {
        100.0 * hits as f64 / gets as f64
    }
}

/// The workload's line: how many, how fast, how many failed.
pub(crate) fn outcome_line(outcome: &Outcome) -> String {
    let secs = outcome.elapsed.as_secs_f64().max(1e-9);
    let mut line = format!(
        "{} requests in {:.2}s ({:.0} req/s), {} succeeded, {} failed",
        outcome.sent(),
        outcome.elapsed.as_secs_f64(),
        outcome.sent() as f64 / secs,
        outcome.sent() - outcome.failed(),
        outcome.failed()
    );
    if let Some(e) = &outcome.first_error {
        let _ = write!(line, " (first failure: {e})");
    }
    line
}

/// Keys loaded again and keys loaded for the first time, between two snapshots of the
/// table's per-row load counts.
pub(crate) fn reloads(before: &[u32], after: &[u32]) -> (u64, u64) {
    before
        .iter()
        .zip(after)
        .fold((0, 0), |(again, fresh), (&b, &a)| match (b, a) {
            (0, 0) => (again, fresh),
            (0, _) => (again, fresh + 1),
            (b, a) if a > b => (again + 1, fresh),
            _ => (again, fresh),
        })
}

/// The exactly-once proof, from the table's own load counters.
pub(crate) fn loads_line(summary: &LoadSummary) -> String {
    let verdict = if summary.total_loads == summary.distinct_keys {
        "every key was loaded exactly once across the cluster"
    } else {
        "some keys were loaded more than once"
    };
    format!(
        "distinct keys loaded: {}, loads in total: {}, most loads of one key: {} => {verdict}",
        summary.distinct_keys, summary.total_loads, summary.max_loads_per_key
    )
}
