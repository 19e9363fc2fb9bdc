//! `e2e --chaos`: what a client sees while the cluster changes under load.
//!
//! Each scenario starts its own origin (`bare-axum`, which counts the loads it serves per key)
//! and its own `geecache serve` nodes, static or found through a real etcd, breaks or changes
//! the cluster under `loadgen` load, and turns what it measured into rows of one table, each
//! beside its target. The source is the counting origin rather than the nodes' own counters
//! because a restarted node's counters start again from zero; the origin sees every load.
//!
//! Which node owns a key is worked out here with the nodes' own ring (the balanced preset over
//! their URLs), and checked against what the nodes hold after loading every key once, so a
//! change of ring in the server cannot silently make the figures about the wrong keys.
//!
//! This file holds what the scenarios share (the lab: origin, nodes, etcd, load, and the table);
//! the scenarios are in `faults.rs` (hung, dead, slow), `membership.rs` (join, leave, rolling),
//! `hosts.rs` (cut, separate, one-way: nodes on hosts with their own addresses) and
//! `hosts/members.rs` (etcd cut off, a rolling restart and DNS membership across hosts);
//! `soak.rs` runs the same lab for minutes under steady load with faults in turn
//! (`e2e --soak`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::ValueEnum;
use geecache_bench_e2e::{LoadReport, probe};
use geecache_consistenthash::Preset;

use crate::process::{Server, free_ports, run_bounded};
use crate::proxy::Proxy;
use crate::{Bench, signal, stop_all};

mod faults;
mod hosts;
mod membership;
mod soak;

pub(crate) use soak::SoakArgs;

/// `e2e --soak`: see `soak.rs`.
pub(crate) fn soak(bench: &Bench, length: Duration) -> anyhow::Result<()> {
    Lab::soak(bench, length)
}

/// One scenario of `--chaos`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scenario {
    /// SIGSTOP one node for --fault-for under load on its keys, then SIGCONT; also the key
    /// shares of the default ring.
    Hung,
    /// SIGKILL one node, ask its keys through both survivors at once, then restart it.
    Dead,
    /// A fourth node joins a three-node etcd cluster, then every key is asked once.
    Join,
    /// One node of three leaves through etcd (SIGTERM) while its keys are asked.
    Leave,
    /// Every node of an etcd cluster restarted in turn under Zipf load.
    Rolling,
    /// One node's answers slowed by 300 ms (a proxy in front of it) under Zipf load.
    Slow,
    /// Three nodes on hosts with their own addresses (network namespaces, as root); one
    /// host's link is cut while both others ask for its keys, then restored.
    Cut,
    /// As `cut`, with two hosts unable to reach each other while both reach the third; Zipf
    /// load through one on the other's keys for --fault-for.
    Separate,
    /// As `separate`, with one host's packets to the other dropped silently while the other
    /// still reaches it (an asymmetric partition; nftables).
    OneWay,
    /// Three nodes on hosts, found through etcd on a host of its own, which is cut off from
    /// them all for 20 s under Zipf load, then reconnected.
    EtcdCut,
    /// Three nodes on hosts, found through etcd on a host of its own, restarted in turn under
    /// Zipf load.
    HostRolling,
    /// Three nodes on hosts, found through DNS (dnsmasq on a host of its own): a member removed
    /// from and added back to the records, then the DNS server cut off under Zipf load.
    Dns,
}

impl Scenario {
    /// Whether its nodes run on hosts of a network-namespace lab rather than on loopback.
    pub(crate) fn on_hosts(self) -> bool {
        matches!(
            self,
            Scenario::Cut
                | Scenario::Separate
                | Scenario::OneWay
                | Scenario::EtcdCut
                | Scenario::HostRolling
                | Scenario::Dns
        )
    }
}

/// One line of the chaos table.
pub(crate) struct Row {
    pub(crate) scenario: &'static str,
    pub(crate) figure: String,
    pub(crate) value: String,
    pub(crate) target: String,
    /// `None` for a figure without a target.
    pub(crate) met: Option<bool>,
}

impl Row {
    fn info(scenario: &'static str, figure: impl Into<String>, value: impl Into<String>) -> Row {
        Row {
            scenario,
            figure: figure.into(),
            value: value.into(),
            target: String::new(),
            met: None,
        }
    }

    fn check(
        scenario: &'static str,
        figure: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        met: bool,
    ) -> Row {
        Row {
            scenario,
            figure: figure.into(),
            value: value.into(),
            target: target.into(),
            met: Some(met),
        }
    }
}

/// The nodes' peer timeout (geecache's default).
const PEER_TIMEOUT: Duration = Duration::from_secs(1);
/// Nodes just started: the processes, their ports and their URLs.
type Started = (Vec<Server>, Vec<u16>, Vec<String>);

/// How late an answer must be to count as one that waited for the peer timeout.
const WAITED_TIMEOUT: Duration = Duration::from_millis(900);
/// The slowness of the slowed peer.
const SLOW_BY: Duration = Duration::from_millis(300);
/// The most a cluster may take to agree on its members after a change.
const CONVERGE: Duration = Duration::from_secs(20);

/// Runs `scenarios` in order and returns their rows.
pub(crate) fn run(bench: &Bench, scenarios: &[Scenario]) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for scenario in scenarios {
        eprintln!("e2e: chaos: {scenario:?}");
        if scenario.on_hosts() {
            // Their nodes run on hosts of their own, not on this machine's loopback.
            rows.append(&mut hosts::run(bench, *scenario)?);
            continue;
        }
        let lab = Lab::new(bench, &format!("{scenario:?}").to_lowercase())?;
        let mut more = match scenario {
            Scenario::Hung => lab.hung()?,
            Scenario::Dead => lab.dead()?,
            Scenario::Join => lab.join()?,
            Scenario::Leave => lab.leave()?,
            Scenario::Rolling => lab.rolling()?,
            Scenario::Slow => lab.slow()?,
            _ => unreachable!("the scenarios on hosts are run above"),
        };
        rows.append(&mut more);
    }
    Ok(rows)
}

/// The markdown table of `rows`.
pub(crate) fn markdown(bench: &Bench, rows: &[Row]) -> String {
    let mut out = format!(
        "Chaos scenarios: 3 `geecache serve` nodes on loopback, {} keys, origin answering after \
         {} ms, {} load connections, {} server thread(s) per node, {} cores; load average \
         before: {}.\n\n",
        bench.args.keys,
        ORIGIN_DELAY.as_millis(),
        bench.args.connections,
        bench.args.server_threads,
        std::thread::available_parallelism().map_or(0, usize::from),
        geecache_bench_e2e::procstat::load_average().map_or_else(
            |_| "?".to_owned(),
            |l| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
        ),
    );
    if rows.iter().any(|r| hosts::TITLES.contains(&r.scenario)) {
        out.push_str(
            "The nodes of the cut, separate, one-way, etcd-cut, host-rolling and dns scenarios \
             run on hosts of their own instead (network namespaces joined by a bridge, \
             10.231.0.0/24), with the origin and the load on another, and etcd or the DNS \
             server on a host of its own.\n\n",
        );
    }
    out.push_str(&rows_table(rows));
    out
}

/// `rows` as a markdown table, a verdict beside each figure with a target.
fn rows_table(rows: &[Row]) -> String {
    let mut out =
        String::from("| scenario | figure | measured | target | |\n|---|---|---|---|---|\n");
    for row in rows {
        let verdict = match row.met {
            None => "",
            Some(true) => "met",
            Some(false) => "**missed**",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {verdict} |\n",
            row.scenario, row.figure, row.value, row.target
        ));
    }
    out
}

/// What the origin waits before answering: a fast database.
const ORIGIN_DELAY: Duration = Duration::from_millis(1);

/// How the nodes find each other.
enum Members {
    /// `--peers` with these URLs.
    Static(Vec<String>),
    /// `--etcd` at this client URL.
    Etcd(String),
    /// `--peers-dns` with this name and port, asking the DNS server at this address.
    Dns(String, std::net::SocketAddr),
}

impl Members {
    /// The flags that say so to `geecache serve`, for the cluster `tag`.
    fn args(&self, command: &mut Command, tag: &str) {
        match self {
            Members::Static(urls) => {
                command.arg("--peers").arg(urls.join(","));
            }
            Members::Etcd(client) => {
                command.arg("--etcd").arg(client).arg("--cluster").arg(tag);
            }
            Members::Dns(name, server) => {
                command
                    .arg("--peers-dns")
                    .arg(name)
                    .arg("--dns-server")
                    .arg(server.to_string())
                    .arg("--dns-interval")
                    .arg(format!("{}ms", DNS_INTERVAL.as_millis()));
            }
        }
    }
}

/// How often nodes found through DNS look their name up again.
const DNS_INTERVAL: Duration = Duration::from_secs(1);

/// One scenario's processes and settings.
struct Lab<'a> {
    bench: &'a Bench,
    tag: String,
    origin: Server,
    keys: u64,
    /// Appended to each node's `--group` value, e.g. `,cache=6MiB`.
    group_options: String,
    /// Set in each node's environment, e.g. the allocator's settings of the deployment files.
    node_env: Vec<(&'static str, &'static str)>,
}

impl<'a> Lab<'a> {
    fn new(bench: &'a Bench, tag: &str) -> anyhow::Result<Self> {
        Self::with_origin_on(bench, tag, None)
    }

    /// As [`Lab::new`], with the origin listening on `listen` (default: a loopback port).
    fn with_origin_on(
        bench: &'a Bench,
        tag: &str,
        listen: Option<std::net::SocketAddr>,
    ) -> anyhow::Result<Self> {
        let mut command = bench.bare_axum_command();
        if let Some(listen) = listen {
            command.arg("--listen").arg(listen.to_string());
        }
        command
            .arg("--delay")
            .arg(format!("{}us", ORIGIN_DELAY.as_micros()));
        let name = format!("{tag}-origin");
        let mut origin =
            Server::start(&name, command, bench.log(&name), bench.args.startup_timeout)?;
        origin.wait_ready("/healthz", bench.args.startup_timeout)?;
        Ok(Lab {
            bench,
            tag: tag.to_owned(),
            origin,
            keys: bench.args.keys,
            group_options: String::new(),
            node_env: Vec::new(),
        })
    }

    // ---- processes ----

    /// A node listening on `port`, known to its peers as `url`.
    fn node(&self, i: usize, port: u16, url: &str, members: &Members) -> anyhow::Result<Server> {
        let command = Command::new(&self.bench.geecache);
        self.start_node(command, i, &format!("127.0.0.1:{port}"), url, members)
    }

    /// Node `i` run by `command` (the `geecache` program, perhaps through `ip netns exec`),
    /// listening on `listen`, known to its peers as `url`: ready when it answers `/readyz`.
    fn start_node(
        &self,
        mut command: Command,
        i: usize,
        listen: &str,
        url: &str,
        members: &Members,
    ) -> anyhow::Result<Server> {
        command
            .arg("serve")
            .arg("--listen")
            .arg(listen)
            .arg("--self-url")
            .arg(url)
            .arg("--group")
            .arg(format!(
                "scores=http:{}/objects/{}",
                self.origin.url(),
                self.group_options
            ))
            .arg("--log-level")
            .arg("info")
            .arg("--drain-timeout")
            .arg("10s");
        members.args(&mut command, &self.tag);
        command.envs(self.node_env.iter().copied());
        self.bench.pass_server_threads(&mut command);
        let name = format!("{}-node{}", self.tag, i + 1);
        let mut server = Server::start(
            &name,
            command,
            self.bench.log(&name),
            self.bench.args.startup_timeout,
        )?;
        server.wait_ready("/readyz", self.bench.args.startup_timeout)?;
        Ok(server)
    }

    /// A single-member etcd on two free ports.
    fn etcd(&self) -> anyhow::Result<(Server, String)> {
        self.etcd_on(&free_ports(2)?, true)
    }

    /// A single-member etcd on loopback `ports` (client, peer), with an empty data directory
    /// when `fresh`, else with the one an earlier etcd of this lab left (a restart).
    fn etcd_on(&self, ports: &[u16], fresh: bool) -> anyhow::Result<(Server, String)> {
        let ip = std::net::Ipv4Addr::LOCALHOST;
        let (client, peer) = ((ip, ports[0]).into(), (ip, ports[1]).into());
        self.etcd_at(Command::new("etcd"), client, peer, fresh)
    }

    /// A single-member etcd run by `command` (the `etcd` program, perhaps through `ip netns
    /// exec`), serving clients at `client` and its peers at `peer`, with an empty data
    /// directory when `fresh`; ready when it answers.
    fn etcd_at(
        &self,
        mut command: Command,
        client: std::net::SocketAddr,
        peer: std::net::SocketAddr,
        fresh: bool,
    ) -> anyhow::Result<(Server, String)> {
        let dir = self.bench.log_dir.join(format!("{}-etcd", self.tag));
        if fresh {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let (client_url, peer_url) = (format!("http://{client}"), format!("http://{peer}"));
        command
            .arg("--name=chaos")
            .arg(format!("--data-dir={}", dir.display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=chaos={peer_url}"))
            .arg("--log-level=warn");
        let name = format!("{}-etcd", self.tag);
        let mut etcd = Server::start_at(&name, command, self.bench.log(&name), client)
            .context("cannot start etcd (is it installed? apt-get install etcd-server)")?;
        let until = Instant::now() + self.bench.args.startup_timeout;
        loop {
            if etcd.exited() {
                bail!("etcd exited{}", etcd.log_tail());
            }
            let healthy = probe::get(client, "/health", Duration::from_secs(1)).is_ok_and(|r| {
                r.status == 200 && String::from_utf8_lossy(&r.body).contains("true")
            });
            if healthy {
                return Ok((etcd, client_url));
            }
            if Instant::now() >= until {
                bail!("etcd was not healthy in time{}", etcd.log_tail());
            }
            // Polling a readiness route, bounded by `until`.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `n` nodes found through etcd at `client`, all seeing all.
    fn etcd_nodes(&self, n: usize, client: &str) -> anyhow::Result<Started> {
        let started = self.nodes(n, |_| Members::Etcd(client.to_owned()))?;
        wait_for_members(&started.0.iter().collect::<Vec<_>>(), n)?;
        Ok(started)
    }

    /// `n` nodes naming each other with `--peers`.
    fn static_nodes(&self, n: usize) -> anyhow::Result<Started> {
        self.nodes(n, |urls| Members::Static(urls.to_vec()))
    }

    /// `n` nodes on free ports, each told of its peers by `members` (given every node's URL).
    fn nodes(&self, n: usize, members: impl Fn(&[String]) -> Members) -> anyhow::Result<Started> {
        let ports = free_ports(n)?;
        let urls: Vec<String> = ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        let mut nodes = Vec::new();
        for (i, (port, url)) in ports.iter().zip(&urls).enumerate() {
            nodes.push(self.node(i, *port, url, &members(&urls))?);
        }
        Ok((nodes, ports, urls))
    }

    // ---- load ----

    /// A `loadgen` command over every key, or over the keys listed in `file`.
    fn load(
        &self,
        targets: &[String],
        mode: &str,
        run_for: Duration,
        file: Option<&Path>,
    ) -> Command {
        self.load_on(targets, mode, run_for, file, self.bench.args.connections)
    }

    /// As [`Lab::load`], with `connections` connections.
    fn load_on(
        &self,
        targets: &[String],
        mode: &str,
        run_for: Duration,
        file: Option<&Path>,
        connections: u16,
    ) -> Command {
        let seed = self.bench.args.seed;
        let mut command = (self.bench).loadgen_on(targets, mode, run_for, seed, connections);
        command
            .arg("--slow-over")
            .arg(format!("{}ms", WAITED_TIMEOUT.as_millis()));
        match file {
            Some(file) => command.arg("--keys-file").arg(file),
            None => command.arg("--keys").arg(self.keys.to_string()),
        };
        command
    }

    /// Runs a `loadgen` command to its end and reads its report.
    fn run_load(command: Command, run_for: Duration) -> anyhow::Result<LoadReport> {
        let out = run_bounded(command, run_for + Duration::from_secs(60))?;
        serde_json::from_str(out.trim())
            .with_context(|| format!("loadgen printed something else than a report: {out}"))
    }

    /// Every key once, through `targets`; fails unless all were answered.
    fn fill(&self, targets: &[String]) -> anyhow::Result<()> {
        let timeout = self.bench.args.fill_timeout;
        let report = Self::run_load(self.load(targets, "sequential", timeout, None), timeout)?;
        if report.ok != self.keys {
            bail!("loading every key: {} of {} answered", report.ok, self.keys);
        }
        Ok(())
    }

    /// Writes `keys` one per line into the log directory.
    fn key_file(&self, name: &str, keys: &[String]) -> anyhow::Result<PathBuf> {
        let path = self.bench.log_dir.join(format!("{}-{name}.keys", self.tag));
        std::fs::write(&path, keys.join("\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// Every key, in the demo table's naming.
    fn all_keys(&self) -> Vec<String> {
        (0..self.keys).map(|i| format!("player-{i:06}")).collect()
    }

    // ---- the origin's counts ----

    fn reset_loads(&self) -> anyhow::Result<()> {
        let r = probe::request(self.origin.addr, "DELETE", "/loads", Duration::from_secs(5))?;
        if r.status != 200 {
            bail!("DELETE /loads on the origin answered {}", r.status);
        }
        Ok(())
    }

    /// Source requests and distinct keys loaded since the last reset.
    fn loads(&self) -> anyhow::Result<(u64, u64)> {
        let r = probe::get(self.origin.addr, "/loads", Duration::from_secs(5))?;
        let json: serde_json::Value =
            serde_json::from_slice(&r.body).context("/loads of the origin is not JSON")?;
        let n = |k: &str| json[k].as_u64().unwrap_or(0);
        Ok((n("requests"), n("keys")))
    }
}

// ---- helpers ----

/// A node's `/stats` as JSON.
fn stats(node: &Server) -> anyhow::Result<serde_json::Value> {
    let r = probe::get(node.addr, "/stats", Duration::from_secs(5))
        .with_context(|| format!("GET /stats on {}", node.name))?;
    serde_json::from_slice(&r.body).with_context(|| format!("/stats of {} is not JSON", node.name))
}

/// A counter of the `scores` group summed over `nodes`.
fn sum_field(nodes: &[Server], field: &str) -> anyhow::Result<u64> {
    nodes.iter().try_fold(0, |sum, node| {
        Ok(sum
            + stats(node)?["groups"]["scores"][field]
                .as_u64()
                .unwrap_or(0))
    })
}

/// Polls until every node lists `n` members (itself included), at most [`CONVERGE`].
fn wait_for_members(nodes: &[&Server], n: usize) -> anyhow::Result<()> {
    let until = Instant::now() + CONVERGE;
    for node in nodes {
        loop {
            let seen = stats(node)?["peers"].as_array().map_or(0, Vec::len);
            if seen == n {
                break;
            }
            if Instant::now() >= until {
                bail!(
                    "{} lists {seen} members, not {n}, after {CONVERGE:?}",
                    node.name
                );
            }
            std::thread::sleep(Duration::from_millis(20)); // polling interval, bounded
        }
    }
    Ok(())
}

/// The index in `urls` of each key's owner, on the nodes' default ring.
fn owners(urls: &[String], keys: &[String]) -> Vec<usize> {
    let mut ring = Preset::Balanced.ring(0);
    ring.add(urls.iter().map(String::as_str));
    keys.iter()
        .map(|k| {
            let owner = ring.get(k).unwrap_or_default();
            urls.iter().position(|u| u == owner).unwrap_or(0)
        })
        .collect()
}

/// The keys whose owner is node `i`.
fn keys_of(keys: &[String], owner: &[usize], i: usize) -> Vec<String> {
    keys.iter()
        .zip(owner)
        .filter(|(_, o)| **o == i)
        .map(|(k, _)| k.clone())
        .collect()
}

/// Fails unless each node's main cache holds exactly the keys `owner` gives it: the ring
/// worked out here is the nodes' own.
fn check_held(nodes: &[Server], owner: &[usize]) -> anyhow::Result<Vec<u64>> {
    let mut held = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let items = stats(node)?["groups"]["scores"]["main"]["items"]
            .as_u64()
            .unwrap_or(0);
        let expected = owner.iter().filter(|o| **o == i).count() as u64;
        if items != expected {
            bail!(
                "{} holds {items} keys of its own, the ring worked out here gives it {expected}: \
                 the harness and the server disagree on the ring",
                node.name
            );
        }
        held.push(items);
    }
    Ok(held)
}

/// Waits (bounded) for `server` to exit by itself.
fn wait_exit(server: &mut Server, within: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + within;
    while !server.exited() {
        if Instant::now() >= until {
            bail!(
                "{} did not exit within {within:?}{}",
                server.name,
                server.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(20)); // polling for an exit, bounded
    }
    Ok(())
}

/// Microseconds as milliseconds, for the table.
fn ms(us: f64) -> String {
    format!("{:.1} ms", us / 1e3)
}
