//! The coalescer against a fake peer, on tokio's paused clock: what each caller gets, and how
//! many requests the peer sees.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use proptest::prelude::*;

use super::Coalescer;
use crate::error::{PeerError, Rejected};
use crate::getter::{BoxFuture, Loaded};
use crate::peers::{PeerGetter, RemoveMode};

/// Tokio's timer counts whole milliseconds, so the tests' windows and delays do too: a
/// shorter one would end on the same tick as another.
const WINDOW: Duration = Duration::from_millis(4);
const TIMEOUT: Duration = Duration::from_millis(50);

/// A peer whose answer to a key depends on the key alone, and which records its requests.
#[derive(Default)]
struct FakePeer {
    batches: bool,
    /// How long each request takes to answer.
    delay: Duration,
    /// Every batch request fails as a whole.
    failing: bool,
    /// Batch requests never answer.
    hanging: bool,
    singles: Mutex<Vec<String>>,
    sent: Mutex<Vec<Vec<String>>>,
}

impl FakePeer {
    fn sent(&self) -> Vec<Vec<String>> {
        self.sent.lock().unwrap().clone()
    }

    fn singles(&self) -> Vec<String> {
        self.singles.lock().unwrap().clone()
    }
}

/// What the peer answers a single get of `key`: the model every caller is held to.
fn single_answer(key: &str) -> Result<Loaded, PeerError> {
    if key.starts_with("missing") {
        Err(PeerError::NotFound)
    } else if key.starts_with("deny") {
        Err(PeerError::Rejected(Rejected::new("no")))
    } else if key.starts_with("bad") {
        Err(PeerError::Status {
            status: 500,
            message: format!("cannot load {key}"),
        })
    } else {
        // A rate per key, to show it comes back with the right key's value.
        let qps = key.len() as f64;
        Ok(Loaded::from(format!("v-{key}")).with_minute_qps(Some(qps)))
    }
}

/// An answer in a form tests compare.
#[derive(Debug, PartialEq)]
enum Seen {
    Value(Vec<u8>, Option<u64>),
    NotFound,
    Rejected,
    Status(u16),
    Timeout,
    Batch,
    Other(String),
}

fn seen(answer: &Result<Loaded, PeerError>) -> Seen {
    match answer {
        Ok(loaded) => Seen::Value(
            loaded.value().as_slice().to_vec(),
            loaded.minute_qps().map(f64::to_bits),
        ),
        Err(PeerError::NotFound) => Seen::NotFound,
        Err(PeerError::Rejected(_)) => Seen::Rejected,
        Err(PeerError::Status { status, .. }) => Seen::Status(*status),
        Err(PeerError::Timeout(_)) => Seen::Timeout,
        Err(PeerError::Batch(_)) => Seen::Batch,
        Err(other) => Seen::Other(other.to_string()),
    }
}

impl PeerGetter for FakePeer {
    fn get<'a>(
        &'a self,
        _group: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Loaded, PeerError>> {
        self.singles.lock().unwrap().push(key.to_owned());
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            single_answer(key)
        })
    }

    fn get_many<'a>(
        &'a self,
        _group: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Result<Loaded, PeerError>>, PeerError>> {
        self.sent.lock().unwrap().push(keys.to_vec());
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            if self.hanging {
                std::future::pending::<()>().await;
            }
            if self.failing {
                return Err(PeerError::Status {
                    status: 503,
                    message: "overloaded".into(),
                });
            }
            Ok(keys.iter().map(|key| single_answer(key)).collect())
        })
    }

    fn takes_batches(&self) -> bool {
        self.batches
    }

    fn remove<'a>(
        &'a self,
        _group: &'a str,
        _key: &'a str,
        _mode: RemoveMode,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    fn name(&self) -> &str {
        "fake"
    }
}

fn batching_peer() -> FakePeer {
    FakePeer {
        batches: true,
        delay: Duration::from_millis(1),
        ..FakePeer::default()
    }
}

/// Asks `peer` for each of `keys` at once through `coalescer`, and returns what each got.
async fn fetch_all(coalescer: &Coalescer, peer: &Arc<FakePeer>, keys: &[&str]) -> Vec<Seen> {
    let peer: Arc<dyn PeerGetter> = Arc::clone(peer) as _;
    let fetches = keys
        .iter()
        .map(|key| coalescer.fetch("scores", &peer, key, TIMEOUT));
    join_all(fetches).await.iter().map(seen).collect()
}

fn expected(keys: &[&str]) -> Vec<Seen> {
    keys.iter().map(|key| seen(&single_answer(key))).collect()
}

#[tokio::test(start_paused = true)]
async fn fetches_within_a_window_go_out_as_one_request_at_its_end() {
    let peer = Arc::new(batching_peer());
    let coalescer = Coalescer::new(WINDOW).unwrap();
    let keys = ["k1", "missing", "k2", "deny", "bad", "k3"];
    let fetches = fetch_all(&coalescer, &peer, &keys);
    let early_look = async {
        tokio::time::sleep(WINDOW / 2).await;
        peer.sent().len()
    };
    let (got, sent_early) = futures_util::future::join(fetches, early_look).await;
    assert_eq!(sent_early, 0, "nothing goes out before the window's end");
    assert_eq!(
        got,
        expected(&keys),
        "each caller gets its own key's answer"
    );
    assert_eq!(peer.sent(), [keys.map(String::from).to_vec()]);
    assert!(peer.singles().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_fetch_after_the_window_opens_the_next_one() {
    let peer = Arc::new(batching_peer());
    let coalescer = Arc::new(Coalescer::new(WINDOW).unwrap());
    let first = fetch_all(&coalescer, &peer, &["k1", "k2"]).await;
    let second = fetch_all(&coalescer, &peer, &["k3"]).await;
    assert_eq!(
        (first, second),
        (expected(&["k1", "k2"]), expected(&["k3"]))
    );
    assert_eq!(peer.sent(), [vec!["k1", "k2"], vec!["k3"]]);
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_leaves_is_not_sent_and_does_not_hurt_the_others() {
    let peer = Arc::new(batching_peer());
    let dyn_peer: Arc<dyn PeerGetter> = Arc::clone(&peer) as _;
    let coalescer = Arc::new(Coalescer::new(WINDOW).unwrap());
    let spawn = |key: &'static str| {
        let (coalescer, peer) = (Arc::clone(&coalescer), Arc::clone(&dyn_peer));
        tokio::spawn(async move { seen(&coalescer.fetch("scores", &peer, key, TIMEOUT).await) })
    };
    let (a, b, c) = (spawn("k1"), spawn("k2"), spawn("k3"));
    // Let all three join the window, then cancel the second before the window ends.
    tokio::time::sleep(WINDOW / 2).await;
    b.abort();
    assert!(b.await.unwrap_err().is_cancelled());
    assert_eq!(a.await.unwrap(), seen(&single_answer("k1")));
    assert_eq!(c.await.unwrap(), seen(&single_answer("k3")));
    assert_eq!(
        peer.sent(),
        [vec!["k1", "k3"]],
        "the cancelled key is left out"
    );
}

#[tokio::test(start_paused = true)]
async fn when_every_caller_leaves_nothing_is_sent() {
    let peer = Arc::new(batching_peer());
    let coalescer = Coalescer::new(WINDOW).unwrap();
    let gone = tokio::time::timeout(WINDOW / 2, fetch_all(&coalescer, &peer, &["k1", "k2"]));
    assert!(gone.await.is_err());
    tokio::time::sleep(WINDOW * 2).await;
    assert!(peer.sent().is_empty());
    assert!(peer.singles().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_peer_without_batches_gets_single_gets_without_waiting() {
    let peer = Arc::new(FakePeer {
        batches: false,
        ..batching_peer()
    });
    let coalescer = Coalescer::new(WINDOW).unwrap();
    let keys = ["k1", "k2", "missing"];
    let fetches = fetch_all(&coalescer, &peer, &keys);
    let done = tokio::time::timeout(WINDOW / 2, fetches).await;
    assert_eq!(
        done.ok(),
        Some(expected(&keys)),
        "answered without a window"
    );
    assert!(peer.sent().is_empty());
    assert_eq!(peer.singles(), keys);
}

#[tokio::test(start_paused = true)]
async fn a_full_window_goes_out_at_once_and_bounds_the_waiting_callers() {
    let peer = Arc::new(batching_peer());
    // Three keys or ten bytes of keys a window.
    let coalescer = Coalescer::bounded(WINDOW, 3, 10).unwrap();
    let keys = ["k1", "k2", "k3", "k4", "k5", "k6", "k7", "long-key-8", "k9"];
    let fetches = fetch_all(&coalescer, &peer, &keys);
    let early_look = async {
        tokio::time::sleep(WINDOW / 2).await;
        peer.sent().len()
    };
    let (got, sent_early) = futures_util::future::join(fetches, early_look).await;
    assert_eq!(got, expected(&keys));
    assert_eq!(sent_early, 4, "the full windows went out before their end");
    assert_eq!(
        peer.sent(),
        [
            vec!["k1", "k2", "k3"],
            vec!["k4", "k5", "k6"],
            // "long-key-8" would take the window past ten bytes: k7 goes, and it opens the next.
            vec!["k7"],
            // Ten bytes: full.
            vec!["long-key-8"],
            vec!["k9"],
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_key_already_in_the_window_is_asked_for_alone() {
    let peer = Arc::new(batching_peer());
    let coalescer = Coalescer::new(WINDOW).unwrap();
    let keys = ["k1", "k2", "k1"];
    assert_eq!(fetch_all(&coalescer, &peer, &keys).await, expected(&keys));
    assert_eq!(
        peer.sent(),
        [vec!["k1", "k2"]],
        "a batch holds each key once"
    );
    assert_eq!(peer.singles(), ["k1"]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_batch_is_every_callers_failure() {
    let peer = Arc::new(FakePeer {
        failing: true,
        ..batching_peer()
    });
    let coalescer = Coalescer::new(WINDOW).unwrap();
    let got = fetch_all(&coalescer, &peer, &["k1", "k2"]).await;
    assert_eq!(got, [Seen::Batch, Seen::Batch]);
}

#[tokio::test(start_paused = true)]
async fn each_caller_times_out_on_its_own_clock() {
    let peer = Arc::new(FakePeer {
        hanging: true,
        ..batching_peer()
    });
    let dyn_peer: Arc<dyn PeerGetter> = Arc::clone(&peer) as _;
    let coalescer = Coalescer::new(WINDOW).unwrap();
    let started = tokio::time::Instant::now();
    let early = async {
        let answer = coalescer.fetch("scores", &dyn_peer, "k1", TIMEOUT).await;
        (seen(&answer), started.elapsed())
    };
    let late = async {
        tokio::time::sleep(WINDOW / 2).await;
        let answer = coalescer.fetch("scores", &dyn_peer, "k2", TIMEOUT).await;
        (seen(&answer), started.elapsed())
    };
    let (early, late) = futures_util::future::join(early, late).await;
    assert_eq!(early, (Seen::Timeout, TIMEOUT));
    assert_eq!(late, (Seen::Timeout, WINDOW / 2 + TIMEOUT));
    assert_eq!(peer.sent(), [vec!["k1", "k2"]]);
}

#[test]
fn a_zero_window_is_off() {
    assert!(Coalescer::new(Duration::ZERO).is_none());
}

/// One caller of the model test: when it calls, which key, and when (if ever) it gives up.
#[derive(Clone, Debug)]
struct Caller {
    at_ms: u64,
    key: String,
    leaves_after_ms: Option<u64>,
}

fn caller() -> impl Strategy<Value = Caller> {
    let key = prop_oneof![
        6 => (0..12u8).prop_map(|i| format!("k{i}")),
        1 => (0..3u8).prop_map(|i| format!("missing{i}")),
        1 => (0..3u8).prop_map(|i| format!("deny{i}")),
        1 => (0..3u8).prop_map(|i| format!("bad{i}")),
        1 => Just("a-key-longer-than-the-bound".to_owned()),
    ];
    let leaves = prop_oneof![3 => Just(None), 1 => (0..8u64).prop_map(Some)];
    (0..20u64, key, leaves).prop_map(|(at_ms, key, leaves_after_ms)| Caller {
        at_ms,
        key,
        leaves_after_ms,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The model: whatever the interleaving of callers, keys, departures and window bounds,
    /// every caller that stays gets what a single get of its key gets, and every request the
    /// peer sees holds distinct keys within the bounds.
    #[test]
    fn every_caller_gets_what_a_single_get_gets(
        callers in prop::collection::vec(caller(), 1..40),
        batches in any::<bool>(),
        max_keys in 1usize..6,
        max_bytes in 4usize..24,
        delay_ms in 0u64..6,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let peer = Arc::new(FakePeer {
            batches,
            delay: Duration::from_millis(delay_ms),
            ..FakePeer::default()
        });
        let dyn_peer: Arc<dyn PeerGetter> = Arc::clone(&peer) as _;
        let coalescer = Arc::new(Coalescer::bounded(WINDOW, max_keys, max_bytes).unwrap());
        let results = runtime.block_on(async {
            let tasks: Vec<_> = callers
                .iter()
                .cloned()
                .map(|c| {
                    let (coalescer, peer) = (Arc::clone(&coalescer), Arc::clone(&dyn_peer));
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(c.at_ms)).await;
                        let fetch = coalescer.fetch("scores", &peer, &c.key, TIMEOUT);
                        match c.leaves_after_ms {
                            None => Some(fetch.await),
                            Some(ms) => tokio::time::timeout(Duration::from_millis(ms), fetch)
                                .await
                                .ok(),
                        }
                    })
                })
                .collect();
            join_all(tasks).await
        });
        for (caller, result) in callers.iter().zip(results) {
            match (result.unwrap(), caller.leaves_after_ms) {
                (Some(answer), _) => {
                    prop_assert_eq!(seen(&answer), seen(&single_answer(&caller.key)), "{:?}", caller);
                }
                (None, Some(_)) => {}
                (None, None) => prop_assert!(false, "{:?} stayed and got nothing", caller),
            }
        }
        let sent = peer.sent();
        prop_assert!(batches || sent.is_empty(), "a peer without batches got one");
        for request in &sent {
            let bytes: usize = request.iter().map(String::len).sum();
            prop_assert!(!request.is_empty());
            prop_assert!(request.len() <= max_keys, "{:?}", request);
            prop_assert!(bytes <= max_bytes, "{:?}", request);
            let mut distinct = request.clone();
            distinct.sort();
            distinct.dedup();
            prop_assert_eq!(distinct.len(), request.len(), "{:?}", request);
        }
        let asked = sent.iter().map(Vec::len).sum::<usize>() + peer.singles().len();
        prop_assert!(asked <= callers.len(), "no key asked for twice for one caller");
    }
}
