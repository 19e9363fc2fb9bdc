use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::random;
use crate::stats::Counter;
use crate::{Error, LoadError, Loaded};

#[test]
fn a_striped_counter_sums_increments_from_many_threads() {
    let counter = Arc::new(Counter::default());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let counter = Arc::clone(&counter);
            scope.spawn(move || {
                for _ in 0..1_000 {
                    counter.incr();
                }
            });
        }
    });
    assert_eq!(counter.get(), 4_000);
}

#[test]
fn the_default_random_source_does_not_repeat_itself() {
    let source = random::default_source();
    let draws: HashSet<u64> = (0..1_000).map(|_| source()).collect();
    assert_eq!(draws.len(), 1_000, "xorshift64* has period 2^64 - 1");
    // Roughly one in ten admitted, as hot-cache admission will ask: a loose bound, since a
    // fair generator lands within ±3% of 10% over 10,000 draws with overwhelming odds.
    let admitted = (0..10_000).filter(|_| source().is_multiple_of(10)).count();
    assert!((700..1_300).contains(&admitted), "{admitted}");
}

#[test]
fn loaded_keeps_its_own_ttl() {
    let plain = Loaded::from("v");
    assert_eq!(plain.ttl(), None);
    let timed = Loaded::from(vec![1u8, 2]).with_ttl(Duration::from_secs(3));
    assert_eq!(timed.ttl(), Some(Duration::from_secs(3)));
    assert_eq!(timed.value().as_slice(), &[1, 2]);
    assert_eq!(timed.with_optional_ttl(None).ttl(), None);
}

#[test]
fn errors_say_what_went_wrong() {
    assert!(Error::NotFound.is_not_found());
    assert!(!Error::EmptyKey.is_not_found());
    let failed = Error::Load(Arc::new(LoadError::failed("disk on fire")));
    assert_eq!(failed.to_string(), "load failed: disk on fire");
    assert!(!failed.is_not_found());
}

#[test]
fn logged_keys_are_cut_short() {
    assert_eq!(crate::group::shown("k1"), "k1");
    let long = "é".repeat(200);
    let cut = crate::group::shown(&long);
    assert!(cut.starts_with(&"é".repeat(120)));
    assert!(cut.ends_with("... (400 bytes)"), "{cut}");
}

// Regression: every failed fetch from a peer logged a WARN line with its key, so a peer that
// was down made one line per request. Each peer gets one line per interval, which counts the
// lines held back; other peers are not held back by it.
#[tokio::test(start_paused = true)]
async fn peer_warnings_are_logged_once_per_peer_per_interval() {
    use crate::warnings::{PeerWarnings, WARN_INTERVAL};
    let warnings = PeerWarnings::default();
    assert_eq!(warnings.admit("http://a"), Some(0));
    assert_eq!(warnings.admit("http://a"), None);
    assert_eq!(warnings.admit("http://a"), None);
    assert_eq!(
        warnings.admit("http://b"),
        Some(0),
        "another peer's own count"
    );
    tokio::time::advance(WARN_INTERVAL - Duration::from_millis(1)).await;
    assert_eq!(warnings.admit("http://a"), None);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(warnings.admit("http://a"), Some(3), "three held back since");
    assert_eq!(warnings.admit("http://a"), None);
    assert_eq!(warnings.admit("http://b"), Some(0));
}

#[test]
fn an_observed_fetch_reports_once_and_a_dropped_one_as_a_timeout() {
    use std::sync::Mutex;

    use crate::{ObservedFetch, PeerObserver, PeerOutcome};

    #[derive(Default)]
    struct Heard(Mutex<Vec<(String, PeerOutcome)>>);
    impl PeerObserver for Heard {
        fn on_peer_request(&self, peer: &str, outcome: PeerOutcome, _elapsed: Duration) {
            self.0.lock().unwrap().push((peer.to_owned(), outcome));
        }
    }

    let heard = Heard::default();
    ObservedFetch::start(&heard, "http://a:1").finish(PeerOutcome::NotFound);
    // Dropped unfinished: the group's peer timeout dropped the fetch's future.
    drop(ObservedFetch::start(&heard, "http://b:1"));
    assert_eq!(
        *heard.0.lock().unwrap(),
        [
            ("http://a:1".to_owned(), PeerOutcome::NotFound),
            ("http://b:1".to_owned(), PeerOutcome::Timeout),
        ]
    );
}

#[cfg(target_pointer_width = "64")]
#[test]
fn the_memory_charge_is_what_the_docs_quote() {
    use crate::cache::Entry;
    use crate::{Charge, Policy};
    // `docs/operations.md` ("Sizing") and `docs/performance.md` quote these. The value's
    // deadline is the cache's (8 bytes in its slot), not a second copy in the group's entry,
    // which took 16 bytes more: 168 and 176 then.
    assert_eq!(size_of::<Entry>(), 40);
    assert_eq!(Charge::Memory.entry_overhead(Policy::Lru), 152);
    assert_eq!(Charge::Memory.entry_overhead(Policy::S3Fifo), 160);
}
