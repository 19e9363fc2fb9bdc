//! `e2e`: a three-node geecache cluster on 127.0.0.1, driven by `loadgen` in its own
//! process, beside `bare-axum` driven the same way; prints a markdown table.
//!
//! Builds nothing: it runs the `geecache`, `loadgen` and `bare-axum` binaries it is given (by
//! default the ones next to itself in the target directory). Every run is bounded by its
//! duration flag plus fixed start-up and shutdown deadlines, and every child is stopped when
//! the orchestrator returns, whether the run succeeded or not.

mod chaos;
mod missing;
mod process;
mod proxy;
mod table;
#[cfg(test)]
mod tests;
mod tls;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use geecache_bench_e2e::bound::{Warm, least_peer_fetches};
use geecache_bench_e2e::procstat::{self, MachineTicks};
use geecache_bench_e2e::{LoadReport, duration, sockets};

use crate::process::{Server, free_ports, run_bounded};
use crate::table::{CacheFigures, Measured, Role};
use crate::tls::Security;

/// Measures a three-node geecache cluster against a bare axum server, end to end.
#[derive(Debug, Parser)]
#[command(name = "e2e", version, about)]
struct Args {
    /// The `geecache` binary [default: next to this program].
    #[arg(long, value_name = "PATH")]
    geecache: Option<PathBuf>,

    /// The `loadgen` binary [default: next to this program].
    #[arg(long, value_name = "PATH")]
    loadgen: Option<PathBuf>,

    /// The `bare-axum` binary [default: next to this program].
    #[arg(long, value_name = "PATH")]
    bare_axum: Option<PathBuf>,

    /// Runs to do, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Run::Bare, Run::Warm, Run::Miss])]
    runs: Vec<Run>,

    /// Measured time of each run.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    duration: Duration,

    /// Unmeasured load before each measured run (connection pools, hot caches).
    #[arg(long, default_value = "2s", value_parser = duration::parse)]
    warmup: Duration,

    /// Further unmeasured Zipf load before the three-node warm run, after --warmup. A node's
    /// hot cache admits only some peer values, so the peer-fetch rate keeps falling while the
    /// hot caches fill; this load lets them settle first, so that the run measures a warm
    /// cluster rather than one still warming.
    #[arg(long, default_value = "60s", value_parser = duration::parse)]
    hot_warmup: Duration,

    /// Cache budget of each node in the three-node warm run, e.g. `3MiB` [default: 33 bytes
    /// per key of --keys]. The default is a little over what a node needs for its own demo
    /// rows (about 64 bytes each) if it owned 42% of them; the nodes' default ring gives each
    /// about a third. Each node keeps every key it owns, and its hot cache gets the rest. With
    /// a budget that never binds (`64MiB`, geecache's default), every node in time holds every
    /// key in its hot cache and the run measures three nodes that no longer talk to each other.
    #[arg(long, value_name = "SIZE")]
    warm_cache: Option<String>,

    /// The warm runs' eviction policy, `lru` or `s3fifo` (the group option `policy=`)
    /// [default: geecache's own, LRU].
    #[arg(long, value_name = "POLICY")]
    policy: Option<String>,

    /// The warm runs' hot-cache admission: `random` (one in ten, groupcache's rule, the
    /// group option `hot=random`), `rate` (by the owner's request rate, `hot=rate`) or a
    /// number, the rate threshold in requests per second (`hot_qps=`) [default: geecache's
    /// own, by rate].
    #[arg(long, value_name = "RULE")]
    hot: Option<String>,

    /// More group options for the warm runs, appended to the group spec as given, e.g.
    /// `peer_batch_window=1ms` (see `geecache serve --help`).
    #[arg(long, value_name = "OPTION=VALUE,...")]
    group_options: Option<String>,

    /// The protocol between the nodes (`geecache serve --transport`), comma-separated. With
    /// more than one, every geecache run is done once per transport, one right after the
    /// other in each round, and the report compares them.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Transport::Http])]
    transport: Vec<Transport>,

    #[command(flatten)]
    tls: tls::TlsArgs,

    /// Times to do the whole list of runs, one round after another, so that the runs of each
    /// round are close in time. With more than one, the report adds each ratio's median and
    /// range over the rounds, the figure to trust on a machine whose load moves.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    rounds: u16,

    /// Smoke check: 2 s runs and 500 ms warm-ups (overrides --duration, --warmup and
    /// --hot-warmup).
    #[arg(long)]
    quick: bool,

    /// Load-generator worker threads.
    #[arg(long, default_value_t = 2)]
    threads: u16,

    /// Worker threads of each server process: every geecache node, bare axum and the origin
    /// alike; 0 gives each one thread per CPU. One is the default because three nodes and the
    /// load generator share the machine: with a worker per CPU each, runnable threads
    /// outnumber the cores several times over, and the run measures the scheduler.
    #[arg(long, default_value_t = 1)]
    server_threads: u16,

    /// Keep-alive connections, spread round-robin over the servers.
    #[arg(long, default_value_t = 64)]
    connections: u16,

    /// Keys of the warm run (the demo table's rows `player-000000` ...; it has 100 000).
    #[arg(long, default_value_t = 100_000)]
    keys: u64,

    /// Exponent of the Zipf key distribution.
    #[arg(long, default_value_t = 0.99)]
    zipf: f64,

    /// Seed of the key sampling.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Latency of the origin in the all-miss run.
    #[arg(long, default_value = "1ms", value_parser = duration::parse)]
    miss_delay: Duration,

    /// Keys per request of the batch run (`--runs ...,batch`): each request is one
    /// `POST /api/{group}` asking for this many keys of the Zipf stream. At most 1000, the
    /// nodes' default `--max-batch-keys`.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    batch_keys: u16,

    /// The most that loading every key once (the warm-up of the warm run) may take.
    #[arg(long, default_value = "300s", value_parser = duration::parse)]
    fill_timeout: Duration,

    /// The most a server may take to start and report ready.
    #[arg(long, default_value = "20s", value_parser = duration::parse)]
    startup_timeout: Duration,

    /// Another `geecache` binary to run the hung and dead runs with as well, each right after
    /// the same run with --geecache, so the two are compared side by side (an older build,
    /// say).
    #[arg(long, value_name = "PATH")]
    compare: Option<PathBuf>,

    /// Runs these chaos scenarios instead of the runs, comma-separated: what clients see
    /// while a node hangs, dies, joins, leaves, restarts or slows down. The join, leave and
    /// rolling scenarios start an `etcd` (from PATH).
    #[arg(long, value_enum, value_delimiter = ',', num_args = 1..)]
    chaos: Vec<chaos::Scenario>,

    /// Instead of the runs: Zipf reads over keys of which this share, in percent, are missing
    /// at the origin, with negative caching off and on in turn (`missing.rs`); reports source
    /// requests per client request.
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=100))]
    missing: Option<u8>,

    /// How long a "not found" is cached (the group option `negative_ttl`) in the `--missing`
    /// run's half with negative caching on.
    #[arg(long, default_value = "60s", value_parser = duration::parse)]
    negative_ttl: Duration,

    /// How long the hung scenario keeps the node stopped.
    #[arg(long, default_value = "20s", value_parser = duration::parse)]
    fault_for: Duration,

    /// Set by `e2e` itself when it runs a scenario across hosts, or the soak, inside the
    /// network-namespace lab it made, tagged so: not for use by hand.
    #[arg(long, hide = true, value_name = "TAG")]
    in_lab: Option<String>,

    /// Where the servers' logs go [default: a new directory under the system temp dir].
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,

    #[command(flatten)]
    soak: chaos::SoakArgs,
}

impl Args {
    /// Keys per request of the batch gets to measure after the warm run's single gets, if
    /// the batch run is asked for.
    fn batch_after_warm(&self) -> Option<u16> {
        self.runs.contains(&Run::Batch).then_some(self.batch_keys)
    }
}

/// One measured run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Run {
    /// `bare-axum` answering a constant: the floor.
    Bare,
    /// Three geecache nodes, every key loaded before measuring, Zipf-distributed reads.
    Warm,
    /// Three geecache nodes in front of a slow origin, every key new: every request misses.
    Miss,
    /// One geecache node with no peers, warm, Zipf reads: the request path without peer
    /// fetches, to split the warm run's cost (not run unless asked for).
    Single,
    /// Three nodes, warm; one is stopped with SIGSTOP (hung: connections open, no answers)
    /// and Zipf reads go through the other two (not run unless asked for).
    Hung,
    /// As `hung`, with the node killed (SIGKILL: connections refused).
    Dead,
    /// One node, every request on a new connection of its own: the connections a node
    /// accepts per second, over each --security (not run unless asked for).
    Handshake,
    /// The warm run's cluster, right after its single gets: Zipf reads of --batch-keys keys
    /// per request through the client batch route (`POST /api/{group}`), CPU per key against
    /// the single gets' (not run unless asked for; does the warm run too when not listed).
    Batch,
}

/// The protocol between the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Transport {
    /// HTTP/1.1, a pool of keep-alive connections per peer.
    Http,
    /// gRPC, one multiplexed HTTP/2 connection per peer.
    Grpc,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Grpc => "grpc",
        }
    }
}

/// How often the peer connections of each node are counted during a measured run.
const SOCKET_SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// The default cache budget of a node in the three-node warm run, per key of the table.
const WARM_CACHE_BYTES_PER_KEY: u64 = 33;

/// How a warm run's nodes are set up and warmed beyond the common warm-up, and what is
/// measured on them after the single gets.
struct Settle {
    /// Each node's cache budget (`cache=`), or `None` for geecache's default.
    cache: Option<String>,
    /// Unmeasured load after the common warm-up.
    hot_warmup: Duration,
    /// Keys per request of batch gets measured right after the single gets, on the same
    /// nodes; `None`: no batch measurement.
    batch: Option<u16>,
}

/// The three programs and the settings shared by every run.
struct Bench {
    geecache: PathBuf,
    loadgen: PathBuf,
    bare_axum: PathBuf,
    args: Args,
    duration: Duration,
    warmup: Duration,
    hot_warmup: Duration,
    log_dir: PathBuf,
    ticks_per_s: u64,
    /// The certificates of the runs over TLS, when --security asks for them.
    tls: Option<tls::Material>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2e: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let here = std::env::current_exe()
        .context("cannot find this program's path")?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let found = |given: &Option<PathBuf>, name: &str| -> anyhow::Result<PathBuf> {
        let path = given.clone().unwrap_or_else(|| here.join(name));
        if !path.is_file() {
            bail!(
                "{name} not found at {}: build it (cargo build --release -p geecache-server \
                 -p geecache-bench-e2e) or pass --{name} PATH",
                path.display()
            );
        }
        Ok(path)
    };
    let geecache = found(&args.geecache, "geecache")?;
    let loadgen = found(&args.loadgen, "loadgen")?;
    let bare_axum = found(&args.bare_axum, "bare-axum")?;
    let log_dir = match &args.log_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("geecache-e2e-{}", std::process::id())),
    };
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("cannot create {}", log_dir.display()))?;
    let (duration, warmup, hot_warmup) = if args.quick {
        let short = Duration::from_millis(500);
        (Duration::from_secs(2), short, short)
    } else {
        (args.duration, args.warmup, args.hot_warmup)
    };
    let tls = tls::Material::for_runs(&log_dir.join("tls"), &args.tls.security)?;
    let bench = Bench {
        tls,
        geecache,
        loadgen,
        bare_axum,
        duration,
        warmup,
        hot_warmup,
        log_dir,
        ticks_per_s: procstat::clock_ticks_per_second(),
        args,
    };
    eprintln!("e2e: server logs in {}", bench.log_dir.display());

    if let Some(percent) = bench.args.missing {
        return missing::run(&bench, percent);
    }
    if let Some(length) = bench.args.soak.length() {
        return chaos::soak(&bench, length);
    }

    if !bench.args.chaos.is_empty() {
        for round in 1..=bench.args.rounds {
            if bench.args.rounds > 1 {
                eprintln!("e2e: round {round} of {}", bench.args.rounds);
            }
            let rows = chaos::run(&bench, &bench.args.chaos)?;
            // Printed as each round ends: a long series keeps what it measured if cut short.
            println!("{}", chaos::markdown(&bench, &rows));
        }
        return Ok(());
    }

    let mut results = Vec::new();
    for round in 1..=bench.args.rounds {
        if bench.args.rounds > 1 {
            eprintln!("e2e: round {round} of {}", bench.args.rounds);
        }
        for run in &bench.args.runs {
            // Each transport right after the other, so the two are measured close in time.
            let mut measured = Vec::new();
            // And each security setting right after the other within a transport.
            let over = bench.args.transport.iter().flat_map(|&transport| {
                bench.args.tls.security.iter().map(move |&s| (transport, s))
            });
            for (transport, security) in over {
                match run {
                    Run::Bare | Run::Handshake => {}
                    Run::Warm => measured.extend(bench.warm(transport, security)?),
                    // Measured on the warm run's nodes, right after its single gets: here
                    // only when the warm run is not listed.
                    Run::Batch if !bench.args.runs.contains(&Run::Warm) => {
                        measured.extend(bench.warm(transport, security)?);
                    }
                    Run::Batch => {}
                    Run::Miss => measured.push(bench.miss(transport, security)?),
                    Run::Single => measured.push(bench.single(transport, security)?),
                    Run::Hung | Run::Dead => {
                        let fault = if *run == Run::Hung {
                            Fault::Hung
                        } else {
                            Fault::Dead
                        };
                        let geecache = &bench.geecache;
                        measured.push(bench.failure(fault, geecache, transport, security)?);
                        if let Some(other) = &bench.args.compare {
                            measured.push(bench.failure(fault, other, transport, security)?);
                        }
                    }
                }
            }
            match run {
                Run::Bare => measured.push(bench.bare()?),
                // One node, no peers: once per security setting, whatever the transports.
                Run::Handshake => {
                    for &security in &bench.args.tls.security {
                        measured.extend(bench.handshake(security)?);
                    }
                }
                _ => {}
            }
            for mut measured in measured {
                measured.round = round;
                eprintln!(
                    "e2e: {}: {:.0} requests/s, server CPU {:.1} µs/request, {:.2} µs/key",
                    measured.label,
                    measured.report.requests_per_s,
                    measured.server_cpu_us_per_request(),
                    measured.server_cpu_us_per_key()
                );
                results.push(measured);
            }
        }
    }
    print!("{}", table::markdown(&bench.describe(), &results));
    Ok(())
}

impl Bench {
    /// What a run's label says of its transport: nothing when every run speaks HTTP (the
    /// default), else which.
    fn over(&self, transport: Transport) -> String {
        if self.args.transport == [Transport::Http] {
            String::new()
        } else {
            format!(", {} peers", transport.as_str())
        }
    }

    fn log(&self, name: &str) -> PathBuf {
        self.log_dir.join(format!("{name}.log"))
    }

    fn describe(&self) -> table::Setup {
        table::Setup {
            connections: self.args.connections,
            threads: self.args.threads,
            server_threads: self.args.server_threads,
            duration: self.duration,
            warmup: self.warmup,
            hot_warmup: self.hot_warmup,
            warm_cache: self.warm_cache(),
            keys: self.args.keys,
            zipf: self.args.zipf,
            seed: self.args.seed,
            miss_delay: self.args.miss_delay,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            ticks_per_s: self.ticks_per_s,
        }
    }

    /// A `bare-axum` command with the servers' thread count.
    fn bare_axum_command(&self) -> Command {
        let mut command = Command::new(&self.bare_axum);
        self.pass_server_threads(&mut command);
        command
    }

    /// Gives a server process `--threads` when a count was asked for (0: its own default).
    fn pass_server_threads(&self, command: &mut Command) {
        if self.args.server_threads > 0 {
            command
                .arg("--threads")
                .arg(self.args.server_threads.to_string());
        }
    }

    /// A `loadgen` command for `targets`.
    fn loadgen(&self, targets: &[String], mode: &str, run_for: Duration, seed: u64) -> Command {
        let connections = self.args.connections;
        let mut command = self.loadgen_on(targets, mode, run_for, seed, connections);
        command.arg("--keys").arg(self.args.keys.to_string());
        command
    }

    /// A `loadgen` command for `targets` with `connections` connections, its keys not yet
    /// said (`--keys` or `--keys-file`).
    fn loadgen_on(
        &self,
        targets: &[String],
        mode: &str,
        run_for: Duration,
        seed: u64,
        connections: u16,
    ) -> Command {
        let mut command = Command::new(&self.loadgen);
        for t in targets {
            command.arg("--target").arg(t);
        }
        self.pass_ca(&mut command, targets);
        command
            .arg("--mode")
            .arg(mode)
            .arg("--duration")
            .arg(format!("{}ms", run_for.as_millis().max(1)))
            .arg("--connections")
            .arg(connections.to_string())
            .arg("--threads")
            .arg(self.args.threads.to_string())
            .arg("--zipf")
            .arg(self.args.zipf.to_string())
            .arg("--seed")
            .arg(seed.to_string());
        command
    }

    /// Runs `loadgen` once, unmeasured, and checks that it saw no errors.
    fn unmeasured(
        &self,
        what: &str,
        command: Command,
        run_for: Duration,
    ) -> anyhow::Result<LoadReport> {
        let out = run_bounded(command, run_for + Duration::from_secs(60))?;
        let report: LoadReport = serde_json::from_str(out.trim()).with_context(|| {
            format!("{what}: loadgen printed something else than a report: {out}")
        })?;
        if report.errors() > 0 || report.connect_failures > 0 {
            bail!(
                "{what}: {} errors, {} connect failures",
                report.errors(),
                report.connect_failures
            );
        }
        Ok(report)
    }

    /// The unmeasured Zipf load before a measured run (another seed than the run's).
    fn zipf_warmup(&self, what: &str, targets: &[String]) -> anyhow::Result<LoadReport> {
        self.zipf_load(what, targets, self.warmup)
    }

    /// Unmeasured Zipf load for `run_for`.
    fn zipf_load(
        &self,
        what: &str,
        targets: &[String],
        run_for: Duration,
    ) -> anyhow::Result<LoadReport> {
        self.unmeasured(
            what,
            self.loadgen(targets, "zipf", run_for, self.args.seed.wrapping_add(1)),
            run_for,
        )
    }

    /// Each node's cache budget in the three-node warm run, as `geecache` reads it.
    fn warm_cache(&self) -> String {
        match &self.args.warm_cache {
            Some(size) => size.clone(),
            None => (self.args.keys.saturating_mul(WARM_CACHE_BYTES_PER_KEY)).to_string(),
        }
    }

    /// Runs `loadgen` once and measures the servers' CPU time around it, and the peak number
    /// of connections each of `nodes_with_stats` holds to the others' ports.
    fn measure(
        &self,
        label: &str,
        role: Role,
        counted: &[&Server],
        uncounted: &[&Server],
        nodes_with_stats: &[&Server],
        command: Command,
    ) -> anyhow::Result<Measured> {
        let peer_ports: Vec<u16> = nodes_with_stats.iter().map(|s| s.addr.port()).collect();
        let pids: Vec<u32> = nodes_with_stats.iter().map(|s| s.pid()).collect();
        let load_average = procstat::load_average()?;
        let ticks = |servers: &[&Server]| sum_over(servers, "CPU time", procstat::process_ticks);
        let stats_before = cache_figures(nodes_with_stats)?;
        let counted_before = ticks(counted)?;
        let uncounted_before = ticks(uncounted)?;
        let machine_before = MachineTicks::now()?;

        let done = std::sync::atomic::AtomicBool::new(false);
        let (out, peer_connections) = std::thread::scope(|scope| {
            let sampler = scope.spawn(|| peak_connections(&pids, &peer_ports, &done));
            let out = run_bounded(command, self.duration + Duration::from_secs(60));
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            (out, sampler.join().unwrap_or_default())
        });
        let out = out?;

        let machine = MachineTicks::now()?.since(machine_before);
        let counted_ticks = ticks(counted)?.saturating_sub(counted_before);
        let uncounted_ticks = ticks(uncounted)?.saturating_sub(uncounted_before);
        let stats_after = cache_figures(nodes_with_stats)?;
        let peak_resident_bytes = sum_over(counted, "memory", procstat::peak_resident_bytes)?;
        let report: LoadReport = serde_json::from_str(out.trim()).with_context(|| {
            format!("{label}: loadgen printed something else than a report: {out}")
        })?;
        #[allow(clippy::cast_precision_loss)]
        let seconds = |t: u64| t as f64 / self.ticks_per_s as f64;
        Ok(Measured {
            label: label.to_owned(),
            pair: label.to_owned(),
            transport: None,
            base: label.to_owned(),
            security: None,
            peer_connections,
            round: 1,
            role,
            batch_of: None,
            servers: counted.len(),
            report,
            server_cpu_s: seconds(counted_ticks),
            uncounted_cpu_s: seconds(uncounted_ticks),
            machine_busy_s: seconds(machine.busy),
            machine_total_s: seconds(machine.total),
            load_average,
            peak_resident_bytes,
            cache: stats_after.map(|after| after.since(&stats_before.unwrap_or_default())),
            least_peer_fetches: None,
        })
    }

    fn bare(&self) -> anyhow::Result<Measured> {
        eprintln!("e2e: bare axum: starting");
        let mut server = Server::start(
            "bare-axum",
            self.bare_axum_command(),
            self.log("bare-axum"),
            self.args.startup_timeout,
        )?;
        server.wait_ready("/healthz", self.args.startup_timeout)?;
        let targets = [server.url()];
        self.zipf_warmup("bare axum warm-up", &targets)?;
        let measured = self.measure(
            "bare axum, constant body",
            Role::Floor,
            &[&server],
            &[],
            &[],
            self.loadgen(&targets, "zipf", self.duration, self.args.seed),
        )?;
        server.stop(Duration::from_secs(3));
        Ok(measured)
    }

    /// The three-node warm run, and with `--runs ...,batch` the batch run on its nodes.
    fn warm(&self, transport: Transport, security: Security) -> anyhow::Result<Vec<Measured>> {
        eprintln!(
            "e2e: geecache warm ({}): starting three nodes",
            transport.as_str()
        );
        let label = format!(
            "geecache warm, Zipf {} over {} keys",
            self.args.zipf, self.args.keys
        );
        let settle = Settle {
            cache: Some(self.warm_cache()),
            hot_warmup: self.hot_warmup,
            batch: self.args.batch_after_warm(),
        };
        let (single, batch) = self.warm_on(
            3,
            "warm",
            &label,
            Role::Target,
            &settle,
            transport,
            security,
        )?;
        Ok(std::iter::once(single).chain(batch).collect())
    }

    fn single(&self, transport: Transport, security: Security) -> anyhow::Result<Measured> {
        eprintln!("e2e: geecache single node: starting one node");
        let label = format!(
            "geecache warm, 1 node (no peers), Zipf {} over {} keys",
            self.args.zipf, self.args.keys
        );
        // One node holds every key: it gets geecache's default budget, and has no hot cache
        // to fill.
        let settle = Settle {
            cache: None,
            hot_warmup: Duration::ZERO,
            batch: None,
        };
        let (measured, _) = self.warm_on(
            1,
            "single",
            &label,
            Role::Other,
            &settle,
            transport,
            security,
        )?;
        Ok(measured)
    }

    /// `n` nodes of the demo table, every key loaded once, then measured Zipf reads; with
    /// `settle.batch`, then measured Zipf reads in batches on the same nodes.
    #[allow(clippy::too_many_arguments)]
    fn warm_on(
        &self,
        n: usize,
        tag: &str,
        label: &str,
        role: Role,
        settle: &Settle,
        transport: Transport,
        security: Security,
    ) -> anyhow::Result<(Measured, Option<Measured>)> {
        let mut group = match &settle.cache {
            Some(size) => format!("scores=demo,cache={size}"),
            None => "scores=demo".to_owned(),
        };
        if let Some(policy) = &self.args.policy {
            group.push_str(&format!(",policy={policy}"));
        }
        match self.args.hot.as_deref() {
            None => {}
            Some(rule @ ("random" | "rate")) => group.push_str(&format!(",hot={rule}")),
            Some(qps) => group.push_str(&format!(",hot_qps={qps}")),
        }
        if let Some(options) = &self.args.group_options {
            group.push_str(&format!(",{options}"));
        }
        let nodes = self.cluster(&self.geecache, n, tag, &group, transport, security)?;
        let targets: Vec<String> = nodes.iter().map(Server::url).collect();
        self.fill(tag, &targets)?;
        self.zipf_load(
            "geecache warm-up",
            &targets,
            self.warmup + settle.hot_warmup,
        )?;
        let refs: Vec<&Server> = nodes.iter().collect();
        let secured = self.secured(security);
        let mut measured = self.measure(
            &format!("{label}{}{secured}", self.over(transport)),
            role,
            &refs,
            &[],
            &refs,
            self.loadgen(&targets, "zipf", self.duration, self.args.seed),
        )?;
        measured.compared_as(&format!("{label}{secured}"), transport.as_str());
        measured.secured_as(label, security);
        measured.least_peer_fetches = self.least_peer_fetches(measured.cache.as_ref(), n);
        // The batches right after, on the same settled nodes and the same key distribution,
        // so that the two are compared on one cluster in one state rather than on two
        // clusters warmed apart.
        let batch = match settle.batch {
            None => None,
            Some(keys) => {
                let mut command = self.loadgen(&targets, "zipf", self.duration, self.args.seed);
                command.arg("--batch").arg(keys.to_string());
                let mut batch = self.measure(
                    &format!(
                        "{label}, batches of {keys} keys{}{secured}",
                        self.over(transport)
                    ),
                    Role::Batch,
                    &refs,
                    &[],
                    &refs,
                    command,
                )?;
                batch.batch_of = Some(measured.label.clone());
                Some(batch)
            }
        };
        stop_all(nodes);
        for m in std::iter::once(&measured).chain(&batch) {
            if let Some(loads) = m.cache.map(|c| c.local_loads).filter(|&l| l > 0) {
                eprintln!(
                    "e2e: {tag}: {loads} loads from the source while measuring {}: a node's \
                     budget (--warm-cache) did not hold all its own keys, so the run was \
                     partly cold",
                    m.label
                );
            }
        }
        Ok((measured, batch))
    }

    /// The fewest peer fetches per request any hot-cache admission could reach on `nodes`
    /// nodes with `cache`'s budgets, whose entries weighed what those held at the end of the
    /// run did on average. Keys are spread over the nodes as evenly as the ring spreads them (within
    /// 2% on the default ring), by a fixed hash rather than the ring of this run's addresses.
    fn least_peer_fetches(&self, cache: Option<&CacheFigures>, nodes: usize) -> Option<f64> {
        let cache = cache.filter(|c| c.cached_items > 0 && nodes > 0)?;
        #[allow(clippy::cast_precision_loss)]
        let warm = Warm {
            keys: self.args.keys,
            zipf: self.args.zipf,
            budget_bytes: cache.budget_bytes / nodes as u64,
            entry_bytes: cache.cached_bytes as f64 / cache.cached_items as f64,
        };
        let spread = |key: u64| {
            // SplitMix64's finaliser: a fixed, well-mixed spread of the keys.
            let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            #[allow(clippy::cast_possible_truncation)]
            let node = ((z ^ (z >> 31)) % nodes as u64) as usize;
            node
        };
        Some(least_peer_fetches(&warm, nodes, spread))
    }

    /// Every key of the demo table loaded once, through `targets`.
    fn fill(&self, tag: &str, targets: &[String]) -> anyhow::Result<()> {
        eprintln!("e2e: {tag}: loading all {} keys once", self.args.keys);
        let fill = self.unmeasured(
            "loading every key",
            self.loadgen(targets, "sequential", self.args.fill_timeout, 0),
            self.args.fill_timeout,
        )?;
        if fill.ok != self.args.keys {
            bail!(
                "loading every key: {} of {} keys loaded within {:?}",
                fill.ok,
                self.args.keys,
                self.args.fill_timeout
            );
        }
        Ok(())
    }

    /// Three nodes of `geecache`, warm; the third fails as `fault` says just before the
    /// measured window, and the Zipf load goes through the other two.
    fn failure(
        &self,
        fault: Fault,
        geecache: &Path,
        transport: Transport,
        security: Security,
    ) -> anyhow::Result<Measured> {
        let binary = geecache.display();
        eprintln!("e2e: {fault} node ({binary}): starting three nodes");
        let tag = fault.as_str();
        let mut nodes = self.cluster(geecache, 3, tag, "scores=demo", transport, security)?;
        let targets: Vec<String> = nodes.iter().map(Server::url).collect();
        self.fill(tag, &targets)?;
        self.zipf_warmup("failure warm-up", &targets)?;
        let victim = nodes.pop().context("three nodes")?;
        signal(&victim, fault.signal())?;
        let survivors: Vec<&Server> = nodes.iter().collect();
        let label = format!("one node {fault}, Zipf {} ({binary})", self.args.zipf);
        let measured = self.measure(
            &format!("{label}{}{}", self.over(transport), self.secured(security)),
            Role::Failure,
            &survivors,
            &[],
            &survivors,
            self.loadgen(&targets[..2], "zipf", self.duration, self.args.seed),
        );
        if fault == Fault::Hung {
            // Resumed, so that it can take its SIGTERM and stop like the others.
            signal(&victim, "CONT")?;
        }
        nodes.push(victim);
        stop_all(nodes);
        measured
    }

    fn miss(&self, transport: Transport, security: Security) -> anyhow::Result<Measured> {
        eprintln!(
            "e2e: geecache all-miss ({}): starting the origin and three nodes",
            transport.as_str()
        );
        let origin = self.slow_origin(0)?;
        let source = format!("http:{}/objects/", origin.url());
        let nodes = self.cluster(
            &self.geecache,
            3,
            "miss",
            &format!("scores={source}"),
            transport,
            security,
        )?;
        let targets: Vec<String> = nodes.iter().map(Server::url).collect();
        let unique = |prefix: &str, run_for: Duration| {
            let mut command = self.loadgen(&targets, "unique", run_for, self.args.seed);
            command
                .arg("--key-prefix")
                .arg(prefix)
                .arg("--key-width")
                .arg("0");
            command
        };
        self.unmeasured(
            "geecache all-miss warm-up",
            unique("warmup-", self.warmup),
            self.warmup,
        )?;
        let refs: Vec<&Server> = nodes.iter().collect();
        let label = format!(
            "geecache all-miss, {} ms origin",
            self.args.miss_delay.as_secs_f64() * 1e3
        );
        let secured = self.secured(security);
        let mut measured = self.measure(
            &format!("{label}{}{secured}", self.over(transport)),
            Role::Other,
            &refs,
            &[&origin],
            &refs,
            unique("miss-", self.duration),
        )?;
        measured.compared_as(&format!("{label}{secured}"), transport.as_str());
        measured.secured_as(&label, security);
        stop_all(nodes);
        origin.stop(Duration::from_secs(3));
        Ok(measured)
    }

    /// The origin of the all-miss runs, ready: `bare-axum` answering `/objects/{key}` after
    /// `--miss-delay`, with `missing_percent` percent of the keys missing.
    fn slow_origin(&self, missing_percent: u8) -> anyhow::Result<Server> {
        let mut command = self.bare_axum_command();
        command
            .arg("--delay")
            .arg(format!("{}us", self.args.miss_delay.as_micros()))
            .arg("--missing-percent")
            .arg(missing_percent.to_string());
        let mut origin = Server::start(
            "origin",
            command,
            self.log("origin"),
            self.args.startup_timeout,
        )?;
        origin.wait_ready("/healthz", self.args.startup_timeout)?;
        Ok(origin)
    }

    /// `n` `geecache serve` nodes naming each other as peers over `transport`, all ready,
    /// each serving `group` (a `--group` value), over TLS if `security` says so.
    fn cluster(
        &self,
        geecache: &Path,
        n: usize,
        tag: &str,
        group: &str,
        transport: Transport,
        security: Security,
    ) -> anyhow::Result<Vec<Server>> {
        const ATTEMPTS: u32 = 3;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_cluster(geecache, n, tag, group, transport, security) {
                Ok(nodes) => return Ok(nodes),
                // Ports are picked before the nodes bind them (each node's peer list must
                // name the others); if another process took one in between, pick again.
                Err(e) if attempt < ATTEMPTS && format!("{e:#}").contains("cannot listen") => {
                    eprintln!("e2e: a port was taken, trying again: {e:#}");
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn try_cluster(
        &self,
        geecache: &Path,
        n: usize,
        tag: &str,
        group: &str,
        transport: Transport,
        security: Security,
    ) -> anyhow::Result<Vec<Server>> {
        let ports = free_ports(n)?;
        let scheme = security.scheme();
        let urls: Vec<String> = ports
            .iter()
            .map(|p| format!("{scheme}://127.0.0.1:{p}"))
            .collect();
        let mut nodes = Vec::with_capacity(n);
        for (i, (port, url)) in ports.iter().zip(&urls).enumerate() {
            let mut command = Command::new(geecache);
            command
                .arg("serve")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--self-url")
                .arg(url)
                .arg("--peers")
                .arg(urls.join(","))
                .arg("--group")
                .arg(group)
                .arg("--transport")
                .arg(transport.as_str())
                // Warnings only: a log line per request would measure the logger.
                .arg("--log-level")
                .arg("warn")
                .arg("--drain-timeout")
                .arg("1s");
            self.pass_server_threads(&mut command);
            self.serve_over(&mut command, security)?;
            let name = format!("{tag}-node{}", i + 1);
            let mut node =
                Server::start(&name, command, self.log(&name), self.args.startup_timeout)?;
            self.reach(&mut node, security)?;
            nodes.push(node);
        }
        for node in &mut nodes {
            node.wait_ready("/readyz", self.args.startup_timeout)?;
        }
        Ok(nodes)
    }
}

/// How the failure runs make a node fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// SIGSTOP: the process is alive, its connections open, and nothing answers.
    Hung,
    /// SIGKILL: the process is gone, and connections are refused.
    Dead,
}

impl Fault {
    fn as_str(self) -> &'static str {
        match self {
            Fault::Hung => "hung",
            Fault::Dead => "dead",
        }
    }

    fn signal(self) -> &'static str {
        match self {
            Fault::Hung => "STOP",
            Fault::Dead => "KILL",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sends `SIG{name}` to `server` with `kill`.
fn signal(server: &Server, name: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(server.pid().to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .with_context(|| format!("cannot run kill -{name}"))?;
    if !status.success() {
        bail!("kill -{name} {} failed ({status})", server.name);
    }
    Ok(())
}

fn stop_all(servers: Vec<Server>) {
    // Signal every node first, then wait: stopping one at a time would have the survivors
    // log errors about the peers already gone.
    for s in &servers {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(s.pid().to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    for s in servers {
        s.stop(Duration::from_secs(3));
    }
}

/// The most connections each process of `pids` held at once to any of `ports`, counted every
/// [`SOCKET_SAMPLE_EVERY`] until `done`. A process whose sockets cannot be read (it exited)
/// keeps the peak it had.
fn peak_connections(
    pids: &[u32],
    ports: &[u16],
    done: &std::sync::atomic::AtomicBool,
) -> Vec<usize> {
    let mut peaks = vec![0; pids.len()];
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        for (peak, &pid) in peaks.iter_mut().zip(pids) {
            if let Ok(n) = sockets::established_to(pid, ports) {
                *peak = (*peak).max(n);
            }
        }
        std::thread::sleep(SOCKET_SAMPLE_EVERY);
    }
    peaks
}

/// `read(pid)` summed over `servers`; an error names the server and its log's last lines.
fn sum_over(
    servers: &[&Server],
    what: &str,
    read: fn(u32) -> std::io::Result<u64>,
) -> anyhow::Result<u64> {
    servers.iter().try_fold(0, |sum, s| {
        let value = read(s.pid())
            .with_context(|| format!("cannot read the {what} of {}{}", s.name, s.log_tail()))?;
        Ok(sum + value)
    })
}

/// The `scores` group's counters summed over `nodes` (`None` when there are no nodes).
fn cache_figures(nodes: &[&Server]) -> anyhow::Result<Option<CacheFigures>> {
    if nodes.is_empty() {
        return Ok(None);
    }
    let mut sum = CacheFigures::default();
    for node in nodes {
        let response = node
            .get("/stats", Duration::from_secs(5))
            .with_context(|| format!("GET /stats on {}", node.name))?;
        if response.status != 200 {
            bail!("GET /stats on {} answered {}", node.name, response.status);
        }
        let json: serde_json::Value = serde_json::from_slice(&response.body)
            .with_context(|| format!("/stats of {} is not JSON", node.name))?;
        let group = &json["groups"]["scores"];
        let n = |path: &[&str]| path.iter().fold(group, |v, k| &v[*k]).as_u64().unwrap_or(0);
        sum.add(&CacheFigures {
            gets: n(&["gets"]),
            peer_errors: n(&["peer_errors"]),
            peer_loads: n(&["peer_loads"]),
            local_loads: n(&["local_loads"]),
            main_hits: n(&["main", "hits"]),
            hot_hits: n(&["hot", "hits"]),
            cached_bytes: n(&["main", "bytes"]) + n(&["hot", "bytes"]),
            cached_items: n(&["main", "items"]) + n(&["hot", "items"]),
            budget_bytes: n(&["cache_bytes"]),
        });
    }
    Ok(Some(sum))
}
