//! CPU time from `/proc`: per process (`/proc/<pid>/stat`) and for the whole machine
//! (`/proc/stat`), in clock ticks; a process's resident and peak resident memory
//! (`/proc/<pid>/status`) and its open descriptors (`/proc/<pid>/fd`).

use std::io;
use std::path::Path;
use std::process::Command;

/// Clock ticks per second (`getconf CLK_TCK`), 100 when `getconf` is not available.
///
/// Linux reports `utime` and `stime` in these ticks; 100 is the value on every common
/// architecture, so it is the honest fallback.
#[must_use]
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// `utime + stime` of process `pid` (all its threads), in clock ticks.
///
/// # Errors
///
/// When the process is gone or the file does not parse.
pub fn process_ticks(pid: u32) -> io::Result<u64> {
    read_proc(pid, "stat", parse_process_ticks)
}

/// Parses `/proc/<pid>/<file>` with `parse`; a file that does not parse is `InvalidData`.
fn read_proc(pid: u32, file: &str, parse: impl FnOnce(&str) -> Option<u64>) -> io::Result<u64> {
    let text = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join(file))?;
    parse(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/{file} does not parse"),
        )
    })
}

/// `utime + stime` from the text of a `/proc/<pid>/stat` file.
///
/// The command name (field 2) sits in parentheses and may itself hold spaces and `)`, so the
/// fields are counted from the LAST `)`: after it come `state` (field 3) ... `utime` (14) and
/// `stime` (15).
#[must_use]
pub fn parse_process_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The peak resident set size of process `pid` so far (`VmHWM` in `/proc/<pid>/status`), in
/// bytes.
///
/// # Errors
///
/// When the process is gone or the file has no `VmHWM` line.
pub fn peak_resident_bytes(pid: u32) -> io::Result<u64> {
    read_proc(pid, "status", parse_peak_resident)
}

/// The `VmHWM` line of a `/proc/<pid>/status` text (`VmHWM:\t  50096 kB`), in bytes.
#[must_use]
pub fn parse_peak_resident(status: &str) -> Option<u64> {
    parse_status_kib(status, "VmHWM:")
}

/// The resident set size of process `pid` now (`VmRSS` in `/proc/<pid>/status`), in bytes.
///
/// # Errors
///
/// When the process is gone or the file has no `VmRSS` line.
pub fn resident_bytes(pid: u32) -> io::Result<u64> {
    read_proc(pid, "status", |text| parse_status_kib(text, "VmRSS:"))
}

/// A `kB` line of a `/proc/<pid>/status` text (`VmRSS:\t  50096 kB`), in bytes.
#[must_use]
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix(field))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// The file descriptors process `pid` holds open: the entries of `/proc/<pid>/fd`.
///
/// # Errors
///
/// When the process is gone or its descriptors cannot be listed (another user's process).
pub fn open_descriptors(pid: u32) -> io::Result<u64> {
    let dir = Path::new("/proc").join(pid.to_string()).join("fd");
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        entry?;
        n += 1;
    }
    Ok(n)
}

/// The machine's CPU counters from the first line of `/proc/stat`, in clock ticks summed
/// over every core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachineTicks {
    /// Ticks spent running anything (user, nice, system, irq, softirq, steal).
    pub busy: u64,
    /// Every tick, busy or idle (idle and iowait added).
    pub total: u64,
}

impl MachineTicks {
    /// Reads `/proc/stat` now.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or does not parse.
    pub fn now() -> io::Result<Self> {
        let text = std::fs::read_to_string("/proc/stat")?;
        Self::parse(&text)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "/proc/stat does not parse"))
    }

    /// Parses the aggregate `cpu` line.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let line = text.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        // user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is
        // already inside user, so it is not added again.
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        if v.len() < 4 {
            return None;
        }
        let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
        Some(MachineTicks {
            busy,
            total: busy + at(3) + at(4),
        })
    }

    /// Counters elapsed since `earlier`.
    #[must_use]
    pub fn since(self, earlier: Self) -> Self {
        MachineTicks {
            busy: self.busy.saturating_sub(earlier.busy),
            total: self.total.saturating_sub(earlier.total),
        }
    }
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg`.
///
/// # Errors
///
/// When the file cannot be read or does not parse.
pub fn load_average() -> io::Result<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg")?;
    let mut it = text.split_whitespace().map(str::parse::<f64>);
    let mut next = || {
        it.next().and_then(Result::ok).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "/proc/loadavg does not parse")
        })
    };
    Ok([next()?, next()?, next()?])
}
