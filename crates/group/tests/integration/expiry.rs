//! Time to live, on tokio's paused clock: nothing here waits in real time.

use std::time::Duration;

use geecache_group::{Group, LoadError, Loaded, Origin, Source, getter_fn};

use crate::support::*;

#[tokio::test(start_paused = true)]
async fn a_value_expires_after_the_group_ttl() {
    let (group, loader) = group(|b| b.ttl(Duration::from_secs(10)));
    group.get("k1").await.unwrap();
    tokio::time::advance(Duration::from_secs(9)).await;
    let hit = group.fetch("k1", Origin::Client).await.unwrap();
    assert_eq!(hit.source, Source::MainCache);
    assert_eq!(
        hit.ttl,
        Some(Duration::from_secs(1)),
        "remaining time to live"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    let reload = group.fetch("k1", Origin::Client).await.unwrap();
    assert_eq!(reload.source, Source::Loader);
    assert_eq!(loader.calls(), 2);
    assert_eq!(group.stats().main.expirations, 1);
}

#[tokio::test(start_paused = true)]
async fn a_hit_reports_the_time_to_live_the_value_was_stored_with_to_the_nanosecond() {
    // The deadline lives only in the cache's slot, as nanoseconds from the cache's epoch; it
    // must read back as the instant stored, or a hit would tell a peer a wrong time to live.
    let ttl = Duration::new(7, 123_456_789);
    let (group, _) = group(|b| b.ttl(ttl));
    group.get("k1").await.unwrap();
    let hit = group.fetch("k1", Origin::Client).await.unwrap();
    assert_eq!((hit.source, hit.ttl), (Source::MainCache, Some(ttl)));
    let peeked = group.peek("k1").unwrap().unwrap();
    assert_eq!(peeked.ttl, Some(ttl));
    tokio::time::advance(Duration::from_nanos(1_000_001)).await;
    let later = group.fetch("k1", Origin::Client).await.unwrap();
    assert_eq!(later.ttl, Some(ttl - Duration::from_nanos(1_000_001)));
}

#[tokio::test(start_paused = true)]
async fn a_value_ttl_overrides_the_group_default() {
    let loader = CountingLoader {
        ttl: Some(Duration::from_secs(2)),
        ..CountingLoader::default()
    };
    let group = Group::builder("scores")
        .ttl(Duration::from_secs(60))
        .getter(loader.clone())
        .build()
        .unwrap();
    group.get("k1").await.unwrap();
    tokio::time::advance(Duration::from_secs(3)).await;
    group.get("k1").await.unwrap();
    assert_eq!(loader.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_zero_ttl_value_is_served_but_not_cached() {
    let group = Group::builder("scores")
        .getter(getter_fn(|key: String| async move {
            Ok::<_, LoadError>(Loaded::from(key).with_ttl(Duration::ZERO))
        }))
        .build()
        .unwrap();
    assert_eq!(group.get("k1").await.unwrap(), "k1");
    assert_eq!(group.stats().main.items, 0);
}

#[tokio::test(start_paused = true)]
async fn the_sweeper_purges_expired_entries_without_any_get() {
    let (group, _) = group(|b| {
        b.ttl(Duration::from_secs(10))
            .sweep_interval(Duration::from_secs(5))
    });
    for i in 0..20 {
        group.get(&format!("k{i}")).await.unwrap();
    }
    assert_eq!(group.stats().main.items, 20);
    // A paused-clock sleep lets every timer due before it fire, the sweeper's included.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let s = group.stats();
    assert_eq!(s.main.items, 0);
    assert_eq!(s.main.expirations, 20);
    assert_eq!(group.bytes(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_group_stops_its_sweeper() {
    let (group, _) = group(|b| b.sweep_interval(Duration::from_secs(1)));
    let weak = std::sync::Arc::downgrade(&group);
    drop(group);
    assert!(
        weak.upgrade().is_none(),
        "the sweeper does not keep the group alive"
    );
}
