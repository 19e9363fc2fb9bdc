//! `geecache demo` in a short configuration: exit 0, a readable table, one load per key.

use crate::support::{DEADLINE, Running, geecache, run};

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
        "from peers",
        "hits",
        "hot hits",
        "peer loads",
        "local loads",
        "failovers",
        "cached",
    ] {
        assert!(text.contains(column), "missing column {column:?}:\n{text}");
    }
    // Regression: the tables were 131 columns wide and wrapped in a 120-column terminal.
    for line in text.lines() {
        assert!(line.len() <= 100, "{} columns: {line}", line.len());
    }
    assert!(text.contains("3000 requests in"), "{text}");
    assert!(text.contains("3000 succeeded, 0 failed"), "{text}");
    assert!(text.contains("cluster hit ratio: "), "{text}");

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
    assert!(
        text.contains(&format!(
            "{line}\n  => every key was loaded exactly once across the cluster\n"
        )),
        "{text}"
    );

    // The per-node local loads add up to the same number.
    let total_row = text
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .expect("a total row");
    let cells: Vec<&str> = total_row.split_whitespace().collect();
    assert_eq!(cells[6].parse::<u64>().unwrap(), distinct, "{total_row}");

    assert!(text.contains("phase 2: node 3"), "{text}");
    assert!(
        text.contains("requests kept succeeding: 600 of 600 answered;"),
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

/// A demo that would run for minutes, for the tests that stop it.
fn long_demo(extra: &[&str]) -> Running {
    Running::spawn(
        geecache()
            .args([
                "demo",
                "--keys",
                "500",
                "--duration",
                "10m",
                "--concurrency",
                "4",
                "--load-delay",
                "1ms",
            ])
            .args(extra),
    )
}

// Regression: Ctrl-C during the demo killed it without a word about what it had done.
#[test]
fn ctrl_c_during_the_demo_prints_the_figures_so_far() {
    let mut demo = long_demo(&[]);
    demo.wait_for_line("phase 1: ");
    demo.interrupt();
    let status = demo.wait(DEADLINE);
    let text = demo.stdout_text();
    assert_eq!(status.code(), Some(130), "{text}\n{}", demo.stderr_text());
    assert!(text.contains("interrupted: the figures so far"), "{text}");
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("total")),
        "{text}"
    );
    assert!(text.contains("distinct keys loaded: "), "{text}");
    assert!(
        !text.contains("phase 2"),
        "stops instead of going on: {text}"
    );
}

// Regression: the --keep-running hint said `geecache get` to a user who ran `cargo run`,
// where no `geecache` is on the PATH.
#[test]
fn the_keep_running_hint_names_the_binary_that_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Running::spawn(
        geecache()
            .args([
                "demo",
                "--keys",
                "100",
                "--requests",
                "200",
                "--concurrency",
                "2",
                "--load-delay",
                "1ms",
                "--keep-running",
            ])
            .current_dir(dir.path()),
    );
    // The hint is indented like the table's lines before it.
    let hint = loop {
        let line = demo.wait_for_line("  ");
        if line.contains(" get ") {
            break line;
        }
    };
    assert!(
        hint.starts_with(&format!("{} get http://", env!("CARGO_BIN_EXE_geecache"))),
        "{hint}"
    );
    demo.wait_for_line("Press Ctrl-C to stop.");
    demo.interrupt();
    assert_eq!(
        demo.wait(DEADLINE).code(),
        Some(0),
        "{}",
        demo.stdout_text()
    );
}
