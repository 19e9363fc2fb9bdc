//! Warnings about a peer, at most one per peer per interval, with a count of those held back.
//!
//! A peer that is down fails every fetch sent to it until its circuit opens, and a removal
//! fans out to it each time: one WARN line per failure would make a flood of identical lines,
//! each with its key. The first failure of a peer is logged at once, then at most one line per
//! interval says how many more there were; the rest go to DEBUG.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How often, at most, the same kind of warning is logged about one peer.
pub(crate) const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Peers remembered at once. Members come from the operator, so this is never reached in
/// practice; if it were, the memory is cleared rather than grown (a burst of lines, once).
const MAX_PEERS: usize = 4096;

/// When each peer was last warned about, and how many warnings were held back since.
#[derive(Default)]
pub(crate) struct PeerWarnings {
    seen: Mutex<HashMap<String, Seen>>,
}

struct Seen {
    last: Instant,
    held_back: u64,
}

impl PeerWarnings {
    /// `Some(n)` when a warning about `peer` should be logged now, `n` being how many were
    /// held back since the last one; `None` to hold this one back.
    pub(crate) fn admit(&self, peer: &str) -> Option<u64> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = seen.get_mut(peer) {
            if now.duration_since(entry.last) < WARN_INTERVAL {
                entry.held_back += 1;
                return None;
            }
            let held_back = std::mem::take(&mut entry.held_back);
            entry.last = now;
            return Some(held_back);
        }
        if seen.len() >= MAX_PEERS {
            seen.clear();
        }
        seen.insert(
            peer.to_owned(),
            Seen {
                last: now,
                held_back: 0,
            },
        );
        Some(0)
    }
}
