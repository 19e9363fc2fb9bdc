//! `SegmentedCache`: many `Cache`s behind their own locks, for many threads.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use crate::cache::HashState;
use crate::sync::{AtomicU64, AtomicUsize, Mutex, MutexGuard};
use crate::{BuildError, ByWeight, Cache, CacheStats, Clock, Policy, Weigher};
use builder::share;

mod builder;
mod expiry;

pub use builder::SegmentedBuilder;

/// The segment count a [`SegmentedBuilder`] uses unless told otherwise.
pub const DEFAULT_SEGMENTS: usize = 16;

/// The largest segment count a [`SegmentedBuilder`] accepts.
///
/// The segment is chosen from bits 32 and up of the key's hash, which the segment's own table
/// never looks at (see `SEGMENT_SHIFT`); 16 of them are set aside for it.
pub const MAX_SEGMENTS: usize = 1 << 16;

/// hashbrown picks a bucket from the low bits of the hash and keeps the top 7 bits as a tag.
/// Choosing the segment from the low bits would leave each segment's table using 1/N of its
/// buckets; from the top bits, it would make the tags of keys in one segment share bits and
/// weaken the tag filter. Bits 32..48 are used by neither until a table has 2^32 buckets.
const SEGMENT_SHIFT: u32 = 32;

/// The segment for `hash` among `mask + 1` segments.
#[inline]
pub(crate) fn segment_index(hash: u64, mask: usize) -> usize {
    (hash >> SEGMENT_SHIFT) as usize & mask
}

/// A byte-bounded cache for many threads: `N` [`Cache`] segments, each behind its own
/// [`Mutex`] with `max_bytes / N` of the budget, and a key's hash choosing its segment. Each
/// segment evicts by the [`Policy`] given to [`SegmentedBuilder::policy`] (LRU by default).
///
/// ```
/// use geecache_lru::SegmentedCache;
///
/// let cache = SegmentedCache::<String, String>::builder(1 << 20).segments(8).build()?;
/// std::thread::scope(|s| {
///     s.spawn(|| cache.add("Tom".into(), "630".into()));
///     s.spawn(|| cache.add("Jack".into(), "589".into()));
/// });
/// assert_eq!(cache.get("Tom").as_deref(), Some("630"));
/// assert_eq!(cache.len(), 2);
/// assert_eq!(cache.stats().hits, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Contention
///
/// A `get` moves the entry to the front of its segment's recency list, so every operation,
/// reads included, takes its segment's lock exclusively; a read-write lock would buy nothing.
/// What keeps contention low is that the lock is held briefly (one table probe, four index
/// writes, a clone of the value; the key is hashed before locking and a replaced value is
/// dropped after unlocking) and that keys spread over `N` locks: with `T` threads on
/// uniformly spread keys, an operation finds its segment busy with probability around
/// `(T - 1) / N`. Skew concentrates it: every thread that wants one hot key queues on that key's
/// segment. `std::sync::Mutex` spins briefly before parking, which suits such short sections.
/// The user code that runs under a segment's lock is the key's `Eq`, the weigher, the clock,
/// `V::clone`, and the `Drop` of entries the budget evicts; the key's `Hash` runs before.
///
/// No operation holds two locks: `purge_expired`, `clear`, `retain`, `keys`, `snapshot`,
/// `set_max_bytes` and `evict_one` visit segments one at a time, so they never stall the whole
/// cache, and what they see is not one atomic snapshot.
///
/// # What segmenting costs
///
/// - **Recency is per segment.** When a segment is full it evicts *its* least recently used
///   entry, which may be newer than the oldest entry of another segment. With many entries per
///   segment and a good hash, the hit ratio stays close to one exact LRU of the same size.
/// - **The budget is split.** Each segment holds at most `max_bytes / N` (the remainder goes to
///   the first segments), so one entry can weigh at most that much, and one segment can be full
///   while others have room.
///
/// # Counters
///
/// [`len`](SegmentedCache::len), [`bytes`](SegmentedCache::bytes) and
/// [`stats`](SegmentedCache::stats) read per-segment atomics that each segment updates while it
/// holds its lock: no lock is taken to read them, and they are exact once the cache is quiet.
/// While other threads work, the sum may mix moments (a value read from one segment before and
/// from another after some operation).
///
/// Poisoning: if that user code panics while a segment is locked, the segment stays usable; the
/// cache never leaves a segment half-updated while calling it.
pub struct SegmentedCache<K, V, W = ByWeight> {
    segments: Box<[Segment<K, V, W>]>,
    /// The same state every segment's table was built with, so one hash serves both the
    /// segment choice and the table probe.
    hasher: HashState,
    mask: usize,
    /// Atomic so that `set_max_bytes` can take `&self` like every other method.
    max_bytes: AtomicUsize,
    policy: Policy,
}

/// One lock and the counters it publishes, aligned so that two segments never share a cache
/// line (128 bytes covers the adjacent-line prefetcher on x86 and the line size on Apple CPUs).
#[repr(align(128))]
struct Segment<K, V, W> {
    cache: Mutex<Cache<K, V, W>>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
    bytes: AtomicUsize,
    entries: AtomicUsize,
}

impl<K: Hash + Eq, V, W: Weigher<K, V>> Segment<K, V, W> {
    fn new(cache: Cache<K, V, W>) -> Self {
        Segment {
            cache: Mutex::new(cache),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            expirations: AtomicU64::new(0),
            bytes: AtomicUsize::new(0),
            entries: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Cache<K, V, W>> {
        // A panic in user code leaves the segment consistent (see the type's docs), so a
        // poisoned lock is safe to take over.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Copies the segment's counters where lock-free readers see them. Called with the lock
    /// held, so the stores never race with each other: plain stores, not read-modify-writes,
    /// into a line the lock holder owns anyway. A counter that did not change is not stored.
    fn publish(&self, cache: &Cache<K, V, W>) {
        let stats = cache.stats();
        store_if_changed(&self.hits, stats.hits);
        store_if_changed(&self.misses, stats.misses);
        store_if_changed(&self.evictions, stats.evictions);
        store_if_changed(&self.expirations, stats.expirations);
        store_if_changed(&self.bytes, stats.bytes);
        store_if_changed(&self.entries, stats.entries);
    }

    fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
            expirations: self.expirations.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            entries: self.entries.load(Relaxed),
        }
    }
}

/// The published counters are only ever stored by the lock holder, so this load-then-store
/// loses no update; skipping unchanged values keeps rarely moving counters (evictions,
/// expirations) from being rewritten on every operation.
trait Publish<T> {
    fn load_relaxed(&self) -> T;
    fn store_relaxed(&self, value: T);
}

impl Publish<u64> for AtomicU64 {
    fn load_relaxed(&self) -> u64 {
        self.load(Relaxed)
    }
    fn store_relaxed(&self, value: u64) {
        self.store(value, Relaxed);
    }
}

impl Publish<usize> for AtomicUsize {
    fn load_relaxed(&self) -> usize {
        self.load(Relaxed)
    }
    fn store_relaxed(&self, value: usize) {
        self.store(value, Relaxed);
    }
}

#[inline]
fn store_if_changed<T: PartialEq>(counter: &impl Publish<T>, value: T) {
    if counter.load_relaxed() != value {
        counter.store_relaxed(value);
    }
}

impl<K, V> SegmentedCache<K, V> {
    /// Starts building a cache holding at most `max_bytes` (0: unbounded), with
    /// [`DEFAULT_SEGMENTS`] segments, the [`ByWeight`] weigher and the system clock.
    pub fn builder(max_bytes: usize) -> SegmentedBuilder<K, V, ByWeight> {
        SegmentedBuilder {
            max_bytes,
            segments: DEFAULT_SEGMENTS,
            weigher: ByWeight,
            clock: None,
            policy: Policy::Lru,
            _types: PhantomData,
        }
    }
}

impl<K, V, W> SegmentedCache<K, V, W> {
    /// The memory an entry takes in its segment beside what its key and value own elsewhere;
    /// see [`Cache::entry_bytes`].
    #[must_use]
    pub const fn entry_bytes(policy: Policy) -> usize {
        Cache::<K, V, W>::entry_bytes(policy)
    }
}

impl<K: Hash + Eq, V, W: Weigher<K, V> + Clone + Default> Default for SegmentedCache<K, V, W> {
    /// An unbounded cache with [`DEFAULT_SEGMENTS`] segments.
    fn default() -> Self {
        SegmentedBuilder {
            max_bytes: 0,
            segments: DEFAULT_SEGMENTS,
            weigher: W::default(),
            clock: None,
            policy: Policy::Lru,
            _types: PhantomData,
        }
        .assemble()
    }
}

impl<K: Hash + Eq, V, W: Weigher<K, V>> SegmentedCache<K, V, W> {
    /// A clone of the value under `key`, which becomes the most recently used in its segment.
    ///
    /// Counts a hit or a miss; an expired entry is a miss and is dropped. Hashes the key once,
    /// takes one lock, and allocates only if `V::clone` does.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.get_map(key, V::clone)
    }

    /// `f` of the value under `key`, which becomes the most recently used in its segment: a
    /// [`get`](SegmentedCache::get) that reads what it needs of the value under the lock
    /// instead of cloning all of it (or that moves something inside it that has interior
    /// mutability, such as a counter).
    ///
    /// Counts a hit or a miss like `get`. `f` runs with the segment locked: keep it short, and
    /// do not touch this cache from inside it. Unlike [`update`](SegmentedCache::update), the
    /// value is not weighed again, since `f` cannot change it through a shared reference.
    ///
    /// ```
    /// use geecache_lru::SegmentedCache;
    ///
    /// let cache = SegmentedCache::<String, Vec<u8>>::builder(1 << 10).build()?;
    /// cache.add("k".into(), vec![1, 2, 3]);
    /// assert_eq!(cache.get_map("k", |v| v.len()), Some(3));
    /// assert_eq!(cache.get_map("other", |v| v.len()), None);
    /// assert_eq!(cache.stats().hits, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_map<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let segment = self.segment(hash);
        let mut cache = segment.lock();
        let mapped = cache.get_hashed(hash, key).map(f);
        if mapped.is_some() {
            // A hit changes nothing but the hit count: one store instead of six.
            segment.hits.store(cache.hits(), Relaxed);
        } else {
            segment.publish(&cache);
        }
        mapped
    }

    /// Whether a live entry is stored under `key`, leaving recency and counters alone.
    #[must_use]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        self.segment(hash).lock().peek_hashed(hash, key).is_some()
    }

    /// Runs `f` on the value under `key` in place and returns what it returns; `None` (a miss)
    /// when there is no live entry.
    ///
    /// This is [`Cache::get_mut`] for a shared cache: a guard cannot outlive the segment's
    /// lock without making the lock the caller's problem, so the change is a closure instead.
    /// Counts as a use of the entry; the entry is weighed again afterwards, and the segment
    /// evicts down to its budget (the entry itself too, if it no longer fits at all). `f` runs
    /// with the segment locked: keep it short, and do not touch this cache from inside it (the
    /// lock is not reentrant, so that would deadlock).
    ///
    /// ```
    /// use geecache_lru::SegmentedCache;
    ///
    /// let cache = SegmentedCache::<String, Vec<u8>>::builder(1 << 10).build()?;
    /// cache.add("k".into(), vec![1]);
    /// assert_eq!(cache.update("k", |v| { v.push(2); v.len() }), Some(2));
    /// assert_eq!(cache.bytes(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update<Q, R>(&self, key: &Q, f: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let segment = self.segment(hash);
        let mut cache = segment.lock();
        let result = cache.update_hashed(hash, key, f);
        segment.publish(&cache);
        result
    }

    /// A clone of the value under `key`, or of `f()` stored there first; see
    /// [`Cache::get_or_insert_with`]. `None` only when that value is too heavy to store.
    ///
    /// `f` runs with the segment locked, so two threads missing the same key never both call
    /// it, but every other key of the segment waits meanwhile: use it for values that are cheap
    /// to make. For a slow load, look up with [`get`](SegmentedCache::get) and load outside the
    /// lock (with a single-flight guard if duplicate loads matter).
    pub fn get_or_insert_with(&self, key: K, f: impl FnOnce() -> V) -> Option<V>
    where
        V: Clone,
    {
        let hash = self.hasher.hash_one(&key);
        let segment = self.segment(hash);
        let mut cache = segment.lock();
        let value = cache.get_or_insert_hashed(hash, key, f);
        segment.publish(&cache);
        value
    }

    /// A clone of the value under `key`, leaving recency and counters alone; `None` if expired.
    pub fn peek<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let hash = self.hasher.hash_one(key);
        self.segment(hash).lock().peek_hashed(hash, key).cloned()
    }

    /// Stores `value` under `key`, with no deadline; see [`Cache::add`].
    pub fn add(&self, key: K, value: V) {
        self.insert(key, value, None);
    }

    /// Stores `value` under `key` until `deadline`; see [`Cache::add_with_expiry`].
    pub fn add_with_expiry(&self, key: K, value: V, deadline: Instant) {
        self.insert(key, value, Some(deadline));
    }

    /// Takes the entry under `key` out of the cache and returns its value, if it was live.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let segment = self.segment(hash);
        let mut cache = segment.lock();
        let removed = cache.remove_hashed(hash, key);
        segment.publish(&cache);
        removed
    }

    /// Evicts the entry its policy would evict next (for LRU, the least recently used) from the
    /// segment holding the most bytes, expired or not, and returns it; counts as an eviction.
    /// `None` when the cache is empty.
    ///
    /// This is how a byte budget shared by several caches is enforced from outside: build them
    /// unbounded (`max_bytes` 0) and call `evict_one` on whichever is over its share. The
    /// fullest segment is chosen from the published byte counts, without locking; if it has
    /// emptied by the time its lock is taken, the other segments are tried in turn.
    pub fn evict_one(&self) -> Option<(K, V)> {
        let fullest = self
            .segments
            .iter()
            .max_by_key(|segment| segment.bytes.load(Relaxed))?;
        if let Some(evicted) = Self::evict_from(fullest) {
            return Some(evicted);
        }
        self.segments.iter().find_map(Self::evict_from)
    }

    /// Keeps only the entries for which `f` returns `true`, one segment at a time; see
    /// [`Cache::retain`]. `f` runs with that segment locked.
    pub fn retain(&self, mut f: impl FnMut(&K, &V) -> bool) {
        for segment in &self.segments[..] {
            let mut cache = segment.lock();
            cache.retain(&mut f);
            segment.publish(&cache);
        }
    }

    /// The keys stored, expired ones included: each segment's keys in its policy's order,
    /// segment after segment.
    ///
    /// A `Vec` rather than an iterator, because an iterator would have to hold a segment's lock
    /// from one `next` to the next: every thread using that segment would wait on the caller's
    /// loop, and a loop body that touched the cache would deadlock. Copying a segment at a
    /// time bounds each lock to one copy and never holds two, at the price of the clones and of
    /// a view that is per segment, not one instant of the whole cache.
    pub fn keys(&self) -> Vec<K>
    where
        K: Clone,
    {
        let mut keys = Vec::with_capacity(self.len());
        for segment in &self.segments[..] {
            keys.extend(segment.lock().keys().cloned());
        }
        keys
    }

    /// Clones of the entries stored, expired ones included, taken one segment lock at a time;
    /// see [`keys`](SegmentedCache::keys) for why a `Vec`.
    ///
    /// ```
    /// use geecache_lru::SegmentedCache;
    ///
    /// let cache = SegmentedCache::<u64, u64>::builder(0).segments(4).build()?;
    /// for k in 0..8 {
    ///     cache.add(k, k * k);
    /// }
    /// let mut entries = cache.snapshot();
    /// entries.sort();
    /// assert_eq!(entries[3], (3, 9));
    /// assert_eq!(entries.len(), cache.len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn snapshot(&self) -> Vec<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        let mut entries = Vec::with_capacity(self.len());
        for segment in &self.segments[..] {
            let cache = segment.lock();
            entries.extend(cache.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        entries
    }

    /// Changes the byte budget (0: unbounded), split over the segments as the builder splits
    /// it, and evicts each segment down to its new share, one segment at a time.
    ///
    /// Fails, changing nothing, on a non-zero budget smaller than the segment count, as
    /// [`SegmentedBuilder::build`] does. Two calls racing each other may leave segments with
    /// shares of different totals; the last call to reach a segment sets its share.
    pub fn set_max_bytes(&self, max_bytes: usize) -> Result<(), BuildError> {
        let n = self.segments.len();
        if max_bytes != 0 && max_bytes < n {
            return Err(BuildError::BudgetTooSmall {
                max_bytes,
                segments: n,
            });
        }
        self.max_bytes.store(max_bytes, Relaxed);
        for (i, segment) in self.segments.iter().enumerate() {
            let mut cache = segment.lock();
            cache.set_max_bytes(share(max_bytes, n, i));
            segment.publish(&cache);
        }
        Ok(())
    }

    /// Drops every entry whose deadline is at or before `now`, one segment at a time, and
    /// returns how many there were.
    pub fn purge_expired(&self, now: Instant) -> usize {
        self.segments
            .iter()
            .map(|segment| {
                let mut cache = segment.lock();
                let purged = cache.purge_expired(now);
                segment.publish(&cache);
                purged
            })
            .sum()
    }

    /// Drops every entry, one segment at a time. Counters are kept.
    pub fn clear(&self) {
        for segment in &self.segments[..] {
            let mut cache = segment.lock();
            cache.clear();
            segment.publish(&cache);
        }
    }

    /// The number of entries stored, expired or not; reads atomics, takes no lock.
    #[must_use]
    pub fn len(&self) -> usize {
        self.segments.iter().map(|s| s.entries.load(Relaxed)).sum()
    }

    /// Whether no entry is stored; reads atomics, takes no lock.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The total weight of the entries stored; reads atomics, takes no lock.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.segments.iter().map(|s| s.bytes.load(Relaxed)).sum()
    }

    /// The byte budget over all segments; 0 means unbounded.
    #[must_use]
    pub fn max_bytes(&self) -> usize {
        self.max_bytes.load(Relaxed)
    }

    /// The eviction policy every segment uses.
    #[must_use]
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The number of segments.
    #[must_use]
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    /// The counters and totals summed over the segments; reads atomics, takes no lock.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        self.segments
            .iter()
            .map(Segment::stats)
            .fold(CacheStats::default(), |sum, s| CacheStats {
                hits: sum.hits + s.hits,
                misses: sum.misses + s.misses,
                evictions: sum.evictions + s.evictions,
                expirations: sum.expirations + s.expirations,
                bytes: sum.bytes + s.bytes,
                entries: sum.entries + s.entries,
            })
    }

    fn insert(&self, key: K, value: V, deadline: Option<Instant>) {
        let hash = self.hasher.hash_one(&key);
        let segment = self.segment(hash);
        let mut cache = segment.lock();
        let replaced = cache.insert_hashed(hash, key, value, deadline);
        segment.publish(&cache);
        // Unlock first: freeing the old value is this caller's time, not the segment's.
        drop(cache);
        drop(replaced);
    }

    fn evict_from(segment: &Segment<K, V, W>) -> Option<(K, V)> {
        let mut cache = segment.lock();
        let evicted = cache.evict_next();
        segment.publish(&cache);
        evicted
    }

    #[inline]
    fn segment(&self, hash: u64) -> &Segment<K, V, W> {
        // `mask` is `segments.len() - 1` and the length a power of two: always in bounds.
        &self.segments[segment_index(hash, self.mask)]
    }

    /// The segment `key` lives in; lets tests keep one model per segment.
    #[cfg(test)]
    pub(crate) fn segment_of<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        segment_index(self.hasher.hash_one(key), self.mask)
    }

    /// Runs `f` on segment `i`'s cache, with its lock held.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn with_segment<R>(&self, i: usize, f: impl FnOnce(&Cache<K, V, W>) -> R) -> R {
        f(&self.segments[i].lock())
    }

    /// Checks every segment, and that the published counters match the segments.
    #[cfg(test)]
    pub(crate) fn validate(&self) -> Result<(), String> {
        for (i, segment) in self.segments.iter().enumerate() {
            let cache = segment.lock();
            cache.validate().map_err(|e| format!("segment {i}: {e}"))?;
            if cache.stats() != segment.stats() {
                return Err(format!(
                    "segment {i} published {:?} but holds {:?}",
                    segment.stats(),
                    cache.stats()
                ));
            }
            if cache.hasher().hash_one("probe") != self.hasher.hash_one("probe") {
                return Err(format!("segment {i} hashes differently from the cache"));
            }
        }
        let budgets: usize = self.segments.iter().map(|s| s.lock().max_bytes()).sum();
        if budgets != self.max_bytes() {
            return Err(format!(
                "segment budgets sum to {budgets}, not {}",
                self.max_bytes()
            ));
        }
        for (i, segment) in self.segments.iter().enumerate() {
            if segment.lock().policy() != self.policy {
                return Err(format!("segment {i} has another policy"));
            }
        }
        Ok(())
    }
}

impl<K, V, W> fmt::Debug for SegmentedCache<K, V, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentedCache")
            .field("segments", &self.segments.len())
            .field("max_bytes", &self.max_bytes.load(Relaxed))
            .field("policy", &self.policy)
            .field(
                "bytes",
                &self
                    .segments
                    .iter()
                    .map(|s| s.bytes.load(Relaxed))
                    .sum::<usize>(),
            )
            .finish_non_exhaustive()
    }
}
