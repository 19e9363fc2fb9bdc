//! The dumb model the property tests compare against: a `Vec` in recency order.
//!
//! Everything is a linear scan, so it is obviously right rather than fast. It states the
//! semantics once, in plain code: budget eviction from the back, oversized entries rejected on
//! arrival, expired entries treated as absent by every lookup.

use std::time::Instant;

use crate::CacheStats;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) key: String,
    pub(super) value: String,
    pub(super) deadline: Option<Instant>,
}

impl Entry {
    fn weight(&self) -> usize {
        self.key.len() + self.value.len()
    }

    fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }
}

#[derive(Debug, Default)]
pub(super) struct Model {
    max_bytes: usize,
    /// Most recently used first.
    pub(super) entries: Vec<Entry>,
    counters: CacheStats,
    /// What the eviction callback must have seen, in order.
    pub(super) evicted: Vec<(String, String)>,
}

impl Model {
    pub(super) fn new(max_bytes: usize) -> Self {
        Model {
            max_bytes,
            ..Model::default()
        }
    }

    pub(super) fn bytes(&self) -> usize {
        self.entries.iter().map(Entry::weight).sum()
    }

    pub(super) fn stats(&self) -> CacheStats {
        CacheStats {
            bytes: self.bytes(),
            entries: self.entries.len(),
            ..self.counters
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.key == key)
    }

    /// Takes out the entry at `pos`; its value if it was live, counting an expiration if not.
    fn take(&mut self, pos: usize, now: Instant) -> Option<String> {
        let entry = self.entries.remove(pos);
        if entry.expired(now) {
            self.counters.expirations += 1;
            None
        } else {
            Some(entry.value)
        }
    }

    pub(super) fn add(
        &mut self,
        key: &str,
        value: String,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Option<String> {
        let entry = Entry {
            key: key.to_owned(),
            value,
            deadline,
        };
        let fits = self.max_bytes == 0 || entry.weight() <= self.max_bytes;
        let replaced = self.position(key).and_then(|pos| self.take(pos, now));
        if fits {
            self.entries.insert(0, entry);
            while self.max_bytes != 0 && self.bytes() > self.max_bytes {
                let victim = self.entries.pop().expect("over budget, so not empty");
                self.counters.evictions += 1;
                self.evicted.push((victim.key, victim.value));
            }
        } else {
            self.counters.evictions += 1;
            self.evicted.push((entry.key, entry.value));
        }
        replaced
    }

    pub(super) fn get(&mut self, key: &str, now: Instant) -> Option<String> {
        let Some(pos) = self.position(key) else {
            self.counters.misses += 1;
            return None;
        };
        if self.entries[pos].expired(now) {
            self.entries.remove(pos);
            self.counters.expirations += 1;
            self.counters.misses += 1;
            return None;
        }
        let entry = self.entries.remove(pos);
        let value = entry.value.clone();
        self.entries.insert(0, entry);
        self.counters.hits += 1;
        Some(value)
    }

    pub(super) fn peek(&self, key: &str, now: Instant) -> Option<String> {
        let entry = &self.entries[self.position(key)?];
        (!entry.expired(now)).then(|| entry.value.clone())
    }

    pub(super) fn remove(&mut self, key: &str, now: Instant) -> Option<String> {
        let pos = self.position(key)?;
        self.take(pos, now)
    }

    pub(super) fn remove_oldest(&mut self, now: Instant) -> Option<(String, String)> {
        while let Some(entry) = self.entries.pop() {
            if entry.expired(now) {
                self.counters.expirations += 1;
            } else {
                return Some((entry.key, entry.value));
            }
        }
        None
    }

    /// The segmented cache's `evict_one` on this segment: the oldest, expired or not.
    pub(super) fn evict_lru(&mut self) -> Option<(String, String)> {
        let entry = self.entries.pop()?;
        self.counters.evictions += 1;
        Some((entry.key, entry.value))
    }

    pub(super) fn purge_expired(&mut self, now: Instant) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| e.deadline.is_none_or(|d| d > now));
        let purged = before - self.entries.len();
        self.counters.expirations += purged as u64;
        purged
    }

    pub(super) fn clear(&mut self) {
        self.entries.clear();
    }
}
