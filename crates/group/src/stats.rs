use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A snapshot of a group's counters, as groupcache counts them plus per-cache figures.
///
/// Every field is a total since the group was built. The counters are read one by one without a
/// common lock, so a snapshot taken under load may be off by the requests in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Every get, from clients and from peers.
    pub gets: u64,
    /// Gets answered from the main or the hot cache, including hits found inside a flight.
    pub cache_hits: u64,
    /// Values fetched from the owning peer.
    pub peer_loads: u64,
    /// Peer fetches that failed (error, timeout, malformed reply) and fell back to a local load.
    pub peer_errors: u64,
    /// Gets that missed the cache (`gets - cache hits` outside flights).
    pub loads: u64,
    /// Flights actually run after singleflight collapsed concurrent loads: one per flight, remote
    /// or local (a remote flight that falls back also runs a local flight).
    pub loads_deduped: u64,
    /// Successful calls of the local loader.
    pub local_loads: u64,
    /// Failed calls of the local loader (not-found answers excluded).
    pub local_load_errors: u64,
    /// Gets that ended in "not found", from the loader or from a peer.
    pub not_found: u64,
    /// Gets that arrived from a peer.
    pub server_requests: u64,
    /// The main cache: values this node loaded itself.
    pub main: CacheStats,
    /// The hot cache: copies of values owned by other nodes.
    pub hot: CacheStats,
}

/// Figures for one of a group's two caches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups that found a live value.
    pub hits: u64,
    /// Entries dropped to keep the group within its byte budget.
    pub evictions: u64,
    /// Entries dropped because their time to live ran out.
    pub expirations: u64,
    /// Bytes held (key bytes plus value bytes).
    pub bytes: usize,
    /// Entries held.
    pub items: usize,
}

impl CacheStats {
    pub(crate) fn from_lru(stats: geecache_lru::CacheStats) -> Self {
        CacheStats {
            hits: stats.hits,
            evictions: stats.evictions,
            expirations: stats.expirations,
            bytes: stats.bytes,
            items: stats.entries,
        }
    }
}

/// The live counters behind [`Stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) gets: Counter,
    pub(crate) flight_hits: Counter,
    pub(crate) peer_loads: Counter,
    pub(crate) peer_errors: Counter,
    pub(crate) loads: Counter,
    pub(crate) loads_deduped: Counter,
    pub(crate) local_loads: Counter,
    pub(crate) local_load_errors: Counter,
    pub(crate) not_found: Counter,
    pub(crate) server_requests: Counter,
}

const STRIPES: usize = 8;

/// A counter split over cache-line-sized stripes, one picked per thread.
///
/// Every get bumps `gets`. With one shared `AtomicU64`, two cores serving hits would pass that
/// cache line back and forth on every request, which costs more than the rest of the hit path;
/// striping keeps each thread on its own line and moves the summing to the rare reader.
#[derive(Default)]
pub(crate) struct Counter {
    stripes: [Stripe; STRIPES],
}

#[derive(Default)]
#[repr(align(128))] // 128, not 64: adjacent-line prefetch pairs lines on x86.
struct Stripe(AtomicU64);

impl Counter {
    pub(crate) fn incr(&self) {
        self.stripes[stripe()].0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}
