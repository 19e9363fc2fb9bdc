//! `Cache`: the single-threaded, byte-bounded LRU.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::iter::FusedIterator;
use std::mem;
use std::sync::Arc;
use std::time::Instant;

use hashbrown::{HashTable, hash_table};

use crate::slots::{self, Index, Slots};
use crate::{ByWeight, CacheStats, Clock, Weigher};

/// The hash function for keys, chosen by measurement (`benches/hashers.rs`).
///
/// foldhash hashes a 16–32 byte key 3–6× faster than SipHash (std's default) and FNV-1a
/// (groupcache's choice for sharding), and a table probe with it runs 2–3× faster. Of its two
/// variants, `quality` costs up to a few nanoseconds more per key than `fast`, and table probes
/// showed no consistent difference between them from run to run. We take `quality` for its
/// stronger mixing: the segmented cache picks a segment from the middle bits of the same hash
/// the table uses. The state is seeded per process and per instance, which makes colliding keys
/// hard to precompute when keys arrive from the network. It is no defence against an attacker
/// who studies timing at length (no non-cryptographic hash is); the byte budget bounds what
/// such an attack can cost.
#[cfg(not(all(test, loom)))]
pub(crate) type HashState = foldhash::quality::RandomState;
/// loom replays each interleaving and requires every run to take the same path, so under loom
/// keys must land in the same segment every time.
#[cfg(all(test, loom))]
pub(crate) type HashState = foldhash::quality::FixedState;

/// What a slot holds.
struct Entry<K, V> {
    key: K,
    value: V,
    /// Kept so that growing the table and evicting never hash a key again: eviction finds the
    /// table bucket by comparing slot indices under this hash, not by comparing keys.
    hash: u64,
    /// Kept rather than recomputed on removal, so a weigher that reads mutable state (or just
    /// costs time) is called once per insert.
    weight: usize,
    deadline: Option<Instant>,
}

type EvictionCallback<K, V> = Box<dyn FnMut(K, V) + Send>;

#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    hits: u64,
    misses: u64,
    evictions: u64,
    expirations: u64,
}

/// A least-recently-used cache bounded by bytes, for one thread.
///
/// Every entry weighs what its [`Weigher`] says (by default `key.weight() + value.weight()`, see
/// [`Weigh`](crate::Weigh)); when an insert takes the total over `max_bytes`, the least recently
/// used entries are evicted until it fits again, and each one is handed to the eviction callback
/// if one is set. A `max_bytes` of 0 means unbounded.
///
/// `add`, `get`, `peek`, `remove` and `remove_oldest` run in O(1) (amortised, as for any hash
/// table); `purge_expired` visits every slot.
///
/// ```
/// use geecache_lru::Cache;
/// use std::sync::{Arc, Mutex};
///
/// let evicted = Arc::new(Mutex::new(Vec::new()));
/// let log = Arc::clone(&evicted);
/// // Each entry below weighs 2 bytes: a 1-byte key and a 1-byte value.
/// let mut cache = Cache::<String, String>::new(4);
/// cache.set_on_evicted(move |k, _v| log.lock().unwrap().push(k));
///
/// cache.add("a".into(), "1".into());
/// cache.add("b".into(), "2".into());
/// cache.get("a"); // "a" is now the most recently used
/// cache.add("c".into(), "3".into()); // over budget: "b" goes
///
/// assert_eq!(*evicted.lock().unwrap(), ["b"]);
/// let keys: Vec<&String> = cache.iter().map(|(k, _)| k).collect();
/// assert_eq!(keys, ["c", "a"]);
/// assert_eq!(cache.bytes(), 4);
/// ```
///
/// # Entries larger than the budget
///
/// An entry that weighs more than `max_bytes` on its own is never stored: it goes straight to the
/// eviction callback (and counts as an eviction), and the entries already cached stay. Flushing
/// the whole cache for a value that cannot be kept anyway (what groupcache does) helps nobody.
///
/// # Expiry
///
/// An entry added with [`add_with_expiry`](Cache::add_with_expiry) is live while the clock reads
/// strictly before its deadline. An expired entry is never returned: `get`, `peek`, `remove`,
/// `remove_oldest` and `add` treat it as absent, and the ones that take `&mut self` drop it on the
/// spot (counting an expiration, not an eviction, and without calling the eviction callback).
/// Until then it still occupies its bytes and shows in [`len`](Cache::len),
/// [`bytes`](Cache::bytes) and [`iter`](Cache::iter); [`purge_expired`](Cache::purge_expired)
/// drops them all at once. The byte budget evicts by recency alone, expired or not.
pub struct Cache<K, V, W = ByWeight> {
    table: HashTable<Index>,
    slots: Slots<Entry<K, V>>,
    max_bytes: usize,
    bytes: usize,
    counters: Counters,
    hasher: HashState,
    weigher: W,
    /// `None` reads `Instant::now()` directly: the common case skips a virtual call.
    clock: Option<Arc<dyn Clock>>,
    on_evicted: Option<EvictionCallback<K, V>>,
}

impl<K: Hash + Eq, V, W: Weigher<K, V> + Default> Default for Cache<K, V, W> {
    /// An unbounded cache.
    fn default() -> Self {
        Cache::new(0)
    }
}

impl<K: Hash + Eq, V, W: Weigher<K, V>> Cache<K, V, W> {
    /// An empty cache that holds at most `max_bytes` (0: unbounded), weighing entries with the
    /// default weigher.
    #[must_use]
    pub fn new(max_bytes: usize) -> Self
    where
        W: Default,
    {
        Cache::with_weigher(max_bytes, W::default())
    }

    /// An empty cache that holds at most `max_bytes` (0: unbounded), weighing entries with
    /// `weigher`.
    #[must_use]
    pub fn with_weigher(max_bytes: usize, weigher: W) -> Self {
        Cache::with_hasher(max_bytes, weigher, HashState::default())
    }

    /// Shares `hasher` with a caller that hashes keys itself (the segmented cache hashes once to
    /// pick a segment and hands the same hash to the segment's table).
    pub(crate) fn with_hasher(max_bytes: usize, weigher: W, hasher: HashState) -> Self {
        Cache {
            table: HashTable::new(),
            slots: Slots::new(),
            max_bytes,
            bytes: 0,
            counters: Counters::default(),
            hasher,
            weigher,
            clock: None,
            on_evicted: None,
        }
    }

    /// Calls `f` with every entry the byte budget evicts, oldest first, and with any entry too
    /// heavy to be stored at all.
    ///
    /// Not called for entries taken out by [`remove`](Cache::remove),
    /// [`remove_oldest`](Cache::remove_oldest), [`clear`](Cache::clear), replaced by
    /// [`add`](Cache::add), or dropped because they expired: those are the caller's own doing or
    /// are counted in [`stats`](Cache::stats).
    pub fn set_on_evicted(&mut self, f: impl FnMut(K, V) + Send + 'static) {
        self.on_evicted = Some(Box::new(f));
    }

    /// Reads the time from `clock` instead of [`Instant::now`].
    ///
    /// The clock is consulted only for entries that have a deadline.
    pub fn set_clock(&mut self, clock: impl Clock) {
        self.clock = Some(Arc::new(clock));
    }

    pub(crate) fn set_shared_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = Some(clock);
    }

    /// Stores `value` under `key` as the most recently used entry, with no deadline, and returns
    /// the live value it replaced.
    ///
    /// A replaced entry is re-weighed; the key already stored is kept and `key` dropped. If the
    /// cache is over budget afterwards, the least recently used entries are evicted.
    pub fn add(&mut self, key: K, value: V) -> Option<V> {
        let hash = self.hasher.hash_one(&key);
        self.insert_hashed(hash, key, value, None)
    }

    /// Like [`add`](Cache::add), but the entry expires at `deadline`: from then on it is a miss.
    pub fn add_with_expiry(&mut self, key: K, value: V, deadline: Instant) -> Option<V> {
        let hash = self.hasher.hash_one(&key);
        self.insert_hashed(hash, key, value, Some(deadline))
    }

    /// The value under `key`, which becomes the most recently used entry.
    ///
    /// Counts a hit or a miss. An expired entry is a miss, and is dropped.
    #[inline]
    pub fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        self.get_hashed(hash, key)
    }

    /// The value under `key`, leaving the recency order and the counters alone.
    ///
    /// An expired entry is `None` (it stays stored: `peek` cannot drop it).
    #[inline]
    pub fn peek<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.peek_hashed(self.hasher.hash_one(key), key)
    }

    /// Takes the entry under `key` out of the cache and returns its value, if it was live.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        self.remove_hashed(hash, key)
    }

    /// Takes the least recently used live entry out of the cache.
    ///
    /// Expired entries met on the way are dropped (and counted as expirations).
    pub fn remove_oldest(&mut self) -> Option<(K, V)> {
        loop {
            let entry = self.remove_slot(self.slots.back()?)?;
            if self.has_expired(&entry) {
                self.counters.expirations += 1;
            } else {
                return Some((entry.key, entry.value));
            }
        }
    }

    /// Drops every entry whose deadline is at or before `now` and returns how many there were.
    ///
    /// Visits every slot: run it from a periodic sweeper, not on a hot path.
    pub fn purge_expired(&mut self, now: Instant) -> usize {
        let mut purged = 0;
        for i in 1..self.slots.end() {
            let expired = self
                .slots
                .get(i)
                .and_then(|e| e.deadline)
                .is_some_and(|deadline| deadline <= now);
            if !expired {
                continue;
            }
            if let Some(entry) = self.remove_slot(i) {
                // Counted before the entry is dropped, so a panicking `Drop` cannot skew it.
                self.counters.expirations += 1;
                purged += 1;
                drop(entry);
            }
        }
        purged
    }

    /// The number of entries stored, expired or not.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the cache stores no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.len() == 0
    }

    /// The total weight of the entries stored.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The byte budget; 0 means unbounded.
    #[must_use]
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Entries from the most to the least recently used, expired ones included.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            inner: self.slots.iter(),
        }
    }

    /// Drops every entry, without calling the eviction callback. The counters are kept.
    pub fn clear(&mut self) {
        // Totals first and entries last: if a value's `Drop` panics, the cache is still empty.
        self.bytes = 0;
        self.table = HashTable::new();
        self.slots.clear();
    }

    /// The counters and totals.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.counters.hits,
            misses: self.counters.misses,
            evictions: self.counters.evictions,
            expirations: self.counters.expirations,
            bytes: self.bytes,
            entries: self.slots.len(),
        }
    }

    // ----- the hashed core, shared with the segmented cache -----

    #[inline]
    pub(crate) fn hits(&self) -> u64 {
        self.counters.hits
    }

    #[cfg(test)]
    pub(crate) fn hasher(&self) -> &HashState {
        &self.hasher
    }

    #[inline]
    pub(crate) fn get_hashed<Q>(&mut self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let Some(i) = self.find(hash, key) else {
            self.counters.misses += 1;
            return None;
        };
        if self.slot_has_expired(i) {
            self.remove_slot(i);
            self.counters.expirations += 1;
            self.counters.misses += 1;
            return None;
        }
        self.slots.move_to_front(i);
        self.counters.hits += 1;
        self.slots.get(i).map(|e| &e.value)
    }

    #[inline]
    pub(crate) fn peek_hashed<Q>(&self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let i = self.find(hash, key)?;
        if self.slot_has_expired(i) {
            return None;
        }
        self.slots.get(i).map(|e| &e.value)
    }

    pub(crate) fn remove_hashed<Q>(&mut self, hash: u64, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let slots = &self.slots;
        let found = self.table.find_entry(hash, |&i| {
            slots.get(i).is_some_and(|e| e.key.borrow() == key)
        });
        // One probe finds and removes the bucket; the slot is then freed by index.
        let (i, _) = found.ok()?.remove();
        let entry = self.slots.remove(i)?;
        self.bytes = self.bytes.saturating_sub(entry.weight);
        if self.has_expired(&entry) {
            self.counters.expirations += 1;
            return None;
        }
        Some(entry.value)
    }

    pub(crate) fn insert_hashed(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        deadline: Option<Instant>,
    ) -> Option<V> {
        // Weigh before touching anything: if a user weigher panics, the cache is still whole.
        let weight = self.weigher.weigh(&key, &value);
        let fits = self.max_bytes == 0 || weight <= self.max_bytes;
        if fits && self.slots.is_full() {
            // Every index is taken (four billion entries): make room the way the budget would.
            self.evict_oldest();
        }

        // One probe both finds an existing key and leaves the bucket to fill if there is none.
        let slots = &self.slots;
        let bucket = self.table.entry(
            hash,
            |&i| slots.get(i).is_some_and(|e| e.key == key),
            |&i| slots.get(i).map_or(0, |e| e.hash),
        );
        let vacant = match bucket {
            hash_table::Entry::Occupied(occupied) => {
                let i = *occupied.get();
                return self.replace(i, key, value, weight, deadline);
            }
            hash_table::Entry::Vacant(vacant) => vacant,
        };
        if !fits {
            self.reject(key, value);
            return None;
        }
        let entry = Entry {
            key,
            value,
            hash,
            weight,
            deadline,
        };
        match self.slots.push_front(entry) {
            Ok(i) => {
                vacant.insert(i);
            }
            // Not reached: room was made above.
            Err(entry) => {
                self.reject(entry.key, entry.value);
                return None;
            }
        }
        self.bytes = self.bytes.saturating_add(weight);
        self.evict_to_budget();
        None
    }

    /// `insert_hashed` for a key already in slot `i`: returns the live value it replaces.
    fn replace(
        &mut self,
        i: Index,
        key: K,
        value: V,
        weight: usize,
        deadline: Option<Instant>,
    ) -> Option<V> {
        let expired = self.slot_has_expired(i);
        let old = if self.max_bytes == 0 || weight <= self.max_bytes {
            // Replace in place: the key stays where it is in the table, so nothing is rehashed,
            // and the slot moves to the front like any fresh insert.
            let entry = self.slots.get_mut(i)?;
            self.bytes = self
                .bytes
                .saturating_sub(entry.weight)
                .saturating_add(weight);
            entry.weight = weight;
            entry.deadline = deadline;
            let old = mem::replace(&mut entry.value, value);
            self.slots.move_to_front(i);
            self.evict_to_budget();
            old
        } else {
            let old = self.remove_slot(i)?.value;
            self.reject(key, value);
            old
        };
        if expired {
            self.counters.expirations += 1;
            return None;
        }
        Some(old)
    }

    /// Removes the least recently used entry, expired or not, counting an eviction; no callback.
    pub(crate) fn evict_lru(&mut self) -> Option<(K, V)> {
        let entry = self.remove_slot(self.slots.back()?)?;
        self.counters.evictions += 1;
        Some((entry.key, entry.value))
    }

    // ----- internals -----

    #[inline]
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<Index>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let slots = &self.slots;
        self.table
            .find(hash, |&i| {
                slots.get(i).is_some_and(|e| e.key.borrow() == key)
            })
            .copied()
    }

    fn now(&self) -> Instant {
        match &self.clock {
            Some(clock) => clock.now(),
            None => Instant::now(),
        }
    }

    #[inline]
    fn has_expired(&self, entry: &Entry<K, V>) -> bool {
        // The clock is read only when there is a deadline to compare with.
        entry
            .deadline
            .is_some_and(|deadline| self.now() >= deadline)
    }

    #[inline]
    fn slot_has_expired(&self, i: Index) -> bool {
        self.slots.get(i).is_some_and(|e| self.has_expired(e))
    }

    /// Frees slot `i` and its table bucket and takes its bytes off the total.
    fn remove_slot(&mut self, i: Index) -> Option<Entry<K, V>> {
        let entry = self.slots.remove(i)?;
        if let Ok(bucket) = self.table.find_entry(entry.hash, |&j| j == i) {
            bucket.remove();
        }
        self.bytes = self.bytes.saturating_sub(entry.weight);
        Some(entry)
    }

    fn evict_to_budget(&mut self) {
        while self.max_bytes != 0 && self.bytes > self.max_bytes {
            if !self.evict_oldest() {
                break;
            }
        }
    }

    fn evict_oldest(&mut self) -> bool {
        match self.evict_lru() {
            Some((key, value)) => {
                if let Some(on_evicted) = &mut self.on_evicted {
                    on_evicted(key, value);
                }
                true
            }
            None => false,
        }
    }

    /// An entry that cannot be stored at all is evicted on arrival.
    fn reject(&mut self, key: K, value: V) {
        self.counters.evictions += 1;
        if let Some(on_evicted) = &mut self.on_evicted {
            on_evicted(key, value);
        }
    }

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
            if entry.weight != self.weigher.weigh(&entry.key, &entry.value) {
                return Err(format!("slot {i} stores a stale weight"));
            }
            // The key leads to this slot and to no other: with `table.len() == slots.len()`
            // this makes the table a bijection onto the occupied slots.
            if self.find(entry.hash, &entry.key) != Some(i) {
                return Err(format!("the key in slot {i} does not lead back to it"));
            }
            total += entry.weight;
        }
        if total != self.bytes {
            return Err(format!("entries weigh {total}, bytes says {}", self.bytes));
        }
        if self.max_bytes != 0 && self.bytes > self.max_bytes {
            return Err(format!(
                "{} bytes over a budget of {}",
                self.bytes, self.max_bytes
            ));
        }
        Ok(())
    }

    /// Slots allocated so far, occupied or free; lets tests see whether the arena grows.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn slots_allocated(&self) -> u32 {
        self.slots.end() - 1
    }

    /// Deadlines from the most to the least recently used; lets tests compare with a model.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn deadlines(&self) -> Vec<Option<Instant>> {
        self.slots.iter().map(|(_, e)| e.deadline).collect()
    }
}

impl<K, V, W> fmt::Debug for Cache<K, V, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("len", &self.slots.len())
            .field("bytes", &self.bytes)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl<'a, K: Hash + Eq, V, W: Weigher<K, V>> IntoIterator for &'a Cache<K, V, W> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The entries of a [`Cache`], from the most to the least recently used.
pub struct Iter<'a, K, V> {
    inner: slots::Iter<'a, Entry<K, V>>,
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(_, e)| (&e.key, &e.value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<K, V> DoubleEndedIterator for Iter<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(|(_, e)| (&e.key, &e.value))
    }
}

impl<K, V> ExactSizeIterator for Iter<'_, K, V> {}

impl<K, V> FusedIterator for Iter<'_, K, V> {}

impl<K, V> fmt::Debug for Iter<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("remaining", &self.inner.len())
            .finish()
    }
}
