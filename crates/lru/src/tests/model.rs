//! The dumb model the property tests compare against: `Vec`s in order, for either policy.
//!
//! Everything is a linear scan, so it is obviously right rather than fast. It states the
//! semantics once, in plain code: budget eviction in the policy's order, oversized entries
//! rejected on arrival, expired entries treated as absent by every lookup. For LRU, `main` is
//! the one recency list and `small` stays empty; for S3-FIFO they are the two queues and `ghost`
//! the recently evicted keys, exactly as `Policy::S3Fifo` describes them.

use std::collections::VecDeque;
use std::time::Instant;

use crate::{CacheStats, Policy};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) key: String,
    pub(super) value: String,
    pub(super) deadline: Option<Instant>,
    /// S3-FIFO's counter, 0..=3 (always 0 for LRU).
    pub(super) freq: u8,
    /// Whether the entry is in S3-FIFO's small queue.
    pub(super) small: bool,
}

impl Entry {
    fn weight(&self) -> usize {
        self.key.len() + self.value.len()
    }

    fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }
}

#[derive(Clone, Debug)]
struct GhostRecord {
    key: String,
    live: bool,
}

#[derive(Debug)]
pub(super) struct Model {
    policy: Policy,
    max_bytes: usize,
    /// LRU: most recently used first. S3-FIFO: the main queue, head first.
    main: Vec<Entry>,
    /// S3-FIFO: the small queue, head first.
    small: Vec<Entry>,
    /// S3-FIFO: ghost records, oldest first; a hit leaves a dead record to age out.
    ghost: VecDeque<GhostRecord>,
    counters: CacheStats,
    /// What the eviction callback must have seen, in order.
    pub(super) evicted: Vec<(String, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Queue {
    Main,
    Small,
}

impl Model {
    pub(super) fn new(max_bytes: usize, policy: Policy) -> Self {
        Model {
            policy,
            max_bytes,
            main: Vec::new(),
            small: Vec::new(),
            ghost: VecDeque::new(),
            counters: CacheStats::default(),
            evicted: Vec::new(),
        }
    }

    /// Every entry in `Cache::iter` order.
    pub(super) fn entries(&self) -> Vec<Entry> {
        self.main.iter().chain(&self.small).cloned().collect()
    }

    pub(super) fn len(&self) -> usize {
        self.main.len() + self.small.len()
    }

    pub(super) fn bytes(&self) -> usize {
        self.main.iter().chain(&self.small).map(Entry::weight).sum()
    }

    pub(super) fn stats(&self) -> CacheStats {
        CacheStats {
            bytes: self.bytes(),
            entries: self.len(),
            ..self.counters
        }
    }

    /// The live ghost keys, oldest first.
    pub(super) fn ghosts(&self) -> Vec<String> {
        self.ghost
            .iter()
            .filter(|r| r.live)
            .map(|r| r.key.clone())
            .collect()
    }

    /// 99% of the budget, or of the bytes held when the cache is unbounded.
    fn main_share(&self) -> usize {
        let budget = if self.max_bytes == 0 {
            self.bytes()
        } else {
            self.max_bytes
        };
        budget - budget / 100
    }

    fn queue(&mut self, q: Queue) -> &mut Vec<Entry> {
        match q {
            Queue::Main => &mut self.main,
            Queue::Small => &mut self.small,
        }
    }

    fn find(&self, key: &str) -> Option<(Queue, usize)> {
        if let Some(pos) = self.main.iter().position(|e| e.key == key) {
            return Some((Queue::Main, pos));
        }
        self.small
            .iter()
            .position(|e| e.key == key)
            .map(|pos| (Queue::Small, pos))
    }

    fn entry_mut(&mut self, (q, pos): (Queue, usize)) -> &mut Entry {
        &mut self.queue(q)[pos]
    }

    /// A use of the entry at `at`: to the front (LRU) or one more on its counter (S3-FIFO).
    fn touch(&mut self, at: (Queue, usize)) {
        match self.policy {
            Policy::S3Fifo => {
                let entry = self.entry_mut(at);
                entry.freq = (entry.freq + 1).min(3);
            }
            _ => {
                let entry = self.main.remove(at.1);
                self.main.insert(0, entry);
            }
        }
    }

    /// Remembers `key`, keeping at most `bound` records, live or dead.
    fn ghost_push(&mut self, key: &str, bound: usize) {
        for record in &mut self.ghost {
            if record.key == key {
                record.live = false;
            }
        }
        self.ghost.push_back(GhostRecord {
            key: key.to_owned(),
            live: true,
        });
        while self.ghost.len() > bound {
            self.ghost.pop_front();
        }
    }

    fn ghost_take(&mut self, key: &str) -> bool {
        match self.ghost.iter_mut().find(|r| r.live && r.key == key) {
            Some(record) => {
                record.live = false;
                true
            }
            None => false,
        }
    }

    /// Takes out the entry the policy evicts next, doing what finding it does.
    fn victim(&mut self) -> Option<Entry> {
        if self.policy != Policy::S3Fifo {
            return self.main.pop();
        }
        loop {
            if self.main.is_empty() && self.small.is_empty() {
                return None;
            }
            let main_bytes: usize = self.main.iter().map(Entry::weight).sum();
            let from_main =
                self.small.is_empty() || (!self.main.is_empty() && main_bytes > self.main_share());
            if from_main {
                let mut entry = self.main.pop()?;
                if entry.freq == 0 {
                    return Some(entry);
                }
                entry.freq -= 1;
                self.main.insert(0, entry);
            } else {
                // Half the entries, the victim still counted.
                let bound = self.len() / 2;
                let mut entry = self.small.pop()?;
                if entry.freq == 0 {
                    self.ghost_push(&entry.key, bound);
                    return Some(entry);
                }
                entry.freq = 0;
                entry.small = false;
                self.main.insert(0, entry);
            }
        }
    }

    fn evict(&mut self) -> bool {
        match self.victim() {
            Some(victim) => {
                self.counters.evictions += 1;
                self.evicted.push((victim.key, victim.value));
                true
            }
            None => false,
        }
    }

    fn evict_to_budget(&mut self) {
        while self.max_bytes != 0 && self.bytes() > self.max_bytes {
            if !self.evict() {
                break;
            }
        }
    }

    fn reject(&mut self, key: String, value: String) {
        self.counters.evictions += 1;
        self.evicted.push((key, value));
    }

    fn fits(&self, weight: usize) -> bool {
        self.max_bytes == 0 || weight <= self.max_bytes
    }

    pub(super) fn add(
        &mut self,
        key: &str,
        value: String,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Option<String> {
        let weight = key.len() + value.len();
        let fits = self.fits(weight);
        if let Some(at) = self.find(key) {
            let expired = self.entry_mut(at).expired(now);
            let old = if fits {
                let entry = self.entry_mut(at);
                entry.deadline = deadline;
                let old = std::mem::replace(&mut entry.value, value);
                self.touch(at);
                self.evict_to_budget();
                old
            } else {
                let old = self.queue(at.0).remove(at.1).value;
                self.reject(key.to_owned(), value);
                old
            };
            if expired {
                self.counters.expirations += 1;
                return None;
            }
            return Some(old);
        }
        if !fits {
            self.reject(key.to_owned(), value);
            return None;
        }
        self.insert_new(key, value, deadline);
        None
    }

    /// Links a new key that fits.
    fn insert_new(&mut self, key: &str, value: String, deadline: Option<Instant>) {
        let mut entry = Entry {
            key: key.to_owned(),
            value,
            deadline,
            freq: 0,
            small: false,
        };
        if self.policy != Policy::S3Fifo {
            self.main.insert(0, entry);
            self.evict_to_budget();
            return;
        }
        let seen_recently = self.ghost_take(key);
        while self.max_bytes != 0 && self.bytes() + entry.weight() > self.max_bytes {
            if !self.evict() {
                break;
            }
        }
        if seen_recently {
            self.main.insert(0, entry);
        } else {
            entry.small = true;
            self.small.insert(0, entry);
        }
    }

    /// A lookup that counts: the live entry's position after its use, or a miss.
    fn access(&mut self, key: &str, now: Instant) -> Option<(Queue, usize)> {
        let Some(at) = self.find(key) else {
            self.counters.misses += 1;
            return None;
        };
        if self.entry_mut(at).expired(now) {
            self.queue(at.0).remove(at.1);
            self.counters.expirations += 1;
            self.counters.misses += 1;
            return None;
        }
        self.touch(at);
        self.counters.hits += 1;
        self.find(key)
    }

    pub(super) fn get(&mut self, key: &str, now: Instant) -> Option<String> {
        let at = self.access(key, now)?;
        Some(self.entry_mut(at).value.clone())
    }

    /// `get_mut` and a write of `value` through the guard.
    pub(super) fn update(&mut self, key: &str, value: String, now: Instant) -> bool {
        let Some(at) = self.access(key, now) else {
            return false;
        };
        self.entry_mut(at).value = value;
        let entry = self.entry_mut(at).clone();
        if !self.fits(entry.weight()) {
            self.queue(at.0).remove(at.1);
            self.reject(entry.key, entry.value);
        } else {
            self.evict_to_budget();
        }
        true
    }

    pub(super) fn get_or_insert(
        &mut self,
        key: &str,
        value: String,
        now: Instant,
    ) -> Option<String> {
        if let Some(at) = self.access(key, now) {
            return Some(self.entry_mut(at).value.clone());
        }
        if !self.fits(key.len() + value.len()) {
            self.reject(key.to_owned(), value);
            return None;
        }
        self.insert_new(key, value.clone(), None);
        Some(value)
    }

    pub(super) fn peek(&self, key: &str, now: Instant) -> Option<String> {
        let entry = self.main.iter().chain(&self.small).find(|e| e.key == key)?;
        (!entry.expired(now)).then(|| entry.value.clone())
    }

    /// `peek` with the entry's deadline, as `peek_with_expiry` reads it back.
    pub(super) fn peek_with_expiry(
        &self,
        key: &str,
        now: Instant,
    ) -> Option<(String, Option<Instant>)> {
        let entry = self.main.iter().chain(&self.small).find(|e| e.key == key)?;
        (!entry.expired(now)).then(|| (entry.value.clone(), entry.deadline))
    }

    pub(super) fn remove(&mut self, key: &str, now: Instant) -> Option<String> {
        let (q, pos) = self.find(key)?;
        let entry = self.queue(q).remove(pos);
        if entry.expired(now) {
            self.counters.expirations += 1;
            None
        } else {
            Some(entry.value)
        }
    }

    pub(super) fn remove_oldest(&mut self, now: Instant) -> Option<(String, String)> {
        while let Some(entry) = self.victim() {
            if entry.expired(now) {
                self.counters.expirations += 1;
            } else {
                return Some((entry.key, entry.value));
            }
        }
        None
    }

    /// The segmented cache's `evict_one` on this segment: the next victim, expired or not.
    pub(super) fn evict_next(&mut self) -> Option<(String, String)> {
        let entry = self.victim()?;
        self.counters.evictions += 1;
        Some((entry.key, entry.value))
    }

    pub(super) fn purge_expired(&mut self, now: Instant) -> usize {
        let before = self.len();
        let live = |e: &Entry| e.deadline.is_none_or(|d| d > now);
        self.main.retain(live);
        self.small.retain(live);
        let purged = before - self.len();
        self.counters.expirations += purged as u64;
        purged
    }

    pub(super) fn retain(&mut self, keep: impl Fn(&str) -> bool, now: Instant) {
        let before = self.len();
        let live = |e: &Entry| !e.expired(now);
        self.main.retain(live);
        self.small.retain(live);
        self.counters.expirations += (before - self.len()) as u64;
        self.main.retain(|e| keep(&e.key));
        self.small.retain(|e| keep(&e.key));
    }

    pub(super) fn set_max_bytes(&mut self, max_bytes: usize) {
        self.max_bytes = max_bytes;
        self.evict_to_budget();
    }

    pub(super) fn clear(&mut self) {
        self.main.clear();
        self.small.clear();
        self.ghost.clear();
    }
}
