//! Where a cache reads the time, so that tests can move it by hand.

use std::time::Instant;

/// A source of [`Instant`]s, consulted to decide whether an entry's deadline has passed.
///
/// The cache asks the clock only for entries that carry a deadline (see
/// [`Cache::add_with_expiry`](crate::Cache::add_with_expiry)), so a cache that never uses expiry
/// never reads the time. Any `Fn() -> Instant + Send + Sync + 'static` is a clock; that is how a
/// test, or a runtime with its own notion of time, takes over:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::{Duration, Instant};
/// use geecache_lru::Cache;
///
/// let start = Instant::now();
/// let now = Arc::new(Mutex::new(start));
/// let mut cache = Cache::<String, String>::new(0);
/// let reading = Arc::clone(&now);
/// cache.set_clock(move || *reading.lock().unwrap());
///
/// cache.add_with_expiry("k".into(), "v".into(), start + Duration::from_secs(5));
/// assert!(cache.get("k").is_some());
/// *now.lock().unwrap() += Duration::from_secs(5); // the deadline itself is already too late
/// assert!(cache.get("k").is_none());
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The operating system's monotonic clock, [`Instant::now`]; the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

// `Fn` is fundamental, so this cannot overlap with the impl for `SystemClock`.
impl<F: Fn() -> Instant + Send + Sync + 'static> Clock for F {
    fn now(&self) -> Instant {
        self()
    }
}
