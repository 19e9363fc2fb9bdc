//! `e2e --soak DURATION`: three nodes under steady Zipf load for a long time, with a fault
//! every few minutes, sampled every 10 s.
//!
//! The faults come in turn: a node killed (SIGKILL) and restarted on its address after
//! `--fault-for`, a node stopped (SIGSTOP) and resumed, etcd stopped and restarted on its
//! ports with its data (when `etcd` is on `PATH`; the nodes then find each other through it,
//! else they are named with `--peers` and the etcd fault is left out), and a one-way partition
//! between two nodes that both still reach etcd (one node's packets to the other dropped).
//!
//! The partition needs hosts with their own addresses: run as root, the soak makes a
//! network-namespace lab (`geecache_bench_e2e::hosts`) and runs itself on its last host, the
//! nodes on hosts 0 to 2 and etcd on host 3, as the scenarios across hosts do. Without root
//! or namespaces it says why once and runs on loopback without the partition.
//!
//! Each fault has a window, from the moment it is made until the cluster is ready again: the
//! node it hit answers `/readyz` and every node lists every member (for etcd: etcd is healthy
//! and every node lists every member). Each wait is bounded (the start-up timeout for a node,
//! 20 s for the members); a cluster not ready within its bound ends the soak with an error.
//!
//! The load runs as a series of `loadgen` runs of 10 s that reconnect (so a restarted node
//! gets its clients back), each appending a line a second to one timeline file: requests and
//! errors, each placed in time within a second. A second that overlaps a fault window counts
//! as inside it. The verdicts are `geecache_bench_e2e::soak`'s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use geecache_bench_e2e::hosts::{Lab as HostLab, unavailable};
use geecache_bench_e2e::soak::{
    self as book, NodeSample, Sample, Window, ejections, growth_between_faults,
    growth_over_last_half, openings_outside, overloaded, parse_timeline, per_interval,
    split_errors,
};
use geecache_bench_e2e::{duration, procstat};

use super::hosts::{self, NODES};
use super::*;
use crate::process::run_bounded_here;

mod place;

use place::Place;

/// The soak's flags (`e2e --soak ...`).
#[derive(Debug, clap::Args)]
pub(crate) struct SoakArgs {
    /// Runs the soak for this long (e.g. `10m`) instead of the runs or the chaos scenarios.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    soak: Option<Duration>,

    /// Where the soak writes `soak.csv`, `soak.png` and `soak.md` [default: the log
    /// directory].
    #[arg(long, value_name = "DIR")]
    soak_out: Option<PathBuf>,

    /// Each node's cache budget in the soak, in bytes [default: 64 per key of --keys, room
    /// for a node to hold its own keys and a dead peer's share besides].
    #[arg(long, value_name = "BYTES")]
    soak_cache: Option<u64>,

    /// The fixed part of the soak's memory bound, in MiB: each node's resident set must stay
    /// within 1.25 × its budget plus this. 30 fits a release build; a debug build's own code
    /// and allocations take more.
    #[arg(long, value_name = "MIB", default_value_t = 30)]
    soak_overhead: u64,
}

impl SoakArgs {
    /// How long the soak runs, when one was asked for.
    pub(crate) fn length(&self) -> Option<Duration> {
        self.soak
    }
}

/// How often the nodes are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// The length of each `loadgen` run.
const CHUNK: Duration = Duration::from_secs(10);
/// Default budget per key. The nodes' budgets count memory (`charge=memory`), so that the
/// bound on their resident set, made from the budget, speaks of what the caches really take:
/// an origin row of about 64 bytes costs about 230 with its entry's bookkeeping. A node owns
/// about a third of the keys and stands in for half of a dead peer's, so this budget does not
/// bind, and no key is evicted and loaded again for want of room, which the loads check would
/// take for a second load.
const CACHE_BYTES_PER_KEY: u64 = 256;
/// Descriptors a node may gain over the last half before it counts as a leak: the load's
/// connections are reopened every [`CHUNK`], so a sample can catch some twice.
const FD_SLACK: f64 = 16.0;
/// The growth over the last half that still counts as flat, as a share of the memory bound.
const FLAT_SHARE: f64 = 0.05;
const MIB: f64 = 1024.0 * 1024.0;

/// The soak's lab across hosts: the three nodes, etcd's host and the harness's.
const LAB_HOSTS: usize = NODES + 2;

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// SIGKILL the node, restart it on its address after the hold.
    Kill(usize),
    /// SIGSTOP the node, SIGCONT after the hold.
    Stop(usize),
    /// Stop etcd, start it again on its ports with its data after the hold.
    Etcd,
    /// Drop the packets the first node sends to the second on connections it opens, while
    /// both still reach etcd and the second still reaches the first (hosts only).
    Partition(usize, usize),
}

impl Fault {
    fn describe(self) -> String {
        match self {
            Fault::Kill(i) => format!("kill node{}", i + 1),
            Fault::Stop(i) => format!("stop node{}", i + 1),
            Fault::Etcd => "restart etcd".to_owned(),
            Fault::Partition(a, b) => format!("partition node{} -> node{}", a + 1, b + 1),
        }
    }

    /// The nodes whose keys the fault exposes: asked for through another node, they are
    /// loaded again by a stand-in. None for etcd, whose restart exposes every key.
    fn victims(self) -> Vec<usize> {
        match self {
            Fault::Kill(v) | Fault::Stop(v) | Fault::Partition(_, v) => vec![v],
            Fault::Etcd => Vec::new(),
        }
    }
}

/// When each fault starts, and how long it is held: faults in turn from the end of the
/// warm-up, one per period, none starting so late that it would not be over (hold plus a
/// margin for recovery) before the end, so the soak ends on a settled cluster.
fn schedule(
    length: Duration,
    warmup: Duration,
    fault_for: Duration,
    etcd: bool,
    partition: bool,
) -> (Vec<(Duration, Fault)>, Duration) {
    // Each kind made on a victim.
    let mut kinds: Vec<fn(usize) -> Fault> = vec![Fault::Kill, Fault::Stop];
    if etcd {
        kinds.push(|_| Fault::Etcd);
    }
    if partition {
        // The node before the victim in turn cannot reach it.
        kinds.push(|v| Fault::Partition((v + 1) % NODES, v));
    }
    let room = length.saturating_sub(warmup);
    #[allow(clippy::cast_possible_truncation)]
    let period =
        (room / (kinds.len() as u32 + 1)).clamp(Duration::from_secs(20), Duration::from_secs(120));
    let hold = fault_for.min(period / 3);
    let margin = Duration::from_secs(20);
    let mut plan = Vec::new();
    let mut at = warmup;
    let mut n: usize = 0;
    while at + hold + margin <= length {
        // Victims rotate, so each node's keys meet each kind of fault in a long soak.
        let victim = (2 + n / kinds.len()) % NODES;
        plan.push((at, kinds[n % kinds.len()](victim)));
        at += period;
        n += 1;
    }
    (plan, hold)
}

/// A node as the sampler sees it: the fault thread replaces it on a restart.
#[derive(Clone)]
struct Seen {
    pid: u32,
    addr: SocketAddr,
}

/// Milliseconds since the Unix epoch, the clock of `loadgen --timeline`.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One node's sample: `/proc` always (a stopped process still has its memory), `/stats` when
/// it answers within a second.
fn sample_node(node: &Seen) -> (NodeSample, Openings) {
    let stats = probe::get(node.addr, "/stats", Duration::from_secs(1))
        .ok()
        .filter(|r| r.status == 200)
        .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok());
    let group = stats.as_ref().map(|s| &s["groups"]["scores"]);
    let openings: Openings = stats
        .as_ref()
        .and_then(|s| s["health"].as_object())
        .map(|h| {
            h.iter()
                .map(|(peer, p)| (peer.clone(), p["openings"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let sample = NodeSample {
        pid: node.pid,
        rss_bytes: procstat::resident_bytes(node.pid).ok(),
        fds: procstat::open_descriptors(node.pid).ok(),
        members: stats
            .as_ref()
            .and_then(|s| s["peers"].as_array())
            .map(|p| p.len() as u64),
        open_circuits: stats
            .as_ref()
            .and_then(|s| s["health"].as_object())
            .map(|h| {
                h.values()
                    .filter(|p| p["state"].as_str() != Some("closed"))
                    .count() as u64
            }),
        cached_bytes: group.map(|g| {
            g["main"]["bytes"].as_u64().unwrap_or(0) + g["hot"]["bytes"].as_u64().unwrap_or(0)
        }),
        circuit_openings: stats
            .as_ref()
            .and_then(|s| s["health"].as_object())
            .map(|h| h.values().filter_map(|p| p["openings"].as_u64()).sum()),
    };
    (sample, openings)
}

/// A node's circuit openings per peer URL, since it started.
type Openings = HashMap<String, u64>;

impl Lab<'_> {
    /// Runs the soak and reports it; fails when a check was missed.
    pub(crate) fn soak(bench: &Bench, length: Duration) -> anyhow::Result<()> {
        let args = &bench.args.soak;
        let out = args
            .soak_out
            .clone()
            .unwrap_or_else(|| bench.log_dir.clone());
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        let hosts = match &bench.args.in_lab {
            Some(tag) => Some(HostLab::attach(tag, LAB_HOSTS)),
            None => match unavailable() {
                None => return soak_in_lab(bench, length, &out),
                Some(why) => {
                    eprintln!("e2e: soak: on loopback, without the partition: {why}");
                    None
                }
            },
        };
        let budget = args
            .soak_cache
            .unwrap_or(bench.args.keys.saturating_mul(CACHE_BYTES_PER_KEY));
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        #[allow(clippy::cast_sign_loss)]
        let rss_bound = (budget as f64 * 1.25 + args.soak_overhead as f64 * MIB) as u64;

        let mut lab = match &hosts {
            Some(h) => hosts::lab_on(bench, h, "soak")?,
            None => Lab::new(bench, "soak")?,
        };
        lab.group_options = format!(",cache={budget},charge=memory");
        // The nodes run as the deployment files run them, with one glibc arena, so that the
        // memory checks speak of a node as operators run it (with the default arenas, 8 per
        // core, a churning node holds more of what it freed).
        lab.node_env = vec![("MALLOC_ARENA_MAX", "1")];
        let mut place = match &hosts {
            Some(h) => Place::Hosts(h),
            None => Place::Loopback {
                ports: Vec::new(),
                etcd_ports: free_ports(2)?,
            },
        };
        let with_etcd = Command::new("etcd")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let mut etcd = None;
        let client = if with_etcd {
            let (server, client) = place.etcd(&lab, true)?;
            etcd = Some(server);
            Some(client)
        } else {
            eprintln!("e2e: soak: etcd is not on PATH: static peers, and no etcd fault");
            None
        };
        let (nodes, urls, members) = place.start(&lab, client)?;
        eprintln!("e2e: soak: loading all {} keys once", lab.keys);
        lab.fill(&urls)?;
        let keys = lab.all_keys();
        let owner = owners(&urls, &keys);

        let warmup = Duration::from_secs(30).min(length / 6);
        let partition = matches!(place, Place::Hosts(_));
        let (plan, hold) = schedule(length, warmup, bench.args.fault_for, with_etcd, partition);
        eprintln!(
            "e2e: soak: {} s, {} faults held {} s each, budget {budget} bytes per node",
            length.as_secs(),
            plan.len(),
            hold.as_secs()
        );
        let timeline = out.join("soak-timeline.txt");
        let _ = std::fs::remove_file(&timeline);
        let seen = Mutex::new(
            nodes
                .iter()
                .map(|n| Seen {
                    pid: n.pid(),
                    addr: n.addr,
                })
                .collect::<Vec<_>>(),
        );
        let fault_now = Mutex::new(String::new());
        let failed = AtomicBool::new(false);
        let origin_ms = unix_ms();
        let started = Instant::now();
        let end = started + length;

        let run = Run {
            lab: &lab,
            started,
            end,
            seen: &seen,
            fault_now: &fault_now,
            failed: &failed,
        };
        let (reports, samples, openings, windows) = std::thread::scope(|s| {
            let load = s.spawn(|| run.load(&urls, &timeline));
            let sampler = s.spawn(|| run.sample());
            let faults = run.faults(nodes, etcd, &plan, hold, &place, &urls, &members);
            if faults.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            let reports = load
                .join()
                .map_err(|_| anyhow::anyhow!("the load panicked"));
            let samples = sampler
                .join()
                .map_err(|_| anyhow::anyhow!("the sampler panicked"));
            // The nodes and etcd are stopped only now, after the last sample.
            let (windows, nodes, etcd) = faults?;
            stop_all(nodes);
            drop(etcd);
            let (samples, openings) = samples?;
            anyhow::Ok((reports??, samples, openings, windows))
        })?;

        // ---- what it measured ----
        let ticks = parse_timeline(
            &std::fs::read_to_string(&timeline).unwrap_or_default(),
            origin_ms,
        );
        let times: Vec<f64> = samples.iter().map(|s| s.t_s).collect();
        let mut samples = samples;
        for (s, (ok, errors)) in samples.iter_mut().zip(per_interval(&ticks, &times)) {
            s.requests = ok;
            s.errors = errors;
        }
        let split = split_errors(&ticks, &windows);
        let loads: HashMap<String, u64> = {
            let r = probe::get(lab.origin.addr, "/loads/keys", Duration::from_secs(10))?;
            serde_json::from_slice(&r.body).context("/loads/keys of the origin is not JSON")?
        };
        let index: HashMap<&str, usize> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        let faults: Vec<Fault> = plan.iter().map(|p| p.1).take(windows.len()).collect();
        // Peers the nodes skipped with nothing done to them (slow or unreachable on a busy
        // machine): each such interval exposes the peer's keys as a planned fault does.
        let victims: Vec<Vec<usize>> = faults.iter().map(|f| f.victims()).collect();
        let ejected = ejections(&samples, &openings, &windows, &victims, &urls);
        let exposures = |key: &str| {
            let Some(&i) = index.get(key) else {
                return 0;
            };
            let planned = faults
                .iter()
                .filter(|f| **f == Fault::Etcd || f.victims().contains(&owner[i]))
                .count() as u64;
            planned + ejected[owner[i]]
        };
        let over = overloaded(loads.iter().map(|(k, n)| (k.as_str(), *n)), exposures);

        let mut csv = Vec::new();
        book::write_csv(&samples, &mut csv)?;
        let csv_path = out.join("soak.csv");
        std::fs::write(&csv_path, csv)
            .with_context(|| format!("cannot write {}", csv_path.display()))?;
        let png_path = out.join("soak.png");
        book::plot_png(&samples, &windows, rss_bound, &png_path)
            .with_context(|| format!("cannot draw {}", png_path.display()))?;

        let checks = Verdicts {
            samples: &samples,
            windows: &windows,
            warmup: warmup.as_secs_f64(),
            rss_bound,
            overhead_mib: args.soak_overhead,
        };
        let mut rows = Vec::new();
        rows.push(Row::check(
            "soak",
            "client errors outside the fault windows",
            format!(
                "{} ({} inside {} windows{})",
                split.outside,
                split.inside,
                windows.len(),
                if split.outside_at.is_empty() {
                    String::new()
                } else {
                    format!("; outside at {:?} s", split.outside_at)
                }
            ),
            "0",
            split.outside == 0,
        ));
        let worst = loads.values().copied().max().unwrap_or(0);
        rows.push(Row::check(
            "soak",
            "keys loaded more than once plus once per fault they were exposed to",
            format!(
                "{} ({} loads of {} keys; most for one key {worst}{})",
                over.len(),
                loads.values().sum::<u64>(),
                loads.len(),
                over.first().map_or(String::new(), |o| format!(
                    "; e.g. {} {} times, {} allowed",
                    o.key, o.loads, o.allowed
                ))
            ),
            "0",
            over.is_empty(),
        ));
        rows.push(Row::info(
            "soak",
            "peer circuits opened outside the fault windows (peers found slow or unreachable \
             with nothing done to them); 10 s intervals in which a node's circuit to a peer \
             opened, the fault's own victim left out, per peer",
            format!(
                "{}; {}",
                openings_outside(&samples, &windows),
                ejected
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" / ")
            ),
        ));
        rows.append(&mut checks.memory());
        rows.append(&mut checks.descriptors());
        for (w, f) in windows.iter().zip(&faults) {
            rows.push(Row::info(
                "soak",
                format!("window: {}", f.describe()),
                format!(
                    "{:.1} s to {:.1} s ({:.1} s)",
                    w.start_s,
                    w.end_s,
                    w.end_s - w.start_s
                ),
            ));
        }
        if !partition {
            rows.push(Row::info(
                "soak",
                "partition between hosts",
                "not run: needs the network-namespace lab (root)",
            ));
        }
        let total: u64 = samples.iter().map(|s| s.requests).sum();
        let worst_p99 = reports.iter().map(|r| r.p99_us).fold(0.0, f64::max);
        rows.push(Row::info(
            "soak",
            "client requests, mean rate, worst p99 of a 10 s run",
            format!(
                "{total}, {:.0}/s, {}",
                total as f64 / length.as_secs_f64().max(1.0),
                ms(worst_p99)
            ),
        ));

        let report = markdown(
            bench,
            length,
            (budget, rss_bound),
            (place.describe(), with_etcd),
            &samples,
            &rows,
        );
        print!("{report}");
        let md_path = out.join("soak.md");
        std::fs::write(&md_path, &report)
            .with_context(|| format!("cannot write {}", md_path.display()))?;
        eprintln!(
            "e2e: soak: wrote {}, {} and {}",
            csv_path.display(),
            png_path.display(),
            md_path.display()
        );
        drop(lab);
        let missed = rows.iter().filter(|r| r.met == Some(false)).count();
        if missed > 0 {
            bail!("soak: {missed} check(s) missed");
        }
        Ok(())
    }
}

/// Makes the network-namespace lab and runs the soak on its last host (`--in-lab`), its
/// report printed as it comes; the lab and everything in it are removed when it is done.
fn soak_in_lab(bench: &Bench, length: Duration, out: &Path) -> anyhow::Result<()> {
    let lab = HostLab::new(LAB_HOSTS).context("cannot make the network-namespace lab")?;
    let args = &bench.args.soak;
    let mut child = hosts::itself_in(bench, &lab)?;
    child
        .arg("--soak")
        .arg(format!("{}ms", length.as_millis()))
        .arg("--soak-out")
        .arg(out)
        .args(["--soak-overhead", &args.soak_overhead.to_string()]);
    if let Some(bytes) = args.soak_cache {
        child.args(["--soak-cache", &bytes.to_string()]);
    }
    child.args(["--in-lab", lab.tag()]);
    // The soak, its fill, and each fault's repair bounded by the start-up timeout, with room.
    let deadline = length
        + bench.args.fill_timeout
        + bench.args.startup_timeout * 4
        + Duration::from_secs(300);
    run_bounded_here(child, deadline).context("the soak in the network-namespace lab")
}

/// What the soak's three threads share.
struct Run<'a, 'b> {
    lab: &'a Lab<'b>,
    started: Instant,
    end: Instant,
    seen: &'a Mutex<Vec<Seen>>,
    fault_now: &'a Mutex<String>,
    /// Set when a fault could not be made or repaired: the load and the sampler stop early.
    failed: &'a AtomicBool,
}

impl Run<'_, '_> {
    /// `loadgen` runs of [`CHUNK`] one after the other until the end.
    fn load(&self, urls: &[String], timeline: &Path) -> anyhow::Result<Vec<LoadReport>> {
        let mut reports = Vec::new();
        loop {
            let left = self.end.saturating_duration_since(Instant::now());
            if left < Duration::from_secs(1) || self.failed.load(Ordering::Relaxed) {
                return Ok(reports);
            }
            let run_for = left.min(CHUNK);
            // Each run its own seed: a new order of keys, as a client population would ask.
            let seed = self.lab.bench.args.seed.wrapping_add(reports.len() as u64);
            let connections = self.lab.bench.args.connections;
            let mut command = (self.lab.bench).loadgen_on(urls, "zipf", run_for, seed, connections);
            command
                .arg("--keys")
                .arg(self.lab.keys.to_string())
                .arg("--reconnect")
                .arg("--timeline")
                .arg(timeline);
            reports.push(Lab::run_load(command, run_for)?);
        }
    }

    /// A sample every [`SAMPLE_EVERY`] until the end.
    fn sample(&self) -> (Vec<Sample>, Vec<Vec<Openings>>) {
        let mut samples = Vec::new();
        let mut openings = Vec::new();
        let mut next = self.started + SAMPLE_EVERY;
        while next <= self.end && !self.failed.load(Ordering::Relaxed) {
            // The sampling interval of the harness: waits for the next sample's time.
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            let nodes: Vec<Seen> = self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let fault = self
                .fault_now
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let source_loads = self.lab.loads().map_or(0, |(requests, _)| requests);
            let t_s = self.started.elapsed().as_secs_f64();
            let (nodes, per_peer): (Vec<NodeSample>, Vec<Openings>) =
                nodes.iter().map(sample_node).unzip();
            samples.push(Sample {
                t_s,
                requests: 0,
                errors: 0,
                source_loads,
                fault,
                nodes,
            });
            openings.push(per_peer);
            next += SAMPLE_EVERY;
        }
        (samples, openings)
    }

    fn at(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn set_fault(&self, what: &str) {
        *self
            .fault_now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = what.to_owned();
    }

    /// Makes the planned faults, each at its time, and returns their windows with the nodes
    /// and etcd, still running.
    #[allow(clippy::too_many_arguments)]
    fn faults(
        &self,
        mut nodes: Vec<Server>,
        mut etcd: Option<Server>,
        plan: &[(Duration, Fault)],
        hold: Duration,
        place: &Place<'_>,
        urls: &[String],
        members: &Members,
    ) -> anyhow::Result<(Vec<Window>, Vec<Server>, Option<Server>)> {
        let mut windows = Vec::new();
        {
            for &(at, fault) in plan {
                // The fault schedule: waits for the next fault's time (at once if the last
                // recovery ran over).
                std::thread::sleep((self.started + at).saturating_duration_since(Instant::now()));
                let what = fault.describe();
                eprintln!("e2e: soak: {:.0} s: {what}", self.at());
                self.set_fault(&what);
                let start_s = self.at();
                match fault {
                    Fault::Kill(i) => {
                        signal(&nodes[i], "KILL")?;
                        std::thread::sleep(hold); // the fault's length, not a sync point
                        let back = place.node(self.lab, i, &urls[i], members)?;
                        self.seen
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Seen {
                            pid: back.pid(),
                            addr: back.addr,
                        };
                        // The old one is reaped as it is replaced.
                        nodes[i] = back;
                    }
                    Fault::Stop(i) => {
                        signal(&nodes[i], "STOP")?;
                        std::thread::sleep(hold); // the fault's length, not a sync point
                        signal(&nodes[i], "CONT")?;
                        nodes[i].wait_ready("/readyz", self.lab.bench.args.startup_timeout)?;
                    }
                    Fault::Etcd => {
                        if let Some(server) = etcd.take() {
                            server.stop(Duration::from_secs(5));
                        }
                        std::thread::sleep(hold); // the fault's length, not a sync point
                        etcd = Some(place.etcd(self.lab, false)?.0);
                    }
                    Fault::Partition(a, b) => {
                        let Place::Hosts(h) = place else {
                            bail!("a partition needs the network-namespace lab");
                        };
                        h.block(a, b)?;
                        std::thread::sleep(hold); // the fault's length, not a sync point
                        h.unblock(a)?;
                    }
                }
                wait_for_members(&nodes.iter().collect::<Vec<_>>(), nodes.len())?;
                windows.push(Window {
                    fault: what,
                    start_s,
                    end_s: self.at(),
                });
                self.set_fault("");
                eprintln!("e2e: soak: {:.0} s: ready again", self.at());
            }
        }
        Ok((windows, nodes, etcd))
    }
}

/// The checks on the samples: memory and descriptors.
struct Verdicts<'a> {
    samples: &'a [Sample],
    windows: &'a [Window],
    warmup: f64,
    rss_bound: u64,
    overhead_mib: u64,
}

impl Verdicts<'_> {
    /// Each node's samples of its last life, after the warm-up of the soak and of that life.
    fn settled(&self, i: usize, read: impl Fn(&NodeSample) -> Option<u64>) -> Vec<(f64, f64)> {
        let Some(last) = self.samples.iter().rev().find_map(|s| s.nodes.get(i)) else {
            return Vec::new();
        };
        let born = self
            .samples
            .iter()
            .find(|s| s.nodes.get(i).is_some_and(|n| n.pid == last.pid))
            .map_or(0.0, |s| s.t_s);
        let from = self.warmup.max(born + self.warmup);
        #[allow(clippy::cast_precision_loss)]
        self.samples
            .iter()
            .filter(|s| s.t_s >= from)
            .filter_map(|s| {
                let n = s.nodes.get(i).filter(|n| n.pid == last.pid)?;
                Some((s.t_s, read(n)? as f64))
            })
            .collect()
    }

    fn nodes(&self) -> usize {
        self.samples
            .iter()
            .map(|s| s.nodes.len())
            .max()
            .unwrap_or(0)
    }

    fn memory(&self) -> Vec<Row> {
        #[allow(clippy::cast_precision_loss)]
        let bound = self.rss_bound as f64;
        let peaks: Vec<u64> = (0..self.nodes())
            .map(|i| {
                self.samples
                    .iter()
                    .filter(|s| s.t_s >= self.warmup)
                    .filter_map(|s| s.nodes.get(i)?.rss_bytes)
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        // Growth of what the caches do not count: a cache still filling grows the resident set
        // by what it holds, which is no leak; the rest of the process must stay flat while it
        // serves. What a fault takes and the allocator keeps is a step, not a trend (see
        // `growth_between_faults`); the fit through everything is shown beside it.
        let outside = |n: &NodeSample| Some(n.rss_bytes?.saturating_sub(n.cached_bytes?));
        let settle = SAMPLE_EVERY.as_secs_f64();
        let growth: Vec<Option<f64>> = (0..self.nodes())
            .map(|i| growth_between_faults(&self.settled(i, outside), self.windows, settle))
            .collect();
        let through: Vec<Option<f64>> = (0..self.nodes())
            .map(|i| growth_over_last_half(&self.settled(i, outside)))
            .collect();
        let flat = bound * FLAT_SHARE;
        #[allow(clippy::cast_precision_loss)]
        let list = |v: &[u64]| {
            v.iter()
                .map(|b| format!("{:.1}", *b as f64 / MIB))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        vec![
            Row::check(
                "soak",
                "RSS after the warm-up, most of each node (MiB)",
                list(&peaks),
                format!(
                    "≤ {:.1} (1.25 × budget + {} MiB)",
                    bound / MIB,
                    self.overhead_mib
                ),
                peaks.iter().all(|&p| p <= self.rss_bound),
            ),
            Row::check(
                "soak",
                "RSS beyond the bytes cached: growth over the last half between faults, fitted \
                 within each stretch between fault windows, each node (MiB)",
                show(&growth, MIB),
                format!("≤ {:.1} ({}% of the bound)", flat / MIB, FLAT_SHARE * 100.0),
                growth.iter().flatten().all(|&g| g <= flat),
            ),
            Row::info(
                "soak",
                "RSS beyond the bytes cached: growth over the last half, one line fitted \
                 through it all, steps at faults included, each node (MiB)",
                show(&through, MIB),
            ),
        ]
    }

    fn descriptors(&self) -> Vec<Row> {
        let growth: Vec<Option<f64>> = (0..self.nodes())
            .map(|i| growth_over_last_half(&self.settled(i, |n| n.fds)))
            .collect();
        vec![Row::check(
            "soak",
            "open descriptors: growth over the last half, fitted, each node",
            show(&growth, 1.0),
            format!("≤ {FD_SLACK}"),
            growth.iter().flatten().all(|&g| g <= FD_SLACK),
        )]
    }
}

/// Figures divided by `unit`, one decimal, `n/a` where there were too few samples.
fn show(values: &[Option<f64>], unit: f64) -> String {
    values
        .iter()
        .map(|v| v.map_or_else(|| "n/a".to_owned(), |v| format!("{:.1}", v / unit)))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// The report: the set-up, the samples (at most about 30 rows: every k-th for a long soak; the
/// CSV has them all) and the checks.
fn markdown(
    bench: &Bench,
    length: Duration,
    (budget, rss_bound): (u64, u64),
    (place, with_etcd): (&str, bool),
    samples: &[Sample],
    rows: &[Row],
) -> String {
    #[allow(clippy::cast_precision_loss)]
    let mib = |b: u64| b as f64 / MIB;
    let mut out = format!(
        "Soak: {} s, 3 `geecache serve` nodes {place} ({}), {} keys (Zipf {}), origin \
         answering after {} ms, {} load connections, {} server thread(s) per node, {} cores, \
         budget {:.2} MiB per node (bound {:.1} MiB); load average at the end: {}.\n\n",
        length.as_secs(),
        if with_etcd {
            "members through etcd"
        } else {
            "static peers"
        },
        bench.args.keys,
        bench.args.zipf,
        ORIGIN_DELAY.as_millis(),
        bench.args.connections,
        bench.args.server_threads,
        std::thread::available_parallelism().map_or(0, usize::from),
        mib(budget),
        mib(rss_bound),
        procstat::load_average().map_or_else(
            |_| "?".to_owned(),
            |l| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
        ),
    );
    out.push_str(
        "| t (s) | requests/s | errors | source loads | RSS MiB (per node) | fds | members | open circuits | fault |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let every = samples.len().div_ceil(30).max(1);
    let mut before = 0.0;
    let mut since = (0, 0);
    for (k, s) in samples.iter().enumerate() {
        since.0 += s.requests;
        since.1 += s.errors;
        if (k + 1) % every != 0 && k + 1 != samples.len() {
            continue;
        }
        let per = |f: &dyn Fn(&NodeSample) -> String| {
            s.nodes.iter().map(f).collect::<Vec<_>>().join(" / ")
        };
        let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        #[allow(clippy::cast_precision_loss)]
        let rate = since.0 as f64 / (s.t_s - before).max(1e-9);
        out.push_str(&format!(
            "| {:.0} | {rate:.0} | {} | {} | {} | {} | {} | {} | {} |\n",
            s.t_s,
            since.1,
            s.source_loads,
            per(&|n| n
                .rss_bytes
                .map_or_else(|| "-".to_owned(), |b| format!("{:.1}", mib(b)))),
            per(&|n| opt(n.fds)),
            per(&|n| opt(n.members)),
            per(&|n| opt(n.open_circuits)),
            s.fault
        ));
        before = s.t_s;
        since = (0, 0);
    }
    out.push('\n');
    out.push_str(&rows_table(rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_come_in_turn_after_the_warm_up_and_end_before_the_soak() {
        let length = Duration::from_secs(120);
        let warmup = Duration::from_secs(20);
        let (plan, hold) = schedule(length, warmup, Duration::from_secs(20), true, false);
        // A period of 25 s (100 s after the warm-up for three faults and a quiet end).
        assert_eq!(hold, Duration::from_secs(25) / 3);
        let kinds: Vec<Fault> = plan.iter().map(|p| p.1).collect();
        assert_eq!(kinds, [Fault::Kill(2), Fault::Stop(2), Fault::Etcd]);
        assert_eq!(plan[0].0, warmup);
        for (at, _) in &plan {
            assert!(*at + hold + Duration::from_secs(20) <= length);
        }
    }

    #[test]
    fn a_long_soak_rotates_victims_and_leaves_etcd_out_without_it() {
        let (plan, hold) = schedule(
            Duration::from_secs(1800),
            Duration::from_secs(30),
            Duration::from_secs(20),
            false,
            false,
        );
        assert_eq!(hold, Duration::from_secs(20));
        assert!(plan.iter().all(|p| p.1 != Fault::Etcd));
        let victims: std::collections::BTreeSet<usize> = plan
            .iter()
            .map(|p| match p.1 {
                Fault::Kill(v) | Fault::Stop(v) => v,
                f => unreachable!("{f:?}"),
            })
            .collect();
        assert_eq!(victims.len(), 3, "{plan:?}");
        // One every two minutes at most.
        assert!(
            plan.windows(2)
                .all(|w| w[1].0 - w[0].0 <= Duration::from_secs(120))
        );
    }

    #[test]
    fn across_hosts_a_partition_joins_the_turn_and_exposes_the_node_it_cannot_reach() {
        let (plan, _) = schedule(
            Duration::from_secs(120),
            Duration::from_secs(20),
            Duration::from_secs(20),
            true,
            true,
        );
        let kinds: Vec<Fault> = plan.iter().map(|p| p.1).collect();
        assert_eq!(
            kinds,
            [
                Fault::Kill(2),
                Fault::Stop(2),
                Fault::Etcd,
                Fault::Partition(0, 2)
            ]
        );
        assert_eq!(Fault::Partition(0, 2).victims(), [2]);
        assert!(Fault::Etcd.victims().is_empty());
    }
}
