//! `Policy`: which entry a full cache gives up, chosen when the cache is made.

/// The eviction policy of a [`Cache`](crate::Cache) or
/// [`SegmentedCache`](crate::SegmentedCache), chosen at construction
/// ([`Cache::with_policy`](crate::Cache::with_policy),
/// [`SegmentedBuilder::policy`](crate::SegmentedBuilder::policy)). The default is
/// [`Lru`](Policy::Lru).
///
/// ```
/// use geecache_lru::{Cache, Policy};
///
/// // Unit weights, room for 10 entries.
/// let mut cache = Cache::with_weigher_and_policy(10, |_: &u32, _: &u32| 1, Policy::S3Fifo);
/// for k in 0..10 {
///     cache.add(k, k);
/// }
/// cache.get(&0); // 0 has now been used twice
/// // A scan of keys that are never asked for again...
/// for k in 100..200 {
///     cache.add(k, k);
/// }
/// // ...passes through the small queue and leaves the key that was reused alone.
/// assert_eq!(cache.peek(&0), Some(&0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Why an enum and not a second cache type
///
/// Both policies share everything but the choice of a victim: the hash table, the slot arena,
/// the weights, expiry, the callback, the counters and every method. An enum keeps one `Cache`
/// and one `SegmentedCache`, so code that names `SegmentedCache<String, ByteView>` (the group,
/// the server) picks a policy from its configuration at run time without becoming generic. A
/// second type (or a type parameter `Cache<K, V, W, P>`) would make the policy free of any
/// run-time test, but it doubles the API to document and test (or threads `P` through every
/// signature downstream), and a run-time switch would need an enum on top anyway.
///
/// What the enum costs the LRU path: one test of the policy on each hit and eviction, always
/// decided the same way for a given cache, so the branch predictor learns it once; on the hit
/// path S3-FIFO's side is laid out of line, so LRU's code runs straight through as it did before
/// (`benches/hit_path.rs` times that path in-cache; `benches/single_thread.rs` runs both
/// policies beside the peer crates). The S3-FIFO tag costs no space: it shares a word in the
/// slot with the entry's weight, and LRU never reads or writes it. Then one spare slot for the
/// second queue's sentinel.
///
/// # Eviction order
///
/// [`Cache::remove_oldest`](crate::Cache::remove_oldest), budget evictions and
/// [`SegmentedCache::evict_one`](crate::SegmentedCache::evict_one) all take the entry the
/// policy would evict next; [`Cache::iter`](crate::Cache::iter) lists entries so that its
/// back end is the first candidate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Policy {
    /// Least recently used: a hit moves the entry to the front of one recency list, and the
    /// entry at the back is evicted. Exact, simple, and the best choice when recent use
    /// predicts reuse; a scan of keys used once flushes it.
    ///
    /// Order: [`iter`](crate::Cache::iter) runs from the most to the least recently used;
    /// the least recently used is evicted first.
    #[default]
    Lru,
    /// S3-FIFO (Yang et al., "FIFO queues are all you need for cache eviction", SOSP 2023):
    /// a small FIFO queue (a hundredth of the byte budget, where the paper has a tenth), a
    /// main FIFO queue, and a ghost queue of the hashes of entries recently evicted from the
    /// small one. An unbounded cache, kept to a budget from outside through
    /// [`SegmentedCache::evict_one`](crate::SegmentedCache::evict_one), gives the small queue a
    /// hundredth of the bytes it holds.
    ///
    /// A new key enters the small queue, or the main one if its hash is a ghost (it was
    /// evicted recently, so this is its second use). A hit only raises the entry's counter
    /// (0 to 3): no list is touched, though at 100,000 entries a hit measured hardly faster
    /// than LRU's, 0.98x (the lookup's cache misses dominate; `docs/performance.md`). To evict,
    /// the cache takes the tail of the main queue if the main queue holds more than its share
    /// (99%) or the small queue is empty, and the tail of the small queue otherwise:
    ///
    /// - a small-queue tail that was hit since it arrived moves to the main queue (counter
    ///   reset); one that was not is evicted and its hash becomes a ghost;
    /// - a main-queue tail that was hit goes back to the head with its counter lowered by one;
    ///   one whose counter is 0 is evicted.
    ///
    /// Keys used once (a scan) pass through the small queue without displacing the main
    /// queue. Each operation is O(1) amortised: an entry is moved back to the head at most
    /// once per hit it received, as the counter pays for it. The ghost queue holds at most half
    /// as many hashes as the cache holds entries (the paper: as many as the main queue), about
    /// 13 bytes each.
    ///
    /// Both sizes were chosen on `examples/hit_ratio.rs`: against the paper's, they gain 0.5
    /// to 1.1 points on Zipf traces and keep 81.7% of a loop 10% over capacity instead of 76%,
    /// which puts this cache at or above `quick_cache` on every Zipf trace there.
    ///
    /// Order: [`iter`](crate::Cache::iter) lists the main queue from head to tail, then the
    /// small queue from head to tail. What is evicted next depends on the counters as well as
    /// this order, so the back of `iter` is where eviction starts looking, not necessarily what
    /// it takes.
    S3Fifo,
}
