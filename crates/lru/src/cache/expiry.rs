//! Reading an entry's deadline back with its value: what a caller that keeps a time to live per
//! value needs instead of a second copy of the deadline in the value.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::time::Instant;

use super::Cache;
use crate::Weigher;

impl<K: Hash + Eq, V, W: Weigher<K, V>> Cache<K, V, W> {
    /// [`get`](Cache::get), also returning the entry's deadline: the `Instant` given to
    /// [`add_with_expiry`](Cache::add_with_expiry), or `None` for an entry added without one.
    ///
    /// # Why an `Instant`, and why with the value
    ///
    /// The deadline comes back in the form it went in, an absolute `Instant`, and not as a
    /// remaining `Duration` (moka hands its `Expiry` callbacks a `duration_until_expiry`;
    /// quick_cache has no per-entry expiry to read). A remaining time is relative to a reading
    /// of a clock, and the cache's [`Clock`](crate::Clock) need not be the caller's (a test
    /// clock, tokio's paused one): the caller subtracts its own `now` and gets what it
    /// expects. It comes from the same lookup as the value, not from a second method taking
    /// the key: that would hash and probe twice and, on the
    /// [`SegmentedCache`](crate::SegmentedCache), could pair a value with the deadline of the
    /// value that replaced it between two lock acquisitions. And it is a method of its own
    /// rather than a second argument to every `get`, so that callers that have no deadlines
    /// pay nothing for them.
    ///
    /// The cache stores deadlines as nanoseconds from the moment it was made, in 8 bytes; the
    /// `Instant` read back is the one given, to the nanosecond, for any deadline within 292
    /// years of that moment (one further away reads back as that bound).
    ///
    /// ```
    /// use geecache_lru::Cache;
    /// use std::time::{Duration, Instant};
    ///
    /// let mut cache = Cache::<String, String>::new(64);
    /// let deadline = Instant::now() + Duration::from_secs(30);
    /// cache.add_with_expiry("k".into(), "v".into(), deadline);
    /// cache.add("forever".into(), "v".into());
    ///
    /// let (value, expires) = cache.get_with_expiry("k").unwrap();
    /// assert_eq!((value.as_str(), expires), ("v", Some(deadline)));
    /// assert_eq!(cache.get_with_expiry("forever").map(|(_, at)| at), Some(None));
    /// assert_eq!(cache.peek_with_expiry("k").map(|(_, at)| at), Some(Some(deadline)));
    /// ```
    #[inline]
    pub fn get_with_expiry<Q>(&mut self, key: &Q) -> Option<(&V, Option<Instant>)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let i = self.access(hash, key)?;
        self.read_with_expiry(i)
    }

    /// [`peek`](Cache::peek), also returning the entry's deadline; see
    /// [`get_with_expiry`](Cache::get_with_expiry).
    #[inline]
    pub fn peek_with_expiry<Q>(&self, key: &Q) -> Option<(&V, Option<Instant>)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.peek_with_expiry_hashed(self.hasher.hash_one(key), key)
    }

    /// Entries with their deadlines (see [`get_with_expiry`](Cache::get_with_expiry)), in
    /// [`iter`](Cache::iter)'s order, expired ones included.
    ///
    /// ```
    /// use geecache_lru::Cache;
    /// use std::time::{Duration, Instant};
    ///
    /// let mut cache = Cache::<u32, u32>::new(0);
    /// let soon = Instant::now() + Duration::from_millis(1500);
    /// cache.add_with_expiry(1, 10, soon);
    /// cache.add(2, 20);
    /// let entries: Vec<_> = cache.iter_with_expiry().collect();
    /// assert_eq!(entries, [(&2, &20, None), (&1, &10, Some(soon))]);
    /// ```
    pub fn iter_with_expiry(
        &self,
    ) -> impl DoubleEndedIterator<Item = (&K, &V, Option<Instant>)> + ExactSizeIterator + '_ {
        let epoch = self.epoch;
        self.slots
            .iter()
            .map(move |(_, e)| (&e.key, &e.value, epoch.instant(e.deadline)))
    }
}
