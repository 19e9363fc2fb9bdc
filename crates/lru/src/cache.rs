//! `Cache`: the single-threaded, byte-bounded cache, with its policies' eviction logic.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::iter::FusedIterator;
use std::mem;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Instant;

use hashbrown::{HashTable, hash_table};

use crate::ghost::Ghost;
use crate::slots::{self, Index, MAIN, SMALL, Slots};
use crate::{ByWeight, CacheStats, Clock, Policy, Weigher};

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

/// Calling this marks a branch as unlikely, so the compiler lays the other side out as the
/// straight-line path (the stable spelling of `unlikely`, as hashbrown does it).
#[cold]
#[inline]
fn off_the_lru_path() {}

/// S3-FIFO's tag bits for a slot: the access counter (0..=3)...
const FREQ: u8 = 0b011;
/// ...and whether the entry is in the small queue (else the main one).
const IN_SMALL: u8 = 0b100;

#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    hits: u64,
    misses: u64,
    evictions: u64,
    expirations: u64,
}

/// A cache bounded by bytes, for one thread: least recently used by default, or S3-FIFO.
///
/// Every entry weighs what its [`Weigher`] says (by default `key.weight() + value.weight()`, see
/// [`Weigh`](crate::Weigh)); when an insert takes the total over `max_bytes`, entries are
/// evicted until it fits again, the least recently used first (or in S3-FIFO's order, see
/// [`Policy`]), and each one is handed to the eviction callback if one is set. A `max_bytes` of
/// 0 means unbounded.
///
/// `add`, `get`, `get_mut`, `get_or_insert_with`, `peek`, `contains_key`, `remove` and
/// `remove_oldest` run in O(1) (amortised, as for any hash table, and for S3-FIFO's eviction);
/// `purge_expired` and `retain` visit every slot.
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
/// drops them all at once. The byte budget evicts by its policy alone, expired or not.
pub struct Cache<K, V, W = ByWeight> {
    table: HashTable<Index>,
    slots: Slots<Entry<K, V>>,
    max_bytes: usize,
    bytes: usize,
    policy: Policy,
    /// S3-FIFO: the weight of the entries in the small queue (always 0 for LRU).
    small_bytes: usize,
    /// S3-FIFO: hashes recently evicted from the small queue (always empty for LRU).
    ghost: Ghost,
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
        Cache::with_hasher(max_bytes, weigher, HashState::default(), Policy::Lru)
    }

    /// An empty cache that holds at most `max_bytes` (0: unbounded) and evicts by `policy`,
    /// weighing entries with the default weigher.
    ///
    /// ```
    /// use geecache_lru::{Cache, Policy};
    ///
    /// let mut cache = Cache::<String, String>::with_policy(1 << 20, Policy::S3Fifo);
    /// cache.add("k".into(), "v".into());
    /// assert_eq!(cache.policy(), Policy::S3Fifo);
    /// assert!(cache.contains_key("k"));
    /// ```
    #[must_use]
    pub fn with_policy(max_bytes: usize, policy: Policy) -> Self
    where
        W: Default,
    {
        Cache::with_hasher(max_bytes, W::default(), HashState::default(), policy)
    }

    /// An empty cache that holds at most `max_bytes` (0: unbounded), weighing entries with
    /// `weigher` and evicting by `policy`.
    #[must_use]
    pub fn with_weigher_and_policy(max_bytes: usize, weigher: W, policy: Policy) -> Self {
        Cache::with_hasher(max_bytes, weigher, HashState::default(), policy)
    }

    /// Shares `hasher` with a caller that hashes keys itself (the segmented cache hashes once to
    /// pick a segment and hands the same hash to the segment's table).
    pub(crate) fn with_hasher(
        max_bytes: usize,
        weigher: W,
        hasher: HashState,
        policy: Policy,
    ) -> Self {
        Cache {
            table: HashTable::new(),
            slots: Slots::new(policy == Policy::S3Fifo),
            max_bytes,
            bytes: 0,
            policy,
            small_bytes: 0,
            ghost: Ghost::default(),
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
    /// cache is over budget afterwards, entries are evicted (least recently used first, for LRU).
    ///
    /// Under S3-FIFO a new key enters the small queue (the main one if it is a ghost), room being
    /// made before it is linked, and replacing a value counts as a use of the entry.
    pub fn add(&mut self, key: K, value: V) -> Option<V> {
        let hash = self.hasher.hash_one(&key);
        self.insert_hashed(hash, key, value, None)
    }

    /// Like [`add`](Cache::add), but the entry expires at `deadline`: from then on it is a miss.
    pub fn add_with_expiry(&mut self, key: K, value: V, deadline: Instant) -> Option<V> {
        let hash = self.hasher.hash_one(&key);
        self.insert_hashed(hash, key, value, Some(deadline))
    }

    /// The value under `key`, which becomes the most recently used entry (S3-FIFO: whose
    /// counter goes up).
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

    /// The value under `key`, mutably, through a guard that re-weighs the entry when dropped.
    ///
    /// Counts a hit or a miss and uses the entry, as [`get`](Cache::get) does. A `&mut V` alone
    /// would let a value grow without the budget seeing it, so the guard records whether it was
    /// written through ([`DerefMut`]) and, if so, on drop weighs the entry again, adjusts
    /// [`bytes`](Cache::bytes) and evicts down to the budget. An entry that now weighs more
    /// than the whole budget is evicted itself (to the callback), as [`add`](Cache::add) would
    /// do with it; under S3-FIFO the entry may also be the one its policy evicts.
    ///
    /// A guard that is only read, or leaked with [`mem::forget`], weighs nothing again: a leaked
    /// guard leaves a stale weight, never a memory error. If the thread panics while holding a
    /// guard that was written, the entry is removed on the way out rather than re-weighed (its
    /// weigher is not called during unwinding).
    ///
    /// ```
    /// use geecache_lru::Cache;
    ///
    /// let mut cache = Cache::<String, String>::new(16);
    /// cache.add("k".into(), "v".into()); // 2 bytes
    /// if let Some(mut value) = cache.get_mut("k") {
    ///     value.push_str("alue"); // the guard is dropped at the end of this block
    /// }
    /// assert_eq!(cache.peek("k").map(String::as_str), Some("value"));
    /// assert_eq!(cache.bytes(), 6);
    /// ```
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<ValueMut<'_, K, V, W>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let index = self.access(hash, key)?;
        Some(ValueMut {
            cache: self,
            index,
            written: false,
        })
    }

    /// The value under `key`, or `f()` stored there first (with no deadline) if the key is
    /// absent or expired; `None` only when that value is too heavy to store at all (it then
    /// goes to the eviction callback, as with [`add`](Cache::add)).
    ///
    /// Counts a hit, or a miss when `f` is called; the key is hashed once either way. The value
    /// returned is the one stored: a new entry within the budget is never a victim of the
    /// evictions its own insertion causes.
    ///
    /// ```
    /// use geecache_lru::Cache;
    ///
    /// let mut cache = Cache::<String, String>::new(64);
    /// let mut loads = 0;
    /// for _ in 0..3 {
    ///     let value = cache.get_or_insert_with("k".into(), || {
    ///         loads += 1;
    ///         "loaded".into()
    ///     });
    ///     assert_eq!(value.map(String::as_str), Some("loaded"));
    /// }
    /// assert_eq!(loads, 1);
    /// assert_eq!((cache.stats().hits, cache.stats().misses), (2, 1));
    /// ```
    pub fn get_or_insert_with(&mut self, key: K, f: impl FnOnce() -> V) -> Option<&V> {
        match self.try_get_or_insert_with(key, || Ok::<V, std::convert::Infallible>(f())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// [`get_or_insert_with`](Cache::get_or_insert_with) for a loader that can fail: an error
    /// from `f` is returned as is and nothing is stored (the miss is still counted).
    ///
    /// ```
    /// use geecache_lru::Cache;
    ///
    /// let mut cache = Cache::<String, String>::new(64);
    /// let failed = cache.try_get_or_insert_with("k".into(), || Err("backend down"));
    /// assert_eq!(failed, Err("backend down"));
    /// assert!(!cache.contains_key("k"));
    /// let loaded = cache.try_get_or_insert_with("k".into(), || Ok::<_, &str>("v".into()));
    /// assert_eq!(loaded.map(|v| v.cloned()), Ok(Some("v".into())));
    /// ```
    pub fn try_get_or_insert_with<E>(
        &mut self,
        key: K,
        f: impl FnOnce() -> Result<V, E>,
    ) -> Result<Option<&V>, E> {
        let hash = self.hasher.hash_one(&key);
        let index = match self.access(hash, &key) {
            Some(i) => Some(i),
            None => {
                let value = f()?;
                self.insert_slot(hash, key, value, None).1
            }
        };
        Ok(index.and_then(|i| self.slots.get(i)).map(|e| &e.value))
    }

    /// Whether a live entry is stored under `key`; like [`peek`](Cache::peek), it leaves
    /// the order and the counters alone.
    #[must_use]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.peek(key).is_some()
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

    /// Takes out the live entry the policy would evict next: the least recently used (LRU),
    /// or S3-FIFO's victim (see [`Policy::S3Fifo`]; finding it may move other entries between
    /// queues and lower their counters, as an eviction would, and a victim from the small queue
    /// becomes a ghost).
    ///
    /// Expired entries met on the way are dropped (and counted as expirations). Not an
    /// eviction: not counted as one and not given to the callback.
    pub fn remove_oldest(&mut self) -> Option<(K, V)> {
        loop {
            let victim = self.victim()?;
            let entry = self.remove_slot(victim)?;
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
        for i in slots::FIRST..self.slots.end() {
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

    /// Changes the byte budget (0: unbounded) and evicts, through the callback and in the
    /// policy's order, until the entries fit it.
    ///
    /// Growing the budget evicts nothing. Under S3-FIFO the small queue's share and the ghost
    /// queue's bound follow the new budget (the ghost forgets its oldest hashes at once).
    ///
    /// ```
    /// use geecache_lru::Cache;
    ///
    /// let mut cache = Cache::<u32, u32>::new(0); // 8 bytes an entry
    /// for k in 0..10 {
    ///     cache.add(k, k);
    /// }
    /// cache.set_max_bytes(24);
    /// assert_eq!(cache.keys().copied().collect::<Vec<_>>(), [9, 8, 7]);
    /// assert_eq!(cache.stats().evictions, 7);
    /// ```
    pub fn set_max_bytes(&mut self, max_bytes: usize) {
        self.max_bytes = max_bytes;
        self.ghost.trim(self.main_share());
        self.evict_to_budget();
    }

    /// The eviction policy the cache was made with.
    #[must_use]
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Entries in the policy's order, expired ones included: from the most to the least
    /// recently used (LRU), or the main queue then the small queue, each from head to tail
    /// (S3-FIFO). Either way the back end is where eviction starts.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            inner: self.slots.iter(),
        }
    }

    /// The keys, in [`iter`](Cache::iter)'s order.
    pub fn keys(&self) -> Keys<'_, K, V> {
        Keys { inner: self.iter() }
    }

    /// The values, in [`iter`](Cache::iter)'s order.
    pub fn values(&self) -> Values<'_, K, V> {
        Values { inner: self.iter() }
    }

    /// Keeps only the entries for which `f` returns `true`, visiting them in no particular
    /// order (storage order, which saves collecting the list first).
    ///
    /// Entries dropped by `f` are the caller's doing: no eviction is counted and the callback
    /// is not called. Expired entries are dropped without being offered to `f` (counted as
    /// expirations). The order of the entries kept does not change.
    ///
    /// ```
    /// use geecache_lru::Cache;
    ///
    /// let mut cache = Cache::<u32, u32>::new(0);
    /// for k in 0..6 {
    ///     cache.add(k, k * 10);
    /// }
    /// cache.retain(|k, _| k % 2 == 0);
    /// assert_eq!(cache.keys().copied().collect::<Vec<_>>(), [4, 2, 0]);
    /// ```
    pub fn retain(&mut self, mut f: impl FnMut(&K, &V) -> bool) {
        for i in slots::FIRST..self.slots.end() {
            let Some(entry) = self.slots.get(i) else {
                continue;
            };
            if self.has_expired(entry) {
                if let Some(entry) = self.remove_slot(i) {
                    self.counters.expirations += 1;
                    drop(entry);
                }
            } else if !f(&entry.key, &entry.value) {
                self.remove_slot(i);
            }
        }
    }

    /// Drops every entry, without calling the eviction callback. The counters are kept; the
    /// S3-FIFO ghosts are forgotten.
    pub fn clear(&mut self) {
        // Totals first and entries last: if a value's `Drop` panics, the cache is still empty.
        self.bytes = 0;
        self.small_bytes = 0;
        self.ghost.clear();
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
        let i = self.access(hash, key)?;
        self.slots.get(i).map(|e| &e.value)
    }

    /// A lookup that counts: the live slot under `key`, used (moved to the front, or its
    /// counter raised), or `None` after counting a miss (and dropping an expired entry).
    #[inline]
    pub(crate) fn access<Q>(&mut self, hash: u64, key: &Q) -> Option<Index>
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
        // The one test the LRU hit path pays for the policy choice (see `Policy`). S3-FIFO's
        // side is marked cold so that LRU runs straight through, the way it did before there
        // was a choice, and S3-FIFO takes the jump: its hit writes one byte and no links, so it
        // has the cycle to spare (`benches/hit_path.rs` measured a taken branch on the LRU side).
        if self.policy == Policy::Lru {
            self.slots.move_to_front(i);
        } else {
            off_the_lru_path();
            self.bump(i);
        }
        self.counters.hits += 1;
        Some(i)
    }

    /// Runs `f` on the live value under `key`, as a use of the entry, and re-weighs it after;
    /// `None` (and a miss) when there is none.
    pub(crate) fn update_hashed<Q, R>(
        &mut self,
        hash: u64,
        key: &Q,
        f: impl FnOnce(&mut V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let index = self.access(hash, key)?;
        let mut guard = ValueMut {
            cache: self,
            index,
            written: false,
        };
        Some(f(&mut *guard))
    }

    /// `get_or_insert_with` on a hash computed by the caller, cloning the value out.
    pub(crate) fn get_or_insert_hashed(
        &mut self,
        hash: u64,
        key: K,
        f: impl FnOnce() -> V,
    ) -> Option<V>
    where
        V: Clone,
    {
        let index = match self.access(hash, &key) {
            Some(i) => i,
            None => {
                let value = f();
                self.insert_slot(hash, key, value, None).1?
            }
        };
        self.slots.get(index).map(|e| e.value.clone())
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
        let in_small = self.in_small(i);
        let entry = self.slots.remove(i)?;
        self.bytes = self.bytes.saturating_sub(entry.weight);
        if in_small {
            self.small_bytes = self.small_bytes.saturating_sub(entry.weight);
        }
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
        self.insert_slot(hash, key, value, deadline).0
    }

    /// `insert_hashed`, also returning the slot of a new entry (`None` when the key was
    /// already stored or the entry was rejected).
    fn insert_slot(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        deadline: Option<Instant>,
    ) -> (Option<V>, Option<Index>) {
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
                return (self.replace(i, key, value, weight, deadline), None);
            }
            hash_table::Entry::Vacant(vacant) => vacant,
        };
        if !fits {
            self.reject(key, value);
            return (None, None);
        }
        let entry = Entry {
            key,
            value,
            hash,
            weight,
            deadline,
        };
        if self.policy == Policy::S3Fifo {
            // S3-FIFO makes room before linking the entry, so that the newcomer is never its
            // own victim; the vacant bucket cannot outlive the evictions, so it is found again.
            return (None, self.insert_s3(hash, entry));
        }
        let i = match self.slots.push_front(entry) {
            Ok(i) => {
                vacant.insert(i);
                i
            }
            // Not reached: room was made above.
            Err(entry) => {
                self.reject(entry.key, entry.value);
                return (None, None);
            }
        };
        self.bytes = self.bytes.saturating_add(weight);
        // The new entry is at the front and within budget, so this never evicts it.
        self.evict_to_budget();
        (None, Some(i))
    }

    /// Links a new entry that fits the budget into S3-FIFO's queues, after making room.
    fn insert_s3(&mut self, hash: u64, entry: Entry<K, V>) -> Option<Index> {
        let weight = entry.weight;
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
        let i = match self.slots.push_after(anchor, entry, tag) {
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
            // and the slot moves to the front like any fresh insert (S3-FIFO: is used).
            let entry = self.slots.get_mut(i)?;
            let old_weight = mem::replace(&mut entry.weight, weight);
            entry.deadline = deadline;
            let old = mem::replace(&mut entry.value, value);
            self.reweighed(i, old_weight, weight);
            match self.policy {
                Policy::Lru => self.slots.move_to_front(i),
                Policy::S3Fifo => self.bump(i),
            }
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

    /// Removes the entry the policy evicts next, expired or not, counting an eviction; no
    /// callback.
    pub(crate) fn evict_next(&mut self) -> Option<(K, V)> {
        let victim = self.victim()?;
        let entry = self.remove_slot(victim)?;
        self.counters.evictions += 1;
        Some((entry.key, entry.value))
    }

    // ----- the policies -----

    /// The slot the policy evicts next. For S3-FIFO, finding it is part of evicting: tails
    /// that were used move on (to the main queue, or back to its head), and a victim from the
    /// small queue becomes a ghost.
    fn victim(&mut self) -> Option<Index> {
        match self.policy {
            Policy::Lru => self.slots.back(),
            Policy::S3Fifo => self.s3_victim(),
        }
    }

    /// S3-FIFO's victim; see [`Policy::S3Fifo`]. Terminates: each turn either returns, moves a
    /// small-queue entry to the main queue (at most `len` times), or lowers a main-queue
    /// counter (at most 3 times per entry), so the work is paid for by the hits that raised the
    /// counters, O(1) amortised.
    fn s3_victim(&mut self) -> Option<Index> {
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
                let tag = self.slots.tag(i);
                if tag & FREQ == 0 {
                    return Some(i);
                }
                // Used since it last came round: another lap, one use fewer to its credit.
                self.slots.set_tag(i, tag - 1);
                self.slots.move_after(MAIN, i);
            } else {
                let i = small_tail?;
                let (hash, weight) = self.slots.get(i).map(|e| (e.hash, e.weight))?;
                if self.slots.tag(i) & FREQ == 0 {
                    // Used once: out, but remembered, so that a second use soon goes to main.
                    self.ghost.push(hash, weight, self.main_share());
                    return Some(i);
                }
                // Used again while on probation: promoted, its counter starting over.
                self.small_bytes = self.small_bytes.saturating_sub(weight);
                self.slots.set_tag(i, 0);
                self.slots.move_after(MAIN, i);
            }
        }
    }

    /// S3-FIFO: the main queue's share of the budget, which also bounds the ghosts.
    fn main_share(&self) -> usize {
        self.max_bytes - self.max_bytes / 10
    }

    /// Whether slot `i` is in S3-FIFO's small queue. The policy is tested first so that LRU
    /// never touches the tag array.
    #[inline]
    fn in_small(&self, i: Index) -> bool {
        self.policy == Policy::S3Fifo && self.slots.tag(i) & IN_SMALL != 0
    }

    /// S3-FIFO: a use of slot `i`; the counter saturates at 3.
    #[inline]
    fn bump(&mut self, i: Index) {
        let tag = self.slots.tag(i);
        if tag & FREQ < FREQ {
            self.slots.set_tag(i, tag + 1);
        }
    }

    /// Books slot `i`'s change of weight from `old` to `new` (the entry already says `new`).
    fn reweighed(&mut self, i: Index, old: usize, new: usize) {
        self.bytes = self.bytes.saturating_sub(old).saturating_add(new);
        if self.in_small(i) {
            self.small_bytes = self.small_bytes.saturating_sub(old).saturating_add(new);
        }
    }

    /// Called when a written `ValueMut` is dropped: weighs slot `i` again and restores the
    /// budget.
    fn reweigh(&mut self, i: Index) {
        if std::thread::panicking() {
            // The value may be half-updated and the weigher may panic on it: drop the entry
            // instead, which keeps the books right without calling user code.
            self.remove_slot(i);
            return;
        }
        let Some(entry) = self.slots.get(i) else {
            return;
        };
        let weight = self.weigher.weigh(&entry.key, &entry.value);
        let Some(entry) = self.slots.get_mut(i) else {
            return;
        };
        let old = mem::replace(&mut entry.weight, weight);
        self.reweighed(i, old, weight);
        if self.max_bytes != 0 && weight > self.max_bytes {
            if let Some(entry) = self.remove_slot(i) {
                self.reject(entry.key, entry.value);
            }
            return;
        }
        self.evict_to_budget();
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
        let in_small = self.in_small(i);
        let entry = self.slots.remove(i)?;
        if let Ok(bucket) = self.table.find_entry(entry.hash, |&j| j == i) {
            bucket.remove();
        }
        self.bytes = self.bytes.saturating_sub(entry.weight);
        if in_small {
            self.small_bytes = self.small_bytes.saturating_sub(entry.weight);
        }
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
        match self.evict_next() {
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
        let small = self.slots.small_queue();
        let mut small_total = 0usize;
        for (i, _) in self.slots.occupied() {
            let tag = self.slots.tag(i);
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
                small_total += self.slots.get(i).map_or(0, |e| e.weight);
            }
        }
        if small_total != self.small_bytes {
            return Err(format!(
                "the small queue weighs {small_total}, small_bytes says {}",
                self.small_bytes
            ));
        }
        self.ghost.validate(self.main_share())?;
        if self.policy == Policy::Lru && self.ghost.charged() != 0 {
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

    /// Slots allocated so far, occupied or free; lets tests see whether the arena grows.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn slots_allocated(&self) -> u32 {
        self.slots.end() - slots::FIRST
    }

    /// Per entry in `iter` order: its deadline, S3-FIFO counter, and whether it is in the
    /// small queue; lets tests compare with a model.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn entry_meta(&self) -> Vec<(Option<Instant>, u8, bool)> {
        self.slots
            .iter()
            .map(|(i, e)| {
                let tag = self.slots.tag(i);
                (e.deadline, tag & FREQ, tag & IN_SMALL != 0)
            })
            .collect()
    }

    /// The S3-FIFO ghosts, oldest first; lets tests compare with a model.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn ghost_hashes(&self) -> Vec<u64> {
        self.ghost.hashes()
    }
}

impl<K, V, W> fmt::Debug for Cache<K, V, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("len", &self.slots.len())
            .field("bytes", &self.bytes)
            .field("max_bytes", &self.max_bytes)
            .field("policy", &self.policy)
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

/// The keys of a [`Cache`], in [`Cache::iter`]'s order.
pub struct Keys<'a, K, V> {
    inner: Iter<'a, K, V>,
}

impl<'a, K, V> Iterator for Keys<'a, K, V> {
    type Item = &'a K;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(k, _)| k)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<K, V> DoubleEndedIterator for Keys<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(|(k, _)| k)
    }
}

impl<K, V> ExactSizeIterator for Keys<'_, K, V> {}

impl<K, V> FusedIterator for Keys<'_, K, V> {}

impl<K, V> fmt::Debug for Keys<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("remaining", &self.inner.len())
            .finish()
    }
}

/// The values of a [`Cache`], in [`Cache::iter`]'s order.
pub struct Values<'a, K, V> {
    inner: Iter<'a, K, V>,
}

impl<'a, K, V> Iterator for Values<'a, K, V> {
    type Item = &'a V;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(_, v)| v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<K, V> DoubleEndedIterator for Values<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(|(_, v)| v)
    }
}

impl<K, V> ExactSizeIterator for Values<'_, K, V> {}

impl<K, V> FusedIterator for Values<'_, K, V> {}

impl<K, V> fmt::Debug for Values<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Values")
            .field("remaining", &self.inner.len())
            .finish()
    }
}

/// A value in a [`Cache`], borrowed mutably; made by [`Cache::get_mut`]. If it was written
/// through, dropping it weighs the entry again and evicts down to the budget.
pub struct ValueMut<'a, K: Hash + Eq, V, W: Weigher<K, V>> {
    cache: &'a mut Cache<K, V, W>,
    index: Index,
    /// Set by `deref_mut`: a guard only read needs no re-weighing.
    written: bool,
}

impl<K: Hash + Eq, V, W: Weigher<K, V>> Deref for ValueMut<'_, K, V, W> {
    type Target = V;

    fn deref(&self) -> &V {
        // The guard borrows the cache mutably, so its slot cannot be emptied while it lives.
        &self
            .cache
            .slots
            .get(self.index)
            .expect("a ValueMut's slot stays occupied while the guard lives")
            .value
    }
}

impl<K: Hash + Eq, V, W: Weigher<K, V>> DerefMut for ValueMut<'_, K, V, W> {
    fn deref_mut(&mut self) -> &mut V {
        self.written = true;
        &mut self
            .cache
            .slots
            .get_mut(self.index)
            .expect("a ValueMut's slot stays occupied while the guard lives")
            .value
    }
}

impl<K: Hash + Eq, V, W: Weigher<K, V>> Drop for ValueMut<'_, K, V, W> {
    fn drop(&mut self) {
        if self.written {
            self.cache.reweigh(self.index);
        }
    }
}

impl<K: Hash + Eq, V: fmt::Debug, W: Weigher<K, V>> fmt::Debug for ValueMut<'_, K, V, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ValueMut").field(&**self).finish()
    }
}
