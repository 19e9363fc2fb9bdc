//! The alert rules and the Grafana dashboard in `deploy/prometheus/` query only metrics that a
//! running cluster exports, under the names it exports them. A renamed metric would otherwise
//! leave an alert that never fires and a panel that stays empty, with nothing to say so.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::{Server, free_ports, geecache, request};

/// Names the deployment files use that this binary does not export yet: the process metrics
/// (`process_resident_memory_bytes`, the memory alert's and panel's input). Checked once the
/// scrape has them; a name here that the scrape lacks is reported, not failed.
const NOT_EXPORTED_YET: &[&str] = &["process_resident_memory_bytes"];

/// The panels the dashboard promises (docs/deploy.md lists them).
const PANELS: &[&str] = &[
    "Request rate",
    "Hit ratio",
    "Loads",
    "Peer health",
    "Latency",
    "Memory",
];

fn deploy_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/prometheus")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `geecache_*` or `process_*` identifier in `text` (PromQL, YAML or JSON alike).
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("geecache_") || word.starts_with("process_"))
        .map(str::to_owned)
        .collect()
}

/// The sample names of a scrape: `geecache_group_gets_total`, `..._bucket`, and so on.
fn exported(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// Two nodes with traffic through both, so that every family has samples: peer fetches (and
/// so peer latencies and circuit states) exist only where a node asked another.
fn scrape_a_busy_cluster() -> BTreeSet<String> {
    let ports = free_ports(2);
    let peers = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let nodes: Vec<Server> = ports
        .iter()
        .map(|port| {
            Server::start_with(
                geecache()
                    .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                    .args(["--peers", &peers, "--group", "scores=demo"]),
            )
        })
        .collect();
    for i in 0..20 {
        for node in &nodes {
            let r = node.get(&format!("/api/scores/player-{i:06}"));
            assert_eq!(r.status, 200, "{}", r.text());
        }
    }
    let mut names = BTreeSet::new();
    for node in &nodes {
        let scrape = request(node.addr, "GET", "/metrics", &[]);
        assert_eq!(scrape.status, 200);
        names.extend(exported(&scrape.text()));
    }
    names
}

#[test]
fn the_alert_rules_and_the_dashboard_query_only_exported_metrics() {
    let dashboard = deploy_file("grafana-dashboard.json");
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let panels = json["panels"].as_array().expect("the dashboard has panels");
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    assert_eq!(titles, PANELS);
    for panel in panels {
        let targets = panel["targets"].as_array().expect("each panel has targets");
        assert!(!targets.is_empty(), "{}: no query", panel["title"]);
        for target in targets {
            assert!(
                target["expr"].as_str().is_some_and(|e| !e.is_empty()),
                "{}: a target without a query",
                panel["title"]
            );
        }
    }

    let exported = scrape_a_busy_cluster();
    let rules = deploy_file("geecache-rules.yml");
    let mut used = metric_names(&rules);
    used.extend(metric_names(&dashboard));
    assert!(used.len() > 10, "too few names found: {used:?}");

    let missing: Vec<&String> = used
        .iter()
        .filter(|name| !exported.contains(*name))
        .filter(|name| !NOT_EXPORTED_YET.contains(&name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/prometheus/ queries metrics the node does not export: {missing:?}\nexported: \
         {exported:?}"
    );
    for name in NOT_EXPORTED_YET {
        if !exported.contains(*name) {
            eprintln!("note: {name} is used by deploy/prometheus/ but not exported yet");
        }
    }
}
