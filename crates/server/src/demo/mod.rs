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
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use tokio::net::TcpListener;

use crate::cli::DemoArgs;
use crate::client::{self, HttpClient};
use crate::config::units::format_duration;
use crate::node::{Node, NodeGroup, NodeOptions, Transport};
use crate::source::{DataSource, DemoTable};
use report::NodeRow;
use workload::{Outcome, Stop, Workload};

/// The group the demo serves.
const GROUP: &str = "scores";
/// How many nodes.
const NODES: usize = 3;

/// How a demo ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// Every request succeeded and each key was loaded once.
    Healthy,
    /// Some request failed, or a key was loaded twice.
    Unhealthy,
    /// Ctrl-C (or SIGTERM) stopped it; the summary so far was printed.
    Interrupted,
}

/// Runs the demo: exit 0 when every request succeeded and each key was loaded once, 130
/// (the shells' code for Ctrl-C) when interrupted.
pub(crate) fn run(args: &DemoArgs) -> ExitCode {
    // Quiet by default: the demo's output is its tables, and during the failure phase the
    // group warns once per failed peer fetch, which is the point of that phase, not news.
    let filter = std::env::var("GEECACHE_LOG_LEVEL").unwrap_or_else(|_| "error".to_owned());
    crate::init_logging(&filter);
    let Some(runtime) = crate::start_runtime(crate::Workers::Pool(None)) else {
        return ExitCode::from(1);
    };
    match runtime.block_on(demo(args)) {
        Ok(Ending::Healthy) => ExitCode::SUCCESS,
        Ok(Ending::Unhealthy) => ExitCode::from(1),
        Ok(Ending::Interrupted) => ExitCode::from(130),
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

/// Listens for Ctrl-C (and SIGTERM) from now on: the receiver turns `true` at the first
/// one, and the demo stops sending requests and sums up what it did so far.
fn interruption() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    // Listening starts here, before the task first runs (see `shutdown::listen`).
    let signal = crate::shutdown::listen();
    tokio::spawn(async move {
        signal.await;
        let _ = tx.send(true);
    });
    rx
}

async fn demo(args: &DemoArgs) -> anyhow::Result<Ending> {
    let mut interrupted = interruption();
    let table = DemoTable::builder()
        .rows(args.keys)
        .delay(args.load_delay)
        .build();
    say!(
        "geecache demo: {NODES} nodes in this process talking {} between peers",
        transport_name(args.transport)
    );
    say!(
        "  serving the group {GROUP:?} from a table of {} rows (each load takes {})",
        table.rows(),
        format_duration(args.load_delay)
    );

    // Loaded once, for the three nodes: they share the certificate, and its key.
    let tls = match (&args.tls_cert, &args.tls_key, &args.tls_ca) {
        (Some(cert), Some(key), Some(ca)) => Some(
            crate::tls::NodeTls::load(&crate::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
                client_auth: crate::tls::ClientAuth::None,
            })
            .context("the demo's TLS files")?,
        ),
        _ => None,
    };
    let mut nodes = start_cluster(&table, args.cache_bytes, args.transport, tls.as_ref()).await?;
    for (i, node) in nodes.iter().enumerate() {
        say!("  node {} listening on {}", i + 1, node.url());
    }

    let http = match (&args.tls_ca, &args.tls_cert, &args.tls_key) {
        (Some(ca), Some(cert), Some(key)) => client::new_tls_client(
            crate::tls::client_config(ca, Some((cert, key))).context("the demo's TLS files")?,
        ),
        _ => client::new_client(),
    };
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
        interrupted: interrupted.clone(),
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
    let stopped_early = *interrupted.borrow();
    if stopped_early {
        say!("interrupted: the figures so far");
    }
    say!("{}", report::outcome_line(&first));
    say!("");
    say!("{}", report::node_table(&rows(&nodes, &first, &stats)));
    for line in report::LEGEND {
        say!("{line}");
    }
    say!("");
    let refs: Vec<&Stats> = stats.iter().collect();
    say!(
        "cluster hit ratio: {:.1}% (client requests answered without a load from the table)",
        report::hit_ratio(&refs)
    );
    let summary = table.load_summary();
    say!("{}", report::loads_line(&summary));
    let evictions: u64 = stats
        .iter()
        .map(|s| s.main.evictions + s.hot.evictions)
        .sum();
    if evictions > 0 {
        say!("note: {evictions} entries were evicted to fit --cache-bytes;");
        say!("  an evicted key is loaded again when asked for");
    }
    let mut healthy =
        first.failed() == 0 && (summary.total_loads == summary.distinct_keys || evictions > 0);

    if stopped_early {
        stop_all(nodes).await;
        return Ok(Ending::Interrupted);
    }
    if args.keep_running {
        say!("");
        say!("The cluster keeps running (the node-failure phase is skipped). Try:");
        let url = nodes[0].url();
        say!("  curl {url}/api/{GROUP}/{}", DemoTable::key(42));
        say!("  curl {url}/stats");
        say!("  curl {url}/metrics");
        say!(
            "  {} get {url} {GROUP} {}",
            self_command(),
            DemoTable::key(7)
        );
        say!("Press Ctrl-C to stop.");
        let _ = interrupted.wait_for(|stop| *stop).await;
        say!("stopping the nodes");
        stop_all(nodes).await;
        return Ok(verdict(healthy));
    }

    // Phase 2: one node goes away. Its peers still have it on their hash ring (static
    // membership), so each request for a key it owned fails over to the key's next member on
    // the ring (its stand-in), which loads it, until the circuit opens and the ring's next
    // member is asked at once.
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
    let stopped_early = *interrupted.borrow();
    if stopped_early {
        say!("interrupted: the figures so far");
    }
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
        "requests kept succeeding: {} of {} answered;",
        second.sent() - second.failed(),
        second.sent()
    );
    say!("  {fallbacks} peer fetches failed over to the next member or a local load");
    say!("{reloaded} keys loaded before were loaded again (the stopped node owned them),");
    say!("  {fresh} keys were loaded for the first time");
    healthy &= second.failed() == 0;

    stop_all(nodes).await;
    if stopped_early {
        return Ok(Ending::Interrupted);
    }
    say!("");
    say!(
        "all nodes stopped cleanly (peers talked {})",
        transport_name(args.transport)
    );
    Ok(verdict(healthy))
}

fn verdict(healthy: bool) -> Ending {
    if healthy {
        Ending::Healthy
    } else {
        Ending::Unhealthy
    }
}

async fn stop_all(nodes: Vec<Node>) {
    for node in nodes {
        node.shutdown(Duration::from_secs(5)).await;
    }
}

/// How to run this binary again from the user's shell: `geecache` when that is what runs on
/// the `PATH` (an installed binary), else the path it was started by (`target/release/
/// geecache` after `cargo run`), so that the hint printed with it works when pasted.
fn self_command() -> String {
    let invoked = std::env::args_os().next().map(std::path::PathBuf::from);
    let on_path = invoked
        .as_deref()
        .is_some_and(|p| p.components().count() == 1);
    match invoked {
        Some(path) if !on_path => {
            let cwd = std::env::current_dir().ok();
            let shown = cwd
                .as_deref()
                .and_then(|cwd| path.strip_prefix(cwd).ok())
                .unwrap_or(&path);
            shown.display().to_string()
        }
        _ => "geecache".to_owned(),
    }
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
    tls: Option<&std::sync::Arc<crate::tls::NodeTls>>,
) -> anyhow::Result<Vec<Node>> {
    let scheme = if tls.is_some() { "https" } else { "http" };
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
        .map(|l| l.local_addr().map(|a| format!("{scheme}://{a}")))
        .collect::<Result<_, _>>()?;
    let mut nodes = Vec::with_capacity(NODES);
    for (listener, url) in listeners.into_iter().zip(&urls) {
        let options = NodeOptions {
            transport,
            // Generous: on a busy two-core machine a peer may take a while under load, and a
            // timed-out peer fetch falls back to a second load, which would muddy the
            // exactly-once count. A stopped node refuses connections at once anyway.
            peer_timeout: Duration::from_secs(5),
            tls: tls.cloned(),
            ..NodeOptions::new(
                Some(url.clone()),
                urls.clone(),
                vec![NodeGroup::new(
                    GROUP,
                    cache_bytes,
                    DataSource::Demo(table.clone()),
                )],
            )
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
                "  {bar:40.cyan/blue} {pos}/{len} requests, {rate}, {elapsed}",
            ),
            Stop::Elapsed(_) => (
                ProgressBar::no_length(),
                "  {spinner} {pos} requests, {rate}, {elapsed}",
            ),
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key(
                    "rate",
                    |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                        let _ = out.write_str(&report::rate(state.per_sec()));
                    },
                ),
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
        .map(|(i, (_, stats))| NodeRow {
            name: format!("node {}", i + 1),
            requests: outcome.targets.get(i).map_or(0, |t| t.sent),
            stats,
        })
        .collect()
}
