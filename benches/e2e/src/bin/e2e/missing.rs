//! `e2e --missing PERCENT`: what keys the source does not have cost it, with negative caching
//! off and on.
//!
//! Groupcache caches values only, so every request for a key the source lacks is a request to
//! the source, however often the key is asked for: a few popular missing keys are enough to
//! hammer it. With `negative_ttl`, the key's owner keeps the "not found" for that long. Each
//! round runs the same Zipf reads over a key space of which `PERCENT` percent is missing at the
//! origin (`bare-axum --missing-percent`), on a fresh three-node cluster and origin, once with
//! negative caching off and once on, in alternating order; the origin counts every request it
//! serves, found or not.

use std::time::Duration;

use anyhow::Context as _;
use geecache_bench_e2e::probe;

use crate::process::{Server, run_bounded};
use crate::table::Role;
use crate::tls::Security;
use crate::{Bench, Transport, stop_all};

/// One half of a round.
struct Half {
    negative_ttl: Option<Duration>,
    /// Client requests answered, found (2xx) or not (404), and others.
    found: u64,
    not_found_or_other: u64,
    /// Requests the origin served, found or not.
    source: u64,
    server_cpu_s: f64,
    load_average: f64,
}

impl Half {
    fn requests(&self) -> u64 {
        self.found + self.not_found_or_other
    }

    #[allow(clippy::cast_precision_loss)]
    fn source_per_request(&self) -> f64 {
        self.source as f64 / self.requests().max(1) as f64
    }

    #[allow(clippy::cast_precision_loss)]
    fn cpu_us_per_request(&self) -> f64 {
        self.server_cpu_s * 1e6 / self.requests().max(1) as f64
    }
}

/// Runs `--rounds` rounds and prints their table.
pub(crate) fn run(bench: &Bench, percent: u8) -> anyhow::Result<()> {
    let mut rounds = Vec::new();
    for round in 1..=bench.args.rounds {
        eprintln!("e2e: missing keys, round {round} of {}", bench.args.rounds);
        let on = Some(bench.args.negative_ttl);
        // Alternating which half goes first, so neither always runs on a machine the other
        // has just warmed or loaded.
        let order = if round % 2 == 1 {
            [None, on]
        } else {
            [on, None]
        };
        let mut halves = Vec::new();
        for negative_ttl in order {
            halves.push(bench.missing_half(percent, negative_ttl)?);
        }
        halves.sort_by_key(|h| h.negative_ttl.is_some());
        rounds.push(halves);
    }
    print!("{}", table(bench, percent, &rounds));
    Ok(())
}

impl Bench {
    fn missing_half(&self, percent: u8, negative_ttl: Option<Duration>) -> anyhow::Result<Half> {
        let origin = self.slow_origin(percent)?;
        let mut group = format!("scores=http:{}/objects/", origin.url());
        if let Some(ttl) = negative_ttl {
            group.push_str(&format!(",negative_ttl={}ms", ttl.as_millis()));
        }
        // Plain HTTP: what is measured here is the source's load, which TLS does not change.
        let (transport, security) = (Transport::Http, Security::Plain);
        let nodes = self.cluster(&self.geecache, 3, "missing", &group, transport, security)?;
        let targets: Vec<String> = nodes.iter().map(Server::url).collect();
        // Warm-up: the keys that exist are loaded, and, with negative caching, the missing
        // ones asked for are remembered. 404s are expected, so the report is not checked.
        let warm_up = self.loadgen(
            &targets,
            "zipf",
            self.warmup,
            self.args.seed.wrapping_add(1),
        );
        run_bounded(warm_up, self.warmup + Duration::from_secs(60))
            .context("missing keys: the warm-up")?;
        let reset = probe::request(origin.addr, "DELETE", "/loads", Duration::from_secs(5))?;
        anyhow::ensure!(reset.status == 200, "the origin refused to reset its count");

        let label = match negative_ttl {
            None => "missing keys, negative caching off".to_owned(),
            Some(ttl) => format!("missing keys, negative_ttl={}s", ttl.as_secs()),
        };
        let refs: Vec<&Server> = nodes.iter().collect();
        let measured = self.measure(
            &label,
            Role::Other,
            &refs,
            &[&origin],
            &refs,
            self.loadgen(&targets, "zipf", self.duration, self.args.seed),
        )?;
        let loads = probe::get(origin.addr, "/loads", Duration::from_secs(5))?;
        let loads: serde_json::Value =
            serde_json::from_slice(&loads.body).context("the origin's /loads is not JSON")?;
        let source = loads["requests"]
            .as_u64()
            .context("the origin's /loads has no request count")?;
        stop_all(nodes);
        origin.stop(Duration::from_secs(3));
        let report = &measured.report;
        eprintln!(
            "e2e: {label}: {} requests, {source} to the source",
            report.ok + report.bad_status
        );
        Ok(Half {
            negative_ttl,
            found: report.ok,
            not_found_or_other: report.bad_status + report.failed,
            source,
            server_cpu_s: measured.server_cpu_s,
            load_average: measured.load_average[0],
        })
    }
}

fn table(bench: &Bench, percent: u8, rounds: &[Vec<Half>]) -> String {
    let mut out = format!(
        "Missing keys: three `geecache serve` nodes, Zipf reads over {} keys of which {percent}% \
         are missing at the origin (answering after {} ms), {} load connections, {:.1} s measured \
         after {:.1} s of warm-up, negative caching off and on (`negative_ttl={}s`) in turn.\n\n",
        bench.args.keys,
        bench.args.miss_delay.as_secs_f64() * 1e3,
        bench.args.connections,
        bench.duration.as_secs_f64(),
        bench.warmup.as_secs_f64(),
        bench.args.negative_ttl.as_secs(),
    );
    out.push_str(
        "| round | negative caching | client requests (not 2xx) | source requests | per client \
         request | server CPU µs/request | load |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    let mut ratios = Vec::new();
    for (i, halves) in rounds.iter().enumerate() {
        for h in halves {
            out.push_str(&format!(
                "| {} | {} | {} ({}) | {} | {:.4} | {:.1} | {:.1} |\n",
                i + 1,
                h.negative_ttl
                    .map_or("off".to_owned(), |t| format!("{} s", t.as_secs())),
                h.requests(),
                h.not_found_or_other,
                h.source,
                h.source_per_request(),
                h.cpu_us_per_request(),
                h.load_average,
            ));
        }
        if let [off, on] = &halves[..] {
            ratios.push(on.source_per_request() / off.source_per_request().max(f64::MIN_POSITIVE));
        }
    }
    ratios.sort_by(f64::total_cmp);
    let mid = ratios.len() / 2;
    let median = match ratios.len() {
        0 => None,
        n if n % 2 == 1 => Some(ratios[mid]),
        _ => Some(f64::midpoint(ratios[mid - 1], ratios[mid])),
    };
    if let Some(median) = median {
        out.push_str(&format!(
            "\nSource requests per client request, on ÷ off: median {median:.3}x over {} round(s).\n",
            ratios.len()
        ));
    }
    out
}
