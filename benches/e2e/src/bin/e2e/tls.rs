//! The runs over TLS: `--security plain,tls` does every geecache run once per setting, one
//! right after the other, the way `--transport` does; the `handshake` run measures what a new
//! connection costs a node; and the report puts each TLS run beside the plain run of its round.
//!
//! Bare axum stays plain: it is the floor of plain HTTP, and TLS is reported against plain
//! geecache, which is the cost a user weighs when turning it on.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use anyhow::Context as _;
use clap::ValueEnum;
use geecache_bench_e2e::report::median;
use geecache_bench_e2e::tls::{Pki, Resumption, client_config};
use rustls::ClientConfig;

use crate::Bench;
use crate::process::Server;
use crate::table::{Measured, Role};

/// The target of the warm run over TLS: CPU per request at most this many times plain HTTP's.
const TLS_TARGET_RATIO: f64 = 1.3;

/// Keys the handshake run asks for: few, loaded before it is measured, so that every request
/// is a hit and what varies is the connection.
const HANDSHAKE_KEYS: u64 = 1_000;

/// The flags of the runs over TLS.
#[derive(Debug, clap::Args)]
pub(crate) struct TlsArgs {
    /// Plain HTTP or TLS on every geecache port (client and peer traffic alike),
    /// comma-separated. With both, every geecache run is done once per setting, one right
    /// after the other in each round, and the report compares them. Over TLS the nodes get a
    /// CA and a certificate made at start, check their peers' against it, and the load
    /// generator keeps its connections alive so that handshakes amortise.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Security::Plain])]
    pub(crate) security: Vec<Security>,

    /// Connections being opened at once in the handshake run (each carries one request and is
    /// closed).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) handshake_connections: u16,

    /// The most connections one handshake measurement opens, whatever --duration says: on
    /// loopback a fast server could otherwise run through the ephemeral ports.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) handshake_max: u64,
}

/// What every geecache port speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Security {
    /// Plain HTTP.
    Plain,
    /// TLS (rustls), peers over `https://`, no client certificates asked.
    Tls,
}

impl Security {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Security::Plain => "plain",
            Security::Tls => "tls",
        }
    }

    /// The scheme of the nodes' URLs.
    pub(crate) fn scheme(self) -> &'static str {
        match self {
            Security::Plain => "http",
            Security::Tls => "https",
        }
    }
}

/// The files of the runs over TLS and the client that trusts them, made once per `e2e`.
pub(crate) struct Material {
    pki: Pki,
    client: Arc<ClientConfig>,
}

impl Material {
    /// A CA and a node certificate in `dir`, when `security` asks for TLS.
    pub(crate) fn for_runs(dir: &Path, security: &[Security]) -> anyhow::Result<Option<Material>> {
        if !security.contains(&Security::Tls) {
            return Ok(None);
        }
        let pki = Pki::generate(dir)
            .with_context(|| format!("cannot make the TLS certificates in {}", dir.display()))?;
        let client = client_config(&pki.ca, Resumption::Off)
            .context("cannot make the TLS client of the probes")?;
        Ok(Some(Material { pki, client }))
    }
}

impl Measured {
    /// Marks the run as `base` (its label without transport or security) over `security`, to
    /// be compared with the same run over the other setting.
    pub(crate) fn secured_as(&mut self, base: &str, security: Security) {
        base.clone_into(&mut self.base);
        self.security = Some(security.as_str());
    }
}

impl Bench {
    fn material(&self) -> anyhow::Result<&Material> {
        self.tls
            .as_ref()
            .context("a TLS run without certificates (--security does not list tls)")
    }

    /// What a run's label says of its security: nothing when every run is plain (the
    /// default), else which.
    pub(crate) fn secured(&self, security: Security) -> String {
        if self.args.tls.security == [Security::Plain] {
            String::new()
        } else {
            format!(", {}", security.as_str())
        }
    }

    /// Gives a `geecache serve` command the TLS flags when `security` asks for them.
    pub(crate) fn serve_over(
        &self,
        command: &mut Command,
        security: Security,
    ) -> anyhow::Result<()> {
        if security == Security::Tls {
            command.args(self.material()?.pki.serve_args());
        }
        Ok(())
    }

    /// Lets the orchestrator's probes reach `node` over TLS when it serves it.
    pub(crate) fn reach(&self, node: &mut Server, security: Security) -> anyhow::Result<()> {
        if security == Security::Tls {
            node.trust(Arc::clone(&self.material()?.client));
        }
        Ok(())
    }

    /// Gives a `loadgen` command the CA when any of `targets` is `https://`.
    pub(crate) fn pass_ca(&self, command: &mut Command, targets: &[String]) {
        if let Some(material) = &self.tls
            && targets.iter().any(|t| t.starts_with("https://"))
        {
            command.arg("--tls-ca").arg(&material.pki.ca);
        }
    }

    /// One node, a few keys loaded, then requests each on a new connection of its own: the
    /// connections a node accepts per second and its CPU per connection. Over TLS twice:
    /// full handshakes, then resumed sessions.
    pub(crate) fn handshake(&self, security: Security) -> anyhow::Result<Vec<Measured>> {
        eprintln!("e2e: handshake ({}): starting one node", security.as_str());
        let transport = crate::Transport::Http;
        let mut nodes = self.cluster(
            &self.geecache,
            1,
            "handshake",
            "scores=demo",
            transport,
            security,
        )?;
        let node = nodes.pop().context("one node")?;
        let targets = [node.url()];
        let keys = HANDSHAKE_KEYS.to_string();
        let mut fill = self.loadgen_on(&targets, "sequential", self.args.fill_timeout, 0, 1);
        fill.arg("--keys").arg(&keys);
        self.unmeasured("handshake: loading the keys", fill, self.args.fill_timeout)?;
        let kinds: &[(Resumption, &str)] = match security {
            Security::Plain => &[(Resumption::Off, "")],
            Security::Tls => &[
                (Resumption::Off, ", full handshakes"),
                (Resumption::On, ", resumed sessions"),
            ],
        };
        let base = "geecache, a new connection per request, 1 node";
        let mut measured = Vec::new();
        for &(resumption, kind) in kinds {
            let load = |run_for, seed| {
                let mut command = self.loadgen_on(
                    &targets,
                    "zipf",
                    run_for,
                    seed,
                    self.args.tls.handshake_connections,
                );
                command
                    .arg("--keys")
                    .arg(&keys)
                    .arg("--connection-per-request")
                    .arg("--max-requests")
                    .arg(self.args.tls.handshake_max.to_string());
                if resumption == Resumption::On {
                    command.arg("--tls-resume");
                }
                command
            };
            self.unmeasured(
                "handshake warm-up",
                load(self.warmup, self.args.seed.wrapping_add(1)),
                self.warmup,
            )?;
            let label = format!("{base}{}{kind}", self.secured(security));
            let mut m = self.measure(
                &label,
                Role::Other,
                &[&node],
                &[],
                &[],
                load(self.duration, self.args.seed),
            )?;
            m.secured_as(base, security);
            measured.push(m);
        }
        node.stop(std::time::Duration::from_secs(3));
        Ok(measured)
    }
}

/// Each TLS run beside the plain run of the same kind, transport and round: CPU per request,
/// requests/s and p99; with several rounds, the medians of the ratios.
pub(crate) fn compare(out: &mut String, runs: &[Measured], rounds: bool) {
    let pairs: Vec<(&Measured, &Measured)> = runs
        .iter()
        .filter(|m| m.security == Some("tls"))
        .filter_map(|tls| {
            let plain = runs.iter().find(|p| {
                p.security == Some("plain")
                    && p.base == tls.base
                    && p.transport == tls.transport
                    && p.round == tls.round
            })?;
            Some((tls, plain))
        })
        .collect();
    if pairs.is_empty() {
        return;
    }
    out.push_str(
        "\nTLS beside plain HTTP, the same run one right after the other (for the runs with a \
         new connection per request, a request is a connection):\n\n\
         | run | CPU per request, tls ÷ plain | requests/s, tls ÷ plain | p99 plain | p99 tls | \
         handshakes resumed |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    // Each TLS run's ratios over the rounds, in the order the runs first came.
    let mut series: Vec<(&Measured, Vec<f64>, Vec<f64>)> = Vec::new();
    for &(tls, plain) in &pairs {
        let cpu = tls.server_cpu_us_per_request() / plain.server_cpu_us_per_request();
        let rate = tls.report.requests_per_s / plain.report.requests_per_s;
        let name = if rounds {
            format!("{} (round {})", tls.label, tls.round)
        } else {
            tls.label.clone()
        };
        let _ = writeln!(
            out,
            "| {name} | {cpu:.2}x | {rate:.2}x | {} | {} | {} of {} |",
            crate::table::latency(plain.report.p99_us),
            crate::table::latency(tls.report.p99_us),
            tls.report.tls_resumed,
            tls.report.tls_handshakes,
        );
        match series
            .iter_mut()
            .find(|(first, _, _)| first.label == tls.label)
        {
            Some((_, cpus, rates)) => {
                cpus.push(cpu);
                rates.push(rate);
            }
            None => series.push((tls, vec![cpu], vec![rate])),
        }
    }
    out.push('\n');
    for (m, mut cpus, mut rates) in series {
        let (Some(cpu), Some(rate)) = (median(&mut cpus), median(&mut rates)) else {
            continue;
        };
        let verdict = if m.role == Role::Target {
            let met = if cpu <= TLS_TARGET_RATIO {
                "met"
            } else {
                "not met"
            };
            format!(" (target ≤ {TLS_TARGET_RATIO}x: {met})")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "- {} ÷ plain over {} round(s): CPU per request median **{cpu:.2}x** ({:.2} to \
             {:.2}x){verdict}; requests/s median {rate:.2}x",
            m.label,
            cpus.len(),
            cpus[0],
            cpus[cpus.len() - 1],
        );
    }
}

#[cfg(test)]
mod tests;
