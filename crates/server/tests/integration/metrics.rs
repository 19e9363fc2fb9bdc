//! `/metrics`, `/healthz`, `/readyz` of a running node.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::support::{Server, metric, parse_metrics, request};

/// Set to `1` to make a missing `promtool` a test failure instead of a skip (CI does).
const REQUIRE_PROMTOOL: &str = "GEECACHE_REQUIRE_PROMTOOL";

#[test]
fn metrics_parse_as_prometheus_text_and_count_the_traffic() {
    let node = Server::start(&["--group", "scores=demo,cache=8MiB"]);
    for _ in 0..3 {
        assert_eq!(node.get("/api/scores/player-000001").status, 200);
    }
    assert_eq!(node.get("/api/scores/player-x").status, 404);

    let r = node.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"].starts_with("application/openmetrics-text"),
        "{:?}",
        r.headers
    );
    let text = r.text();
    assert!(text.ends_with("# EOF\n"));
    let scrape = parse_metrics(&text);
    let g = [("group", "scores")];
    assert_eq!(metric(&scrape, "geecache_group_gets_total", &g), Some(4.0));
    assert_eq!(
        metric(&scrape, "geecache_group_cache_hits_total", &g),
        Some(2.0)
    );
    assert_eq!(
        metric(&scrape, "geecache_group_local_loads_total", &g),
        Some(1.0)
    );
    assert_eq!(
        metric(&scrape, "geecache_group_not_found_total", &g),
        Some(1.0)
    );
    assert_eq!(
        metric(&scrape, "geecache_group_cache_limit_bytes", &g),
        Some(8.0 * 1024.0 * 1024.0)
    );
    let main = [("group", "scores"), ("cache", "main")];
    assert_eq!(metric(&scrape, "geecache_cache_items", &main), Some(1.0));
    assert!(metric(&scrape, "geecache_cache_bytes", &main).is_some_and(|b| b > 0.0));
    assert_eq!(
        metric(&scrape, "geecache_peers", &[]),
        Some(1.0),
        "a node alone is its own ring"
    );
    let loads = [("group", "scores"), ("outcome", "ok")];
    assert_eq!(
        metric(&scrape, "geecache_load_duration_seconds_count", &loads),
        Some(1.0)
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "geecache_build_info"),
        "build info is exported"
    );
    // Every family is documented.
    for name in [
        "geecache_group_gets",
        "geecache_cache_bytes",
        "geecache_load_duration_seconds",
    ] {
        assert!(scrape.docs.contains_key(name), "no HELP for {name}");
    }
}

#[test]
fn health_and_readiness_answer_plainly() {
    let node = Server::start(&["--group", "scores=demo"]);
    let health = node.get("/healthz");
    assert_eq!((health.status, health.text().trim()), (200, "ok"));
    let ready = node.get("/readyz");
    assert_eq!((ready.status, ready.text().trim()), (200, "ready"));
    assert_eq!(request(node.addr, "GET", "/nowhere", &[]).status, 404);
}

#[test]
fn admin_routes_require_the_peer_token_when_one_is_set() {
    let auth = [("Authorization", "Bearer s3cret-token")];
    let node = Server::start_authorized(
        crate::support::geecache()
            .args(["serve", "--listen", "127.0.0.1:0", "--group", "scores=demo"])
            .env("GEECACHE_PEER_TOKEN", "s3cret-token"),
        &auth,
    );
    for path in [
        "/metrics",
        "/readyz",
        "/healthz",
        "/stats",
        "/_geecache/scores/player-000001",
    ] {
        assert_eq!(node.get(path).status, 401, "{path} without a token");
        let wrong = request(node.addr, "GET", path, &[("Authorization", "Bearer guess")]);
        assert_eq!(wrong.status, 401, "{path} with a wrong token");
        assert_eq!(
            request(node.addr, "GET", path, &auth).status,
            200,
            "{path} with the token"
        );
    }
    // The client API stays open unless an API token is configured.
    assert_eq!(node.get("/api/scores/player-000001").status, 200);
    assert!(
        node.process
            .stderr_text()
            .contains("missing or wrong bearer token"),
        "refusals are logged"
    );
}

/// `promtool check metrics` over `text`: `Some((passed, what it said))`, or `None` when
/// promtool is not installed and not required.
fn promtool_check(text: &str) -> Option<(bool, String)> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                !std::env::var(REQUIRE_PROMTOOL).is_ok_and(|v| v == "1"),
                "`promtool` is not installed and {REQUIRE_PROMTOOL}=1 requires it \
                 (Debian package `prometheus`)"
            );
            eprintln!("skipped: promtool is not installed (Debian package `prometheus`)");
            return None;
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), said))
}

// Regression: `curl /metrics | promtool check metrics` failed: promtool reads the Prometheus
// text format 0.0.4, and the node answered OpenMetrics whatever the scraper asked for.
#[test]
fn promtool_passes_the_text_format_a_scraper_asks_for() {
    let node = Server::start(&["--group", "scores=demo,cache=8MiB"]);
    for path in [
        "/api/scores/player-000001",
        "/api/scores/player-x",
        "/api/nope/k",
    ] {
        node.get(path);
    }
    let text = request(node.addr, "GET", "/metrics", &[("Accept", "text/plain")]);
    assert_eq!(text.status, 200);
    assert_eq!(
        text.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = text.text();
    assert!(!body.contains("# EOF"), "{body}");
    let scrape = parse_metrics(&body);
    let requests = |status: &str| {
        metric(
            &scrape,
            "geecache_api_requests_total",
            &[("route", "get"), ("status", status)],
        )
    };
    assert_eq!((requests("2xx"), requests("4xx")), (Some(1.0), Some(2.0)));
    assert!(metric(&scrape, "process_resident_memory_bytes", &[]).is_some_and(|b| b > 0.0));
    assert!(metric(&scrape, "process_open_fds", &[]).is_some_and(|n| n > 0.0));

    // What Prometheus sends gets OpenMetrics.
    let prometheus_accept = "application/openmetrics-text;version=1.0.0,\
        application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let om = request(
        node.addr,
        "GET",
        "/metrics",
        &[("Accept", prometheus_accept)],
    );
    assert!(
        om.headers["content-type"].starts_with("application/openmetrics-text"),
        "{:?}",
        om.headers
    );

    let Some((passed, said)) = promtool_check(&body) else {
        return;
    };
    assert!(passed, "promtool refused the text format:\n{said}\n{body}");
    // The check can fail: OpenMetrics is not what promtool reads.
    let (passed, _) = promtool_check(&om.text()).unwrap();
    assert!(
        !passed,
        "promtool is expected to refuse OpenMetrics counters"
    );
}
