//! S3-FIFO's side of `Cache`: linking a newcomer into the small or main queue, and finding
//! the next victim (see [`Policy::S3Fifo`]). LRU never runs any of it.

use super::*;

impl<K: Hash + Eq, V, W: Weigher<K, V>> Cache<K, V, W> {
    /// Links a new entry that fits the budget into S3-FIFO's queues, after making room.
    pub(super) fn insert_s3(&mut self, hash: u64, mut entry: Entry<K, V>) -> Option<Index> {
        let weight = entry.weight();
        // A ghost is looked up before evicting, as the paper does: the evictions below may
        // push out the very ghost that makes this key's second use count.
        let seen_recently = self.ghost.take(hash);
        while self.max_bytes != 0 && self.bytes.saturating_add(weight) > self.max_bytes {
            if !self.evict_oldest() {
                break;
            }
        }
        let (anchor, tag) = if seen_recently {
            (MAIN, 0)
        } else {
            (SMALL, IN_SMALL)
        };
        entry.meta.set_tag(tag);
        let i = match self.slots.push_after(anchor, entry) {
            Ok(i) => i,
            Err(entry) => {
                self.reject(entry.key, entry.value);
                return None;
            }
        };
        let slots = &self.slots;
        self.table
            .insert_unique(hash, i, |&j| slots.get(j).map_or(0, |e| e.hash));
        self.bytes = self.bytes.saturating_add(weight);
        if !seen_recently {
            self.small_bytes = self.small_bytes.saturating_add(weight);
        }
        Some(i)
    }

    /// S3-FIFO's victim; see [`Policy::S3Fifo`]. Terminates: each turn either returns, moves a
    /// small-queue entry to the main queue (at most `len` times), or lowers a main-queue
    /// counter (at most 3 times per entry), so the work is paid for by the hits that raised the
    /// counters, O(1) amortised.
    pub(super) fn s3_victim(&mut self) -> Option<Index> {
        loop {
            let small_tail = self.slots.back();
            let main_tail = self.slots.main_tail();
            let from_main = match (main_tail, small_tail) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(_), Some(_)) => {
                    self.bytes.saturating_sub(self.small_bytes) > self.main_share()
                }
            };
            if from_main {
                let i = main_tail?;
                let tag = self.tag(i);
                if tag & FREQ == 0 {
                    return Some(i);
                }
                // Used since it last came round: another lap, one use fewer to its credit.
                self.set_tag(i, tag - 1);
                self.slots.move_after(MAIN, i);
            } else {
                let i = small_tail?;
                let (hash, weight) = self.slots.get(i).map(|e| (e.hash, e.weight()))?;
                if self.tag(i) & FREQ == 0 {
                    // Used once: out, but remembered, so that a second use soon goes to main.
                    self.ghost.push(hash, self.ghost_bound());
                    return Some(i);
                }
                // Used again while on probation: promoted, its counter starting over.
                self.small_bytes = self.small_bytes.saturating_sub(weight);
                self.set_tag(i, 0);
                self.slots.move_after(MAIN, i);
            }
        }
    }

    /// S3-FIFO: the main queue's share of the budget; the small queue gets the rest, 1%.
    ///
    /// The paper gives the small queue 10%. On our traces (`examples/hit_ratio.rs`) 1% scored
    /// higher on every row: 0.3 to 0.7 points on the Zipf rows, and 81.7% against 76.0% on a
    /// loop 10% over capacity, where a large probation queue keeps evicting loop keys before
    /// their second use. 0.5% and 2% scored within 0.1 point of 1% on the Zipf rows; 1% still
    /// gives a burst of requests for a new key a short probation in which to be hit.
    ///
    /// An unbounded cache (`max_bytes` 0) takes the share of what it holds instead: such a
    /// cache is kept to a budget from outside, by `SegmentedCache::evict_one` (as
    /// `geecache-group` does to share one budget between two caches), and what it holds is then
    /// its share of that budget. A share of 0 would empty the main queue first, which is LRU's
    /// weakness and worse.
    pub(super) fn main_share(&self) -> usize {
        let budget = if self.max_bytes == 0 {
            self.bytes
        } else {
            self.max_bytes
        };
        budget - budget / 100
    }

    /// S3-FIFO: how many hashes the ghost queue may hold, half the entries cached (counting
    /// the one being evicted).
    ///
    /// The paper's ghost holds as many entries as the main queue. Half scored 0.15 to 0.5
    /// points higher on the four plain Zipf rows, the same on the loop and 0.14 lower when the
    /// hot set shifts; a quarter lost 0.7 points there. A ghost costs about 13 bytes (hash,
    /// sequence number, control byte).
    pub(super) fn ghost_bound(&self) -> usize {
        self.slots.len() / 2
    }

    /// Whether slot `i` is in S3-FIFO's small queue. The policy is tested first so that LRU
    /// never touches the tag array.
    #[inline]
    pub(super) fn in_small(&self, i: Index) -> bool {
        self.policy == Policy::S3Fifo && self.tag(i) & IN_SMALL != 0
    }

    /// S3-FIFO: a use of slot `i`; the counter saturates at 3, and a saturated one is not
    /// written again (under a skewed load most hits are on such entries).
    #[inline]
    pub(super) fn bump(&mut self, i: Index) {
        if let Some(e) = self.slots.get_mut(i) {
            let tag = e.meta.tag();
            if tag & FREQ < FREQ {
                e.meta.set_tag(tag + 1);
            }
        }
    }
}
