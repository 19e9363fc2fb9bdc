use geecache_group::Stats;

use super::report::{
    LEGEND, MAX_WIDTH, NodeRow, hit_ratio, loads_line, node_table, rate, reloads, since,
};
use crate::source::demo::LoadSummary;

fn stats(gets: u64, hits: u64, local_loads: u64) -> Stats {
    let mut s = Stats::default();
    s.gets = gets;
    s.cache_hits = hits;
    s.local_loads = local_loads;
    s.main.bytes = 2048;
    s
}

#[test]
fn the_node_table_has_a_header_a_line_per_node_and_a_total() {
    let (a, b) = (stats(10, 7, 3), stats(20, 15, 5));
    let rows = [
        NodeRow {
            name: "node 1".into(),
            requests: 10,
            stats: &a,
        },
        NodeRow {
            name: "node 2".into(),
            requests: 20,
            stats: &b,
        },
    ];
    let table = node_table(&rows);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[0].contains("requests") && lines[0].contains("cached"));
    assert!(lines[3].trim_start().starts_with("---"));
    let total: Vec<&str> = lines[4].split_whitespace().collect();
    assert_eq!(total[0], "total");
    assert_eq!(total[1], "30", "requests add up");
    assert_eq!(total[3], "22", "hits add up");
    assert_eq!(total[6], "8", "local loads add up");
    assert_eq!(*total.last().unwrap(), "4KiB");
    // Columns line up: every line has the same width up to its last cell.
    let width = lines[0].len();
    assert!(lines.iter().all(|l| l.len() <= width + 1), "{table}");
}

#[test]
fn hit_ratio_and_load_verdicts_come_from_the_counters() {
    let (a, b) = (stats(10, 7, 3), stats(30, 25, 5));
    // 40 client requests, 8 of them loaded from the source.
    assert!((hit_ratio(&[&a, &b]) - 80.0).abs() < 1e-9);
    assert_eq!(hit_ratio(&[]), 0.0);
    // Regression: a get forwarded to the key's owner counted twice. Node A takes 10 client
    // requests for one key and forwards each to B, which loads it once and then hits. Cache
    // hits over gets says 9 / 20 = 45%; the clients saw 9 of 10 answered from the cache.
    let mut forwarder = stats(10, 0, 0);
    forwarder.peer_loads = 10;
    let mut owner = stats(10, 9, 1);
    owner.server_requests = 10;
    assert!((hit_ratio(&[&forwarder, &owner]) - 90.0).abs() < 1e-9);
    let once = LoadSummary {
        distinct_keys: 4,
        total_loads: 4,
        max_loads_per_key: 1,
    };
    assert!(loads_line(&once).ends_with("every key was loaded exactly once across the cluster"));
    let twice = LoadSummary {
        total_loads: 5,
        max_loads_per_key: 2,
        ..once
    };
    assert!(loads_line(&twice).ends_with("some keys were loaded more than once"));
}

#[test]
fn since_subtracts_counters_and_keeps_sizes() {
    let before = stats(10, 7, 3);
    let mut now = stats(15, 9, 4);
    now.main.bytes = 4096;
    let d = since(&now, &before);
    assert_eq!((d.gets, d.cache_hits, d.local_loads), (5, 2, 1));
    assert_eq!(d.main.bytes, 4096);
}

#[test]
fn reloads_tell_keys_loaded_again_from_keys_loaded_first() {
    let before = [0, 1, 1, 0, 2];
    let after = [0, 2, 1, 1, 4];
    assert_eq!(reloads(&before, &after), (2, 1));
}

#[test]
fn the_table_fits_100_columns_with_seven_digit_counts() {
    let mut big = stats(9_999_999, 9_999_999, 9_999_999);
    big.server_requests = 9_999_999;
    big.hot.hits = 9_999_999;
    big.peer_loads = 9_999_999;
    big.peer_errors = 9_999_999;
    big.main.bytes = 1_000 << 20;
    let rows: Vec<NodeRow<'_>> = (1..=3)
        .map(|i| NodeRow {
            name: format!("node {i}"),
            requests: 9_999_999,
            stats: &big,
        })
        .collect();
    let table = node_table(&rows);
    for line in table.lines().chain(LEGEND) {
        assert!(line.len() <= MAX_WIDTH, "{} columns: {line}", line.len());
    }
}

// Regression: the progress bar showed rates like `4,809.2362/s`.
#[test]
fn rates_are_whole_requests_per_second() {
    assert_eq!(rate(4_809.236_2), "4809/s");
    assert_eq!(rate(0.4), "0/s");
    assert_eq!(rate(f64::NAN), "-/s");
}
