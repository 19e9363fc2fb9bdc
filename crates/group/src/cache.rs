//! The main and hot caches of a group, sharing one byte budget the groupcache way.

use std::time::{Duration, Instant};

use geecache_byteview::ByteView;
use geecache_lru::{Policy, SegmentedCache};

use crate::group::Source;

/// Which of the two caches a value is stored into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tier {
    /// Values this node owns (it loaded them itself).
    Main,
    /// Copies of values other nodes own, kept because they were asked for here.
    Hot,
}
use crate::key::Key;
use crate::rate::{Clock, Rate, RateCell};
use crate::stats::CacheStats;

/// A cached value and how often it is asked for.
///
/// The rate is the key's request rate at this node, moved on every hit in the main cache: the
/// owner sends it with the value, and the asking node keeps a hot copy when it is high
/// ([`crate::HotAdmission::Rate`]). Keeping it here rather than in a map of its own costs no
/// second lookup per request and goes with the entry when it is evicted; it costs 8 bytes per
/// entry (40 rather than 32), hot entries included, which never move theirs.
///
/// The value's deadline is not here: the cache keeps one to expire the entry (8 bytes in its
/// slot), and every read hands it back with the value ([`Cached`]). A copy here, as there was,
/// cost 16 bytes more per entry for nothing the cache's copy does not say.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) value: ByteView,
    pub(crate) rate: RateCell,
}

/// A value read out of the caches, with its deadline as the cache keeps it.
pub(crate) struct Cached {
    pub(crate) value: ByteView,
    pub(crate) expires: Option<Instant>,
    pub(crate) rate: RateCell,
}

impl Cached {
    /// Reads `entry` with the deadline its cache handed back beside it.
    fn new(entry: &Entry, expires: Option<Instant>) -> Self {
        Cached {
            value: entry.value.clone(),
            expires,
            rate: entry.rate.clone(),
        }
    }

    /// `entry`, taken, with its deadline.
    fn owned(entry: Entry, expires: Option<Instant>) -> Self {
        Cached {
            value: entry.value,
            expires,
            rate: entry.rate,
        }
    }

    /// The time left to live, or `None` for "no expiry". Reads the clock only when needed.
    ///
    /// The deadline is the `Instant` the value was stored with, to the nanosecond (the cache
    /// reads it back exactly; `geecache_lru::Cache::get_with_expiry`), so this is what a copy
    /// kept here would have said.
    pub(crate) fn ttl(&self) -> Option<Duration> {
        self.expires.map(|at| at.saturating_duration_since(now()))
    }
}

type Weigh = fn(&Key, &Entry) -> usize;
type WeighMissing = fn(&Key, &()) -> usize;

/// What a "not found" costs in the negative cache beyond its key: its deadline.
const MISSING_ENTRY_BYTES: usize = 16;

fn weigh_missing(key: &Key, _: &()) -> usize {
    key.len() + MISSING_ENTRY_BYTES
}

/// Groupcache counts key bytes plus value bytes; so do we by default, so budgets mean the same
/// thing.
fn weigh(key: &Key, entry: &Entry) -> usize {
    key.len() + entry.value.len()
}

/// What the cache budget ([`GroupBuilder::cache_bytes`](crate::GroupBuilder::cache_bytes))
/// counts of each entry.
///
/// With [`Payload`](Charge::Payload), the default, a budget means what it means in groupcache,
/// and the process holds more than it: each entry's bookkeeping, and what the allocator keeps.
/// With 1 KiB values the bookkeeping is about 15% more (`docs/operations.md`, "Sizing").
/// [`Memory`](Charge::Memory) counts it too, so the budget bounds the memory the caches take
/// (the allocator's free memory aside), at the price of holding fewer entries for the same
/// budget: 13% fewer at 1 KiB, more than half fewer below 100 bytes, where bookkeeping
/// outweighs values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Charge {
    /// Key bytes plus value bytes, as groupcache counts.
    #[default]
    Payload,
    /// Key bytes plus value bytes plus [`Charge::entry_overhead`] per entry.
    Memory,
}

/// What a cached value costs the allocator beyond its bytes: `Bytes`' shared header (24 bytes,
/// made the first time the value is cloned, which every cached value is: a hit clones it), and
/// for both blocks an allocator's header and rounding to 16 bytes (glibc: 8 bytes of header, and
/// 8 of rounding on average for the value).
const VALUE_ALLOCATION_BYTES: usize = 32 + 16;

impl Charge {
    /// The bytes charged for an entry beyond its key and value bytes under `policy`: none for
    /// [`Payload`](Charge::Payload); for [`Memory`](Charge::Memory), the cache's slot and
    /// table share (`SegmentedCache::entry_bytes`), and the value's allocation overhead
    /// (`Bytes`' shared header, allocator headers and rounding).
    ///
    /// ```
    /// use geecache_group::{Charge, Policy};
    ///
    /// assert_eq!(Charge::Payload.entry_overhead(Policy::Lru), 0);
    /// let lru = Charge::Memory.entry_overhead(Policy::Lru);
    /// assert!((100..300).contains(&lru), "{lru}");
    /// assert!(Charge::Memory.entry_overhead(Policy::S3Fifo) > lru);
    /// ```
    #[must_use]
    pub const fn entry_overhead(self, policy: Policy) -> usize {
        match self {
            Charge::Payload => 0,
            Charge::Memory => {
                SegmentedCache::<Key, Entry, Weigh>::entry_bytes(policy) + VALUE_ALLOCATION_BYTES
            }
        }
    }
}

/// The memory charge under LRU, computed once so the weigher is a plain function pointer like
/// the payload one: the hit path does not weigh, and an insert pays one addition.
const LRU_OVERHEAD: usize = Charge::Memory.entry_overhead(Policy::Lru);
const S3FIFO_OVERHEAD: usize = Charge::Memory.entry_overhead(Policy::S3Fifo);

fn weigh_memory_lru(key: &Key, entry: &Entry) -> usize {
    weigh(key, entry) + LRU_OVERHEAD
}

fn weigh_memory_s3fifo(key: &Key, entry: &Entry) -> usize {
    weigh(key, entry) + S3FIFO_OVERHEAD
}

/// The group's clock: tokio's, so tests can pause and advance it.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

pub(crate) struct Caches {
    main: SegmentedCache<Key, Entry, Weigh>,
    hot: SegmentedCache<Key, Entry, Weigh>,
    /// Keys the source said it does not have, until a deadline (negative caching). Apart from
    /// main and hot, with a budget of its own (a sixteenth of theirs, at least 64 KiB), so a
    /// flood of missing keys cannot push out values.
    missing: SegmentedCache<Key, (), WeighMissing>,
    /// Bytes for main and hot together; 0 means unbounded.
    max_bytes: usize,
    /// Hot may hold up to `main / hot_ratio` bytes before it is the one to shrink.
    hot_ratio: usize,
    /// The time the entries' rates count requests at.
    clock: Clock,
}

impl Caches {
    pub(crate) fn new(max_bytes: usize, hot_ratio: usize, policy: Policy, charge: Charge) -> Self {
        // The budget is shared, so only `enforce_budget`, which sees both caches, decides which
        // one gives up bytes; both caches are built unbounded for that, whatever the policy.
        // An S3-FIFO cache then sizes its small queue from what it holds, which is its share
        // of the budget. Giving it the group's budget instead (as was done) split that budget
        // over the 16 segments, and a segment refuses an entry heavier than its own share: no
        // value over a sixteenth of the budget was ever cached, where LRU caches any value up
        // to the whole budget. Fewer segments for small budgets would only move that line.
        let weigher: Weigh = match (charge, policy) {
            (Charge::Payload, _) => weigh,
            (Charge::Memory, Policy::S3Fifo) => weigh_memory_s3fifo,
            (Charge::Memory, _) => weigh_memory_lru,
        };
        let build = || {
            SegmentedCache::builder(0)
                .policy(policy)
                .weigher(weigher)
                .clock(now as fn() -> Instant)
                .build()
                .expect("the default segment count is a power of two")
        };
        let missing_budget = match max_bytes {
            0 => 0,
            bytes => (bytes / 16).max(64 << 10),
        };
        let missing = SegmentedCache::builder(missing_budget)
            .weigher(weigh_missing as WeighMissing)
            .clock(now as fn() -> Instant)
            .build()
            .expect("the default segment count is a power of two");
        Caches {
            main: build(),
            hot: build(),
            missing,
            max_bytes,
            hot_ratio,
            clock: Clock::start(),
        }
    }

    /// Main first, then hot. Hits are counted by the caches themselves. A main-cache hit
    /// counts a request in the entry's rate, at the precise time when `precise` (the rate
    /// goes to a peer), else at the time of the clock's hand (see [`Clock`]).
    pub(crate) fn get(&self, key: &str, precise: bool) -> Option<(Cached, Source)> {
        let key = key.as_bytes();
        // The time is taken before the segment's lock, not inside it, to keep the lock
        // short; two hits racing may then count out of order, which `Rate` allows for.
        let tick = match precise {
            true => self.clock.precise(),
            false => self.clock.coarse(),
        };
        let hit = self.main.get_map_with_expiry(key, |entry, expires| {
            entry.rate.hit(tick);
            Cached::new(entry, expires)
        });
        if let Some(cached) = hit {
            return Some((cached, Source::MainCache));
        }
        let hit = self.hot.get_map_with_expiry(key, Cached::new);
        hit.map(|cached| (cached, Source::HotCache))
    }

    /// Like `get`, without touching recency or hit counts; honours expiry (the caches' clock
    /// is [`now`], so their test is the one this would make).
    pub(crate) fn peek(&self, key: &str) -> Option<(Cached, Source)> {
        let key = key.as_bytes();
        let read = |cache: &SegmentedCache<Key, Entry, Weigh>| {
            let (entry, expires) = cache.peek_with_expiry(key)?;
            Some(Cached::owned(entry, expires))
        };
        if let Some(cached) = read(&self.main) {
            return Some((cached, Source::MainCache));
        }
        read(&self.hot).map(|cached| (cached, Source::HotCache))
    }

    /// Stores `value` until `expires`, as a key asked for once now.
    pub(crate) fn insert(&self, into: Tier, key: &str, value: ByteView, expires: Option<Instant>) {
        let entry = Entry {
            value,
            rate: RateCell::new(Rate::first(self.clock.precise())),
        };
        let key = Key::from(key);
        let cache = match into {
            Tier::Main => &self.main,
            Tier::Hot => &self.hot,
        };
        match expires {
            Some(deadline) => cache.add_with_expiry(key, entry, deadline),
            None => cache.add(key, entry),
        }
        self.enforce_budget();
    }

    pub(crate) fn remove(&self, key: &str) -> bool {
        let key = key.as_bytes();
        let main = self.main.remove(key).is_some();
        let hot = self.hot.remove(key).is_some();
        self.missing.remove(key);
        main || hot
    }

    /// Drops every entry, values and "not found"s alike; returns how many values went.
    pub(crate) fn clear(&self) -> usize {
        let values = self.main.len() + self.hot.len();
        self.main.clear();
        self.hot.clear();
        self.missing.clear();
        values
    }

    /// Remembers that the source has no value for `key`, until `deadline`.
    pub(crate) fn insert_missing(&self, key: &str, deadline: Instant) {
        self.missing.add_with_expiry(Key::from(key), (), deadline);
    }

    /// Whether the source said it has no value for `key`, and that answer is still fresh.
    pub(crate) fn is_missing(&self, key: &str) -> bool {
        self.missing.get(key.as_bytes()).is_some()
    }

    /// Every key and entry of the main cache, with its deadline.
    pub(crate) fn main_entries(&self) -> Vec<(String, Cached)> {
        (self.main.snapshot_with_expiry().into_iter())
            .filter_map(|(key, entry, expires)| {
                let key = std::str::from_utf8(key.as_bytes()).ok()?.to_owned();
                Some((key, Cached::owned(entry, expires)))
            })
            .collect()
    }

    /// Drops from the main cache every value whose key `keep` refuses; returns how many.
    pub(crate) fn drop_from_main(&self, keep: impl Fn(&str) -> bool) -> usize {
        let mut dropped = 0;
        self.main.retain(|key, _| {
            // Keys come from `&str`s (`insert`), so their bytes are UTF-8.
            let kept = std::str::from_utf8(key.as_bytes()).map_or(true, &keep);
            dropped += usize::from(!kept);
            kept
        });
        dropped
    }

    pub(crate) fn purge_expired(&self, now: Instant) -> usize {
        self.missing.purge_expired(now);
        self.main.purge_expired(now) + self.hot.purge_expired(now)
    }

    pub(crate) fn stats(&self) -> (CacheStats, CacheStats) {
        (
            CacheStats::from_lru(self.main.stats()),
            CacheStats::from_lru(self.hot.stats()),
        )
    }

    pub(crate) fn bytes(&self) -> usize {
        self.main.bytes() + self.hot.bytes()
    }

    /// Evicts until main + hot fit the budget: from hot while it holds more than its share
    /// (main / ratio), else from main. Each round removes an entry, so this ends.
    fn enforce_budget(&self) {
        if self.max_bytes == 0 {
            return;
        }
        loop {
            let (main, hot) = (self.main.bytes(), self.hot.bytes());
            if main + hot <= self.max_bytes {
                return;
            }
            let victim = if hot > main / self.hot_ratio {
                &self.hot
            } else {
                &self.main
            };
            if victim.evict_one().is_none() && self.main.evict_one().is_none() {
                // Both empty (another thread emptied them first): nothing left to do.
                return;
            }
        }
    }
}
