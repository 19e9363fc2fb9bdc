//! The demo's tables, as plain text that reads the same in a terminal and in a CI log.

use std::fmt::Write as _;

use geecache_group::Stats;

use super::workload::Outcome;
use crate::config::units::format_size;
use crate::source::demo::LoadSummary;

/// One node's line.
pub(crate) struct NodeRow<'a> {
    /// e.g. "node 1" (its address is printed when it starts).
    pub(crate) name: String,
    /// Client requests the workload sent it.
    pub(crate) requests: u64,
    /// Its group's counters.
    pub(crate) stats: &'a Stats,
}

/// The widest the table may be: it must fit a 100-column terminal without wrapping, even
/// with seven-digit counts (a demo of millions of requests). The headings are chosen for it.
#[cfg(test)]
pub(crate) const MAX_WIDTH: usize = 100;

/// Column headings, short enough that the table fits 100 columns; the legend printed
/// under the table says what each one counts.
const HEADERS: [&str; COLUMNS] = [
    "node",
    "requests",
    "from peers",
    "hits",
    "hot hits",
    "peer loads",
    "local loads",
    "failovers",
    "cached",
];
const COLUMNS: usize = 9;

/// What the headings mean, printed under the first table.
pub(crate) const LEGEND: [&str; 4] = [
    "  from peers: gets this node served for a peer (it owns the key); hits: from a cache;",
    "  hot hits: from the copies of other nodes' keys; peer loads: fetched from the owner;",
    "  local loads: loaded from the table; failovers: peer fetches that failed (the key",
    "  then went to the next member, or was loaded here); cached: bytes held by the caches",
];

/// The counters of one row, in [`HEADERS`] order after the name.
fn figures(s: &Stats) -> [u64; COLUMNS - 2] {
    [
        s.server_requests,
        s.cache_hits,
        s.hot.hits,
        s.peer_loads,
        s.local_loads,
        s.peer_errors,
        (s.main.bytes + s.hot.bytes) as u64,
    ]
}

/// The per-node table with a total line.
pub(crate) fn node_table(rows: &[NodeRow<'_>]) -> String {
    let line = |name: String, requests: u64, figures: [u64; COLUMNS - 2]| -> [String; COLUMNS] {
        let [
            from_peers,
            hits,
            hot_hits,
            peer_loads,
            local_loads,
            failovers,
            bytes,
        ] = figures;
        [
            name,
            requests.to_string(),
            from_peers.to_string(),
            hits.to_string(),
            hot_hits.to_string(),
            peer_loads.to_string(),
            local_loads.to_string(),
            failovers.to_string(),
            format_size(bytes),
        ]
    };
    let mut lines: Vec<[String; COLUMNS]> = vec![HEADERS.map(str::to_owned)];
    lines.extend(
        rows.iter()
            .map(|r| line(r.name.clone(), r.requests, figures(r.stats))),
    );
    let mut total = [0_u64; COLUMNS - 2];
    for r in rows {
        for (sum, figure) in total.iter_mut().zip(figures(r.stats)) {
            *sum += figure;
        }
    }
    lines.push(line(
        "total".to_owned(),
        rows.iter().map(|r| r.requests).sum(),
        total,
    ));
    let widths: Vec<usize> = (0..COLUMNS)
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
            if c == 0 {
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

/// The share of client requests answered without a load from the source, in percent: what
/// the clients got from the cache as a whole.
///
/// Not cache hits over gets: a request that goes to the key's owner is counted as a get
/// twice (where it arrived, and at the owner), so that ratio mixes two views of one request.
/// Here each client request counts once (`gets - server_requests`), and each load from the
/// source is a request the cache could not answer.
pub(crate) fn hit_ratio(stats: &[&Stats]) -> f64 {
    let client_gets: u64 = stats
        .iter()
        .map(|s| s.gets.saturating_sub(s.server_requests))
        .sum();
    let loads: u64 = stats.iter().map(|s| s.local_loads).sum();
    if client_gets == 0 {
        0.0
    } else {
        100.0 * (1.0 - loads.min(client_gets) as f64 / client_gets as f64)
    }
}

/// A request rate as the progress bar shows it: whole requests per second (indicatif's own
/// `{per_sec}` prints `4,809.2362/s`, more digits than anyone reads).
pub(crate) fn rate(per_sec: f64) -> String {
    if per_sec.is_finite() && per_sec >= 0.0 {
        format!("{per_sec:.0}/s")
    } else {
        "-/s".to_owned()
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
        "distinct keys loaded: {}, loads in total: {}, most loads of one key: {}\n  => {verdict}",
        summary.distinct_keys, summary.total_loads, summary.max_loads_per_key
    )
}
