//! Worked examples of each rule.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::props::ManualClock;

use crate::{BuildError, Cache, CacheStats, SegmentedCache, Weigh};

type Log = Arc<Mutex<Vec<(String, String)>>>;

fn logged(max_bytes: usize) -> (Cache<String, String>, Log) {
    let mut cache = Cache::new(max_bytes);
    let log = Log::default();
    let sink = Arc::clone(&log);
    cache.set_on_evicted(move |k, v| sink.lock().unwrap().push((k, v)));
    (cache, log)
}

fn keys(cache: &Cache<String, String>) -> Vec<&str> {
    cache.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn budget_evicts_least_recently_used_first() {
    let (mut cache, log) = logged(6); // three 2-byte entries
    for k in ["a", "b", "c"] {
        cache.add(k.into(), "1".into());
    }
    cache.get("a");
    cache.peek("b"); // does not save "b"
    cache.add("d".into(), "1".into());
    assert_eq!(keys(&cache), ["d", "a", "c"]);
    assert_eq!(*log.lock().unwrap(), [("b".to_owned(), "1".to_owned())]);
    cache.validate().unwrap();
}

#[test]
fn replacing_reweighs_and_may_evict_others() {
    let (mut cache, log) = logged(10);
    cache.add("a".into(), "1".into()); // 2
    cache.add("b".into(), "1".into()); // 2
    assert_eq!(cache.add("b".into(), "12345678".into()), Some("1".into())); // now 9
    assert_eq!(cache.bytes(), 9);
    assert_eq!(keys(&cache), ["b"]);
    assert_eq!(log.lock().unwrap().len(), 1);
    cache.validate().unwrap();
}

#[test]
fn oversized_entry_is_rejected_without_flushing() {
    // groupcache would empty the whole cache here and then drop the new entry too.
    let (mut cache, log) = logged(8);
    cache.add("a".into(), "1".into());
    cache.add("big".into(), "123456".into()); // 9 > 8
    assert_eq!(keys(&cache), ["a"]);
    assert_eq!(
        *log.lock().unwrap(),
        [("big".to_owned(), "123456".to_owned())]
    );
    assert_eq!(cache.stats().evictions, 1);
    // Replacing a key with an oversized value removes the old entry as well.
    assert_eq!(cache.add("a".into(), "123456789".into()), Some("1".into()));
    assert!(cache.is_empty());
    cache.validate().unwrap();
}

#[test]
fn zero_budget_is_unbounded() {
    let (mut cache, log) = logged(0);
    for i in 0..1000 {
        cache.add(format!("key{i}"), "x".repeat(100));
    }
    assert_eq!(cache.len(), 1000);
    assert!(log.lock().unwrap().is_empty());
}

#[test]
fn explicit_removal_does_not_call_the_callback() {
    let (mut cache, log) = logged(100);
    cache.add("a".into(), "1".into());
    cache.add("b".into(), "2".into());
    cache.add("c".into(), "3".into());
    assert_eq!(cache.remove("a"), Some("1".into()));
    assert_eq!(cache.remove_oldest(), Some(("b".into(), "2".into())));
    cache.clear();
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(cache.bytes(), 0);
    cache.validate().unwrap();
}

#[test]
fn freed_slots_are_reused() {
    // In steady state (insert one, evict one) the arena must not grow: the free list hands the
    // evicted slot to the next insert.
    let mut cache = Cache::<u64, u64>::new(16 * 10);
    for i in 0..10_000 {
        cache.add(i, i);
    }
    assert_eq!(cache.len(), 10);
    assert_eq!(cache.slots_allocated(), 11); // 10 held, 1 for the insert before its eviction
    cache.validate().unwrap();
}

#[test]
fn lookups_borrow_the_key() {
    let mut cache = Cache::<String, Vec<u8>>::new(0);
    cache.add("k".into(), vec![1, 2]);
    assert_eq!(cache.get("k"), Some(&vec![1, 2]));
    assert_eq!(cache.peek("k").map(Vec::len), Some(2));
    assert_eq!(cache.remove("k"), Some(vec![1, 2]));
}

#[test]
fn weighers_and_weights() {
    assert_eq!(Box::<str>::from("abc").weight(), 3);
    assert_eq!(Arc::<[u8]>::from(&b"ab"[..]).weight(), 2);
    assert_eq!(0u128.weight(), 16);
    let mut cache = Cache::with_weigher(3, |_: &&str, _: &&str| 1);
    for k in ["a", "b", "c", "d"] {
        cache.add(k, "a value far longer than three bytes");
    }
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.bytes(), 3);
}

#[test]
fn expired_entries_are_misses_and_get_drops_them() {
    let clock = ManualClock::new();
    let mut cache = Cache::<String, String>::new(0);
    cache.set_clock(clock.clone());
    cache.add_with_expiry("k".into(), "v".into(), clock.at(10));
    cache.add("forever".into(), "v".into());
    clock.advance(9);
    assert_eq!(cache.get("k").map(String::as_str), Some("v"));
    clock.advance(1);
    assert_eq!(cache.peek("k"), None);
    assert_eq!(cache.len(), 2, "peek cannot drop it");
    assert_eq!(cache.get("k"), None);
    assert_eq!(cache.len(), 1);
    assert_eq!(
        cache.stats(),
        CacheStats {
            hits: 1,
            misses: 1,
            expirations: 1,
            bytes: 8,
            entries: 1,
            ..CacheStats::default()
        }
    );
    // `add` clears a deadline.
    cache.add_with_expiry("k".into(), "v".into(), clock.at(10));
    cache.add("k".into(), "w".into());
    assert!(cache.get("k").is_some());
}

#[test]
fn purge_removes_exactly_the_expired() {
    let clock = ManualClock::new();
    let mut cache = Cache::<u64, u64>::new(0);
    for i in 0..100 {
        cache.add_with_expiry(i, i, clock.at(i));
    }
    cache.add(1000, 0);
    assert_eq!(cache.purge_expired(clock.at(49)), 50); // deadlines 0..=49
    assert_eq!(cache.len(), 51);
    assert_eq!(cache.purge_expired(clock.at(49)), 0);
    assert_eq!(cache.stats().expirations, 50);
    cache.validate().unwrap();
}

#[test]
fn the_clock_is_read_only_for_entries_with_a_deadline() {
    let mut cache = Cache::<u64, u64>::new(64);
    cache.set_clock(|| -> Instant { panic!("the clock was read") });
    for i in 0..10 {
        cache.add(i, i);
        cache.get(&i);
        cache.peek(&i);
    }
    assert_eq!(cache.remove(&7), Some(7));
    cache.remove_oldest();
    assert_eq!(cache.len(), 2);
}

#[test]
fn iteration_runs_both_ways() {
    let mut cache = Cache::<u64, u64>::new(0);
    for i in 0..5 {
        cache.add(i, i * 10);
    }
    cache.get(&2);
    let forward: Vec<u64> = cache.iter().map(|(k, _)| *k).collect();
    assert_eq!(forward, [2, 4, 3, 1, 0]);
    let backward: Vec<u64> = cache.iter().rev().map(|(k, _)| *k).collect();
    assert_eq!(backward, [0, 1, 3, 4, 2]);
    assert_eq!(cache.iter().len(), 5);
}

#[test]
fn builder_rejects_bad_settings() {
    let build = |max, n| {
        SegmentedCache::<u64, u64>::builder(max)
            .segments(n)
            .build()
            .map(|c| c.segments())
    };
    assert_eq!(
        build(1024, 0).unwrap_err(),
        BuildError::SegmentsNotPowerOfTwo { segments: 0 }
    );
    assert_eq!(
        build(1024, 12).unwrap_err(),
        BuildError::SegmentsNotPowerOfTwo { segments: 12 }
    );
    assert!(matches!(
        build(0, 1 << 17).unwrap_err(),
        BuildError::TooManySegments { .. }
    ));
    assert_eq!(
        build(7, 8).unwrap_err(),
        BuildError::BudgetTooSmall {
            max_bytes: 7,
            segments: 8
        }
    );
    assert_eq!(build(8, 8), Ok(8));
    assert_eq!(build(0, 1), Ok(1));
}

#[test]
fn segment_budgets_add_up_to_the_total() {
    let cache = SegmentedCache::<u64, u64>::builder(1000)
        .segments(16)
        .build()
        .unwrap();
    let budgets: Vec<usize> = (0..16)
        .map(|i| cache.with_segment(i, Cache::max_bytes))
        .collect();
    assert_eq!(budgets.iter().sum::<usize>(), 1000);
    assert!(budgets.iter().all(|&b| b == 62 || b == 63), "{budgets:?}");
    cache.validate().unwrap();
}

#[test]
fn keys_spread_over_every_segment() {
    // A broken segment choice (say, a shift past the hash's width) would put every key in one
    // segment. With 4096 keys over 16 segments, an empty segment by chance has probability
    // below 16 * (15/16)^4096, about 1e-113.
    let cache = SegmentedCache::<u64, u64>::default();
    let mut per_segment = [0usize; 16];
    for key in 0..4096u64 {
        per_segment[cache.segment_of(&key)] += 1;
        cache.add(key, key);
    }
    assert!(per_segment.iter().all(|&n| n > 0), "{per_segment:?}");
    for (i, &n) in per_segment.iter().enumerate() {
        assert_eq!(cache.with_segment(i, Cache::len), n);
    }
    cache.validate().unwrap();
}

#[test]
fn evict_one_takes_from_the_fullest_segment() {
    let cache = SegmentedCache::<u64, String>::builder(0)
        .segments(4)
        .build()
        .unwrap();
    let key_in = |segment: usize| (0u64..).find(|k| cache.segment_of(k) == segment).unwrap();
    let (small, large) = (key_in(1), key_in(2));
    cache.add(small, "x".into());
    cache.add(large, "x".repeat(100));
    assert_eq!(cache.evict_one(), Some((large, "x".repeat(100))));
    assert_eq!(cache.evict_one(), Some((small, "x".into())));
    assert_eq!(cache.evict_one(), None);
    assert_eq!(cache.stats().evictions, 2);
    cache.validate().unwrap();
}

#[test]
fn a_panicking_weigher_leaves_the_segment_usable() {
    // Regression guard: a panic while a segment is locked poisons its mutex; the cache must
    // keep serving that segment rather than panic on every later call.
    let cache = SegmentedCache::<u64, u64>::builder(0)
        .segments(1)
        .weigher(|_: &u64, v: &u64| {
            assert!(*v != 13, "unlucky");
            8
        })
        .build()
        .unwrap();
    cache.add(1, 1);
    let result = std::thread::scope(|s| s.spawn(|| cache.add(2, 13)).join());
    assert!(result.is_err());
    assert_eq!(cache.get(&1), Some(1));
    cache.add(3, 3);
    assert_eq!(cache.len(), 2);
    cache.validate().unwrap();
}

#[test]
fn segmented_expiry_uses_the_shared_clock() {
    let clock = ManualClock::new();
    let cache = SegmentedCache::<u64, u64>::builder(0)
        .clock(clock.clone())
        .build()
        .unwrap();
    for i in 0..64 {
        cache.add_with_expiry(i, i, clock.at(5));
    }
    assert_eq!(cache.get(&7), Some(7));
    clock.advance(5);
    assert_eq!(cache.get(&7), None);
    assert_eq!(cache.purge_expired(clock.at(5)), 63);
    assert!(cache.is_empty());
    assert_eq!(cache.stats().expirations, 64);
    cache.validate().unwrap();
}
