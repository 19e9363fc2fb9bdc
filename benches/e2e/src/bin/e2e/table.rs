//! The measured figures and the markdown they are printed as.

use std::fmt::Write as _;
use std::time::Duration;

use geecache_bench_e2e::LoadReport;
use geecache_bench_e2e::report::median;

/// The target of the warm run: CPU per request at most this many times the bare floor.
const TARGET_RATIO: f64 = 2.0;
/// The target of the warm run over gRPC: CPU per request at most this many times HTTP's.
const GRPC_TARGET_RATIO: f64 = 1.3;
/// The target of the batch run: the nodes' CPU per key at most this many times that of the
/// single gets just before it.
const BATCH_TARGET_RATIO: f64 = 0.2;

/// The settings every run shared.
pub(crate) struct Setup {
    pub(crate) connections: u16,
    pub(crate) threads: u16,
    /// Worker threads of each server process; 0: one per CPU.
    pub(crate) server_threads: u16,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    /// Extra warm-up of the three-node warm run.
    pub(crate) hot_warmup: Duration,
    /// Each node's cache budget in the three-node warm run, as passed to `geecache`.
    pub(crate) warm_cache: String,
    pub(crate) keys: u64,
    pub(crate) zipf: f64,
    pub(crate) seed: u64,
    pub(crate) miss_delay: Duration,
    pub(crate) cores: usize,
    pub(crate) ticks_per_s: u64,
}

/// The `scores` group's counters, summed over the nodes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CacheFigures {
    pub(crate) gets: u64,
    pub(crate) peer_loads: u64,
    pub(crate) local_loads: u64,
    pub(crate) main_hits: u64,
    pub(crate) hot_hits: u64,
    /// Peer requests that failed and fell back to a local load.
    pub(crate) peer_errors: u64,
    /// Bytes the main and hot caches count (keys and values), a level rather than a counter.
    pub(crate) cached_bytes: u64,
    /// Entries in the main and hot caches, a level.
    pub(crate) cached_items: u64,
    /// The caches' budgets (`cache_bytes`), summed over the nodes.
    pub(crate) budget_bytes: u64,
}

impl CacheFigures {
    pub(crate) fn add(&mut self, other: &Self) {
        self.gets += other.gets;
        self.peer_loads += other.peer_loads;
        self.local_loads += other.local_loads;
        self.main_hits += other.main_hits;
        self.hot_hits += other.hot_hits;
        self.peer_errors += other.peer_errors;
        self.cached_bytes += other.cached_bytes;
        self.cached_items += other.cached_items;
        self.budget_bytes += other.budget_bytes;
    }

    pub(crate) fn since(&self, earlier: &Self) -> Self {
        CacheFigures {
            gets: self.gets.saturating_sub(earlier.gets),
            peer_loads: self.peer_loads.saturating_sub(earlier.peer_loads),
            local_loads: self.local_loads.saturating_sub(earlier.local_loads),
            main_hits: self.main_hits.saturating_sub(earlier.main_hits),
            hot_hits: self.hot_hits.saturating_sub(earlier.hot_hits),
            peer_errors: self.peer_errors.saturating_sub(earlier.peer_errors),
            cached_bytes: self.cached_bytes,
            cached_items: self.cached_items,
            budget_bytes: self.budget_bytes,
        }
    }
}

/// What a run is compared as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The floor every other run is compared with.
    Floor,
    /// The run the CPU-per-request target applies to.
    Target,
    /// Reported, not compared.
    Other,
    /// A node of three failed during the run: reported in the failure table too.
    Failure,
    /// Batch gets on the warm run's nodes: compared per key with that run's single gets,
    /// not per request with the floor.
    Batch,
}

/// One measured run.
pub(crate) struct Measured {
    pub(crate) label: String,
    /// What the run is matched by when transports are compared: the label without the
    /// transport.
    pub(crate) pair: String,
    /// The nodes' transport, when runs were done over more than one.
    pub(crate) transport: Option<&'static str>,
    /// What the run is matched by when plain HTTP and TLS are compared: the label without
    /// the transport or the security.
    pub(crate) base: String,
    /// Plain or TLS, for the runs that are compared so.
    pub(crate) security: Option<&'static str>,
    /// The most connections each node held at once to the other nodes' ports during the
    /// run, by node; empty for a run without nodes.
    pub(crate) peer_connections: Vec<usize>,
    /// Which round of `--rounds` it belongs to, from 1.
    pub(crate) round: u16,
    pub(crate) role: Role,
    /// For a batch run, the label of the single-get run measured just before it on the same
    /// nodes.
    pub(crate) batch_of: Option<String>,
    /// How many server processes `server_cpu_s` sums.
    pub(crate) servers: usize,
    pub(crate) report: LoadReport,
    /// CPU time of the measured servers over the run.
    pub(crate) server_cpu_s: f64,
    /// CPU time of helpers that are not counted (the origin of the all-miss run).
    pub(crate) uncounted_cpu_s: f64,
    /// CPU time the whole machine spent busy over the run, every core summed.
    pub(crate) machine_busy_s: f64,
    /// Every core's time over the run, busy or idle.
    pub(crate) machine_total_s: f64,
    pub(crate) load_average: [f64; 3],
    /// Peak resident memory of the measured servers (`VmHWM`), summed.
    pub(crate) peak_resident_bytes: u64,
    pub(crate) cache: Option<CacheFigures>,
    /// For a warm run, the fewest peer fetches per request any hot-cache admission could
    /// reach with the budget the nodes held ([`geecache_bench_e2e::bound`]).
    pub(crate) least_peer_fetches: Option<f64>,
}

impl Measured {
    /// Marks the run as `pair` over `transport`, to be compared with the same run over the
    /// other transport.
    pub(crate) fn compared_as(&mut self, pair: &str, transport: &'static str) {
        pair.clone_into(&mut self.pair);
        self.transport = Some(transport);
    }

    /// The label, with the round when there are several.
    fn name(&self, rounds: bool) -> String {
        if rounds {
            format!("{} (round {})", self.label, self.round)
        } else {
            self.label.clone()
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn per_request(&self, value: f64) -> f64 {
        if self.report.ok == 0 {
            return f64::NAN;
        }
        value / self.report.ok as f64
    }

    pub(crate) fn server_cpu_us_per_request(&self) -> f64 {
        self.per_request(self.server_cpu_s) * 1e6
    }

    /// `value` over the keys answered with a value (one per request for single gets).
    #[allow(clippy::cast_precision_loss)]
    fn per_key(&self, value: f64) -> f64 {
        if self.report.keys == 0 {
            return f64::NAN;
        }
        value / self.report.keys as f64
    }

    pub(crate) fn server_cpu_us_per_key(&self) -> f64 {
        self.per_key(self.server_cpu_s) * 1e6
    }

    fn loadgen_cpu_us_per_request(&self) -> f64 {
        self.per_request(self.report.loadgen_cpu_s) * 1e6
    }

    /// Busy CPU time that was neither the servers, the helpers nor the load generator.
    fn other_cpu_s(&self) -> f64 {
        (self.machine_busy_s - self.server_cpu_s - self.uncounted_cpu_s - self.report.loadgen_cpu_s)
            .max(0.0)
    }
}

/// The runs in which a node failed: what the clients saw, and what the survivors paid.
fn failures(out: &mut String, runs: &[Measured], rounds: bool) {
    let failed: Vec<&Measured> = runs.iter().filter(|m| m.role == Role::Failure).collect();
    if failed.is_empty() {
        return;
    }
    out.push_str(
        "\nA node of three failed (hung: SIGSTOP; dead: SIGKILL) just before the measured window; \
         the load went through the other two, whose `/stats` give the last two columns:\n\n\
         | run | requests/s | p50 | p99 | max | errors | peer errors | source loads |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for m in failed {
        let (peer_errors, loads) = m.cache.map_or((0, 0), |c| (c.peer_errors, c.local_loads));
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} |",
            m.name(rounds),
            m.report.requests_per_s,
            latency(m.report.p50_us),
            latency(m.report.p99_us),
            latency(m.report.max_us),
            m.report.errors() + m.report.connect_failures,
            peer_errors,
            loads,
        );
    }
}

/// CPU per request of every run against the floor of its own round; with several rounds, the
/// median and range of each ratio over them.
fn ratios(out: &mut String, runs: &[Measured], rounds: bool) {
    let floor_of = |round: u16| {
        runs.iter()
            .find(|f| f.role == Role::Floor && f.round == round)
    };
    let compared: Vec<(&Measured, &Measured, f64)> = runs
        .iter()
        .filter(|m| m.role != Role::Floor && m.role != Role::Batch)
        .filter_map(|m| {
            let floor = floor_of(m.round)?;
            let ratio = m.server_cpu_us_per_request() / floor.server_cpu_us_per_request();
            Some((m, floor, ratio))
        })
        .collect();
    if compared.is_empty() {
        return;
    }
    let verdict = |m: &Measured, ratio: f64| {
        if m.role != Role::Target {
            return String::new();
        }
        let met = if ratio <= TARGET_RATIO {
            "met"
        } else {
            "not met"
        };
        format!(" (target ≤ {TARGET_RATIO}x: {met})")
    };
    out.push('\n');
    for &(m, floor, ratio) in &compared {
        let _ = writeln!(
            out,
            "- CPU per request, {} ÷ {}: **{ratio:.2}x**{}",
            m.name(rounds),
            floor.name(rounds),
            if rounds {
                String::new()
            } else {
                verdict(m, ratio)
            },
        );
    }
    if !rounds {
        return;
    }
    // Each label's ratios over the rounds, in the order the labels first ran.
    let mut series: Vec<(&Measured, &Measured, Vec<f64>)> = Vec::new();
    for &(m, floor, ratio) in &compared {
        match series
            .iter_mut()
            .find(|(first, _, _)| first.label == m.label)
        {
            Some((_, _, ratios)) => ratios.push(ratio),
            None => series.push((m, floor, vec![ratio])),
        }
    }
    out.push('\n');
    for (m, floor, mut values) in series {
        let Some(median) = median(&mut values) else {
            continue;
        };
        let _ = writeln!(
            out,
            "- Over {} rounds, CPU per request, {} ÷ {}: median **{median:.2}x** ({:.2} to \
             {:.2}x){}",
            values.len(),
            m.label,
            floor.label,
            values[0],
            values[values.len() - 1],
            verdict(m, median),
        );
    }
}

/// Each batch run beside the single gets measured just before it on the same nodes: keys/s,
/// the nodes' CPU per key and peer fetches per key; with several rounds, the median and range
/// of the CPU ratio.
fn batches(out: &mut String, runs: &[Measured], rounds: bool) {
    let pairs: Vec<(&Measured, &Measured)> = runs
        .iter()
        .filter(|m| m.role == Role::Batch)
        .filter_map(|batch| {
            let of = batch.batch_of.as_deref()?;
            let single = runs
                .iter()
                .find(|s| s.label == of && s.round == batch.round)?;
            Some((batch, single))
        })
        .collect();
    if pairs.is_empty() {
        return;
    }
    out.push_str(
        "
Batch gets through the client route (`POST /api/{group}`, a JSON body of keys) on the \
         warm run's nodes, measured right after its single gets (`GET /api/{group}/{key}`) on \
         the same Zipf key distribution; per key answered, the nodes' CPU and their peer fetches \
         (keys fetched from the owner):\n\n\
         | run | keys/s, single / batch | server CPU µs/key, single | batch | batch ÷ single | \
         peer fetches per key, single / batch | p99 per request, single / batch | key errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let fetches = |m: &Measured| {
        #[allow(clippy::cast_precision_loss)]
        m.cache.map_or(f64::NAN, |c| m.per_key(c.peer_loads as f64))
    };
    let mut series: Vec<(&Measured, &Measured, Vec<f64>)> = Vec::new();
    for &(batch, single) in &pairs {
        let ratio = batch.server_cpu_us_per_key() / single.server_cpu_us_per_key();
        let _ = writeln!(
            out,
            "| {} | {:.0} / {:.0} | {:.2} | {:.2} | {ratio:.3}x | {:.3} / {:.3} | {} / {} | {} |",
            batch.name(rounds),
            single.report.keys_per_s,
            batch.report.keys_per_s,
            single.server_cpu_us_per_key(),
            batch.server_cpu_us_per_key(),
            fetches(single),
            fetches(batch),
            latency(single.report.p99_us),
            latency(batch.report.p99_us),
            batch.report.key_errors,
        );
        match series
            .iter_mut()
            .find(|(first, _, _)| first.label == batch.label)
        {
            Some((_, _, ratios)) => ratios.push(ratio),
            None => series.push((batch, single, vec![ratio])),
        }
    }
    out.push('\n');
    for (batch, single, mut values) in series {
        let Some(median) = median(&mut values) else {
            continue;
        };
        let met = if median <= BATCH_TARGET_RATIO {
            "met"
        } else {
            "not met"
        };
        let spread = if values.len() > 1 {
            format!(
                "median **{median:.3}x** over {} rounds ({:.3} to {:.3}x)",
                values.len(),
                values[0],
                values[values.len() - 1]
            )
        } else {
            format!("**{median:.3}x**")
        };
        let _ = writeln!(
            out,
            "- CPU per key, {} ÷ {}: {spread} (target ≤ {BATCH_TARGET_RATIO}x: {met})",
            batch.label, single.label,
        );
    }
}

/// Each gRPC run beside the HTTP run of the same kind and round: CPU per request,
/// requests/s and p99; with several rounds, the medians of the ratios.
fn transports(out: &mut String, runs: &[Measured], rounds: bool) {
    let pairs: Vec<(&Measured, &Measured)> = runs
        .iter()
        .filter(|m| m.transport == Some("grpc"))
        .filter_map(|grpc| {
            let http = runs.iter().find(|h| {
                h.transport == Some("http") && h.pair == grpc.pair && h.round == grpc.round
            })?;
            Some((grpc, http))
        })
        .collect();
    if pairs.is_empty() {
        return;
    }
    out.push_str(
        "\ngRPC between the nodes beside HTTP, the same run one right after the other:\n\n\
         | run | CPU per request, grpc ÷ http | requests/s, grpc ÷ http | p99 http | p99 grpc |\n\
         |---|---:|---:|---:|---:|\n",
    );
    let mut series: Vec<(&Measured, Vec<f64>, Vec<f64>)> = Vec::new();
    for &(grpc, http) in &pairs {
        let cpu = grpc.server_cpu_us_per_request() / http.server_cpu_us_per_request();
        let rate = grpc.report.requests_per_s / http.report.requests_per_s;
        let name = if rounds {
            format!("{} (round {})", grpc.pair, grpc.round)
        } else {
            grpc.pair.clone()
        };
        let _ = writeln!(
            out,
            "| {name} | {cpu:.2}x | {rate:.2}x | {} | {} |",
            latency(http.report.p99_us),
            latency(grpc.report.p99_us),
        );
        match series
            .iter_mut()
            .find(|(first, _, _)| first.pair == grpc.pair)
        {
            Some((_, cpus, rates)) => {
                cpus.push(cpu);
                rates.push(rate);
            }
            None => series.push((grpc, vec![cpu], vec![rate])),
        }
    }
    out.push('\n');
    for (m, mut cpus, mut rates) in series {
        let (Some(cpu), Some(rate)) = (median(&mut cpus), median(&mut rates)) else {
            continue;
        };
        let verdict = if m.role == Role::Target {
            let met = if cpu <= GRPC_TARGET_RATIO {
                "met"
            } else {
                "not met"
            };
            format!(" (target ≤ {GRPC_TARGET_RATIO}x: {met})")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "- {}, grpc ÷ http over {} round(s): CPU per request median **{cpu:.2}x** ({:.2} to \
             {:.2}x){verdict}; requests/s median {rate:.2}x",
            m.pair,
            cpus.len(),
            cpus[0],
            cpus[cpus.len() - 1],
        );
    }
}

/// The peak connections each node held to its peers.
fn connections(out: &mut String, runs: &[Measured], rounds: bool) {
    if runs.iter().all(|m| m.peer_connections.is_empty()) {
        return;
    }
    out.push_str(
        "\nPeer connections: the most established TCP connections each node held at once to \
         the other nodes' ports during the run (its sockets in `/proc/<pid>/fd` matched with \
         `/proc/<pid>/net/tcp`, counted every 200 ms):\n\n\
         | run | per node |\n\
         |---|---|\n",
    );
    for m in runs.iter().filter(|m| !m.peer_connections.is_empty()) {
        let per_node: Vec<String> = m.peer_connections.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "| {} | {} |", m.name(rounds), per_node.join(" / "));
    }
}

#[allow(clippy::cast_precision_loss)]
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

pub(crate) fn latency(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// A budget as given, in MiB when it is a plain byte count.
fn budget(size: &str) -> String {
    size.parse().map_or_else(|_| size.to_owned(), mib)
}

/// The whole report: settings, the main table, the ratio, cache behaviour, machine load.
pub(crate) fn markdown(setup: &Setup, runs: &[Measured]) -> String {
    let rounds = runs.iter().any(|m| m.round > 1);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nLoad: `loadgen` in its own process, {} keep-alive connections (one request in flight \
         on each, spread over the servers), {} threads, {:.1} s measured after {:.1} s unmeasured \
         warm-up; Zipf s={} over {} keys, seed {}; the three-node warm run: {:.1} s more \
         warm-up, each node's cache budget {}; all-miss: a new key per request, origin delay \
         {} µs. Each server process runs {}. CPU is `utime + stime` from `/proc/<pid>/stat` \
         (CLK_TCK {}), summed over the server processes of the run.\n",
        setup.connections,
        setup.threads,
        setup.duration.as_secs_f64(),
        setup.warmup.as_secs_f64(),
        setup.zipf,
        setup.keys,
        setup.seed,
        setup.hot_warmup.as_secs_f64(),
        budget(&setup.warm_cache),
        setup.miss_delay.as_micros(),
        match setup.server_threads {
            0 => "one worker thread per CPU".to_owned(),
            1 => "1 worker thread".to_owned(),
            n => format!("{n} worker threads"),
        },
        setup.ticks_per_s,
    );
    out.push_str(
        "| run | servers | requests/s | p50 | p99 | server CPU µs/request | loadgen CPU µs/request | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for m in runs {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {:.1} | {:.1} | {} |",
            m.name(rounds),
            m.servers,
            m.report.requests_per_s,
            latency(m.report.p50_us),
            latency(m.report.p99_us),
            m.server_cpu_us_per_request(),
            m.loadgen_cpu_us_per_request(),
            m.report.errors() + m.report.connect_failures,
        );
    }

    ratios(&mut out, runs, rounds);
    batches(&mut out, runs, rounds);
    transports(&mut out, runs, rounds);
    crate::tls::compare(&mut out, runs, rounds);
    failures(&mut out, runs, rounds);
    connections(&mut out, runs, rounds);

    if runs.iter().any(|m| m.cache.is_some()) {
        out.push_str(
            "\nWhat the nodes did, per client request (the `scores` group's `/stats`, summed over \
             the three nodes, over the measured window):\n\n\
             | run | peer fetches | fewest possible | origin loads | main-cache hits (own requests and peers') | hot-cache hits |\n\
             |---|---:|---:|---:|---:|---:|\n",
        );
        for m in runs {
            if let Some(c) = &m.cache {
                #[allow(clippy::cast_precision_loss)]
                let per = |v: u64| m.per_request(v as f64);
                let least = m
                    .least_peer_fetches
                    .map_or_else(|| "-".to_owned(), |f| format!("{f:.3}"));
                let _ = writeln!(
                    out,
                    "| {} | {:.3} | {least} | {:.3} | {:.3} | {:.3} |",
                    m.name(rounds),
                    per(c.peer_loads),
                    per(c.local_loads),
                    per(c.main_hits),
                    per(c.hot_hits),
                );
            }
        }
    }

    if runs.iter().any(|m| m.cache.is_some()) {
        out.push_str(
            "\nMemory at the end of each run, summed over the servers: peak resident set \
             (`VmHWM` in `/proc/<pid>/status`) and the bytes the caches count (keys and values, \
             main + hot):\n\n\
             | run | peak resident | cached |\n\
             |---|---:|---:|\n",
        );
        for m in runs {
            let cached = m
                .cache
                .map_or_else(|| "-".to_owned(), |c| mib(c.cached_bytes));
            let _ = writeln!(
                out,
                "| {} | {} | {cached} |",
                m.name(rounds),
                mib(m.peak_resident_bytes)
            );
        }
    }

    let _ = writeln!(
        out,
        "\nMachine: {} cores. Busy CPU during each run (all cores summed) and where it went:\n\n\
         | run | load average before (1/5/15 min) | machine busy | servers | origin | loadgen | everything else |\n\
         |---|---|---:|---:|---:|---:|---:|",
        setup.cores
    );
    for m in runs {
        let busy_pct = if m.machine_total_s > 0.0 {
            100.0 * m.machine_busy_s / m.machine_total_s
        } else {
            f64::NAN
        };
        let _ = writeln!(
            out,
            "| {} | {:.2} / {:.2} / {:.2} | {:.1} s ({busy_pct:.0}%) | {:.1} s | {:.1} s | {:.1} s | {:.1} s |",
            m.name(rounds),
            m.load_average[0],
            m.load_average[1],
            m.load_average[2],
            m.machine_busy_s,
            m.server_cpu_s,
            m.uncounted_cpu_s,
            m.report.loadgen_cpu_s,
            m.other_cpu_s(),
        );
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn setup() -> Setup {
        Setup {
            connections: 64,
            threads: 2,
            server_threads: 1,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            hot_warmup: Duration::from_secs(60),
            warm_cache: "3300000".to_owned(),
            keys: 100_000,
            zipf: 0.99,
            seed: 42,
            miss_delay: Duration::from_millis(1),
            cores: 2,
            ticks_per_s: 100,
        }
    }

    /// A run of `round` that answered a million requests with `cpu_s` of server CPU, so its
    /// CPU per request is `cpu_s` µs.
    pub(crate) fn run(label: &str, role: Role, round: u16, cpu_s: f64, cache: bool) -> Measured {
        Measured {
            label: label.to_owned(),
            pair: label.to_owned(),
            transport: None,
            base: label.to_owned(),
            security: None,
            peer_connections: Vec::new(),
            round,
            role,
            batch_of: None,
            servers: if cache { 3 } else { 1 },
            report: LoadReport {
                ok: 1_000_000,
                keys: 1_000_000,
                ..LoadReport::default()
            },
            server_cpu_s: cpu_s,
            uncounted_cpu_s: 0.0,
            machine_busy_s: 0.0,
            machine_total_s: 0.0,
            load_average: [0.0; 3],
            peak_resident_bytes: 3 << 20,
            cache: cache.then(|| CacheFigures {
                cached_bytes: 1 << 20,
                ..CacheFigures::default()
            }),
            least_peer_fetches: cache.then_some(0.075),
        }
    }

    #[test]
    fn each_round_is_compared_with_its_own_floor_and_the_median_is_reported() {
        let runs = [
            run("bare", Role::Floor, 1, 10.0, false),
            run("warm", Role::Target, 1, 25.0, true),
            run("bare", Role::Floor, 2, 8.0, false),
            run("warm", Role::Target, 2, 16.0, true),
            run("bare", Role::Floor, 3, 10.0, false),
            run("warm", Role::Target, 3, 19.0, true),
        ];
        let text = markdown(&setup(), &runs);
        assert!(
            text.contains("warm (round 2) ÷ bare (round 2): **2.00x**"),
            "{text}"
        );
        assert!(
            text.contains("warm (round 3) ÷ bare (round 3): **1.90x**"),
            "{text}"
        );
        assert!(
            text.contains(
                "Over 3 rounds, CPU per request, warm ÷ bare: median **2.00x** (1.90 to 2.50x) \
                 (target ≤ 2x: met)"
            ),
            "{text}"
        );
        assert!(
            text.contains("| warm (round 1) | 3.0 MiB | 1.0 MiB |"),
            "{text}"
        );
        assert!(text.contains("| bare (round 1) | 3.0 MiB | - |"), "{text}");
        // Beside what the nodes fetched, the fewest fetches any hot admission could reach.
        assert!(
            text.contains("| warm (round 1) | 0.000 | 0.075 | 0.000 |"),
            "{text}"
        );
    }

    #[test]
    fn each_grpc_run_is_compared_with_the_http_run_of_its_round() {
        let mut runs = Vec::new();
        for (round, grpc_cpu) in [(1, 22.0), (2, 30.0), (3, 24.0)] {
            runs.push(run("bare", Role::Floor, round, 10.0, false));
            for (transport, cpu) in [("http", 20.0), ("grpc", grpc_cpu)] {
                let mut m = run(
                    &format!("warm, {transport} peers"),
                    Role::Target,
                    round,
                    cpu,
                    true,
                );
                m.compared_as("warm", transport);
                m.report.requests_per_s = 1000.0;
                m.peer_connections = if transport == "http" {
                    vec![60, 64, 58]
                } else {
                    vec![2, 2, 2]
                };
                runs.push(m);
            }
        }
        let text = markdown(&setup(), &runs);
        assert!(
            text.contains("| warm (round 2) | 1.50x | 1.00x |"),
            "{text}"
        );
        assert!(
            text.contains(
                "- warm, grpc ÷ http over 3 round(s): CPU per request median **1.20x** (1.10 to \
                 1.50x) (target ≤ 1.3x: met)"
            ),
            "{text}"
        );
        assert!(
            text.contains("| warm, http peers (round 1) | 60 / 64 / 58 |"),
            "{text}"
        );
        assert!(
            text.contains("| warm, grpc peers (round 3) | 2 / 2 / 2 |"),
            "{text}"
        );
    }

    /// Rounds of bare, warm and batch runs; each batch run answered its million keys in
    /// 10,000 requests, and its CPU per key is the value given.
    fn batch_rounds(batch_cpu: &[f64]) -> Vec<Measured> {
        let mut runs = Vec::new();
        for (round, &cpu) in (1..).zip(batch_cpu) {
            runs.push(run("bare", Role::Floor, round, 10.0, false));
            let mut single = run("warm", Role::Target, round, 20.0, true);
            single.report.keys_per_s = 5_000.0;
            single.cache = Some(CacheFigures {
                peer_loads: 100_000,
                ..CacheFigures::default()
            });
            runs.push(single);
            let mut batch = run("warm, batches of 100 keys", Role::Batch, round, cpu, true);
            batch.report.ok = 10_000;
            batch.report.keys_per_s = 40_000.0;
            batch.report.key_errors = 3;
            batch.batch_of = Some("warm".to_owned());
            batch.cache = Some(CacheFigures {
                peer_loads: 50_000,
                ..CacheFigures::default()
            });
            runs.push(batch);
        }
        runs
    }

    #[test]
    fn each_batch_run_is_compared_per_key_with_the_single_gets_before_it() {
        let text = markdown(&setup(), &batch_rounds(&[3.0, 5.0, 2.0]));
        assert!(
            text.contains(
                "| warm, batches of 100 keys (round 2) | 5000 / 40000 | 20.00 | 5.00 | 0.250x | \
                 0.100 / 0.050 | 0 µs / 0 µs | 3 |"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "- CPU per key, warm, batches of 100 keys ÷ warm: median **0.150x** over 3 rounds \
                 (0.100 to 0.250x) (target ≤ 0.2x: met)"
            ),
            "{text}"
        );
        // Per request, a batch is not comparable with the floor's single gets.
        assert!(!text.contains("batches of 100 keys (round 1) ÷"), "{text}");
        assert!(!text.contains("batches of 100 keys ÷ bare"), "{text}");
        // The main table still has the batch run's row, per request of 100 keys.
        assert!(
            text.contains("| warm, batches of 100 keys (round 3) | 3 | 0 | 0 µs | 0 µs | 200.0 |"),
            "{text}"
        );
    }

    #[test]
    fn one_batch_round_gives_its_ratio_and_verdict() {
        let text = markdown(&setup(), &batch_rounds(&[6.0]));
        assert!(
            text.contains(
                "- CPU per key, warm, batches of 100 keys ÷ warm: **0.300x** (target ≤ 0.2x: \
                 not met)"
            ),
            "{text}"
        );
        assert!(!text.contains("(round"), "{text}");
    }

    #[test]
    fn a_batch_run_without_its_single_gets_is_left_out_of_the_comparison() {
        let mut runs = batch_rounds(&[3.0]);
        runs.retain(|m| m.role != Role::Target);
        let text = markdown(&setup(), &runs);
        assert!(!text.contains("CPU per key"), "{text}");
    }

    #[test]
    fn one_round_prints_its_ratio_and_verdict_without_a_median() {
        let runs = [
            run("bare", Role::Floor, 1, 10.0, false),
            run("warm", Role::Target, 1, 21.0, true),
        ];
        let text = markdown(&setup(), &runs);
        assert!(
            text.contains("warm ÷ bare: **2.10x** (target ≤ 2x: not met)"),
            "{text}"
        );
        assert!(!text.contains("Over "), "{text}");
        assert!(!text.contains("(round"), "{text}");
    }

    #[test]
    fn the_settings_line_gives_the_warm_runs_budget_and_extra_warm_up() {
        let mut setup = setup();
        let text = markdown(&setup, &[]);
        assert!(
            text.contains(
                "the three-node warm run: 60.0 s more warm-up, each node's cache budget 3.1 MiB;"
            ),
            "{text}"
        );
        setup.warm_cache = "64MiB".to_owned();
        assert!(
            markdown(&setup, &[]).contains("cache budget 64MiB;"),
            "a budget given with a unit is printed as given"
        );
    }
}
