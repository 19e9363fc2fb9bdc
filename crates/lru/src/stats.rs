//! Counters a cache keeps about itself.

/// A snapshot of a cache's counters.
///
/// `hits` and `misses` count [`get`](crate::Cache::get) calls (not `peek`); `evictions` counts
/// entries pushed out by the byte budget (or by
/// [`SegmentedCache::evict_one`](crate::SegmentedCache::evict_one)); `expirations` counts entries
/// dropped because their deadline had passed. `bytes` and `entries` are the current totals,
/// expired-but-not-yet-dropped entries included.
///
/// ```
/// use geecache_lru::{Cache, CacheStats};
///
/// let mut cache = Cache::<String, String>::new(0);
/// cache.add("k".into(), "v".into());
/// cache.get("k");
/// cache.get("nope");
/// assert_eq!(
///     cache.stats(),
///     CacheStats { hits: 1, misses: 1, bytes: 2, entries: 1, ..CacheStats::default() }
/// );
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found a live entry.
    pub hits: u64,
    /// Lookups that found nothing, or an expired entry.
    pub misses: u64,
    /// Entries removed to respect the byte budget.
    pub evictions: u64,
    /// Entries removed because their deadline had passed.
    pub expirations: u64,
    /// Bytes held, by the cache's weigher.
    pub bytes: usize,
    /// Entries held.
    pub entries: usize,
}

impl CacheStats {
    /// `hits / (hits + misses)`, or 0 before the first lookup.
    #[must_use]
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            // Precision loss past 2^53 lookups does not matter for a ratio.
            #[allow(clippy::cast_precision_loss)]
            let ratio = self.hits as f64 / lookups as f64;
            ratio
        }
    }
}
