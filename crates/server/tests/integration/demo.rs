//! `geecache demo` in a short configuration: exit 0, a readable table, one load per key.

use crate::support::{geecache, run};

#[test]
fn a_short_demo_succeeds_and_proves_one_load_per_key() {
    short_demo("http", "HTTP/1.1");
}

#[test]
fn a_short_demo_over_grpc_succeeds_and_says_so() {
    short_demo("grpc", "gRPC (HTTP/2)");
}

/// The demo with its peers on `transport`, which its first and last lines name as `shown`.
fn short_demo(transport: &str, shown: &str) {
    let out = run(geecache().args([
        "demo",
        "--transport",
        transport,
        "--keys",
        "500",
        "--requests",
        "3000",
        "--failover-requests",
        "600",
        "--concurrency",
        "8",
        "--load-delay",
        "1ms",
    ]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let text = &out.stdout;
    // Without a terminal there is no progress bar: no escape codes, no carriage returns.
    assert!(!text.contains('\x1b') && !text.contains('\r'), "{text:?}");

    for column in [
        "requests",
        "hits",
        "hot hits",
        "peer loads",
        "local loads",
        "loads deduped",
        "peer errors",
        "bytes cached",
    ] {
        assert!(text.contains(column), "missing column {column:?}:\n{text}");
    }
    assert!(text.contains("3000 requests in"), "{text}");
    assert!(text.contains("3000 succeeded, 0 failed"), "{text}");
    assert!(text.contains("cluster-wide hit ratio: "), "{text}");

    // "distinct keys loaded: N, loads in total: M, ..." with N == M.
    let line = text
        .lines()
        .find(|l| l.starts_with("distinct keys loaded: "))
        .expect("the exactly-once line");
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let (distinct, total, most) = (numbers[0], numbers[1], numbers[2]);
    assert!(distinct > 0, "{line}");
    assert_eq!(distinct, total, "{line}");
    assert_eq!(most, 1, "{line}");
    assert!(line.ends_with("every key was loaded exactly once across the cluster"));

    // The per-node local loads add up to the same number.
    let total_row = text
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .expect("a total row");
    let cells: Vec<&str> = total_row.split_whitespace().collect();
    assert_eq!(cells[6].parse::<u64>().unwrap(), distinct, "{total_row}");

    assert!(text.contains("phase 2: node 3"), "{text}");
    assert!(
        text.contains("requests kept succeeding: 600 of 600 answered"),
        "{text}"
    );
    assert!(text.contains("all nodes stopped cleanly"), "{text}");
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.contains(&format!("talking {shown} between peers")),
        "{first}"
    );
    assert!(
        text.contains(&format!("all nodes stopped cleanly (peers talked {shown})")),
        "{text}"
    );
}

#[test]
fn demo_flags_are_validated() {
    let out = run(geecache().args(["demo", "--zipf", "0"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr.contains("expected a number greater than 0"),
        "{}",
        out.stderr
    );
}
