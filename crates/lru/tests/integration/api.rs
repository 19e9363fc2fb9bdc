//! The shapes other crates code against.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use geecache_lru::{
    Cache, CacheStats, Clock, Keys, Policy, SegmentedCache, SystemClock, ValueMut, Values,
};

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn caches_cross_threads() {
    assert_send::<Cache<String, Bytes>>();
    assert_send_sync::<SegmentedCache<String, Bytes>>();
    assert_send_sync::<SegmentedCache<String, Bytes, fn(&String, &Bytes) -> usize>>();
    assert_send_sync::<SystemClock>();
}

/// A value type from a crate that knows nothing of `Weigh`: it is weighed by a fn pointer.
#[derive(Clone, Debug, PartialEq)]
struct View(Bytes);

// `&String`, not `&str`: a `Weigher<String, View>` fn pointer must take the key type itself.
#[allow(clippy::ptr_arg)]
fn weigh(key: &String, value: &View) -> usize {
    key.len() + value.0.len()
}

#[test]
fn fn_pointer_weigher_and_injected_clock() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let millis = Arc::new(AtomicU64::new(0));
    let reading = Arc::clone(&millis);
    let cache: SegmentedCache<String, View, fn(&String, &View) -> usize> =
        SegmentedCache::builder(64)
            .segments(2)
            .weigher(weigh as fn(&String, &View) -> usize)
            .clock(move || start + Duration::from_millis(reading.load(Ordering::Relaxed)))
            .build()?;

    cache.add_with_expiry(
        "k".into(),
        View(Bytes::from_static(b"abc")),
        start + Duration::from_millis(10),
    );
    assert_eq!(cache.bytes(), 4);
    assert_eq!(cache.get("k"), Some(View(Bytes::from_static(b"abc"))));
    millis.store(10, Ordering::Relaxed);
    assert_eq!(cache.peek("k"), None);
    assert_eq!(cache.get("k"), None);
    assert_eq!(
        cache.stats(),
        CacheStats {
            hits: 1,
            misses: 1,
            expirations: 1,
            ..CacheStats::default()
        }
    );
    Ok(())
}

#[cfg(feature = "bytes")]
#[test]
fn bytes_weigh_their_length() {
    use geecache_lru::Weigh;

    assert_eq!(Bytes::from_static(b"12345").weight(), 5);
    let mut cache = Cache::<Bytes, Bytes>::new(9);
    cache.add(Bytes::from_static(b"k1"), Bytes::from_static(b"123"));
    cache.add(Bytes::from_static(b"k2"), Bytes::from_static(b"123"));
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.bytes(), 5);
}

#[test]
fn a_shared_budget_enforced_from_outside() -> Result<(), Box<dyn std::error::Error>> {
    // A main cache and a hot cache share 1 KiB; both are unbounded and the owner evicts.
    const BUDGET: usize = 1024;
    let main = SegmentedCache::<u64, Vec<u8>>::builder(0).build()?;
    let hot = SegmentedCache::<u64, Vec<u8>>::builder(0).build()?;
    for key in 0..200u64 {
        let target = if key % 10 == 0 { &hot } else { &main };
        target.add(key, vec![0; 24]); // 32 bytes an entry
        while main.bytes() + hot.bytes() > BUDGET {
            let victim = if hot.bytes() > main.bytes() / 8 {
                &hot
            } else {
                &main
            };
            assert!(victim.evict_one().is_some());
        }
    }
    assert!(main.bytes() + hot.bytes() <= BUDGET);
    assert_eq!(main.len() + hot.len(), BUDGET / 32);
    assert!(hot.bytes() <= main.bytes() / 8 + 32);
    assert_eq!(
        main.stats().evictions + hot.stats().evictions,
        200 - (BUDGET / 32) as u64
    );
    Ok(())
}

#[test]
fn eviction_callback_sees_victims_in_order() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let mut cache = Cache::<u32, u32>::new(8 * 4);
    cache.set_on_evicted(move |k, _| log.lock().unwrap().push(k));
    for k in 0..10 {
        cache.add(k, k);
    }
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
    let left: Vec<u32> = cache.iter().map(|(k, _)| *k).collect();
    assert_eq!(left, [9, 8, 7, 6]);
}

#[test]
fn clock_trait_objects_and_closures() {
    let fixed = Instant::now();
    let clock: Box<dyn Clock> = Box::new(move || fixed);
    assert_eq!(clock.now(), fixed);
    assert!(SystemClock.now() >= fixed);
}

#[test]
fn the_policy_is_a_value_and_the_guards_are_nameable() -> Result<(), Box<dyn std::error::Error>> {
    // A policy read from configuration picks the cache's behaviour without changing its type.
    let from_config = |name: &str| match name {
        "s3fifo" => Policy::S3Fifo,
        _ => Policy::Lru,
    };
    let caches: Vec<SegmentedCache<String, Vec<u8>>> = ["lru", "s3fifo"]
        .into_iter()
        .map(|name| {
            SegmentedCache::builder(1 << 10)
                .segments(2)
                .policy(from_config(name))
                .build()
        })
        .collect::<Result<_, _>>()?;
    for cache in &caches {
        cache.add("k".into(), b"v".to_vec());
        assert_eq!(cache.update("k", |v| v.len()), Some(1));
        assert_eq!(cache.keys(), ["k"]);
    }
    assert_eq!(caches[1].policy(), Policy::S3Fifo);
    assert_eq!(Policy::default(), Policy::Lru);

    // Helpers written against the guard and iterator types.
    fn double(mut v: ValueMut<'_, u32, u32, geecache_lru::ByWeight>) {
        *v *= 2;
    }
    let mut cache = Cache::<u32, u32>::with_policy(0, Policy::S3Fifo);
    cache.add(1, 21);
    double(cache.get_mut(&1).expect("present"));
    let keys: Keys<'_, u32, u32> = cache.keys();
    assert_eq!(keys.copied().collect::<Vec<_>>(), [1]);
    let values: Values<'_, u32, u32> = cache.values();
    assert_eq!(values.copied().collect::<Vec<_>>(), [42]);
    Ok(())
}
