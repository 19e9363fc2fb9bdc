//! One group, no peers: loading, errors, removal races and the byte budget.

use std::sync::Arc;
use std::time::Duration;

use geecache_group::{BuildError, Charge, Error, Group, Policy, Registry, Source};

use crate::support::*;

#[tokio::test]
async fn loads_once_then_hits() {
    let (group, loader) = group(|b| b);
    assert_eq!(group.get("k1").await.unwrap(), value_of("k1"));
    assert_eq!(group.get("k1").await.unwrap(), value_of("k1"));
    assert_eq!(loader.calls(), 1);
    let s = group.stats();
    assert_eq!((s.gets, s.loads, s.local_loads, s.main.hits), (2, 1, 1, 1));
    assert_stats_add_up(&group);
}

#[tokio::test]
async fn bad_keys_and_missing_keys_are_clear_errors() {
    let (group, loader) = group(|b| b);
    assert!(matches!(group.get("").await, Err(Error::EmptyKey)));
    assert_eq!(loader.calls(), 0);
    assert!(group.get("missing").await.unwrap_err().is_not_found());
    assert_eq!(group.stats().not_found, 1);
}

#[tokio::test]
async fn loader_errors_are_shared_but_never_cached() {
    let (group, loader) = group(|b| b);
    let err = group.get("fail-1").await.unwrap_err();
    assert!(matches!(&err, Error::Load(e) if e.to_string().contains("source is down")));
    assert!(group.get("fail-1").await.is_err());
    assert_eq!(
        loader.calls(),
        2,
        "an error is not cached: the second get loads again"
    );
    assert_eq!(group.stats().local_load_errors, 2);
    assert_stats_add_up(&group);
}

#[tokio::test]
async fn a_panicking_loader_is_an_error_and_the_group_survives() {
    let (group, loader) = group(|b| b);
    assert!(matches!(group.get("panic-1").await, Err(Error::Panicked)));
    assert!(matches!(group.get("panic-1").await, Err(Error::Panicked)));
    assert_eq!(loader.calls(), 2, "the next get runs afresh");
    assert_eq!(group.stats().local_load_errors, 2);
    assert_eq!(group.get("k1").await.unwrap(), value_of("k1"));
}

// A load in flight while the key is removed must not put its value back after the removal:
// otherwise `remove` could return while a stale value is about to be cached.
#[tokio::test(start_paused = true)]
async fn a_removal_during_a_load_keeps_the_loaded_value_out_of_the_cache() {
    let loader = CountingLoader {
        delay: Some(Duration::from_secs(1)),
        ..CountingLoader::default()
    };
    let group = Group::builder("scores")
        .getter(loader.clone())
        .build()
        .unwrap();
    let in_flight = tokio::spawn({
        let group = Arc::clone(&group);
        async move { group.get("k1").await }
    });
    // Let the load start (it parks on the loader's delay), then remove while it is running.
    for _ in 0..1_000 {
        if loader.calls() > 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(loader.calls(), 1, "the load has started");
    group.remove_local("k1");
    assert_eq!(in_flight.await.unwrap().unwrap(), value_of("k1"));
    assert_eq!(
        group.stats().main.items,
        0,
        "the raced value was not cached"
    );
    let again = group.fetch("k1", Default::default()).await.unwrap();
    assert_eq!(again.source, Source::Loader);
    assert_eq!(loader.calls(), 2);
}

#[tokio::test]
async fn the_byte_budget_holds_for_main_and_hot_together() {
    // Each entry weighs len("kNNN") + len("value-of-kNNN") = 4 + 13 = 17 bytes.
    let budget = 17 * 10;
    let (group, loader) = group(|b| b.cache_bytes(budget));
    for i in 100..400 {
        group.get(&format!("k{i}")).await.unwrap();
        assert!(group.bytes() <= budget, "over budget after k{i}");
    }
    let s = group.stats();
    assert_eq!(s.main.items, 10);
    assert_eq!(s.main.evictions, 290);
    assert_eq!(loader.calls(), 300);
    assert_stats_add_up(&group);
}

#[tokio::test]
async fn a_memory_charge_counts_each_entry_s_bookkeeping_against_the_budget() {
    for policy in [Policy::Lru, Policy::S3Fifo] {
        let overhead = Charge::Memory.entry_overhead(policy);
        // Each entry weighs 17 bytes of key and value (as above) and its bookkeeping.
        let budget = (17 + overhead) * 10;
        let (charged, loader) =
            group(|b| b.cache_bytes(budget).policy(policy).charge(Charge::Memory));
        for i in 100..400 {
            charged.get(&format!("k{i}")).await.unwrap();
            assert!(
                charged.bytes() <= budget,
                "{policy:?}: over budget after k{i}"
            );
        }
        let s = charged.stats();
        assert_eq!(s.main.items, 10, "{policy:?}: {s:?}");
        assert_eq!(s.main.bytes, 10 * (17 + overhead), "{policy:?}");
        assert_eq!(loader.calls(), 300);
        assert_stats_add_up(&charged);

        // The same budget counting key and value bytes alone holds the bookkeeping's worth
        // more entries.
        let (payload, _) = group(|b| b.cache_bytes(budget).policy(policy));
        for i in 100..400 {
            payload.get(&format!("k{i}")).await.unwrap();
        }
        assert_eq!(payload.stats().main.items, budget / 17, "{policy:?}");
    }
}

#[test]
fn builder_rejects_bad_settings() {
    let registry = Registry::new();
    let base = || Group::builder("g").register(&registry);
    assert!(matches!(
        Group::builder("g").register(&registry).build(),
        Err(BuildError::MissingGetter(_))
    ));
    assert!(matches!(
        Group::builder("")
            .register(&registry)
            .getter(CountingLoader::default())
            .build(),
        Err(BuildError::EmptyName)
    ));
    assert!(matches!(
        base()
            .getter(CountingLoader::default())
            .hot_cache_ratio(0)
            .build(),
        Err(BuildError::InvalidHotRatio(0))
    ));
    assert!(matches!(
        base()
            .getter(CountingLoader::default())
            .ttl(Duration::ZERO)
            .build(),
        Err(BuildError::ZeroDuration("ttl"))
    ));
    assert!(
        registry.is_empty(),
        "nothing was registered by a failed build"
    );
}

// Building registers nothing, so an application can build, drop and build again a group of
// the same name (it used to meet "a group named "g" already exists").
#[tokio::test]
async fn a_group_can_be_built_dropped_and_built_again() {
    for _ in 0..2 {
        let loader = CountingLoader::default();
        let g = Group::builder("g").getter(loader.clone()).build().unwrap();
        assert_eq!(g.get("k1").await.unwrap(), value_of("k1"));
        assert_eq!(loader.calls(), 1, "a new group starts with an empty cache");
        drop(g);
    }
    assert!(
        geecache_group::groups::get("g").is_none(),
        "nothing registered"
    );
}

// A key the source refuses is refused before the cache, every time, and never cached.
#[tokio::test]
async fn rejected_keys_are_refused_before_the_cache() {
    let (group, loader) = group(|b| b);
    for _ in 0..2 {
        let error = group.get("k/../secret").await.unwrap_err();
        assert!(error.is_rejected(), "{error}");
        assert_eq!(error.to_string(), "invalid key: '..' is not allowed");
    }
    assert_eq!(loader.calls(), 0, "the check runs before any load");
    // A refusal found while loading is an answer too: not a load error, and not cached.
    for _ in 0..2 {
        assert!(group.get("k-deny-1").await.unwrap_err().is_rejected());
    }
    assert_eq!(loader.calls(), 2);
    let stats = group.stats();
    assert_eq!(stats.keys_rejected, 4);
    assert_eq!(stats.gets, 2, "the key check's refusals are not gets");
    assert_eq!(stats.local_load_errors, 0);
    assert_eq!(stats.main.items, 0);
    assert_stats_add_up(&group);
}

// The eviction policy reaches the group's caches: under S3-FIFO a scan of keys used once does
// not push out the keys used often, where under LRU it does. (Each entry weighs about 25 bytes,
// so the budget holds about 1,600 of them, a hundred per segment.)
#[tokio::test]
async fn under_s3fifo_a_scan_does_not_flush_the_hot_keys() {
    for (policy, hot_keys_survive) in [
        (geecache_group::Policy::Lru, false),
        (geecache_group::Policy::S3Fifo, true),
    ] {
        let (group, loader) = group(|b| b.cache_bytes(40_000).policy(policy));
        let hot: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        for _ in 0..3 {
            for key in &hot {
                group.get(key).await.unwrap();
            }
        }
        for i in 0..5_000 {
            group.get(&format!("kscan{i}")).await.unwrap();
        }
        let before = loader.calls();
        for key in &hot {
            group.get(key).await.unwrap();
        }
        let reloaded = loader.calls() - before;
        assert_eq!(
            reloaded == 0,
            hot_keys_survive,
            "{policy:?}: {reloaded} hot keys reloaded"
        );
    }
}

// Regression: under S3-FIFO the group gave each of its 16 cache segments a sixteenth of the
// budget, and a segment refuses what weighs more than its share, so a value over a sixteenth
// of the budget was loaded on every get. Under either policy any value within the budget is
// cached.
#[tokio::test]
async fn a_value_over_a_sixteenth_of_the_budget_is_cached_under_either_policy() {
    for policy in [geecache_group::Policy::Lru, geecache_group::Policy::S3Fifo] {
        let (group, loader) = group(|b| b.cache_bytes(1_600).policy(policy));
        // Weighs 2 * 100 + 9 bytes: over 100, a sixteenth of the budget.
        let key = format!("k{}", "x".repeat(99));
        for _ in 0..3 {
            assert_eq!(group.get(&key).await.unwrap(), value_of(&key));
        }
        assert_eq!(loader.calls(), 1, "{policy:?}: loaded on every get");
        assert!(group.stats().main.bytes <= 1_600);
    }
}
