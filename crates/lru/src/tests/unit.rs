//! Worked examples of each rule.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::props::ManualClock;

use crate::{BuildError, Cache, CacheStats, Policy, SegmentedCache, Weigh};

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

/// The weight shares a word with S3-FIFO's tag (`cache::Meta`): a weight that would spill into
/// the tag bits is refused rather than stored cut short, under both policies.
#[cfg(target_pointer_width = "64")]
#[test]
fn an_entry_heavier_than_the_weight_word_is_rejected_even_when_unbounded() {
    for policy in [Policy::Lru, Policy::S3Fifo] {
        let heavy = |_: &u8, v: &usize| *v;
        let mut cache = Cache::with_weigher_and_policy(0, heavy, policy);
        let evicted = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&evicted);
        cache.set_on_evicted(move |k, _| sink.lock().unwrap().push(k));
        cache.add(1, (1 << 56) - 1); // the heaviest that fits
        cache.add(2, 1 << 56);
        assert_eq!(cache.peek(&1), Some(&((1 << 56) - 1)), "{policy:?}");
        assert_eq!(cache.peek(&2), None, "{policy:?}");
        assert_eq!(cache.bytes(), (1 << 56) - 1, "{policy:?}");
        assert_eq!(*evicted.lock().unwrap(), [2], "{policy:?}");
        // Growing in place past the limit drops the entry the same way.
        *cache.get_mut(&1).unwrap() = 1 << 57;
        assert_eq!(cache.peek(&1), None, "{policy:?}");
        assert_eq!(cache.bytes(), 0, "{policy:?}");
        assert_eq!(*evicted.lock().unwrap(), [2, 1], "{policy:?}");
        cache.validate().unwrap();
    }
}

/// Deadlines are stored as nanoseconds from the cache's epoch (`deadline.rs`): the round trip
/// is exact on either side of the epoch, order is kept, and "none" never expires.
#[test]
fn deadlines_survive_their_compact_form() {
    use crate::deadline::{Deadline, Epoch};
    use std::time::Duration;

    let epoch = Epoch::now();
    let base = Instant::now();
    let times = [
        base.checked_sub(Duration::from_secs(3600)).unwrap_or(base),
        base,
        base + Duration::from_nanos(1),
        base + Duration::from_secs(86_400 * 365),
    ];
    for (n, &at) in times.iter().enumerate() {
        let deadline = epoch.deadline(Some(at));
        assert_eq!(epoch.instant(deadline), Some(at));
        for &now in &times {
            assert_eq!(deadline.passed_at(epoch.offset(now)), now >= at, "{n}");
        }
    }
    assert_eq!(epoch.deadline(None), Deadline::NONE);
    assert_eq!(epoch.instant(Deadline::NONE), None);
    assert!(!Deadline::NONE.passed_at(i64::MAX));
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

// ----- the API added for programs written from the docs -----

#[test]
fn get_mut_reweighs_when_written_and_evicts_down_to_the_budget() {
    let (mut cache, log) = logged(10);
    cache.add("a".into(), "1".into()); // 2
    cache.add("b".into(), "1".into()); // 2
    if let Some(mut v) = cache.get_mut("b") {
        v.push_str("1234567"); // "b" now weighs 9
    }
    assert_eq!(cache.bytes(), 9);
    assert_eq!(keys(&cache), ["b"]);
    assert_eq!(*log.lock().unwrap(), [("a".to_owned(), "1".to_owned())]);
    // Grown past the whole budget: evicted itself, as `add` would reject it.
    if let Some(mut v) = cache.get_mut("b") {
        v.push_str("xx");
    }
    assert!(cache.is_empty());
    assert_eq!(log.lock().unwrap().len(), 2);
    assert_eq!(cache.stats().hits, 2);
    cache.validate().unwrap();
}

#[test]
fn a_guard_only_read_does_not_weigh_again() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let mut cache = Cache::with_weigher(0, move |_: &u32, _: &u32| {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        4
    });
    cache.add(1, 1);
    let read = cache.get_mut(&1).map(|v| *v);
    assert_eq!(read, Some(1));
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1);
    if let Some(mut v) = cache.get_mut(&1) {
        *v = 2;
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 2);
    assert!(cache.get_mut(&7).is_none());
    assert_eq!(cache.stats().misses, 1);
}

#[test]
fn a_leaked_guard_leaves_a_stale_weight_and_nothing_worse() {
    // Documented: leaking the guard skips the re-weigh. The books are off, memory is fine.
    let mut cache = Cache::<String, String>::new(0);
    cache.add("k".into(), "v".into());
    let mut guard = cache.get_mut("k").unwrap();
    guard.push_str("longer");
    std::mem::forget(guard);
    assert_eq!(cache.bytes(), 2);
    assert!(cache.validate().unwrap_err().contains("stale weight"));
}

#[test]
fn a_panic_while_holding_a_written_guard_removes_the_entry() {
    let mut cache = Cache::<String, String>::new(0);
    cache.add("k".into(), "v".into());
    cache.add("other".into(), "v".into());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut guard = cache.get_mut("k").unwrap();
        guard.push_str("half-written");
        panic!("the caller's update failed");
    }));
    assert!(result.is_err());
    assert!(!cache.contains_key("k"));
    assert_eq!(cache.bytes(), 6);
    cache.validate().unwrap();
}

#[test]
fn get_or_insert_with_loads_once_and_reports_what_cannot_be_stored() {
    let (mut cache, log) = logged(8);
    let mut loads = 0;
    for _ in 0..3 {
        let v = cache.get_or_insert_with("k".into(), || {
            loads += 1;
            "v".into()
        });
        assert_eq!(v.map(String::as_str), Some("v"));
    }
    assert_eq!(loads, 1);
    assert_eq!(
        cache.get_or_insert_with("big".into(), || "123456".into()),
        None
    );
    assert_eq!(
        *log.lock().unwrap(),
        [("big".to_owned(), "123456".to_owned())]
    );
    assert_eq!((cache.stats().hits, cache.stats().misses), (2, 2));
    cache.validate().unwrap();
}

#[test]
fn contains_key_is_a_peek() {
    let clock = ManualClock::new();
    let mut cache = Cache::<String, String>::new(0);
    cache.set_clock(clock.clone());
    cache.add("a".into(), "1".into());
    cache.add_with_expiry("b".into(), "2".into(), clock.at(1));
    assert!(cache.contains_key("a"));
    assert!(cache.contains_key("b"));
    clock.advance(1);
    assert!(!cache.contains_key("b"));
    assert_eq!(keys(&cache), ["b", "a"], "neither reordered nor dropped");
    assert_eq!(cache.stats().hits + cache.stats().misses, 0);
}

#[test]
fn set_max_bytes_evicts_to_fit_and_zero_unbounds() {
    let (mut cache, log) = logged(0);
    for k in ["a", "b", "c", "d"] {
        cache.add(k.into(), "1".into());
    }
    cache.set_max_bytes(4);
    assert_eq!(keys(&cache), ["d", "c"]);
    assert_eq!(log.lock().unwrap().len(), 2);
    cache.set_max_bytes(0);
    cache.add("e".into(), "1".into());
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.max_bytes(), 0);
    cache.validate().unwrap();
}

#[test]
fn retain_drops_without_the_callback_and_expired_as_expirations() {
    let clock = ManualClock::new();
    let (mut cache, log) = logged(0);
    cache.set_clock(clock.clone());
    for k in ["a", "b", "c", "d"] {
        cache.add(k.into(), "1".into());
    }
    cache.add_with_expiry("e".into(), "1".into(), clock.at(1));
    clock.advance(1);
    let mut offered = Vec::new();
    cache.retain(|k, _| {
        offered.push(k.clone());
        k != "b"
    });
    offered.sort();
    assert_eq!(offered, ["a", "b", "c", "d"]);
    assert_eq!(keys(&cache), ["d", "c", "a"]);
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(cache.stats().expirations, 1);
    assert_eq!(cache.stats().evictions, 0);
    cache.validate().unwrap();
}

#[test]
fn keys_and_values_follow_iter() {
    let mut cache = Cache::<u64, u64>::new(0);
    for i in 0..4 {
        cache.add(i, i * 10);
    }
    cache.get(&1);
    assert_eq!(cache.keys().copied().collect::<Vec<_>>(), [1, 3, 2, 0]);
    assert_eq!(cache.values().copied().collect::<Vec<_>>(), [10, 30, 20, 0]);
    assert_eq!(cache.keys().next_back(), Some(&0));
    assert_eq!(cache.values().len(), 4);
}

// ----- S3-FIFO -----

fn s3(max_bytes: usize) -> (Cache<String, String>, Log) {
    let mut cache = Cache::with_policy(max_bytes, Policy::S3Fifo);
    let log = Log::default();
    let sink = Arc::clone(&log);
    cache.set_on_evicted(move |k, v| sink.lock().unwrap().push((k, v)));
    (cache, log)
}

/// (key, counter, in the small queue) in `iter` order.
fn queues(cache: &Cache<String, String>) -> Vec<(String, u8, bool)> {
    cache
        .iter()
        .zip(cache.entry_meta())
        .map(|((k, _), (_, freq, small))| (k.clone(), freq, small))
        .collect()
}

#[test]
fn s3fifo_a_scan_does_not_flush_what_was_reused() {
    let mut cache = Cache::with_weigher_and_policy(10, |_: &u32, _: &u32| 1, Policy::S3Fifo);
    for k in 0..10 {
        cache.add(k, k);
    }
    for k in 0..5 {
        cache.get(&k);
    }
    for k in 100..1000 {
        cache.add(k, k);
    }
    for k in 0..5 {
        assert_eq!(
            cache.peek(&k),
            Some(&k),
            "key {k} was reused and must survive the scan"
        );
    }
    // The same scan flushes LRU.
    let mut lru = Cache::with_weigher(10, |_: &u32, _: &u32| 1);
    for k in 0..10 {
        lru.add(k, k);
    }
    for k in 0..5 {
        lru.get(&k);
    }
    for k in 100..1000 {
        lru.add(k, k);
    }
    assert!((0..5).all(|k| lru.peek(&k).is_none()));
    cache.validate().unwrap();
}

#[test]
fn s3fifo_one_hit_keys_become_ghosts_and_come_back_to_main() {
    // 10 two-byte entries' worth of budget: the small queue's share (1%) rounds down to
    // nothing, so its one entry at a time is evicted (or promoted) first.
    let (mut cache, log) = s3(20);
    for k in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] {
        cache.add(k.into(), "1".into());
    }
    cache.get("b");
    cache.add("k".into(), "1".into()); // evicts "a" (never hit) to the ghosts
    assert_eq!(*log.lock().unwrap(), [("a".to_owned(), "1".to_owned())]);
    assert_eq!(cache.ghost_hashes().len(), 1);
    let q = queues(&cache);
    assert_eq!(q.last(), Some(&("b".to_owned(), 1, true)), "{q:?}");
    cache.add("l".into(), "1".into()); // "b" was hit: promoted, counter reset; "c" goes
    let q = queues(&cache);
    assert_eq!(q.first(), Some(&("b".to_owned(), 0, false)), "{q:?}");
    assert_eq!(
        log.lock().unwrap().last().map(|(k, _)| k.as_str()),
        Some("c")
    );
    // "a" again: a ghost, so straight to the main queue.
    cache.add("a".into(), "1".into());
    assert_eq!(cache.ghost_hashes().len(), 2, "c and d remain");
    let q = queues(&cache);
    assert_eq!(q.first(), Some(&("a".to_owned(), 0, false)), "{q:?}");
    cache.validate().unwrap();
}

#[test]
fn s3fifo_counters_saturate_and_buy_laps_in_main() {
    let (mut cache, _log) = s3(0);
    cache.add("a".into(), "1".into());
    for _ in 0..10 {
        cache.get("a");
    }
    assert_eq!(queues(&cache), [("a".to_owned(), 3, true)]);
    // Unbounded, so `remove_oldest` runs the victim search: "a" moves to main (counter reset)
    // and, with nothing else there, is taken on the next turn.
    assert_eq!(cache.remove_oldest(), Some(("a".into(), "1".into())));
    assert_eq!(cache.stats().evictions, 0);
    cache.validate().unwrap();
}

#[test]
fn s3fifo_a_newcomer_is_never_its_own_victim() {
    // Regression guard: inserting first and evicting after would pick the newcomer (in the
    // small queue, never hit) over the entries already in main.
    let (mut cache, log) = s3(10);
    cache.add("a".into(), "1".into());
    cache.get("a");
    cache.add("b".into(), "1".into()); // small: a(hit), b
    cache.add("c".into(), "1234".into()); // 5 more: 9 bytes, no eviction yet
    cache.add("d".into(), "12345678".into()); // 9 bytes: room is made first
    assert!(cache.contains_key("d"));
    assert!(!log.lock().unwrap().iter().any(|(k, _)| k == "d"));
    cache.validate().unwrap();
}

#[test]
fn s3fifo_expiry_and_the_clock_rules_hold() {
    let mut cache = Cache::<u64, u64>::with_policy(64, Policy::S3Fifo);
    cache.set_clock(|| -> Instant { panic!("the clock was read") });
    for i in 0..10 {
        cache.add(i, i);
        cache.get(&i);
        cache.peek(&i);
    }
    assert_eq!(cache.remove(&7), Some(7));
    cache.remove_oldest();
    assert!(cache.len() <= 4);
    cache.validate().unwrap();

    let clock = ManualClock::new();
    let mut cache = Cache::<String, String>::with_policy(0, Policy::S3Fifo);
    cache.set_clock(clock.clone());
    cache.add_with_expiry("k".into(), "v".into(), clock.at(10));
    clock.advance(10);
    assert_eq!(cache.get("k"), None);
    assert_eq!(cache.stats().expirations, 1);
    cache.validate().unwrap();
}

#[test]
fn s3fifo_steady_state_reuses_slots() {
    let mut cache = Cache::<u64, u64>::with_policy(16 * 10, Policy::S3Fifo);
    for i in 0..10_000 {
        cache.add(i, i);
        cache.get(&(i / 2));
    }
    assert_eq!(cache.len(), 10);
    assert!(cache.slots_allocated() <= 11);
    cache.validate().unwrap();
}

/// Read-through over `trace` with unit weights; the hit ratio.
fn s3_hit_ratio(capacity: usize, trace: impl Iterator<Item = u64>) -> f64 {
    let mut cache = Cache::with_weigher_and_policy(capacity, |_: &u64, _: &u64| 1, Policy::S3Fifo);
    let (mut hits, mut requests) = (0u32, 0u32);
    for key in trace {
        requests += 1;
        if cache.get(&key).is_some() {
            hits += 1;
        } else {
            cache.add(key, key);
        }
    }
    cache.validate().unwrap();
    f64::from(hits) / f64::from(requests)
}

#[test]
fn s3fifo_keeps_most_of_a_loop_just_over_capacity() {
    // A loop 10% larger than the cache: LRU keeps nothing. With the paper's 10% probation
    // queue S3-FIFO kept 76% of it; with 1% it keeps over 80% (90.9% is the ceiling, OPT's).
    let ratio = s3_hit_ratio(1000, (0..400_000u64).map(|i| i % 1100));
    assert!(ratio > 0.80, "hit ratio {ratio}");
}

#[test]
fn s3fifo_small_queue_is_a_hundredth_of_the_budget() {
    // Unit weights, room for 1000: once main is full, the small queue holds about 10.
    let mut cache = Cache::with_weigher_and_policy(1000, |_: &u64, _: &u64| 1, Policy::S3Fifo);
    for k in 0..1000 {
        cache.add(k, k);
        cache.get(&k);
    }
    for k in 1000..1100 {
        cache.add(k, k); // moves the hit entries to main, one-hit newcomers stay small
    }
    for k in 5000..6000 {
        cache.add(k, k); // a scan: passes through the small queue only
    }
    let small = cache.entry_meta().iter().filter(|m| m.2).count();
    assert!(
        (1..=11).contains(&small),
        "{small} entries in the small queue"
    );
    assert!((0..1000).filter(|k| cache.peek(k).is_some()).count() >= 980);
    cache.validate().unwrap();
}

#[test]
fn s3fifo_ghost_holds_half_the_entries() {
    // Room for 100; a scan of 1000 one-off keys evicts 900 from the small queue. The ghost
    // keeps only the newest 50 of them: the bound counts entries, whatever their weight.
    let mut cache = Cache::with_weigher_and_policy(100, |_: &u64, _: &u64| 1, Policy::S3Fifo);
    for k in 0..1000 {
        cache.add(k, k);
    }
    assert_eq!(cache.ghost_hashes().len(), 50);
    // The newest ghosts come back to main; an old one starts over in the small queue.
    cache.add(999 - 100, 0);
    cache.add(10, 0);
    let meta: Vec<(u64, bool)> = cache
        .iter()
        .zip(cache.entry_meta())
        .map(|((k, _), m)| (*k, m.2))
        .collect();
    assert!(meta.contains(&(899, false)), "899 was a ghost: main");
    assert!(meta.contains(&(10, true)), "10 was forgotten: small");
    cache.validate().unwrap();
}

#[test]
fn s3fifo_unbounded_and_trimmed_from_outside_still_protects_main() {
    // A cache kept to a budget from outside (`max_bytes` 0, entries taken by the caller as the
    // group does through `evict_one`): its small queue is sized from what it holds. Before,
    // an unbounded cache gave main a share of 0 and evicted from main first.
    let mut cache = Cache::with_weigher_and_policy(0, |_: &u64, _: &u64| 1, Policy::S3Fifo);
    for k in 0..100 {
        cache.add(k, k);
        cache.get(&k);
    }
    cache.evict_next(); // promotes the hit keys to main and takes the first of them
    for k in 1000..1100 {
        cache.add(k, k); // a scan, into the small queue
    }
    for _ in 0..100 {
        cache.evict_next();
    }
    assert!(
        (1..100).all(|k| cache.peek(&k).is_some()),
        "main was emptied before the scan"
    );
    cache.validate().unwrap();
}

#[test]
fn s3fifo_ghost_numbers_wrap() {
    // The ghost numbers its records with a wrapping u32; start it just short of the wrap.
    let mut ghost = crate::ghost::Ghost::starting_at(u32::MAX - 3);
    for h in 0..10u64 {
        ghost.push(h, 4);
        ghost.validate().unwrap();
    }
    assert_eq!(ghost.hashes(), [6, 7, 8, 9]);
    // 7 again: 6 ages out, and 7's older record stays, stale, until it does too.
    ghost.push(7, 4);
    assert_eq!(ghost.len(), 4);
    assert_eq!(ghost.hashes(), [8, 9, 7]);
    assert!(ghost.take(8));
    assert!(!ghost.take(8));
    assert!(!ghost.take(2));
    assert_eq!(ghost.hashes(), [9, 7]);
    ghost.validate().unwrap();
}

// ----- the segmented cache -----

#[test]
fn segmented_update_get_or_insert_and_snapshots() {
    let cache = SegmentedCache::<String, String>::builder(64)
        .segments(2)
        .policy(Policy::S3Fifo)
        .build()
        .unwrap();
    assert_eq!(cache.policy(), Policy::S3Fifo);
    assert_eq!(
        cache
            .get_or_insert_with("a".into(), || "1".into())
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        cache
            .get_or_insert_with("a".into(), || "2".into())
            .as_deref(),
        Some("1")
    );
    assert_eq!(cache.update("a", |v| v.push('0')), Some(()));
    assert_eq!(cache.update("zz", |v| v.push('0')), None);
    assert_eq!(cache.peek("a").as_deref(), Some("10"));
    assert_eq!(cache.bytes(), 3);
    assert!(cache.contains_key("a"));
    cache.add("b".into(), "2".into());
    let mut keys = cache.keys();
    keys.sort();
    assert_eq!(keys, ["a", "b"]);
    let mut entries = cache.snapshot();
    entries.sort();
    assert_eq!(
        entries,
        [("a".into(), "10".into()), ("b".into(), "2".into())]
    );
    cache.retain(|k, _| k == "b");
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.stats().hits, 2);
    cache.validate().unwrap();
}

#[test]
fn segmented_set_max_bytes_splits_and_checks_the_budget() {
    let cache = SegmentedCache::<u64, u64>::builder(0)
        .segments(4)
        .build()
        .unwrap();
    for k in 0..100 {
        cache.add(k, k);
    }
    assert_eq!(
        cache.set_max_bytes(3),
        Err(BuildError::BudgetTooSmall {
            max_bytes: 3,
            segments: 4
        })
    );
    assert_eq!(cache.max_bytes(), 0);
    cache.set_max_bytes(16 * 40 + 2).unwrap();
    assert_eq!(cache.max_bytes(), 642);
    assert!(cache.bytes() <= 642);
    assert!(cache.stats().evictions >= 60);
    cache.validate().unwrap();
}
