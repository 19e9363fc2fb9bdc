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
        // The process's figures keep the names every client library gives them.
        assert!(
            name.starts_with("geecache_") || name.starts_with("process_"),
            "{line}"
        );
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

#[test]
fn the_scrapers_accept_header_picks_the_format() {
    let om = Format::OpenMetrics;
    let text = Format::PrometheusText;
    for (accept, want) in [
        (None, om),
        (Some("*/*"), om),
        (Some("text/plain"), text),
        (Some("text/plain; version=0.0.4"), text),
        (Some("text/*"), text),
        (Some("application/openmetrics-text"), om),
        // What Prometheus 2.x sends: OpenMetrics first.
        (
            Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                 version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            ),
            om,
        ),
        (
            Some("application/openmetrics-text;q=0.2, text/plain;q=0.9"),
            text,
        ),
        // The most specific range decides: text/plain is wanted at 0.5, OpenMetrics at 0.8.
        (Some("text/plain;q=0.5, */*;q=0.8"), om),
        (Some("text/plain;q=0, */*"), om),
        (Some("application/json"), om),
        (Some("TEXT/PLAIN"), text),
        (Some("text/plain;q=nonsense"), text),
    ] {
        assert_eq!(Format::negotiate(accept), want, "Accept: {accept:?}");
    }
}

#[test]
fn prometheus_text_declares_counters_under_their_sample_names() {
    let openmetrics = "\
# HELP requests Requests served.
# TYPE requests counter
requests_total{route=\"get\"} 3 # {trace=\"a\"} 1.0
requests_created{route=\"get\"} 1700000000.0
# HELP wait_seconds Time waited.
# TYPE wait_seconds histogram
# UNIT wait_seconds seconds
wait_seconds_bucket{le=\"1.0\"} 1
wait_seconds_bucket{le=\"+Inf\"} 1
wait_seconds_sum 0.5
wait_seconds_count 1
# HELP mystery Who knows.
# TYPE mystery unknown
mystery 7
# EOF
";
    let want = "\
# HELP requests_total Requests served.
# TYPE requests_total counter
requests_total{route=\"get\"} 3
# HELP wait_seconds Time waited.
# TYPE wait_seconds histogram
wait_seconds_bucket{le=\"1.0\"} 1
wait_seconds_bucket{le=\"+Inf\"} 1
wait_seconds_sum 0.5
wait_seconds_count 1
# HELP mystery Who knows.
# TYPE mystery untyped
mystery 7
";
    assert_eq!(format::to_prometheus_text(openmetrics), want);
    assert_eq!(lint::problems(want), Vec::<String>::new());
}

/// A node's metrics with every kind of series present: a group with traffic, a peer pool
/// with peers, peer requests and loads observed.
async fn busy_metrics() -> Metrics {
    let registry = Registry::new();
    let metrics = Metrics::new(registry.clone());
    let getter = getter_fn(|key: String| async move {
        match key.as_str() {
            "missing" => Err(LoadError::NotFound),
            _ => Ok(Loaded::from(format!("value of {key}"))),
        }
    });
    let group = Group::builder("scores")
        .register(&registry)
        .getter(metrics.timed("scores", getter))
        .build()
        .unwrap();
    group.get("a").await.unwrap();
    assert!(group.get("missing").await.is_err());
    let pool = geecache_transport_http::HttpPool::builder("http://a:1")
        .build()
        .unwrap();
    pool.set_peers(["http://a:1", "http://b:1"]).unwrap();
    metrics.watch_peers(pool.cluster());
    metrics.set_peer_count(2);
    let observer = metrics.peer_observer();
    observer.on_peer_request("http://b:1", PeerOutcome::Ok, Duration::from_millis(2));
    metrics
}

// Regression: `curl /metrics | promtool check metrics` failed with "no help text" for every
// counter, because promtool reads the 0.0.4 text format, where a counter is declared under
// its `_total` name, and the node only spoke OpenMetrics.
#[tokio::test]
async fn both_formats_pass_promtools_lint_rules_and_say_the_same() {
    let metrics = busy_metrics().await;
    let (om_type, openmetrics) = metrics.render(None);
    let (text_type, rendered) = metrics.render(Some("text/plain"));
    assert!(
        om_type.starts_with("application/openmetrics-text"),
        "{om_type}"
    );
    assert!(
        text_type.starts_with("text/plain; version=0.0.4"),
        "{text_type}"
    );
    assert_eq!(
        lint::problems(&rendered),
        Vec::<String>::new(),
        "{rendered}"
    );
    // The same scrape in both formats (the process's figures move between two scrapes).
    let text = format::to_prometheus_text(&openmetrics);

    // The check can fail: OpenMetrics read as 0.0.4 is what promtool refused.
    let misread = lint::problems(&openmetrics);
    assert!(
        misread.iter().any(|p| p.ends_with("no help text")),
        "{misread:?}"
    );

    assert_eq!(lint::problems(&text), Vec::<String>::new(), "{text}");
    // Every OpenMetrics family is documented and typed.
    let helped: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let typed: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(helped, typed);
    for family in &helped {
        let help = openmetrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# HELP {family} ")))
            .unwrap();
        assert!(!help.trim().is_empty(), "{family} has an empty help text");
    }

    // Both parse, to the same samples.
    let om = parse(&openmetrics);
    let plain = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    assert_eq!(samples(&om), samples(&plain));
    for name in [
        "geecache_group_gets_total",
        "geecache_peer_state",
        "geecache_peers",
    ] {
        assert!(plain.samples.iter().any(|s| s.metric == name), "{name}");
    }
}

#[test]
fn proc_files_parse_into_the_process_figures() {
    // A command name with a space and a parenthesis, as `comm` allows.
    let stat = "4242 (geecache (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 \
                9 0 123456 987654321 2500 18446744073709551615";
    assert_eq!(
        process::parse_stat(stat),
        Some(process::Stat {
            cpu_ticks: 325,
            start_ticks: 123_456
        })
    );
    assert_eq!(process::parse_stat("4242 (cut short) S 1 2"), None);
    let status = "Name:\tgeecache\nVmPeak:\t  20000 kB\nVmRSS:\t   10240 kB\nThreads:\t9\n";
    assert_eq!(process::parse_resident(status), Some(10_485_760));
    assert_eq!(process::parse_resident("Name:\tgeecache\n"), None);
    let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                  Max processes             63704                63704                processes \n\
                  Max open files            1024                 524288               files     \n";
    assert_eq!(process::parse_max_fds(limits), Some(1024));
    let unlimited = "Max open files            unlimited            unlimited            files\n";
    assert_eq!(process::parse_max_fds(unlimited), None);
    assert_eq!(
        process::parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
        Some(1_700_000_000)
    );
}

#[cfg(target_os = "linux")]
#[test]
fn process_figures_are_exported_from_proc() {
    let metrics = Metrics::new(Registry::new());
    // Hold a descriptor open, so the count is at least it.
    let held = std::fs::File::open("/proc/self/stat").unwrap();
    let s = parse(&metrics.encode());
    let get = |name: &str| value(&s, name, &[]).unwrap_or_else(|| panic!("no {name}"));
    assert!(get("process_resident_memory_bytes") > 0.0);
    assert!(get("process_open_fds") >= 1.0);
    assert!(get("process_max_fds") >= get("process_open_fds"));
    assert!(get("process_cpu_seconds_total") >= 0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = get("process_start_time_seconds");
    assert!(started > 0.0 && started <= now + 1.0, "{started} vs {now}");
    drop(held);
}

#[test]
fn client_routes_are_labelled_from_a_fixed_set() {
    use axum::http::{Method, StatusCode};
    assert_eq!(api::route_of(&Method::GET, "/api/scores/k"), Some("get"));
    assert_eq!(api::route_of(&Method::HEAD, "/api/scores/k"), Some("get"));
    assert_eq!(
        api::route_of(&Method::DELETE, "/api/scores/k"),
        Some("delete")
    );
    assert_eq!(api::route_of(&Method::PUT, "/api/x"), Some("other"));
    for path in ["/metrics", "/_geecache/scores/k", "/apiary", "/"] {
        assert_eq!(api::route_of(&Method::GET, path), None, "{path}");
    }
    assert_eq!(api::status_class(StatusCode::OK), "2xx");
    assert_eq!(api::status_class(StatusCode::NO_CONTENT), "2xx");
    assert_eq!(api::status_class(StatusCode::NOT_FOUND), "4xx");
    assert_eq!(api::status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");

    let metrics = Metrics::new(Registry::new());
    let api = metrics.api();
    api.record("get", StatusCode::OK, 0.001);
    api.record("get", StatusCode::OK, 0.002);
    api.record("get", StatusCode::NOT_FOUND, 0.001);
    let s = parse(&metrics.encode());
    let requests = |status: &str| {
        value(
            &s,
            "geecache_api_requests_total",
            &[("route", "get"), ("status", status)],
        )
    };
    assert_eq!((requests("2xx"), requests("4xx")), (Some(2.0), Some(1.0)));
    assert_eq!(
        value(
            &s,
            "geecache_api_request_duration_seconds_count",
            &[("route", "get")]
        ),
        Some(3.0)
    );
}

// Regression: the peer request histogram kept a series for every peer that ever answered, so
// each deploy (new pod names) grew the exposition for good.
#[test]
fn a_departed_peers_request_series_are_dropped() {
    let metrics = Metrics::new(Registry::new());
    let pool = geecache_transport_http::HttpPool::builder("http://a:1")
        .build()
        .unwrap();
    pool.set_peers(["http://a:1", "http://b:1", "http://c:1"])
        .unwrap();
    metrics.watch_peers(pool.cluster());
    let observer = metrics.peer_observer();
    observer.on_peer_request("http://b:1", PeerOutcome::Ok, Duration::from_millis(1));
    observer.on_peer_request("http://c:1", PeerOutcome::Ok, Duration::from_millis(1));
    observer.on_peer_request("http://c:1", PeerOutcome::Timeout, Duration::from_secs(1));
    let count = |s: &Scrape, peer: &str, outcome: &str| {
        value(
            s,
            "geecache_peer_request_duration_seconds_count",
            &[("peer", peer), ("outcome", outcome)],
        )
    };
    let before = parse(&metrics.encode());
    assert_eq!(count(&before, "http://c:1", "timeout"), Some(1.0));

    pool.set_peers(["http://a:1", "http://b:1"]).unwrap();
    let after = parse(&metrics.encode());
    assert_eq!(count(&after, "http://c:1", "ok"), None);
    assert_eq!(count(&after, "http://c:1", "timeout"), None);
    assert_eq!(count(&after, "http://b:1", "ok"), Some(1.0), "members stay");

    // A peer that comes back starts its series afresh.
    pool.set_peers(["http://a:1", "http://b:1", "http://c:1"])
        .unwrap();
    observer.on_peer_request("http://c:1", PeerOutcome::Ok, Duration::from_millis(1));
    let back = parse(&metrics.encode());
    assert_eq!(count(&back, "http://c:1", "ok"), Some(1.0));
}

/// Every sample as `name{labels in order} value`, sorted: the parser keeps neither the order
/// of histogram series nor a counter's type in OpenMetrics (declared under another name,
/// its samples parse as untyped), so compare what is left.
fn samples(scrape: &Scrape) -> Vec<String> {
    let mut all: Vec<String> = scrape
        .samples
        .iter()
        .map(|s| {
            let labels: std::collections::BTreeMap<_, _> = s.labels.iter().collect();
            let value = match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v.to_string(),
                other => format!("{other:?}"),
            };
            format!("{}{labels:?} {value}", s.metric)
        })
        .collect();
    all.sort();
    all
}
