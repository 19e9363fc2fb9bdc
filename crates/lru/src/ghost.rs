//! The ghost queue of S3-FIFO: the hashes of entries recently evicted from the small queue.
//!
//! A ghost remembers that a key was here, not its value, so a key that comes back soon after a
//! one-hit eviction goes straight to the main queue. Hashes are enough: two keys that share a
//! 64-bit hash only mean one of them skips the small queue, which costs some hit ratio in one
//! case out of billions and breaks nothing.
//!
//! Bounded by weight rather than by count, like the cache: a ghost is charged the weight its
//! entry had (at least 1), and the queue holds at most `budget` of them, the main queue's share
//! of the byte budget, as in the paper (where the ghost holds as many entries as the main queue).
//! Memory stays proportional to what the cache holds: 24 bytes and a table bucket per ghost.
//!
//! Order is a `VecDeque` of records; membership is a table from hash to the sequence number of
//! the hash's newest record. A ghost hit takes the hash out of the table and leaves its record
//! to age out of the deque (still charged until then, so the budget is never exceeded), which
//! keeps both operations O(1) without a linked list. The alternative, removing the record from
//! the middle of the deque, would be O(n).

use std::collections::VecDeque;

use hashbrown::HashTable;

#[derive(Clone, Copy, Debug)]
struct Record {
    hash: u64,
    seq: u64,
    charge: usize,
}

/// Recently evicted hashes, oldest first, bounded by the total charge of their records.
#[derive(Debug, Default)]
pub(crate) struct Ghost {
    records: VecDeque<Record>,
    /// `(hash, seq)` of the live record for each remembered hash.
    live: HashTable<(u64, u64)>,
    /// The charges of every record in `records`, live or stale.
    charged: usize,
    next_seq: u64,
}

impl Ghost {
    /// Remembers `hash`, charged `weight` (at least 1), forgetting the oldest hashes until the
    /// records fit `budget`. A budget of 0 remembers nothing.
    pub(crate) fn push(&mut self, hash: u64, weight: usize, budget: usize) {
        if budget == 0 {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        match self.live.entry(hash, |&(h, _)| h == hash, |&(h, _)| h) {
            hashbrown::hash_table::Entry::Occupied(mut live) => live.get_mut().1 = seq,
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert((hash, seq));
            }
        }
        let charge = weight.max(1);
        self.records.push_back(Record { hash, seq, charge });
        self.charged = self.charged.saturating_add(charge);
        self.trim(budget);
    }

    /// Forgets `hash` and says whether it was remembered.
    pub(crate) fn take(&mut self, hash: u64) -> bool {
        match self.live.find_entry(hash, |&(h, _)| h == hash) {
            Ok(live) => {
                live.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Forgets the oldest records until what is left is charged at most `budget`.
    pub(crate) fn trim(&mut self, budget: usize) {
        while self.charged > budget {
            let Some(oldest) = self.records.pop_front() else {
                break;
            };
            self.charged -= oldest.charge;
            // Only the newest record of a hash is live: an older one leaves the table alone.
            if let Ok(live) = self
                .live
                .find_entry(oldest.hash, |&(h, s)| h == oldest.hash && s == oldest.seq)
            {
                live.remove();
            }
        }
        if self.records.is_empty() {
            // Give the memory of a burst back; a steady ghost keeps its buffers.
            self.records.shrink_to(0);
        }
    }

    /// The total charge of the records held, live or stale.
    #[cfg(test)]
    pub(crate) fn charged(&self) -> usize {
        self.charged
    }

    pub(crate) fn clear(&mut self) {
        *self = Ghost::default();
    }

    /// The remembered hashes, oldest first; lets tests compare with a model.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn hashes(&self) -> Vec<u64> {
        self.records
            .iter()
            .filter(|r| {
                self.live
                    .find(r.hash, |&(h, s)| h == r.hash && s == r.seq)
                    .is_some()
            })
            .map(|r| r.hash)
            .collect()
    }

    /// Checks the ghost's invariants against `budget`.
    #[cfg(test)]
    pub(crate) fn validate(&self, budget: usize) -> Result<(), String> {
        let charged: usize = self.records.iter().map(|r| r.charge).sum();
        if charged != self.charged {
            return Err(format!(
                "ghost records charge {charged}, the total says {}",
                self.charged
            ));
        }
        if self.charged > budget {
            return Err(format!(
                "ghost holds {} over a budget of {budget}",
                self.charged
            ));
        }
        for &(hash, seq) in &self.live {
            if !self.records.iter().any(|r| r.hash == hash && r.seq == seq) {
                return Err(format!("live ghost {hash:#x} has no record"));
            }
        }
        Ok(())
    }
}
