//! `Cache::validate`: every invariant of the cache, checked after each step of the model
//! tests.

use super::*;

impl<K: Hash + Eq, V, W: Weigher<K, V>> Cache<K, V, W> {
    /// Checks every invariant of the cache; the first broken one is the error.
    #[cfg(test)]
    pub(crate) fn validate(&self) -> Result<(), String> {
        self.slots.validate()?;
        if self.table.len() != self.slots.len() {
            return Err(format!(
                "table has {} buckets, {} slots are occupied",
                self.table.len(),
                self.slots.len()
            ));
        }
        let mut total = 0usize;
        for (i, entry) in self.slots.occupied() {
            if entry.hash != self.hasher.hash_one(&entry.key) {
                return Err(format!("slot {i} stores a stale hash"));
            }
            if entry.weight() != self.weigher.weigh(&entry.key, &entry.value) {
                return Err(format!("slot {i} stores a stale weight"));
            }
            // The key leads to this slot and to no other: with `table.len() == slots.len()`
            // this makes the table a bijection onto the occupied slots.
            if self.find(entry.hash, &entry.key) != Some(i) {
                return Err(format!("the key in slot {i} does not lead back to it"));
            }
            total += entry.weight();
        }
        if total != self.bytes {
            return Err(format!("entries weigh {total}, bytes says {}", self.bytes));
        }
        let small = self.slots.small_queue();
        let mut small_total = 0usize;
        for (i, _) in self.slots.occupied() {
            let tag = self.tag(i);
            let listed = small.contains(&i);
            match self.policy {
                Policy::Lru if tag != 0 => return Err(format!("LRU slot {i} has tag {tag}")),
                Policy::S3Fifo if (tag & IN_SMALL != 0) != listed => {
                    return Err(format!("slot {i}'s tag {tag} disagrees with its queue"));
                }
                _ => {}
            }
            if tag & !(FREQ | IN_SMALL) != 0 {
                return Err(format!("slot {i} has stray tag bits {tag:#b}"));
            }
            if listed {
                small_total += self.slots.get(i).map_or(0, Entry::weight);
            }
        }
        if small_total != self.small_bytes {
            return Err(format!(
                "the small queue weighs {small_total}, small_bytes says {}",
                self.small_bytes
            ));
        }
        self.ghost.validate()?;
        if self.policy == Policy::Lru && self.ghost.len() != 0 {
            return Err("an LRU cache has ghosts".into());
        }
        if self.max_bytes != 0 && self.bytes > self.max_bytes {
            return Err(format!(
                "{} bytes over a budget of {}",
                self.bytes, self.max_bytes
            ));
        }
        Ok(())
    }
}
