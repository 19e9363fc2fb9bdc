//! How many TCP connections a process holds to given ports, from `/proc`: the peer
//! connections of a node (its sockets whose far end is another node's listening port).
//!
//! A process's sockets are the `socket:[INODE]` links in `/proc/<pid>/fd`; the kernel's
//! tables `/proc/<pid>/net/tcp` and `tcp6` give each socket's addresses, state and inode. No
//! `ss` or `lsof`: nothing to install, and the count is of exactly one process.

use std::collections::HashSet;
use std::io;
use std::path::Path;

/// `st` of an established connection in `/proc/net/tcp`.
const ESTABLISHED: &str = "01";

/// Established TCP connections of process `pid` whose remote port is one of `ports`.
///
/// # Errors
///
/// When the process is gone or its `/proc` entries cannot be read.
pub fn established_to(pid: u32, ports: &[u16]) -> io::Result<usize> {
    let proc = Path::new("/proc").join(pid.to_string());
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir(proc.join("fd"))? {
        // An fd closed between the listing and the read is simply not counted.
        let Ok(target) = std::fs::read_link(entry?.path()) else {
            continue;
        };
        if let Some(inode) = socket_inode(&target.to_string_lossy()) {
            inodes.insert(inode);
        }
    }
    let mut count = 0;
    for table in ["net/tcp", "net/tcp6"] {
        match std::fs::read_to_string(proc.join(table)) {
            Ok(text) => count += count_established(&text, &inodes, ports),
            // No IPv6 in this kernel: no tcp6 table.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(count)
}

/// The inode of an fd link's target `socket:[12345]`, `None` for anything else.
#[must_use]
pub fn socket_inode(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The rows of a `/proc/net/tcp` (or `tcp6`) table that are established, belong to one of
/// `inodes`, and whose remote port is in `ports`.
///
/// A row: `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid
/// timeout inode ...`, addresses as `HEXADDR:HEXPORT`.
#[must_use]
pub fn count_established(table: &str, inodes: &HashSet<u64>, ports: &[u16]) -> usize {
    table
        .lines()
        .skip(1)
        .filter(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let (Some(remote), Some(state), Some(inode)) =
                (fields.get(2), fields.get(3), fields.get(9))
            else {
                return false;
            };
            let port = (remote.rsplit_once(':')).and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            *state == ESTABLISHED
                && port.is_some_and(|p| ports.contains(&p))
                && inode.parse().is_ok_and(|i: u64| inodes.contains(&i))
        })
        .count()
}
