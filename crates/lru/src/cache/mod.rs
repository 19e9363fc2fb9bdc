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

use crate::deadline::{Deadline, Epoch};
use crate::ghost::Ghost;
use crate::slots::{self, Index, MAIN, SMALL, Slots};
use crate::{ByWeight, CacheStats, Clock, Policy, Weigher};

mod core;
mod expiry;
mod iter;
mod s3fifo;
#[cfg(test)]
mod validate;
mod value_mut;

pub use iter::{Iter, Keys, Values};
pub use value_mut::ValueMut;

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
    /// The weight, kept rather than recomputed on removal (so a weigher that reads mutable
    /// state, or just costs time, is called once per insert), and S3-FIFO's tag.
    meta: Meta,
    /// 8 bytes from the cache's epoch rather than a 16-byte `Option<Instant>` (see `deadline`).
    deadline: Deadline,
}

impl<K, V> Entry<K, V> {
    #[inline]
    fn weight(&self) -> usize {
        self.meta.weight()
    }
}

/// The heaviest entry a cache stores: 2^56 - 1 bytes (64 PiB) on 64-bit targets, every `usize`
/// on 32-bit ones. A heavier entry is rejected as one over the budget is.
#[allow(clippy::cast_possible_truncation)] // the `if` takes the cast only when it fits
pub(crate) const MAX_WEIGHT: usize = if usize::MAX as u64 > Meta::WEIGHT {
    Meta::WEIGHT as usize
} else {
    usize::MAX
};

/// An entry's weight (the low 56 bits) and S3-FIFO's tag byte (the top 8), in one word.
///
/// S3-FIFO's hit raises a counter. It was kept in a byte array beside the slots, a line that
/// nothing else in the hit touches; here it lands in the slot whose key the lookup has just
/// compared. At 100,000 entries the hit measured the same either way (a lookup is a chain of
/// misses that this line did not lengthen much; `docs/performance.md`), so what the word buys is
/// space: the array's byte per slot is gone, where a separate `u8` field in the slot would pad
/// it by 8 bytes, and no weight comes near 2^56 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Meta(u64);

impl Meta {
    const WEIGHT: u64 = (1 << 56) - 1;
    const TAG_SHIFT: u32 = 56;

    /// `weight` (at most `MAX_WEIGHT`, checked by every caller) with `tag`.
    #[inline]
    fn new(weight: usize, tag: u8) -> Self {
        debug_assert!(weight <= MAX_WEIGHT);
        Meta((weight as u64 & Self::WEIGHT) | (u64::from(tag) << Self::TAG_SHIFT))
    }

    #[inline]
    #[allow(clippy::cast_possible_truncation)] // at most `MAX_WEIGHT`, which fits a `usize`
    fn weight(self) -> usize {
        (self.0 & Self::WEIGHT) as usize
    }

    #[inline]
    #[allow(clippy::cast_possible_truncation)] // the top 8 bits
    fn tag(self) -> u8 {
        (self.0 >> Self::TAG_SHIFT) as u8
    }

    #[inline]
    fn set_weight(&mut self, weight: usize) {
        *self = Meta::new(weight, self.tag());
    }

    #[inline]
    fn set_tag(&mut self, tag: u8) {
        *self = Meta::new(self.weight(), tag);
    }
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
/// So is an entry that weighs more than 2^56 - 1 bytes (64 PiB), budget or not: the weight
/// shares its word in the slot with the policy's bits.
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
    /// What entries' deadlines are counted from.
    epoch: Epoch,
    on_evicted: Option<EvictionCallback<K, V>>,
}

impl<K, V, W> Cache<K, V, W> {
    /// The memory an entry takes in the cache beside what its key and value own elsewhere on
    /// the heap: its slot (the key and value themselves, the hash, the weight, the deadline and
    /// the recency links) and its share of the hash table; with S3-FIFO also its share of the
    /// ghost queue. A weigher that adds this to each entry's weight makes the byte budget bound
    /// the cache's memory rather than the bytes of its keys and values.
    ///
    /// The table's share is an average: its buckets (a 4-byte slot index and a control byte
    /// each) are a power of two, between 8/7 and 16/7 of the entries, so 1.7 buckets an entry
    /// in the middle. S3-FIFO remembers up to half as many hashes as it holds entries, each an
    /// 8-byte record and a table bucket. Slots of evicted entries are reused, so a cache that
    /// has been full keeps no more slots than entries; the `Vec`s' spare capacity is left out.
    ///
    /// ```
    /// use geecache_lru::{Cache, Policy};
    ///
    /// let lru = Cache::<u64, u64>::entry_bytes(Policy::Lru);
    /// assert!(lru >= 2 * 8, "at least the key and the value themselves");
    /// assert!(Cache::<u64, u64>::entry_bytes(Policy::S3Fifo) > lru);
    /// ```
    #[must_use]
    pub const fn entry_bytes(policy: Policy) -> usize {
        // In tenths of a bucket, to keep the average out of floating point.
        const BUCKET: usize = std::mem::size_of::<Index>() + 1;
        let table = 17 * BUCKET / 10;
        let slot = std::mem::size_of::<Option<Entry<K, V>>>() + slots::LINK_BYTES;
        let ghost = match policy {
            Policy::Lru => 0,
            // Half a ghost: a record in the deque, and a bucket of its table.
            Policy::S3Fifo => (std::mem::size_of::<u64>() + table) / 2,
        };
        slot + table + ghost
    }
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
            epoch: Epoch::now(),
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
        let now = self.epoch.offset(now);
        for i in slots::FIRST..self.slots.end() {
            let expired = self.slots.get(i).is_some_and(|e| e.deadline.passed_at(now));
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
    /// Growing the budget evicts nothing. Under S3-FIFO the small queue's share follows the
    /// new budget; the ghost queue, bounded by the number of entries, shrinks as it is pushed.
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
