//! The process's own figures from `/proc`, under the names every Prometheus client library
//! uses (`process_cpu_seconds_total`, `process_resident_memory_bytes`, ...), so the
//! dashboards and alerts written for those work unchanged.
//!
//! Read at scrape time, like the group counters: the kernel keeps these figures already. A
//! system without `/proc` (not Linux) reports none of them rather than zeros, which would
//! read as a real, idle process.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Clock ticks per second in `/proc/<pid>/stat`. The kernel reports times in `USER_HZ`, which
/// is 100 on every architecture Rust targets with Linux; asking `sysconf(_SC_CLK_TCK)` would
/// need `libc` and `unsafe` for a constant (Prometheus's Go `procfs` hard-codes it as well).
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of the process's figures.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Reading {
    /// User and system CPU time, in seconds.
    pub(crate) cpu_seconds: Option<f64>,
    /// Resident set size, in bytes.
    pub(crate) resident_bytes: Option<u64>,
    /// Open file descriptors.
    pub(crate) open_fds: Option<u64>,
    /// The soft limit on open descriptors.
    pub(crate) max_fds: Option<u64>,
    /// When the process started, in seconds since the Unix epoch.
    pub(crate) start_time_seconds: Option<f64>,
}

impl Reading {
    /// Reads `/proc/self`; a figure that cannot be read is `None`.
    pub(crate) fn now() -> Reading {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let stat = read("/proc/self/stat").and_then(|s| parse_stat(&s));
        let boot_time = read("/proc/stat").and_then(|s| parse_boot_time(&s));
        Reading {
            cpu_seconds: stat.map(|s| s.cpu_ticks as f64 / TICKS_PER_SECOND),
            resident_bytes: read("/proc/self/status").and_then(|s| parse_resident(&s)),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|dir| dir.count() as u64),
            max_fds: read("/proc/self/limits").and_then(|s| parse_max_fds(&s)),
            start_time_seconds: stat
                .zip(boot_time)
                .map(|(s, boot)| boot as f64 + s.start_ticks as f64 / TICKS_PER_SECOND),
        }
    }
}

/// What `/proc/<pid>/stat` says that is of use here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    /// utime + stime, in clock ticks.
    pub(crate) cpu_ticks: u64,
    /// When the process started, in clock ticks after boot.
    pub(crate) start_ticks: u64,
}

/// Parses `/proc/<pid>/stat`. The second field is the command name in parentheses, which
/// may itself hold spaces and parentheses, so fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<Stat> {
    let after_name = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name; utime is field 14, stime 15, starttime 22.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: field(14)?.checked_add(field(15)?)?,
        start_ticks: field(22)?,
    })
}

/// `VmRSS:  12345 kB` from `/proc/<pid>/status`, in bytes.
pub(crate) fn parse_resident(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut parts = line.split_whitespace();
    let kib: u64 = parts.next()?.parse().ok()?;
    (parts.next()? == "kB").then_some(kib.checked_mul(1024)?)
}

/// The soft limit of `Max open files` in `/proc/<pid>/limits` (`None` when unlimited).
pub(crate) fn parse_max_fds(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// `btime SECONDS` from `/proc/stat`: when the system booted.
pub(crate) fn parse_boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Encodes a [`Reading`] taken at each scrape.
#[derive(Debug)]
pub(crate) struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let reading = Reading::now();
        if let Some(seconds) = reading.cpu_seconds {
            let mut metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time the process has used, in seconds",
                None,
                MetricType::Counter,
            )?;
            metric.encode_counter::<NoLabelSet, _, u64>(&seconds, None)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory of the process, in bytes",
                reading.resident_bytes.map(|b| b as f64),
            ),
            (
                "process_open_fds",
                "File descriptors the process has open (sockets included)",
                reading.open_fds.map(|n| n as f64),
            ),
            (
                "process_max_fds",
                "The process's limit on open file descriptors (the soft limit)",
                reading.max_fds.map(|n| n as f64),
            ),
            (
                "process_start_time_seconds",
                "When the process started, in seconds since the Unix epoch",
                reading.start_time_seconds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                metric.encode_gauge(&value)?;
            }
        }
        Ok(())
    }
}
