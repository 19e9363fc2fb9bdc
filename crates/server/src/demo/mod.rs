//! `geecache demo`: a three-node cluster in one process, a Zipf workload through its HTTP
//! client routes, and the figures that show what a groupcache-style cache does:
//! most requests are hits, each key is loaded once in the whole cluster, and a node's
//! failure costs some reloads but no failed requests.

mod report;
mod workload;

#[cfg(test)]
mod tests;

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use geecache_group::Stats;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::net::TcpListener;

use crate::cli::DemoArgs;
use crate::client::{self, HttpClient};
use crate::config::defaults;
use crate::config::units::format_duration;
use crate::membership::Membership;
use crate::node::{Node, NodeGroup, NodeOptions, Transport};
use crate::source::{DataSource, DemoTable};
use report::NodeRow;
use workload::{Outcome, Stop, Workload};

/// The group the demo serves.
const GROUP: &str = "scores";
/// How many nodes.
const NODES: usize = 3;

/// Runs the demo: exit 0 when every request succeeded and each key was loaded once.
pub(crate) fn run(args: &DemoArgs) -> ExitCode {
    // Quiet by default: the demo's output is its tables, and during the failure phase the
    // group warns once per failed peer fetch, which is the point of that phase, not news.
    let filter = std::env::var("GEECACHE_LOG_LEVEL").unwrap_or_else(|_| "error".to_owned());
    crate::init_logging(&filter);
    let Some(runtime) = crate::start_runtime(crate::Workers::Pool(None)) else {
        return ExitCode::from(1);
    };
    match runtime.block_on(demo(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("geecache: demo failed: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Prints a line at once (the progress bar, when shown, draws on stderr). A closed stdout
/// (`geecache demo | head`) is not an error worth a panic: the demo runs on, unheard.
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

async fn demo(args: &DemoArgs) -> anyhow::Result<bool> {
    let table = DemoTable::builder()
        .rows(args.keys)
        .delay(args.load_delay)
        .build();
    say!(
        "geecache demo: {NODES} nodes in this process talking {} between peers, group {GROUP:?} \
         backed by a table of {} rows (each load takes {})",
        transport_name(args.transport),
        table.rows(),
        format_duration(args.load_delay)
    );

    let mut nodes = start_cluster(&table, args.cache_bytes, args.transport).await?;
    for (i, node) in nodes.iter().enumerate() {
        say!("  node {} listening on {}", i + 1, node.url());
    }

    let http = client::new_client();
    let stop = match args.duration {
        Some(d) => Stop::Elapsed(d),
        None => Stop::Requests(args.requests),
    };
    let workload = Workload {
        targets: nodes.iter().map(|n| n.url().to_owned()).collect(),
        group: GROUP.to_owned(),
        keys: args.keys,
        zipf: args.zipf,
        concurrency: args.concurrency,
        stop,
        seed: args.seed,
    };
    say!("");
    say!(
        "phase 1: {} through all {NODES} nodes' /api routes, {} in flight, Zipf exponent {}",
        match stop {
            Stop::Requests(n) => format!("{n} requests"),
            Stop::Elapsed(d) => format!("requests for {}", format_duration(d)),
        },
        args.concurrency,
        args.zipf
    );
    let first = run_phase(&workload, &http).await;
    let stats = group_stats(&nodes)?;
    say!("{}", report::outcome_line(&first));
    say!("");
    say!("{}", report::node_table(&rows(&nodes, &first, &stats)));
    let refs: Vec<&Stats> = stats.iter().collect();
    say!(
        "cluster-wide hit ratio: {:.1}% (cache hits / gets on all nodes, peer gets included)",
        report::hit_ratio(&refs)
    );
    let summary = table.load_summary();
    say!("{}", report::loads_line(&summary));
    let evictions: u64 = stats
        .iter()
        .map(|s| s.main.evictions + s.hot.evictions)
        .sum();
    if evictions > 0 {
        say!(
            "note: {evictions} entries were evicted to fit --cache-bytes; an evicted key is \
             loaded again when asked for"
        );
    }
    let mut healthy =
        first.failed() == 0 && (summary.total_loads == summary.distinct_keys || evictions > 0);

    if args.keep_running {
        say!("");
        say!("The cluster keeps running (the node-failure phase is skipped). Try:");
        let url = nodes[0].url();
        say!("  curl {url}/api/{GROUP}/{}", DemoTable::key(42));
        say!("  curl {url}/stats");
        say!("  curl {url}/metrics");
        say!("  geecache get {url} {GROUP} {}", DemoTable::key(7));
        say!("Press Ctrl-C to stop.");
        let signal = crate::shutdown::signal().await;
        say!("{signal}: stopping the nodes");
        for node in nodes {
            node.shutdown(Duration::from_secs(5)).await;
        }
        say!("all nodes stopped");
        return Ok(healthy);
    }

    // Phase 2: one node goes away. Its peers still have it on their hash ring (static
    // membership), so each request for a key it owned fails over to a local load.
    let victim = nodes.pop().context("the cluster has nodes")?;
    let victim_url = victim.url().to_owned();
    victim.shutdown(Duration::from_secs(5)).await;
    say!("");
    say!(
        "phase 2: node {NODES} ({victim_url}) is stopped; {} requests through the other {}",
        args.failover_requests,
        nodes.len()
    );
    let before = group_stats(&nodes)?;
    let counts_before = table.load_counts();
    let second_workload = Workload {
        targets: nodes.iter().map(|n| n.url().to_owned()).collect(),
        stop: Stop::Requests(args.failover_requests),
        seed: args.seed.wrapping_add(1_000_003),
        ..workload
    };
    let second = run_phase(&second_workload, &http).await;
    let after = group_stats(&nodes)?;
    say!("{}", report::outcome_line(&second));
    say!("");
    let delta: Vec<Stats> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| report::since(a, b))
        .collect();
    say!("  (counts for this phase only; bytes cached as of now)");
    say!("{}", report::node_table(&rows(&nodes, &second, &delta)));
    let fallbacks: u64 = delta.iter().map(|d| d.peer_errors).sum();
    let (reloaded, fresh) = report::reloads(&counts_before, &table.load_counts());
    say!(
        "requests kept succeeding: {} of {} answered; {fallbacks} peer fetches failed over to a \
         local load",
        second.sent() - second.failed(),
        second.sent()
    );
    say!(
        "{reloaded} keys loaded before were loaded again (the stopped node owned them), \
         {fresh} keys were loaded for the first time"
    );
    healthy &= second.failed() == 0;

    for node in nodes {
        node.shutdown(Duration::from_secs(5)).await;
    }
    say!("");
    say!(
        "all nodes stopped cleanly (peers talked {})",
        transport_name(args.transport)
    );
    Ok(healthy)
}

/// How the summary names the peers' protocol.
fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Http => "HTTP/1.1",
        Transport::Grpc => "gRPC (HTTP/2)",
    }
}

/// Binds three loopback ports first, so every node knows all three URLs when it starts.
async fn start_cluster(
    table: &DemoTable,
    cache_bytes: u64,
    transport: Transport,
) -> anyhow::Result<Vec<Node>> {
    let mut listeners = Vec::with_capacity(NODES);
    for _ in 0..NODES {
        listeners.push(
            TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding a loopback port")?,
        );
    }
    let urls: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| format!("http://{a}")))
        .collect::<Result<_, _>>()?;
    let mut nodes = Vec::with_capacity(NODES);
    for (listener, url) in listeners.into_iter().zip(&urls) {
        let options = NodeOptions {
            self_url: Some(url.clone()),
            membership: Membership::Static(urls.clone()),
            transport,
            base_path: defaults::BASE_PATH.to_owned(),
            ring: defaults::RING,
            replicas: 0,
            handoff: defaults::HANDOFF,
            groups: vec![NodeGroup {
                name: GROUP.to_owned(),
                cache_bytes,
                ttl: None,
                source: DataSource::Demo(table.clone()),
                policy: geecache_group::Policy::Lru,
            }],
            // Generous: on a busy two-core machine a peer may take a while under load, and a
            // timed-out peer fetch falls back to a second load, which would muddy the
            // exactly-once count. A stopped node refuses connections at once anyway.
            peer_timeout: Duration::from_secs(5),
            max_key_bytes: usize::try_from(defaults::MAX_KEY_BYTES).unwrap_or(usize::MAX),
            peer_token: None,
            api_token: None,
        };
        nodes.push(Node::start(listener, options).await?);
    }
    Ok(nodes)
}

/// Runs a workload with a progress bar when a person is watching, without one otherwise.
async fn run_phase(workload: &Workload, http: &HttpClient) -> Outcome {
    let interactive = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let progress = if interactive {
        let (bar, template) = match workload.stop {
            Stop::Requests(n) => (
                ProgressBar::new(n),
                "  {bar:40.cyan/blue} {pos}/{len} requests, {per_sec}, {elapsed}",
            ),
            Stop::Elapsed(_) => (
                ProgressBar::no_length(),
                "  {spinner} {pos} requests, {per_sec}, {elapsed}",
            ),
        };
        bar.set_style(
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let outcome = workload::run(workload, http, &progress).await;
    progress.finish_and_clear();
    outcome
}

fn group_stats(nodes: &[Node]) -> anyhow::Result<Vec<Stats>> {
    nodes
        .iter()
        .map(|n| {
            n.registry()
                .get(GROUP)
                .map(|g| g.stats())
                .with_context(|| format!("node {} has no group {GROUP}", n.url()))
        })
        .collect()
}

fn rows<'a>(nodes: &[Node], outcome: &Outcome, stats: &'a [Stats]) -> Vec<NodeRow<'a>> {
    nodes
        .iter()
        .zip(stats)
        .enumerate()
        .map(|(i, (node, stats))| NodeRow {
            name: format!("node {}", i + 1),
            addr: node.addr().to_string(),
            requests: outcome.targets.get(i).map_or(0, |t| t.sent),
            stats,
        })
        .collect()
}
