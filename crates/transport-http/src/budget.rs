//! A node-wide budget of bytes of peer answers being received.
//!
//! Each answer is limited on its own (`PoolBuilder::max_response_bytes`), but a node fetching
//! from many peers at once, or from one that trickles its bodies, can hold many answers in
//! memory together: 50 fetches of 64 MiB bodies took a node to 476 MB. Every body's bytes are
//! counted against one budget while they are received, and a fetch that would go over it stops
//! at once: the group counts a peer error and loads the key itself, which costs a load, not the
//! node.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The budget every peer of a pool shares.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    /// A budget of `limit` bytes (`usize::MAX`: none).
    pub(crate) fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// The bytes counted now, over every answer being received.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The largest number of bytes it allows at once.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// An empty claim on the budget, for one answer.
    pub(crate) fn claim(self: &Arc<Self>) -> Claim {
        Claim {
            budget: Arc::clone(self),
            bytes: 0,
        }
    }

    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }
}

/// The bytes one answer holds of the budget, given back when it is dropped.
#[derive(Debug)]
pub(crate) struct Claim {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Claim {
    /// Makes the claim cover `total` bytes in all; `false` (and no change) when the budget
    /// cannot spare them.
    pub(crate) fn cover(&mut self, total: usize) -> bool {
        if total <= self.bytes {
            return true;
        }
        let more = total - self.bytes;
        if !self.budget.take(more) {
            return false;
        }
        self.bytes = total;
        true
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}
