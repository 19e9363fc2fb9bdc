use std::collections::HashMap;
use std::time::Duration;

use geecache_group::{Group, LoadError, Loaded, Registry, getter_fn};
use prometheus_parse::{Scrape, Value};

use super::*;

/// Parses an exposition and checks it line by line: every line is a comment or a sample the
/// parser understood (prometheus-parse skips lines it cannot read, so a silent skip would
/// hide a malformed line), and it ends with `# EOF`.
fn parse(text: &str) -> Scrape {
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    let sample_lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let parsed: usize = scrape
        .samples
        .iter()
        .map(|s| match &s.value {
            Value::Histogram(buckets) => buckets.len(),
            _ => 1,
        })
        .sum();
    // Histograms also print _sum and _count (and _created) lines, parsed as plain samples.
    assert_eq!(
        parsed, sample_lines,
        "every sample line must parse:\n{text}"
    );
    scrape
}

/// The value of the sample `name` with exactly these labels.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: HashMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && *s.labels == want)
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(b) => b.last().map_or(0.0, |c| c.count),
            Value::Summary(_) => f64::NAN,
        })
}

#[tokio::test]
async fn group_counters_are_read_at_scrape_time() {
    let registry = Registry::new();
    let metrics = Metrics::new(registry.clone());
    let getter = getter_fn(|key: String| async move {
        match key.as_str() {
            "missing" => Err(LoadError::NotFound),
            "broken" => Err(LoadError::failed("disk on fire")),
            _ => Ok(Loaded::from(format!("value of {key}"))),
        }
    });
    let group = Group::builder("scores")
        .register(&registry)
        .cache_bytes(1 << 20)
        .getter(metrics.timed("scores", getter))
        .build()
        .unwrap();

    let empty = parse(&metrics.encode());
    assert_eq!(
        value(&empty, "geecache_group_gets_total", &[("group", "scores")]),
        Some(0.0)
    );

    group.get("a").await.unwrap();
    group.get("a").await.unwrap();
    group.get("bb").await.unwrap();
    assert!(group.get("missing").await.is_err());
    assert!(group.get("broken").await.is_err());
    metrics.set_peer_count(3);

    let s = parse(&metrics.encode());
    let g = [("group", "scores")];
    assert_eq!(value(&s, "geecache_group_gets_total", &g), Some(5.0));
    assert_eq!(value(&s, "geecache_group_cache_hits_total", &g), Some(1.0));
    assert_eq!(value(&s, "geecache_group_local_loads_total", &g), Some(2.0));
    assert_eq!(
        value(&s, "geecache_group_local_load_errors_total", &g),
        Some(1.0)
    );
    assert_eq!(value(&s, "geecache_group_not_found_total", &g), Some(1.0));
    assert_eq!(
        value(&s, "geecache_group_cache_limit_bytes", &g),
        Some(1_048_576.0)
    );
    let main = [("group", "scores"), ("cache", "main")];
    assert_eq!(value(&s, "geecache_cache_items", &main), Some(2.0));
    let bytes = "a".len() + "value of a".len() + "bb".len() + "value of bb".len();
    assert_eq!(value(&s, "geecache_cache_bytes", &main), Some(bytes as f64));
    assert_eq!(value(&s, "geecache_peers", &[]), Some(3.0));
    assert_eq!(
        value(
            &s,
            "geecache_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    // The loader histogram saw two successes, one not-found, one failure.
    let count = |outcome: &str| {
        value(
            &s,
            "geecache_load_duration_seconds_count",
            &[("group", "scores"), ("outcome", outcome)],
        )
    };
    assert_eq!(count("ok"), Some(2.0));
    assert_eq!(count("not_found"), Some(1.0));
    assert_eq!(count("error"), Some(1.0));
}

#[test]
fn peer_requests_are_observed_by_peer_and_outcome() {
    let metrics = Metrics::new(Registry::new());
    let observer = metrics.peer_observer();
    observer.on_peer_request("http://b:1", PeerOutcome::Ok, Duration::from_millis(2));
    observer.on_peer_request("http://b:1", PeerOutcome::Ok, Duration::from_millis(3));
    observer.on_peer_request("http://c:1", PeerOutcome::Timeout, Duration::from_secs(1));
    let s = parse(&metrics.encode());
    let count = |peer: &str, outcome: &str| {
        value(
            &s,
            "geecache_peer_request_duration_seconds_count",
            &[("peer", peer), ("outcome", outcome)],
        )
    };
    assert_eq!(count("http://b:1", "ok"), Some(2.0));
    assert_eq!(count("http://c:1", "timeout"), Some(1.0));
    let sum = value(
        &s,
        "geecache_peer_request_duration_seconds_sum",
        &[("peer", "http://b:1"), ("outcome", "ok")],
    )
    .unwrap();
    assert!((sum - 0.005).abs() < 1e-9, "{sum}");
}

#[test]
fn metric_names_follow_prometheus_conventions() {
    let text = Metrics::new(Registry::new()).encode();
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line.split_whitespace().skip(2);
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        assert!(name.starts_with("geecache_"), "{line}");
        // OpenMetrics declares counters without the suffix and prints samples with _total.
        assert!(!name.ends_with("_total"), "{line}");
        if kind == "histogram" {
            assert!(name.ends_with("_seconds"), "{line}");
        }
    }
}

#[test]
fn each_peers_circuit_is_a_gauge_per_state_and_a_count_of_openings() {
    let metrics = Metrics::new(Registry::new());
    assert!(
        !metrics.encode().contains("geecache_peer_state"),
        "no pool, no series"
    );
    let pool = geecache_transport_http::HttpPool::builder("http://a:1")
        .build()
        .unwrap();
    pool.set_peers(["http://a:1", "http://b:1", "http://c:1"])
        .unwrap();
    metrics.watch_peers(pool.cluster());
    let s = parse(&metrics.encode());
    for peer in ["http://b:1", "http://c:1"] {
        let state = |state: &str| {
            value(
                &s,
                "geecache_peer_state",
                &[("peer", peer), ("state", state)],
            )
        };
        assert_eq!(
            (state("closed"), state("open"), state("half-open")),
            (Some(1.0), Some(0.0), Some(0.0))
        );
        let openings = value(
            &s,
            "geecache_peer_circuit_openings_total",
            &[("peer", peer)],
        );
        assert_eq!(openings, Some(0.0));
    }
    assert_eq!(
        value(
            &s,
            "geecache_peer_state",
            &[("peer", "http://a:1"), ("state", "closed")]
        ),
        None,
        "this node is not its own peer"
    );
    // A peer that leaves the cluster leaves the exposition.
    pool.set_peers(["http://a:1", "http://b:1"]).unwrap();
    let s = parse(&metrics.encode());
    let gone = value(
        &s,
        "geecache_peer_state",
        &[("peer", "http://c:1"), ("state", "closed")],
    );
    assert_eq!(gone, None);
}
