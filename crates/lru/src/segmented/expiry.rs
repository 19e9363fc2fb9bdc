//! Reading entries' deadlines back with their values, under each segment's lock: the
//! [`Cache`](crate::Cache) methods of the same names, for the sharded cache.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::SegmentedCache;
use crate::Weigher;

impl<K: Hash + Eq, V, W: Weigher<K, V>> SegmentedCache<K, V, W> {
    /// [`get`](SegmentedCache::get), also returning the entry's deadline: the `Instant` given to
    /// [`add_with_expiry`](SegmentedCache::add_with_expiry), or `None` for none. See
    /// [`Cache::get_with_expiry`](crate::Cache::get_with_expiry) for why an `Instant` and why
    /// from the same lookup.
    ///
    /// ```
    /// use geecache_lru::SegmentedCache;
    /// use std::time::{Duration, Instant};
    ///
    /// let cache = SegmentedCache::<String, String>::builder(1 << 10).build()?;
    /// let deadline = Instant::now() + Duration::from_secs(60);
    /// cache.add_with_expiry("k".into(), "v".into(), deadline);
    /// assert_eq!(cache.get_with_expiry("k"), Some(("v".into(), Some(deadline))));
    /// assert_eq!(cache.peek_with_expiry("k"), Some(("v".into(), Some(deadline))));
    /// assert_eq!(cache.get_with_expiry("absent"), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_with_expiry<Q>(&self, key: &Q) -> Option<(V, Option<Instant>)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.get_map_with_expiry(key, |value, deadline| (value.clone(), deadline))
    }

    /// [`get_map`](SegmentedCache::get_map) whose `f` also receives the entry's deadline (see
    /// [`get_with_expiry`](SegmentedCache::get_with_expiry)); a caller that keeps a time to
    /// live with each value reads it here instead of storing a second copy in the value.
    ///
    /// ```
    /// use geecache_lru::SegmentedCache;
    /// use std::time::{Duration, Instant};
    ///
    /// let cache = SegmentedCache::<String, Vec<u8>>::builder(1 << 10).build()?;
    /// let now = Instant::now();
    /// cache.add_with_expiry("k".into(), vec![1, 2, 3], now + Duration::from_secs(5));
    /// let ttl = cache.get_map_with_expiry("k", |v, at| (v.len(), at.map(|at| at - now)));
    /// assert_eq!(ttl, Some((3, Some(Duration::from_secs(5)))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_map_with_expiry<Q, R>(
        &self,
        key: &Q,
        f: impl FnOnce(&V, Option<Instant>) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let segment = self.segment(hash);
        let mut cache = segment.lock();
        let Some(i) = cache.access(hash, key) else {
            segment.publish(&cache);
            return None;
        };
        // A hit changes nothing but the hit count: one store instead of six.
        segment.hits.store(cache.hits(), Relaxed);
        let (value, deadline) = cache.read_with_expiry(i)?;
        Some(f(value, deadline))
    }

    /// [`peek`](SegmentedCache::peek), also returning the entry's deadline; see
    /// [`get_with_expiry`](SegmentedCache::get_with_expiry).
    pub fn peek_with_expiry<Q>(&self, key: &Q) -> Option<(V, Option<Instant>)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let hash = self.hasher.hash_one(key);
        let cache = self.segment(hash).lock();
        let (value, deadline) = cache.peek_with_expiry_hashed(hash, key)?;
        Some((value.clone(), deadline))
    }

    /// [`snapshot`](SegmentedCache::snapshot) with each entry's deadline (see
    /// [`get_with_expiry`](SegmentedCache::get_with_expiry)), expired entries included.
    ///
    /// ```
    /// use geecache_lru::SegmentedCache;
    /// use std::time::{Duration, Instant};
    ///
    /// let cache = SegmentedCache::<u64, u64>::builder(0).build()?;
    /// let deadline = Instant::now() + Duration::from_secs(1);
    /// cache.add_with_expiry(1, 1, deadline);
    /// cache.add(2, 4);
    /// let mut entries = cache.snapshot_with_expiry();
    /// entries.sort();
    /// assert_eq!(entries, [(1, 1, Some(deadline)), (2, 4, None)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn snapshot_with_expiry(&self) -> Vec<(K, V, Option<Instant>)>
    where
        K: Clone,
        V: Clone,
    {
        let mut entries = Vec::with_capacity(self.len());
        for segment in &self.segments[..] {
            let cache = segment.lock();
            let cloned = cache.iter_with_expiry();
            entries.extend(cloned.map(|(k, v, at)| (k.clone(), v.clone(), at)));
        }
        entries
    }
}
