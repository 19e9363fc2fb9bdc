//! Model-checked interleavings of the segmented cache's locks and published counters.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p geecache-lru --lib --release`. loom swaps each
//! segment's `Mutex` and counters for its own and explores every order in which the threads
//! below can take the locks and store the counters. A deadlock (say, an operation holding two
//! segment locks while another takes them in the other order) fails the model; so does any
//! interleaving after which the counters and contents disagree.

use loom::sync::Arc;
use loom::thread;

use std::hash::BuildHasher;

use crate::cache::HashState;
use crate::segmented::segment_index;
use crate::{Policy, SegmentedCache};

/// Two segments of one 2-byte entry each (a `u8` key and a `u8` value).
fn tiny() -> SegmentedCache<u8, u8> {
    tiny_with(Policy::Lru)
}

fn tiny_with(policy: Policy) -> SegmentedCache<u8, u8> {
    SegmentedCache::builder(4)
        .segments(2)
        .policy(policy)
        .build()
        .unwrap()
}

/// Two threads add a key each, evict and look up the other's key; afterwards the published
/// counters must match the contents and what the threads saw.
fn adds_gets_and_evictions_keep_the_books(k1: u8, k2: u8, policy: Policy) {
    loom::model(move || {
        let cache = Arc::new(tiny_with(policy));
        let a = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                cache.add(k1, 10);
                u64::from(cache.get(&k2).is_some())
            })
        };
        let b = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                cache.add(k2, 20);
                let evicted = u64::from(cache.evict_one().is_some());
                (u64::from(cache.get(&k1).is_some()), evicted)
            })
        };
        let hits_a = a.join().unwrap();
        let (hits_b, evicted) = b.join().unwrap();

        cache.validate().unwrap();
        let stats = cache.stats();
        assert_eq!(stats.hits, hits_a + hits_b);
        assert_eq!(stats.hits + stats.misses, 2);
        // Besides `evict_one`, the budget evicts only when both keys share a segment (one
        // entry fits in each) and both were in it at once.
        let same_segment = cache.segment_of(&k1) == cache.segment_of(&k2);
        assert!(stats.evictions >= evicted);
        assert!(stats.evictions <= evicted + u64::from(same_segment));
        // Two adds of distinct keys, nothing expired or removed: what is left is what was not
        // evicted.
        assert_eq!(stats.entries as u64, 2 - stats.evictions);
        assert_eq!(stats.entries, cache.len());
        assert_eq!(stats.bytes, 2 * stats.entries);
    });
}

/// Two keys that land in the same segment (`same`) or in different ones. Computed outside any
/// model, where loom's primitives (and so a cache) cannot be built; under loom the hash state
/// is fixed, so every cache agrees.
fn key_pair(same: bool) -> (u8, u8) {
    let segment = |k: u8| segment_index(HashState::default().hash_one(k), 1);
    let k2 = (2..=u8::MAX)
        .find(|&k| (segment(k) == segment(1)) == same)
        .unwrap();
    (1, k2)
}

#[test]
fn keys_in_one_segment_keep_the_books() {
    let (k1, k2) = key_pair(true);
    adds_gets_and_evictions_keep_the_books(k1, k2, Policy::Lru);
}

#[test]
fn keys_in_two_segments_keep_the_books() {
    let (k1, k2) = key_pair(false);
    adds_gets_and_evictions_keep_the_books(k1, k2, Policy::Lru);
}

#[test]
fn s3fifo_segments_keep_the_books() {
    // The victim search moves entries between queues under the segment lock; the books must
    // balance in every interleaving all the same.
    for same in [true, false] {
        let (k1, k2) = key_pair(same);
        adds_gets_and_evictions_keep_the_books(k1, k2, Policy::S3Fifo);
    }
}

#[test]
fn a_sweep_and_a_clear_never_deadlock_with_traffic() {
    loom::model(|| {
        let cache = Arc::new(tiny());
        cache.add(1, 1);
        cache.add(2, 2);
        let sweeper = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                cache.purge_expired(std::time::Instant::now());
                cache.clear();
            })
        };
        cache.add(3, 3);
        let _ = cache.evict_one();
        sweeper.join().unwrap();
        cache.validate().unwrap();
        assert_eq!(cache.stats().entries, cache.len());
    });
}
