//! Many threads on one `SegmentedCache`, then the books must balance.
//!
//! Each thread runs a fixed number of operations chosen by its own seeded generator, so the test
//! is bounded in count; time is a counter the threads advance, never the wall clock. The checks
//! are made at quiescence, after every thread has joined.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use geecache_lru::{Policy, SegmentedCache};

const THREADS: u64 = 4;
const OPS_PER_THREAD: u64 = 20_000;
/// Every entry is a u64 key and a u64 value: 16 bytes.
const ENTRY: usize = 16;
const MAX_BYTES: usize = ENTRY * 512;

/// xorshift64*: enough randomness for choosing operations, and reproducible.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[derive(Default)]
struct Tally {
    hits: u64,
    misses: u64,
    adds: u64,
    removed: u64,
    purged: u64,
}

#[test]
fn counters_add_up_and_the_budget_holds() -> Result<(), Box<dyn std::error::Error>> {
    books_balance(Policy::Lru)
}

#[test]
fn counters_add_up_and_the_budget_holds_under_s3fifo() -> Result<(), Box<dyn std::error::Error>> {
    books_balance(Policy::S3Fifo)
}

fn books_balance(policy: Policy) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let millis = Arc::new(AtomicU64::new(0));
    let reading = Arc::clone(&millis);
    let now = move || start + Duration::from_millis(reading.load(Ordering::Relaxed));
    let clock = now.clone();
    let cache = SegmentedCache::<u64, u64>::builder(MAX_BYTES)
        .segments(8)
        .clock(clock)
        .policy(policy)
        .build()?;

    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (cache, millis, now) = (&cache, &millis, &now);
                s.spawn(move || {
                    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t + 1));
                    let mut tally = Tally::default();
                    for i in 0..OPS_PER_THREAD {
                        // Keys are unique per add, so every add makes exactly one new entry;
                        // lookups aim at keys any thread added recently, so they hit and miss.
                        let recent = (rng.below(THREADS) << 32) | i.saturating_sub(rng.below(600));
                        match rng.below(100) {
                            0..=39 => {
                                let key = (t << 32) | i;
                                tally.adds += 1;
                                if rng.below(4) == 0 {
                                    let ttl = Duration::from_millis(rng.below(5));
                                    cache.add_with_expiry(key, i, now() + ttl);
                                } else {
                                    cache.add(key, i);
                                }
                            }
                            40..=89 => match cache.get(&recent) {
                                Some(_) => tally.hits += 1,
                                None => tally.misses += 1,
                            },
                            90..=94 => tally.removed += u64::from(cache.remove(&recent).is_some()),
                            95..=96 => {
                                cache.evict_one();
                            }
                            97 => tally.purged += cache.purge_expired(now()) as u64,
                            _ => {
                                millis.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    tally
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });

    let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
    let stats = cache.stats();
    assert_eq!(stats.hits, sum(|t| t.hits));
    assert_eq!(stats.misses, sum(|t| t.misses));
    assert!(stats.hits > 0 && stats.misses > 0, "{stats:?}");
    assert!(stats.evictions > 0 && stats.expirations > 0, "{stats:?}");
    assert!(stats.expirations >= sum(|t| t.purged));
    // Every add made one entry; every entry that left was evicted, expired or removed.
    assert_eq!(
        stats.entries as u64,
        sum(|t| t.adds) - stats.evictions - stats.expirations - sum(|t| t.removed)
    );
    assert_eq!(stats.entries, cache.len());
    assert_eq!(stats.bytes, cache.bytes());
    assert_eq!(stats.bytes, stats.entries * ENTRY);
    assert!(
        cache.bytes() <= MAX_BYTES,
        "{} > {MAX_BYTES}",
        cache.bytes()
    );

    // Draining by eviction accounts for every entry that is left.
    let left = stats.entries;
    let mut drained = 0;
    while cache.evict_one().is_some() {
        drained += 1;
        assert!(drained <= left, "evict_one kept returning entries");
    }
    assert_eq!(drained, left);
    assert!(cache.is_empty());
    assert_eq!(cache.bytes(), 0);
    Ok(())
}
