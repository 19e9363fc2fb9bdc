//! The ghost queue of S3-FIFO: the hashes of entries recently evicted from the small queue.
//!
//! A ghost remembers that a key was here, not its value, so a key that comes back soon after a
//! one-hit eviction goes straight to the main queue. Hashes are enough: two keys that share a
//! 64-bit hash only mean one of them skips the small queue, which costs some hit ratio in one
//! case out of billions and breaks nothing.
//!
//! Bounded by count: each push passes the bound (half the cache's entries, see
//! `Cache::ghost_bound`), and the oldest hashes are forgotten until the queue fits it. Memory
//! stays proportional to what the cache holds: 8 bytes of hash in a ring buffer and a 4-byte
//! sequence number in a table bucket (plus its control byte) per ghost.
//!
//! Order is a `VecDeque` of hashes; the record at position `p` has the sequence number
//! `head + p` (wrapping `u32`: fewer than 2³² records are ever held at once). Membership is a
//! table of the sequence numbers of live records, probed by the hash the record holds, so the
//! table stores 4 bytes a ghost rather than the hash again. A ghost hit takes the number out of
//! the table and leaves its record to age out of the deque (still counted until then, so the
//! bound always holds), which keeps both operations O(1) without a linked list. The
//! alternative, removing the record from the middle of the deque, would be O(n).

use std::collections::VecDeque;

use hashbrown::HashTable;

/// Recently evicted hashes, oldest first, at most as many as the last push allowed.
#[derive(Debug, Default)]
pub(crate) struct Ghost {
    /// Hashes, oldest first, live or stale.
    records: VecDeque<u64>,
    /// The sequence number of `records[0]`.
    head: u32,
    /// The sequence numbers of the live records, one per remembered hash.
    live: HashTable<u32>,
    /// The bound passed to the last push; `records` never holds more.
    #[cfg(test)]
    bound: usize,
}

impl Ghost {
    /// The hash of the record numbered `seq`.
    #[inline]
    fn hash_of(records: &VecDeque<u64>, head: u32, seq: u32) -> u64 {
        records
            .get(seq.wrapping_sub(head) as usize)
            .copied()
            .unwrap_or(0)
    }

    /// Remembers `hash`, forgetting the oldest hashes until at most `bound` are held. A bound
    /// of 0 remembers nothing.
    pub(crate) fn push(&mut self, hash: u64, bound: usize) {
        #[cfg(test)]
        {
            self.bound = bound;
        }
        if bound == 0 {
            self.trim(0);
            return;
        }
        // Make room first, so that the new record's number stays within the deque.
        self.trim(bound - 1);
        let seq = self.head.wrapping_add(self.records.len() as u32);
        self.records.push_back(hash);
        let (records, head) = (&self.records, self.head);
        match self.live.entry(
            hash,
            |&s| Self::hash_of(records, head, s) == hash,
            |&s| Self::hash_of(records, head, s),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut live) => *live.get_mut() = seq,
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(seq);
            }
        }
    }

    /// Forgets `hash` and says whether it was remembered.
    pub(crate) fn take(&mut self, hash: u64) -> bool {
        let (records, head) = (&self.records, self.head);
        match self
            .live
            .find_entry(hash, |&s| Self::hash_of(records, head, s) == hash)
        {
            Ok(live) => {
                live.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Forgets the oldest records until at most `bound` are left.
    fn trim(&mut self, bound: usize) {
        while self.records.len() > bound {
            let Some(oldest) = self.records.pop_front() else {
                break;
            };
            let seq = self.head;
            self.head = self.head.wrapping_add(1);
            // Only the newest record of a hash is live: an older one leaves the table alone.
            if let Ok(live) = self.live.find_entry(oldest, |&s| s == seq) {
                live.remove();
            }
        }
        if self.records.is_empty() {
            // Give the memory of a burst back; a steady ghost keeps its buffers.
            self.records.shrink_to(0);
            self.live.shrink_to(0, |_| 0);
        }
    }

    /// An empty ghost whose first record is numbered `head`; lets tests cross the wrap.
    #[cfg(test)]
    pub(crate) fn starting_at(head: u32) -> Self {
        Ghost {
            head,
            ..Ghost::default()
        }
    }

    pub(crate) fn clear(&mut self) {
        *self = Ghost::default();
    }

    /// The records held, live or stale.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// The remembered hashes, oldest first; lets tests compare with a model.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn hashes(&self) -> Vec<u64> {
        (0..self.records.len())
            .filter(|&p| {
                let seq = self.head.wrapping_add(p as u32);
                self.live.find(self.records[p], |&s| s == seq).is_some()
            })
            .map(|p| self.records[p])
            .collect()
    }

    /// Checks the ghost's invariants.
    #[cfg(test)]
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.records.len() > self.bound {
            return Err(format!(
                "ghost holds {} records over a bound of {}",
                self.records.len(),
                self.bound
            ));
        }
        let mut hashes = std::collections::HashSet::new();
        for &seq in &self.live {
            let p = seq.wrapping_sub(self.head) as usize;
            let Some(&hash) = self.records.get(p) else {
                return Err(format!("live ghost #{seq} has no record"));
            };
            if !hashes.insert(hash) {
                return Err(format!("ghost {hash:#x} is live twice"));
            }
        }
        Ok(())
    }
}
