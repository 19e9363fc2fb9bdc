//! Unit tests for the parts that need no etcd: configuration, key layout, backoff, peer set.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;

use crate::backoff::Backoff;
use crate::config::validate_peer_url;
use crate::peers::PeerSet;
use crate::{Config, ConfigBuilder, DEFAULT_PREFIX, DEFAULT_TTL, Error};

fn valid() -> ConfigBuilder {
    Config::builder()
        .endpoint("http://127.0.0.1:2379")
        .cluster("scores")
}

/// The field named by an `InvalidConfig` error, or a panic naming what came instead.
fn rejected_field(builder: ConfigBuilder) -> &'static str {
    match builder.build() {
        Err(Error::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn defaults_and_key_layout() {
    let config = valid().build().unwrap();
    assert_eq!(config.prefix(), DEFAULT_PREFIX);
    assert_eq!(config.ttl(), DEFAULT_TTL);
    assert_eq!(config.endpoints(), ["http://127.0.0.1:2379"]);
    assert_eq!(config.nodes_prefix(), "/geecache/scores/nodes/");
    assert_eq!(
        config.node_key("http://10.0.0.1:8001"),
        "/geecache/scores/nodes/http://10.0.0.1:8001"
    );

    let custom = valid().prefix("/apps/cache").build().unwrap();
    assert_eq!(custom.nodes_prefix(), "/apps/cache/scores/nodes/");
}

#[test]
fn endpoints_accumulate() {
    let config = Config::builder()
        .endpoint("http://a:2379")
        .endpoints(["http://b:2379", "c:2379"])
        .cluster("x")
        .build()
        .unwrap();
    assert_eq!(
        config.endpoints(),
        ["http://a:2379", "http://b:2379", "c:2379"]
    );
}

#[test]
fn ttl_rounds_up_to_whole_seconds() {
    let config = valid().ttl(Duration::from_millis(1500)).build().unwrap();
    assert_eq!(config.ttl(), Duration::from_secs(2));
    assert_eq!(config.ttl_secs(), 2);
    let exact = valid().ttl(Duration::from_secs(7)).build().unwrap();
    assert_eq!(exact.ttl_secs(), 7);
}

#[test]
fn each_bad_setting_is_named() {
    assert_eq!(rejected_field(Config::builder().cluster("x")), "endpoints");
    assert_eq!(rejected_field(valid().endpoint("")), "endpoints");
    assert_eq!(
        rejected_field(valid().endpoint("http://a b:1")),
        "endpoints"
    );
    assert_eq!(
        rejected_field(valid().endpoint("https://a:2379")),
        "endpoints"
    );
    assert_eq!(
        rejected_field(Config::builder().endpoint("http://a:2379")),
        "cluster"
    );
    assert_eq!(rejected_field(valid().cluster("a/b")), "cluster");
    assert_eq!(rejected_field(valid().cluster("a b")), "cluster");
    assert_eq!(rejected_field(valid().prefix("geecache")), "prefix");
    assert_eq!(rejected_field(valid().prefix("/geecache/")), "prefix");
    assert_eq!(rejected_field(valid().prefix("")), "prefix");
    assert_eq!(rejected_field(valid().prefix("/gee\ncache")), "prefix");
    assert_eq!(
        rejected_field(valid().ttl(Duration::from_millis(999))),
        "ttl"
    );
    assert_eq!(
        rejected_field(valid().ttl(Duration::from_secs(9_000_000_001))),
        "ttl"
    );
    assert_eq!(
        rejected_field(valid().request_timeout(Duration::ZERO)),
        "request_timeout"
    );
    assert_eq!(
        rejected_field(valid().backoff(Duration::ZERO, Duration::from_secs(1))),
        "backoff"
    );
    assert_eq!(
        rejected_field(valid().backoff(Duration::from_secs(2), Duration::from_secs(1))),
        "backoff"
    );
}

#[test]
fn peer_urls_are_checked() {
    assert!(validate_peer_url("http://127.0.0.1:8001").is_ok());
    assert!(validate_peer_url("https://cache-3.internal").is_ok());
    for bad in [
        "",
        "127.0.0.1:8001",
        "http://",
        "http:///x",
        "http://a b",
        "ftp://a",
    ] {
        assert!(
            matches!(validate_peer_url(bad), Err(Error::InvalidUrl { ref url, .. }) if url == bad),
            "{bad:?} was accepted"
        );
    }
}

#[test]
fn backoff_doubles_up_to_the_maximum_and_resets() {
    let mut backoff = Backoff::new((Duration::from_millis(100), Duration::from_millis(500)));
    // With a fraction of 1 the pause is the full ceiling, so the sequence shows the doubling.
    let pauses: Vec<_> = (0..5).map(|_| backoff.next_pause_with(1.0)).collect();
    let ms = |n| Duration::from_millis(n);
    assert_eq!(pauses, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
    backoff.reset();
    assert_eq!(backoff.next_pause_with(0.0), ms(50));
}

proptest! {
    /// Every pause lies in the upper half of its ceiling, and ceilings never exceed the maximum.
    #[test]
    fn backoff_pauses_stay_within_bounds(
        initial_ms in 1_u64..1_000,
        extra_ms in 0_u64..10_000,
        fractions in proptest::collection::vec(0.0_f64..1.0, 1..40),
    ) {
        let (initial, max) = (Duration::from_millis(initial_ms), Duration::from_millis(initial_ms + extra_ms));
        let mut backoff = Backoff::new((initial, max));
        let mut ceiling = initial;
        for fraction in fractions {
            let pause = backoff.next_pause_with(fraction);
            prop_assert!(pause >= ceiling / 2 && pause <= ceiling, "{pause:?} outside ({ceiling:?})");
            prop_assert!(pause <= max);
            ceiling = (ceiling * 2).min(max);
        }
    }
}

const PREFIX: &str = "/g/c/nodes/";

/// Operations on a peer set, as watch events and reads deliver them.
#[derive(Clone, Debug)]
enum Op {
    Put(Vec<u8>),
    Delete(Vec<u8>),
    /// A full re-read, the first.
    Replace(Vec<Vec<u8>>),
    /// A full re-read after an outage: peers it does not find are held.
    ReplaceHolding(Vec<Vec<u8>>),
    /// The held peers' time is up.
    Release,
}

/// Keys as etcd might hold them under (and next to) the watched prefix: peers, the bare
/// prefix, a neighbouring cluster, and bytes that are not UTF-8.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (0_u8..6).prop_map(|n| format!("{PREFIX}http://10.0.0.{n}:8001").into_bytes()),
        1 => Just(PREFIX.as_bytes().to_vec()),
        1 => Just(b"/g/cx/nodes/http://10.0.0.1:8001".to_vec()),
        1 => Just([PREFIX.as_bytes(), &[0xff, 0xfe]].concat()),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => key().prop_map(Op::Put),
        3 => key().prop_map(Op::Delete),
        1 => proptest::collection::vec(key(), 0..6).prop_map(Op::Replace),
        1 => proptest::collection::vec(key(), 0..6).prop_map(Op::ReplaceHolding),
        1 => Just(Op::Release),
    ]
}

/// The dumb model: the peer named by a key, computed the obvious way.
fn model_peer(key: &[u8]) -> Option<String> {
    let text = String::from_utf8(key.to_vec()).ok()?;
    let url = text.strip_prefix(PREFIX)?;
    (!url.is_empty()).then(|| url.to_string())
}

proptest! {
    /// A `PeerSet` fed any sequence of events equals a plain set of the peers those events
    /// name, plus the peers held: those listed before a re-read after an outage that it did not
    /// find, until they are put or deleted again or released.
    #[test]
    fn peer_set_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        let mut set = PeerSet::new(PREFIX.to_string());
        let mut model = BTreeSet::new();
        let mut held = BTreeSet::new();
        for op in ops {
            match &op {
                Op::Put(key) => {
                    set.put(key);
                    if let Some(peer) = model_peer(key) {
                        held.remove(&peer);
                        model.insert(peer);
                    }
                }
                Op::Delete(key) => {
                    set.delete(key);
                    if let Some(peer) = model_peer(key) {
                        held.remove(&peer);
                        model.remove(&peer);
                    }
                }
                Op::Replace(keys) => {
                    set.replace(keys.iter().map(Vec::as_slice));
                    model = keys.iter().filter_map(|key| model_peer(key)).collect();
                    held.clear();
                }
                Op::ReplaceHolding(keys) => {
                    let holds = set.replace_holding(keys.iter().map(Vec::as_slice));
                    let listed: BTreeSet<String> = model.union(&held).cloned().collect();
                    model = keys.iter().filter_map(|key| model_peer(key)).collect();
                    held = listed.difference(&model).cloned().collect();
                    prop_assert_eq!(holds, !held.is_empty());
                }
                Op::Release => {
                    set.release_held();
                    held.clear();
                }
            }
            set.validate();
            let expected: Vec<String> = model.union(&held).cloned().collect();
            prop_assert_eq!(&set.to_list()[..], &expected[..], "after {:?}", op);
            prop_assert_eq!(set.held(), held.iter().cloned().collect::<Vec<_>>());
        }
    }
}
