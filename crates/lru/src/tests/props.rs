//! Model-based property tests: random operation sequences applied to the real caches and to
//! [`Model`], compared after every step, with every invariant checked after every step.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::model::{Entry, Model};
use crate::{Cache, Clock, SegmentedCache};

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
    /// Key, value length, time to live in ms (0: expired on arrival).
    AddWithExpiry(usize, usize, u64),
    Get(usize),
    Peek(usize),
    Remove(usize),
    RemoveOldest,
    EvictOne,
    Purge,
    Advance(u64),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    prop_oneof![
        6 => (key.clone(), 0..12usize).prop_map(|(k, n)| Op::Add(k, n)),
        3 => (key.clone(), 0..12usize, 0..4u64).prop_map(|(k, n, t)| Op::AddWithExpiry(k, n, t)),
        6 => key.clone().prop_map(Op::Get),
        2 => key.clone().prop_map(Op::Peek),
        2 => key.prop_map(Op::Remove),
        1 => Just(Op::RemoveOldest),
        1 => Just(Op::EvictOne),
        1 => Just(Op::Purge),
        2 => (1..3u64).prop_map(Op::Advance),
        1 => Just(Op::Clear),
    ]
}

fn value(len: usize) -> String {
    "v".repeat(len)
}

fn snapshot(cache: &Cache<String, String>) -> Vec<Entry> {
    cache
        .iter()
        .zip(cache.deadlines())
        .map(|((k, v), deadline)| Entry {
            key: k.clone(),
            value: v.clone(),
            deadline,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn cache_matches_model(
        max_bytes in prop_oneof![Just(0usize), 1..40usize],
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let clock = ManualClock::new();
        let mut cache = Cache::<String, String>::new(max_bytes);
        cache.set_clock(clock.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        cache.set_on_evicted(move |k, v| log.lock().unwrap().push((k, v)));
        let mut model = Model::new(max_bytes);

        for op in ops {
            let now = clock.now();
            match op {
                Op::Add(k, n) => prop_assert_eq!(
                    cache.add(KEYS[k].to_owned(), value(n)),
                    model.add(KEYS[k], value(n), None, now)
                ),
                Op::AddWithExpiry(k, n, ttl) => {
                    let deadline = now + Duration::from_millis(ttl);
                    prop_assert_eq!(
                        cache.add_with_expiry(KEYS[k].to_owned(), value(n), deadline),
                        model.add(KEYS[k], value(n), Some(deadline), now)
                    );
                }
                Op::Get(k) => prop_assert_eq!(cache.get(KEYS[k]).cloned(), model.get(KEYS[k], now)),
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
            }
            if let Err(broken) = cache.validate() {
                return Err(TestCaseError::fail(broken));
            }
            prop_assert_eq!(snapshot(&cache), model.entries.clone());
            prop_assert_eq!(cache.stats(), model.stats());
            prop_assert_eq!(cache.len(), model.entries.len());
            prop_assert_eq!(cache.bytes(), model.bytes());
            prop_assert_eq!(&*seen.lock().unwrap(), &model.evicted);
        }
    }

    #[test]
    fn segmented_matches_per_segment_models(
        segments in prop_oneof![Just(1usize), Just(2), Just(4)],
        max_bytes in prop_oneof![Just(0usize), 4..60usize],
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let clock = ManualClock::new();
        let cache = SegmentedCache::<String, String>::builder(max_bytes)
            .segments(segments)
            .clock(clock.clone())
            .build()
            .unwrap();
        let mut models: Vec<Model> = (0..segments)
            .map(|i| Model::new(cache.with_segment(i, Cache::max_bytes)))
            .collect();
        let seg = |k: usize| cache.segment_of(KEYS[k]);

        for op in ops {
            let now = clock.now();
            match op {
                Op::Add(k, n) => {
                    cache.add(KEYS[k].to_owned(), value(n));
                    models[seg(k)].add(KEYS[k], value(n), None, now);
                }
                Op::AddWithExpiry(k, n, ttl) => {
                    let deadline = now + Duration::from_millis(ttl);
                    cache.add_with_expiry(KEYS[k].to_owned(), value(n), deadline);
                    models[seg(k)].add(KEYS[k], value(n), Some(deadline), now);
                }
                Op::Get(k) => prop_assert_eq!(cache.get(KEYS[k]), models[seg(k)].get(KEYS[k], now)),
                Op::Peek(k) => prop_assert_eq!(cache.peek(KEYS[k]), models[seg(k)].peek(KEYS[k], now)),
                Op::Remove(k) => prop_assert_eq!(cache.remove(KEYS[k]), models[seg(k)].remove(KEYS[k], now)),
                Op::RemoveOldest | Op::EvictOne => {
                    // The fullest segment by bytes; on a tie the last one, as `max_by_key` does.
                    let fullest = (0..segments).max_by_key(|&i| models[i].bytes()).unwrap();
                    let expected = models[fullest]
                        .evict_lru()
                        .or_else(|| models.iter_mut().find_map(Model::evict_lru));
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
            }
            if let Err(broken) = cache.validate() {
                return Err(TestCaseError::fail(broken));
            }
            for (i, model) in models.iter().enumerate() {
                prop_assert_eq!(cache.with_segment(i, snapshot), model.entries.clone(), "segment {}", i);
            }
            let stats = cache.stats();
            prop_assert_eq!(stats.hits, models.iter().map(|m| m.stats().hits).sum::<u64>());
            prop_assert_eq!(stats.misses, models.iter().map(|m| m.stats().misses).sum::<u64>());
            prop_assert_eq!(stats.evictions, models.iter().map(|m| m.stats().evictions).sum::<u64>());
            prop_assert_eq!(stats.expirations, models.iter().map(|m| m.stats().expirations).sum::<u64>());
            prop_assert_eq!(stats.bytes, models.iter().map(Model::bytes).sum::<usize>());
            prop_assert_eq!(cache.len(), models.iter().map(|m| m.entries.len()).sum::<usize>());
            prop_assert!(max_bytes == 0 || cache.bytes() <= max_bytes);
        }
    }
}
