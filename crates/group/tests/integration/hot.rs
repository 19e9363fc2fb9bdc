//! Hot-cache admission: by the rate the key's owner measured, or at random.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use geecache_group::{
    BoxFuture, BuildError, Group, HotAdmission, Loaded, Origin, PeerError, PeerGetter, RemoveMode,
    Source,
};

use crate::support::{FixedPicker, LocalPeer, group};

/// A geecache owner in process: answers with the value and the rate it measured, as both
/// transports carry it (`minute_qps`), and counts the requests it gets.
struct RatedPeer {
    owner: Arc<Group>,
    calls: AtomicUsize,
}

impl RatedPeer {
    fn new(owner: &Arc<Group>) -> Arc<Self> {
        Arc::new(RatedPeer {
            owner: Arc::clone(owner),
            calls: AtomicUsize::new(0),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl PeerGetter for RatedPeer {
    fn get<'a>(
        &'a self,
        _group: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Loaded, PeerError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let f = (self.owner.fetch(key, Origin::Peer).await).map_err(|_| PeerError::NotFound)?;
            let loaded = Loaded::new(f.value).with_optional_ttl(f.ttl);
            Ok(loaded.with_minute_qps(f.rate))
        })
    }

    fn remove<'a>(
        &'a self,
        _group: &'a str,
        _key: &'a str,
        _mode: RemoveMode,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn name(&self) -> &str {
        "owner"
    }
}

fn close(got: Option<f64>, want: f64) -> bool {
    got.is_some_and(|got| (got - want).abs() <= want * 1e-3)
}

#[tokio::test(start_paused = true)]
async fn the_owner_measures_a_decaying_rate_per_key() {
    let (owner, _) = group(|b| b);
    // Loaded just now: one request in the last minute.
    let first = owner.fetch("k1", Origin::Peer).await.unwrap();
    assert_eq!(first.source, Source::Loader);
    assert!(close(first.rate, 1.0 / 60.0), "{:?}", first.rate);
    // 59 more at the same instant: sixty requests, a rate of one a second.
    let mut last = first;
    for _ in 0..59 {
        last = owner.fetch("k1", Origin::Peer).await.unwrap();
    }
    assert_eq!(last.source, Source::MainCache);
    assert!(close(last.rate, 1.0), "{:?}", last.rate);
    // Clients of the owner count too: the owner sees the key's whole demand.
    owner.get("k1").await.unwrap();
    // A minute later, what was counted has decayed by e, and this request adds its own.
    tokio::time::advance(Duration::from_secs(60)).await;
    let later = owner.fetch("k1", Origin::Peer).await.unwrap();
    let want = (61.0 / 60.0) / std::f64::consts::E + 1.0 / 60.0;
    assert!(close(later.rate, want), "{:?} against {want}", later.rate);
    // Each key has its own.
    let other = owner.fetch("k2", Origin::Peer).await.unwrap();
    assert!(close(other.rate, 1.0 / 60.0), "{:?}", other.rate);
    // Eviction takes the rate with the value: the key starts again from one request.
    assert!(owner.remove_local("k1"));
    let again = owner.fetch("k1", Origin::Peer).await.unwrap();
    assert!(close(again.rate, 1.0 / 60.0), "{:?}", again.rate);
}

#[tokio::test(start_paused = true)]
async fn a_hot_copy_is_kept_once_the_owner_measures_enough_demand() {
    let (owner, _) = group(|b| b);
    let peer = RatedPeer::new(&owner);
    // The random source would admit everything: it must not be what decides.
    let (node, _) = group(|b| {
        b.hot_qps(0.5)
            .random(|| 0)
            .peers(Arc::new(FixedPicker(peer.clone())))
    });
    node.get("k1").await.unwrap();
    assert_eq!(node.stats().hot.items, 0, "one request a minute is not hot");
    node.get("k1").await.unwrap();
    assert_eq!(peer.calls(), 2);
    // The owner's own clients ask for the key: 30 more requests, 32 in all, about 0.53/s.
    for _ in 0..30 {
        owner.get("k1").await.unwrap();
    }
    node.get("k1").await.unwrap();
    assert_eq!(peer.calls(), 3);
    assert_eq!(node.stats().hot.items, 1, "33 requests in a minute is hot");
    let hit = node.fetch("k1", Origin::Client).await.unwrap();
    assert_eq!(hit.source, Source::HotCache);
    assert_eq!(hit.rate, None, "a copy is not this node's to measure");
    assert_eq!(peer.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_sends_no_rate_gets_one_in_ten_at_random() {
    // `LocalPeer` answers as a Go groupcache node does: the value, and no rate.
    for (draw, kept) in [(7, 0), (20, 1)] {
        let (owner, _) = group(|b| b);
        let peer = Arc::new(LocalPeer {
            name: "go".into(),
            group: owner,
        });
        let (node, _) = group(|b| {
            b.hot_qps(0.0)
                .random(move || draw)
                .peers(Arc::new(FixedPicker(peer)))
        });
        node.get("k1").await.unwrap();
        assert_eq!(node.stats().hot.items, kept, "draw {draw}");
    }
}

#[tokio::test(start_paused = true)]
async fn hot_random_ignores_the_owners_rate() {
    let (owner, _) = group(|b| b);
    for _ in 0..100 {
        owner.get("k1").await.unwrap();
    }
    let peer = RatedPeer::new(&owner);
    // One in ten at random, and the draw says no: the owner's 1.7/s does not matter.
    let (node, _) = group(|b| {
        b.hot(HotAdmission::Random(10))
            .random(|| 3)
            .peers(Arc::new(FixedPicker(peer.clone())))
    });
    node.get("k1").await.unwrap();
    assert_eq!(node.stats().hot.items, 0);
    // And the default admits it by rate.
    let (node, _) = group(|b| b.random(|| 3).peers(Arc::new(FixedPicker(peer))));
    node.get("k1").await.unwrap();
    assert_eq!(node.stats().hot.items, 1);
}

#[test]
fn a_threshold_must_be_a_rate() {
    for qps in [-1.0, f64::NAN, f64::INFINITY] {
        let built = Group::builder("g")
            .getter(crate::support::CountingLoader::default())
            .hot_qps(qps)
            .build();
        let error = built.unwrap_err();
        assert!(
            matches!(error, BuildError::InvalidHotQps(_)),
            "{qps}: {error}"
        );
    }
    assert_eq!(
        HotAdmission::default(),
        HotAdmission::Rate(HotAdmission::DEFAULT_QPS)
    );
}
