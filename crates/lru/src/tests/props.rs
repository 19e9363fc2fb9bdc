//! Model-based property tests: random operation sequences applied to the real caches and to
//! [`Model`], compared after every step, with every invariant checked after every step.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::model::{Entry, Model};
use crate::{Cache, Clock, Policy, SegmentedCache};

/// Keys of different lengths, so that weights differ; few enough that operations collide.
const KEYS: &[&str] = &[
    "a",
    "bb",
    "ccc",
    "dddd",
    "eeeee",
    "f",
    "gg",
    "hhhhhhh",
    "iiiiiiiii",
    "j10",
];

/// A clock the test moves by hand; never the wall clock.
#[derive(Clone)]
pub(super) struct ManualClock {
    base: Instant,
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    pub(super) fn new() -> Self {
        ManualClock {
            base: Instant::now(),
            millis: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(super) fn advance(&self, millis: u64) {
        self.millis.fetch_add(millis, Ordering::Relaxed);
    }

    pub(super) fn at(&self, millis: u64) -> Instant {
        self.base + Duration::from_millis(millis)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.at(self.millis.load(Ordering::Relaxed))
    }
}

#[derive(Clone, Debug)]
enum Op {
    Add(usize, usize),
    /// Key, value length, time to live in ms (0: expired on arrival) and in nanoseconds on top,
    /// so that a deadline read back is checked to the nanosecond.
    AddWithExpiry(usize, usize, u64, u32),
    Get(usize),
    /// `get_with_expiry` (the segmented `get_with_expiry`, or `get_map_with_expiry`).
    GetWithExpiry(usize),
    Peek(usize),
    Remove(usize),
    RemoveOldest,
    EvictOne,
    Purge,
    Advance(u64),
    Clear,
    /// `get_mut` (or the segmented `update`) and a write of a value of this length.
    GetMut(usize, usize),
    GetOrInsert(usize, usize),
    /// `try_get_or_insert_with` whose loader fails.
    TryGetOrInsertFails(usize),
    ContainsKey(usize),
    /// Keep the keys whose bit is set.
    Retain(u16),
    SetMaxBytes(usize),
    /// Compare `keys()`/`values()` (or the segmented `keys()`/`snapshot()`) with the model.
    Iterate,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    prop_oneof![
        6 => (key.clone(), 0..12usize).prop_map(|(k, n)| Op::Add(k, n)),
        3 => (key.clone(), 0..12usize, 0..4u64, prop_oneof![Just(0u32), 1..1_000_000u32])
            .prop_map(|(k, n, t, ns)| Op::AddWithExpiry(k, n, t, ns)),
        6 => key.clone().prop_map(Op::Get),
        3 => key.clone().prop_map(Op::GetWithExpiry),
        2 => key.clone().prop_map(Op::Peek),
        2 => key.clone().prop_map(Op::Remove),
        1 => Just(Op::RemoveOldest),
        1 => Just(Op::EvictOne),
        1 => Just(Op::Purge),
        2 => (1..3u64).prop_map(Op::Advance),
        1 => Just(Op::Clear),
        3 => (key.clone(), 0..14usize).prop_map(|(k, n)| Op::GetMut(k, n)),
        3 => (key.clone(), 0..12usize).prop_map(|(k, n)| Op::GetOrInsert(k, n)),
        1 => key.clone().prop_map(Op::TryGetOrInsertFails),
        1 => key.prop_map(Op::ContainsKey),
        1 => any::<u16>().prop_map(Op::Retain),
        1 => prop_oneof![Just(0usize), 1..50usize].prop_map(Op::SetMaxBytes),
        1 => Just(Op::Iterate),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![Just(Policy::Lru), Just(Policy::S3Fifo)]
}

fn kept(mask: u16) -> impl Fn(&str) -> bool {
    move |key| {
        KEYS.iter()
            .position(|k| *k == key)
            .is_some_and(|i| mask & (1 << i) != 0)
    }
}

fn value(len: usize) -> String {
    "v".repeat(len)
}

/// The cache's entries as the model lists them; the deadlines as the public
/// `iter_with_expiry` reads them back.
fn snapshot(cache: &Cache<String, String>) -> Vec<Entry> {
    cache
        .iter_with_expiry()
        .zip(cache.entry_meta())
        .map(|((k, v, deadline), (_, freq, small))| Entry {
            key: k.clone(),
            value: v.clone(),
            deadline,
            freq,
            small,
        })
        .collect()
}

fn deadline(now: Instant, ttl_ms: u64, nanos: u32) -> Instant {
    now + Duration::from_millis(ttl_ms) + Duration::from_nanos(u64::from(nanos))
}

/// The model's ghost keys as the cache remembers them: hashed.
fn ghost_hashes(cache: &Cache<String, String>, model: &Model) -> Vec<u64> {
    model
        .ghosts()
        .iter()
        .map(|k| cache.hasher().hash_one(k.as_str()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn cache_matches_model(
        policy in policy(),
        max_bytes in prop_oneof![Just(0usize), 1..40usize],
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let clock = ManualClock::new();
        let mut cache = Cache::<String, String>::with_policy(max_bytes, policy);
        cache.set_clock(clock.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        cache.set_on_evicted(move |k, v| log.lock().unwrap().push((k, v)));
        let mut model = Model::new(max_bytes, policy);

        for op in ops {
            let now = clock.now();
            match op {
                Op::Add(k, n) => prop_assert_eq!(
                    cache.add(KEYS[k].to_owned(), value(n)),
                    model.add(KEYS[k], value(n), None, now)
                ),
                Op::AddWithExpiry(k, n, ttl, ns) => {
                    let deadline = deadline(now, ttl, ns);
                    prop_assert_eq!(
                        cache.add_with_expiry(KEYS[k].to_owned(), value(n), deadline),
                        model.add(KEYS[k], value(n), Some(deadline), now)
                    );
                }
                Op::Get(k) => prop_assert_eq!(cache.get(KEYS[k]).cloned(), model.get(KEYS[k], now)),
                Op::GetWithExpiry(k) => {
                    let got = cache.get_with_expiry(KEYS[k]).map(|(v, at)| (v.clone(), at));
                    // A get changes no deadline: the model's entry after it has the one expected.
                    let value = model.get(KEYS[k], now);
                    let expected = value.and_then(|_| model.peek_with_expiry(KEYS[k], now));
                    prop_assert_eq!(got, expected);
                }
                Op::Peek(k) => prop_assert_eq!(cache.peek(KEYS[k]).cloned(), model.peek(KEYS[k], now)),
                Op::Remove(k) => prop_assert_eq!(cache.remove(KEYS[k]), model.remove(KEYS[k], now)),
                Op::RemoveOldest | Op::EvictOne => {
                    prop_assert_eq!(cache.remove_oldest(), model.remove_oldest(now));
                }
                Op::Purge => prop_assert_eq!(cache.purge_expired(now), model.purge_expired(now)),
                Op::Advance(ms) => clock.advance(ms),
                Op::Clear => {
                    cache.clear();
                    model.clear();
                }
                Op::GetMut(k, n) => {
                    let found = match cache.get_mut(KEYS[k]) {
                        Some(mut v) => {
                            *v = value(n);
                            true
                        }
                        None => false,
                    };
                    prop_assert_eq!(found, model.update(KEYS[k], value(n), now));
                }
                Op::GetOrInsert(k, n) => prop_assert_eq!(
                    cache.get_or_insert_with(KEYS[k].to_owned(), || value(n)).cloned(),
                    model.get_or_insert(KEYS[k], value(n), now)
                ),
                Op::TryGetOrInsertFails(k) => {
                    let got = cache
                        .try_get_or_insert_with(KEYS[k].to_owned(), || Err("load failed"))
                        .map(|v| v.cloned());
                    prop_assert_eq!(got, model.get(KEYS[k], now).map(Some).ok_or("load failed"));
                }
                Op::ContainsKey(k) => {
                    prop_assert_eq!(cache.contains_key(KEYS[k]), model.peek(KEYS[k], now).is_some());
                }
                Op::Retain(mask) => {
                    let keep = kept(mask);
                    cache.retain(|k, _| keep(k));
                    model.retain(keep, now);
                }
                Op::SetMaxBytes(n) => {
                    cache.set_max_bytes(n);
                    model.set_max_bytes(n);
                }
                Op::Iterate => {
                    let entries = model.entries();
                    let keys: Vec<&String> = entries.iter().map(|e| &e.key).collect();
                    let values: Vec<&String> = entries.iter().map(|e| &e.value).collect();
                    prop_assert_eq!(cache.keys().collect::<Vec<_>>(), keys);
                    prop_assert_eq!(cache.values().collect::<Vec<_>>(), values);
                    let backwards: Vec<&String> = cache.keys().rev().collect();
                    prop_assert_eq!(backwards.len(), cache.len());
                }
            }
            if let Err(broken) = cache.validate() {
                return Err(TestCaseError::fail(broken));
            }
            prop_assert_eq!(snapshot(&cache), model.entries());
            // After the step: `Advance` has moved the clock.
            let now = clock.now();
            for key in KEYS {
                let peeked = cache.peek_with_expiry(*key).map(|(v, at)| (v.clone(), at));
                prop_assert_eq!(peeked, model.peek_with_expiry(key, now), "{}", key);
            }
            prop_assert_eq!(cache.ghost_hashes(), ghost_hashes(&cache, &model));
            prop_assert_eq!(cache.stats(), model.stats());
            prop_assert_eq!(cache.len(), model.len());
            prop_assert_eq!(cache.bytes(), model.bytes());
            prop_assert_eq!(&*seen.lock().unwrap(), &model.evicted);
        }
    }

    #[test]
    fn segmented_matches_per_segment_models(
        policy in policy(),
        segments in prop_oneof![Just(1usize), Just(2), Just(4)],
        max_bytes in prop_oneof![Just(0usize), 4..60usize],
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let clock = ManualClock::new();
        let cache = SegmentedCache::<String, String>::builder(max_bytes)
            .segments(segments)
            .clock(clock.clone())
            .policy(policy)
            .build()
            .unwrap();
        let mut models: Vec<Model> = (0..segments)
            .map(|i| Model::new(cache.with_segment(i, Cache::max_bytes), policy))
            .collect();
        let seg = |k: usize| cache.segment_of(KEYS[k]);

        for op in ops {
            let now = clock.now();
            match op {
                Op::Add(k, n) => {
                    cache.add(KEYS[k].to_owned(), value(n));
                    models[seg(k)].add(KEYS[k], value(n), None, now);
                }
                Op::AddWithExpiry(k, n, ttl, ns) => {
                    let deadline = deadline(now, ttl, ns);
                    cache.add_with_expiry(KEYS[k].to_owned(), value(n), deadline);
                    models[seg(k)].add(KEYS[k], value(n), Some(deadline), now);
                }
                Op::Get(k) => prop_assert_eq!(cache.get(KEYS[k]), models[seg(k)].get(KEYS[k], now)),
                Op::GetWithExpiry(k) => {
                    // Both spellings, on alternate keys: the clone and the closure.
                    let got = if k % 2 == 0 {
                        cache.get_with_expiry(KEYS[k])
                    } else {
                        cache.get_map_with_expiry(KEYS[k], |v, at| (v.clone(), at))
                    };
                    let model = &mut models[seg(k)];
                    let value = model.get(KEYS[k], now);
                    let expected = value.and_then(|_| model.peek_with_expiry(KEYS[k], now));
                    prop_assert_eq!(got, expected);
                }
                Op::Peek(k) => prop_assert_eq!(cache.peek(KEYS[k]), models[seg(k)].peek(KEYS[k], now)),
                Op::Remove(k) => prop_assert_eq!(cache.remove(KEYS[k]), models[seg(k)].remove(KEYS[k], now)),
                Op::RemoveOldest | Op::EvictOne => {
                    // The fullest segment by bytes; on a tie the last one, as `max_by_key` does.
                    let fullest = (0..segments).max_by_key(|&i| models[i].bytes()).unwrap();
                    let expected = models[fullest]
                        .evict_next()
                        .or_else(|| models.iter_mut().find_map(Model::evict_next));
                    prop_assert_eq!(cache.evict_one(), expected);
                }
                Op::Purge => prop_assert_eq!(
                    cache.purge_expired(now),
                    models.iter_mut().map(|m| m.purge_expired(now)).sum::<usize>()
                ),
                Op::Advance(ms) => clock.advance(ms),
                Op::Clear => {
                    cache.clear();
                    models.iter_mut().for_each(Model::clear);
                }
                Op::GetMut(k, n) => {
                    let written = cache.update(KEYS[k], |v| *v = value(n)).is_some();
                    prop_assert_eq!(written, models[seg(k)].update(KEYS[k], value(n), now));
                }
                Op::GetOrInsert(k, n) => prop_assert_eq!(
                    cache.get_or_insert_with(KEYS[k].to_owned(), || value(n)),
                    models[seg(k)].get_or_insert(KEYS[k], value(n), now)
                ),
                Op::TryGetOrInsertFails(k) => {
                    // The segmented cache has no fallible loader: a lookup is the same model step.
                    prop_assert_eq!(cache.get(KEYS[k]), models[seg(k)].get(KEYS[k], now));
                }
                Op::ContainsKey(k) => prop_assert_eq!(
                    cache.contains_key(KEYS[k]),
                    models[seg(k)].peek(KEYS[k], now).is_some()
                ),
                Op::Retain(mask) => {
                    let keep = kept(mask);
                    cache.retain(|k, _| keep(k));
                    for model in &mut models {
                        model.retain(&keep, now);
                    }
                }
                Op::SetMaxBytes(n) => {
                    let result = cache.set_max_bytes(n);
                    prop_assert_eq!(result.is_ok(), n == 0 || n >= segments);
                    if result.is_ok() {
                        for (i, model) in models.iter_mut().enumerate() {
                            model.set_max_bytes(cache.with_segment(i, Cache::max_bytes));
                        }
                    }
                }
                Op::Iterate => {
                    let expected: Vec<(String, String)> = (0..segments)
                        .flat_map(|i| models[i].entries())
                        .map(|e| (e.key, e.value))
                        .collect();
                    prop_assert_eq!(cache.snapshot(), expected.clone());
                    prop_assert_eq!(
                        cache.keys(),
                        expected.into_iter().map(|(k, _)| k).collect::<Vec<_>>()
                    );
                }
            }
            if let Err(broken) = cache.validate() {
                return Err(TestCaseError::fail(broken));
            }
            let with_deadlines: Vec<(String, String, Option<Instant>)> = models
                .iter()
                .flat_map(Model::entries)
                .map(|e| (e.key, e.value, e.deadline))
                .collect();
            prop_assert_eq!(cache.snapshot_with_expiry(), with_deadlines);
            let now = clock.now();
            for (k, key) in KEYS.iter().enumerate() {
                let expected = models[seg(k)].peek_with_expiry(key, now);
                prop_assert_eq!(cache.peek_with_expiry(*key), expected, "{}", key);
            }
            for (i, model) in models.iter().enumerate() {
                prop_assert_eq!(cache.with_segment(i, snapshot), model.entries(), "segment {}", i);
                let ghosts = cache.with_segment(i, |c| (c.ghost_hashes(), ghost_hashes(c, model)));
                prop_assert_eq!(ghosts.0, ghosts.1, "segment {} ghosts", i);
            }
            let stats = cache.stats();
            prop_assert_eq!(stats.hits, models.iter().map(|m| m.stats().hits).sum::<u64>());
            prop_assert_eq!(stats.misses, models.iter().map(|m| m.stats().misses).sum::<u64>());
            prop_assert_eq!(stats.evictions, models.iter().map(|m| m.stats().evictions).sum::<u64>());
            prop_assert_eq!(stats.expirations, models.iter().map(|m| m.stats().expirations).sum::<u64>());
            prop_assert_eq!(stats.bytes, models.iter().map(Model::bytes).sum::<usize>());
            prop_assert_eq!(cache.len(), models.iter().map(Model::len).sum::<usize>());
            prop_assert!(cache.max_bytes() == 0 || cache.bytes() <= cache.max_bytes());
        }
    }
}
