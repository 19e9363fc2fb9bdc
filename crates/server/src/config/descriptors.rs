//! The open-file limit, and the connection limit a node derives from it.
//!
//! Every connection is a file descriptor, and so is every connection to a peer or an origin
//! and every file a `dir:` source reads. A node that lets clients take them all can no longer
//! reach its peers, and `accept` fails for everyone: so by default clients get three quarters
//! of the limit, and the rest stays for the node's own work.

/// The soft limit on open files, read from `/proc/self/limits` (Linux); `None` elsewhere, or
/// when it says `unlimited`.
pub(super) fn soft_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    soft_limit_in(&limits)
}

/// The soft limit in the text of a `/proc/PID/limits` file.
pub(super) fn soft_limit_in(limits: &str) -> Option<u64> {
    const NAME: &str = "Max open files";
    let line = limits.lines().find(|line| line.starts_with(NAME))?;
    line[NAME.len()..].split_whitespace().next()?.parse().ok()
}

/// Assumed when the limit cannot be read: the usual default soft limit.
const ASSUMED_LIMIT: u64 = 1024;

/// The fewest descriptors left for the node's own work, whatever the limit.
const MIN_HEADROOM: u64 = 64;

/// The connections a node allows under a soft limit of `limit` open files: the limit less a
/// quarter of it (at least 64) for peers, origins, files and the process itself; never fewer
/// than 16.
pub(super) fn default_max_connections(limit: Option<u64>) -> usize {
    let limit = limit.unwrap_or(ASSUMED_LIMIT);
    let headroom = (limit / 4).max(MIN_HEADROOM);
    usize::try_from(limit.saturating_sub(headroom).max(16)).unwrap_or(usize::MAX)
}
