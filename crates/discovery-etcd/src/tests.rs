//! Unit tests for the parts that need no etcd: configuration, key layout, backoff, peer set,
//! the watch's liveness.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use crate::backoff::Backoff;
use crate::config::validate_peer_url;
use crate::liveness::{Due, Liveness};
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
    /// A full re-read after an outage: peers it does not find are held, and the set settles.
    ReplaceHolding(Vec<Vec<u8>>),
    /// The settling's time is up.
    Settle,
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
        1 => Just(Op::Settle),
    ]
}

/// The dumb model: the peer named by a key, computed the obvious way.
fn model_peer(key: &[u8]) -> Option<String> {
    let text = String::from_utf8(key.to_vec()).ok()?;
    let url = text.strip_prefix(PREFIX)?;
    (!url.is_empty()).then(|| url.to_string())
}

/// What the model knows of one listed peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listed {
    /// Put since the last re-read after an outage, or no outage is settling.
    Registered,
    /// Found by the re-read after an outage, not put since.
    Unconfirmed,
    /// Listed before the outage, and not registered since it.
    Held,
}

proptest! {
    /// A `PeerSet` fed any sequence of events lists the peers a plain map of each peer's state
    /// lists: a put registers a peer; a delete removes it, unless an outage is settling and the
    /// peer has not been put since, which holds it; a re-read after an outage makes the peers it
    /// finds unconfirmed and holds those it misses, until settling ends.
    #[test]
    fn peer_set_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        let mut set = PeerSet::new(PREFIX.to_string());
        let mut model: BTreeMap<String, Listed> = BTreeMap::new();
        for op in ops {
            match &op {
                Op::Put(key) => {
                    set.put(key);
                    if let Some(peer) = model_peer(key) {
                        model.insert(peer, Listed::Registered);
                    }
                }
                Op::Delete(key) => {
                    let held = set.delete(key);
                    let peer = model_peer(key);
                    let state = peer.as_ref().and_then(|peer| model.get(peer).copied());
                    prop_assert_eq!(held, state == Some(Listed::Unconfirmed));
                    match (peer, state) {
                        (Some(peer), Some(Listed::Unconfirmed)) => {
                            model.insert(peer, Listed::Held);
                        }
                        (Some(peer), Some(_)) => {
                            model.remove(&peer);
                        }
                        _ => {}
                    }
                }
                Op::Replace(keys) => {
                    set.replace(keys.iter().map(Vec::as_slice));
                    model = keys
                        .iter()
                        .filter_map(|key| model_peer(key))
                        .map(|peer| (peer, Listed::Registered))
                        .collect();
                }
                Op::ReplaceHolding(keys) => {
                    let holds = set.replace_holding(keys.iter().map(Vec::as_slice));
                    let mut after: BTreeMap<String, Listed> = model
                        .keys()
                        .map(|peer| (peer.clone(), Listed::Held))
                        .collect();
                    for peer in keys.iter().filter_map(|key| model_peer(key)) {
                        after.insert(peer, Listed::Unconfirmed);
                    }
                    model = after;
                    prop_assert_eq!(holds, model.values().any(|s| *s == Listed::Held));
                }
                Op::Settle => {
                    set.settle();
                    model.retain(|_, state| *state != Listed::Held);
                    for state in model.values_mut() {
                        *state = Listed::Registered;
                    }
                }
            }
            set.validate();
            let expected: Vec<String> = model.keys().cloned().collect();
            prop_assert_eq!(&set.to_list()[..], &expected[..], "after {:?}", op);
            let held: Vec<String> = model
                .iter()
                .filter(|(_, state)| **state == Listed::Held)
                .map(|(peer, _)| peer.clone())
                .collect();
            prop_assert_eq!(set.held(), held);
        }
    }
}

// The watch's liveness, driven as the watch loop drives it: it wakes at the next message or at
// `deadline()`, whichever comes first, and asks `due()` when it wakes without a message. The
// messages come at the given gaps (milliseconds), then stop.
fn run_liveness(ttl: Duration, gaps: &[u64]) -> Vec<(Duration, Due)> {
    let start = tokio::time::Instant::now();
    let mut liveness = Liveness::new(ttl, start);
    let mut arrivals = gaps
        .iter()
        .scan(start, |at, gap| {
            *at += Duration::from_millis(*gap);
            Some(*at)
        })
        .peekable();
    let mut said = Vec::new();
    loop {
        let deadline = liveness.deadline();
        match arrivals.peek() {
            Some(&at) if at <= deadline => {
                arrivals.next();
                liveness.heard(at);
            }
            _ => {
                let due = liveness.due(deadline);
                if let Some(due) = due {
                    said.push((deadline - start, due));
                }
                if due == Some(Due::Dead) {
                    return said;
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    // A silence shorter than a sixth of the TTL asks nothing; one that reaches it asks once;
    // the watch is declared dead only a sixth after an unanswered probe, and then exactly a
    // third of the TTL after the last message.
    #[test]
    fn liveness_probes_a_silence_and_ends_only_an_unanswered_one(
        ttl_ms in 1_000_u64..30_000,
        gaps in proptest::collection::vec(0_u64..12_000, 0..40),
    ) {
        let ttl = Duration::from_millis(ttl_ms);
        let quiet = ttl / 6;
        let said = run_liveness(ttl, &gaps);
        let arrivals: Vec<Duration> = gaps
            .iter()
            .scan(Duration::ZERO, |at, gap| {
                *at += Duration::from_millis(*gap);
                Some(*at)
            })
            .collect();
        // The model: every silence (from the start or a message to the next message) of at
        // least `quiet` is probed once, `quiet` into it; an answer within `quiet` of the probe
        // saves the watch; the last silence never ends and kills it.
        let mut expected = Vec::new();
        let mut from = Duration::ZERO;
        for &at in &arrivals {
            if at - from >= quiet && at - from <= quiet * 2 {
                expected.push((from + quiet, Due::Probe));
            } else if at - from > quiet * 2 {
                expected.push((from + quiet, Due::Probe));
                expected.push((from + quiet * 2, Due::Dead));
                break;
            }
            from = at;
        }
        if expected.last().map(|(_, due)| *due) != Some(Due::Dead) {
            expected.push((from + quiet, Due::Probe));
            expected.push((from + quiet * 2, Due::Dead));
        }
        prop_assert_eq!(said, expected);
    }
}

#[test]
fn a_probe_is_asked_for_once_per_silence_even_by_a_task_that_wakes_late() {
    let start = tokio::time::Instant::now();
    let ttl = Duration::from_secs(6);
    let mut liveness = Liveness::new(ttl, start);
    assert_eq!(liveness.due(start + Duration::from_millis(999)), None);
    // Woken long after the watch could have been judged dead: it asks first.
    assert_eq!(
        liveness.due(start + Duration::from_secs(5)),
        Some(Due::Probe)
    );
    assert_eq!(liveness.due(start + Duration::from_millis(5_500)), None);
    assert_eq!(liveness.deadline(), start + Duration::from_secs(6));
    liveness.heard(start + Duration::from_millis(5_900));
    assert_eq!(liveness.due(start + Duration::from_secs(6)), None);
    assert_eq!(
        liveness.due(start + Duration::from_millis(6_900)),
        Some(Due::Probe)
    );
    assert_eq!(
        liveness.due(start + Duration::from_millis(7_900)),
        Some(Due::Dead)
    );
}
