//! `SegmentedBuilder`: the segment count, weigher, clock and policy of a `SegmentedCache`.

use super::*;

/// Configures a [`SegmentedCache`]; made by [`SegmentedCache::builder`].
///
/// ```
/// use geecache_lru::{BuildError, SegmentedCache};
///
/// // Count entries instead of bytes: every entry weighs 1.
/// let cache = SegmentedCache::<u64, u64>::builder(1024)
///     .segments(4)
///     .weigher(|_: &u64, _: &u64| 1)
///     .build()?;
/// assert_eq!(cache.segments(), 4);
///
/// let err = SegmentedCache::<u64, u64>::builder(1024).segments(3).build().unwrap_err();
/// assert!(matches!(err, BuildError::SegmentsNotPowerOfTwo { segments: 3 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct SegmentedBuilder<K, V, W = ByWeight> {
    pub(super) max_bytes: usize,
    pub(super) segments: usize,
    pub(super) weigher: W,
    pub(super) clock: Option<Arc<dyn Clock>>,
    pub(super) policy: Policy,
    // `fn(K, V)`: the builder holds no K or V, so it is Send + Sync whatever they are.
    pub(super) _types: PhantomData<fn(K, V)>,
}

impl<K, V, W> SegmentedBuilder<K, V, W> {
    /// The number of segments: a power of two, at most [`MAX_SEGMENTS`]. More segments mean
    /// less contention and a finer split of the budget (each segment gets `max_bytes / n`).
    pub fn segments(mut self, n: usize) -> Self {
        self.segments = n;
        self
    }

    /// Weighs entries with `weigher` instead of the current one.
    pub fn weigher<W2>(self, weigher: W2) -> SegmentedBuilder<K, V, W2> {
        SegmentedBuilder {
            max_bytes: self.max_bytes,
            segments: self.segments,
            weigher,
            clock: self.clock,
            policy: self.policy,
            _types: PhantomData,
        }
    }

    /// The eviction policy of every segment; [`Policy::Lru`] unless told otherwise.
    ///
    /// ```
    /// use geecache_lru::{Policy, SegmentedCache};
    ///
    /// let cache = SegmentedCache::<String, String>::builder(1 << 20)
    ///     .policy(Policy::S3Fifo)
    ///     .build()?;
    /// assert_eq!(cache.policy(), Policy::S3Fifo);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Reads the time from `clock` (shared by all segments) instead of [`Instant::now`].
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The cache, or why these settings cannot work.
    pub fn build(self) -> Result<SegmentedCache<K, V, W>, BuildError>
    where
        K: Hash + Eq,
        W: Weigher<K, V> + Clone,
    {
        let segments = self.segments;
        if segments == 0 || !segments.is_power_of_two() {
            return Err(BuildError::SegmentsNotPowerOfTwo { segments });
        }
        if segments > MAX_SEGMENTS {
            return Err(BuildError::TooManySegments {
                segments,
                max: MAX_SEGMENTS,
            });
        }
        if self.max_bytes != 0 && self.max_bytes < segments {
            return Err(BuildError::BudgetTooSmall {
                max_bytes: self.max_bytes,
                segments,
            });
        }
        Ok(self.assemble())
    }

    /// Builds from settings already checked.
    pub(super) fn assemble(self) -> SegmentedCache<K, V, W>
    where
        K: Hash + Eq,
        W: Weigher<K, V> + Clone,
    {
        let n = self.segments;
        let hasher = HashState::default();
        let segments = (0..n)
            .map(|i| {
                let budget = share(self.max_bytes, n, i);
                let mut cache =
                    Cache::with_hasher(budget, self.weigher.clone(), hasher.clone(), self.policy);
                if let Some(clock) = &self.clock {
                    cache.set_shared_clock(Arc::clone(clock));
                }
                Segment::new(cache)
            })
            .collect();
        SegmentedCache {
            segments,
            hasher,
            mask: n - 1,
            max_bytes: AtomicUsize::new(self.max_bytes),
            policy: self.policy,
        }
    }
}

/// Segment `i`'s share of `max_bytes` over `n` segments: the remainder is spread over the first
/// segments, so the shares add up to exactly `max_bytes`.
pub(super) fn share(max_bytes: usize, n: usize, i: usize) -> usize {
    max_bytes / n + usize::from(i < max_bytes % n)
}

impl<K, V, W: fmt::Debug> fmt::Debug for SegmentedBuilder<K, V, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentedBuilder")
            .field("max_bytes", &self.max_bytes)
            .field("segments", &self.segments)
            .field("weigher", &self.weigher)
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .field("policy", &self.policy)
            .finish()
    }
}
