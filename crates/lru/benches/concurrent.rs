//! Throughput of the concurrent caches on 1 and 2 threads, beside `Mutex<lru::LruCache>`,
//! `moka::sync::Cache` and `quick_cache::sync::Cache`. Our segmented cache runs twice, with the
//! LRU policy (`geecache_lru_segmented`) and with S3-FIFO (`geecache_s3fifo_segmented`).
//!
//! Workload: Zipf(0.99) over 1 000 000 keys, capacity 100 000 entries (10% of the keys); 90% of
//! operations are reads and 10% writes. A read is what a read-through cache does: `get`, and on a
//! miss `insert` the value (as if just loaded); a write is an `insert`. Reads filling the cache
//! on misses is what makes the capacity bind and the hit ratio reflect the eviction policy.
//! Keys and values are `u64`. Our cache is given a weigher of 1 per entry so that every
//! implementation counts entries and the capacities are equal. Before the timed runs, each
//! cache is warmed with the same workload and its hit ratio measured over a fixed 2 000 000
//! operations; the ratios are printed after the results.

mod support;

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use geecache_lru::{Policy, SegmentedCache};
use support::Op;

const KEYS: u64 = 1_000_000;
const CAPACITY: usize = 100_000;
const ZIPF_S: f64 = 0.99;
const READ_PERCENT: u32 = 90;
const STREAM: usize = 1 << 20;
const HIT_RATIO_OPS: usize = 2_000_000;

trait Concurrent: Sync {
    const NAME: &'static str;
    fn new(capacity: usize) -> Self;
    fn get(&self, key: u64) -> bool;
    fn insert(&self, key: u64, value: u64);
}

type Weighed = SegmentedCache<u64, u64, fn(&u64, &u64) -> usize>;

fn weighed(capacity: usize, policy: Policy) -> Weighed {
    fn one(_: &u64, _: &u64) -> usize {
        1
    }
    SegmentedCache::builder(capacity)
        .weigher(one as fn(&u64, &u64) -> usize)
        .policy(policy)
        .build()
        .expect("valid settings")
}

impl Concurrent for Weighed {
    const NAME: &'static str = "geecache_lru_segmented";
    fn new(capacity: usize) -> Self {
        weighed(capacity, Policy::Lru)
    }
    fn get(&self, key: u64) -> bool {
        SegmentedCache::get(self, &key).is_some()
    }
    fn insert(&self, key: u64, value: u64) {
        self.add(key, value);
    }
}

/// The same cache with the S3-FIFO policy in every segment.
struct WeighedS3(Weighed);

impl Concurrent for WeighedS3 {
    const NAME: &'static str = "geecache_s3fifo_segmented";
    fn new(capacity: usize) -> Self {
        WeighedS3(weighed(capacity, Policy::S3Fifo))
    }
    fn get(&self, key: u64) -> bool {
        self.0.get(&key).is_some()
    }
    fn insert(&self, key: u64, value: u64) {
        self.0.add(key, value);
    }
}

impl Concurrent for Mutex<lru::LruCache<u64, u64>> {
    const NAME: &'static str = "mutex_lru";
    fn new(capacity: usize) -> Self {
        Mutex::new(lru::LruCache::new(capacity.try_into().unwrap()))
    }
    fn get(&self, key: u64) -> bool {
        self.lock().unwrap().get(&key).is_some()
    }
    fn insert(&self, key: u64, value: u64) {
        self.lock().unwrap().put(key, value);
    }
}

impl Concurrent for moka::sync::Cache<u64, u64> {
    const NAME: &'static str = "moka_sync";
    fn new(capacity: usize) -> Self {
        moka::sync::Cache::new(capacity as u64)
    }
    fn get(&self, key: u64) -> bool {
        moka::sync::Cache::get(self, &key).is_some()
    }
    fn insert(&self, key: u64, value: u64) {
        moka::sync::Cache::insert(self, key, value);
    }
}

impl Concurrent for quick_cache::sync::Cache<u64, u64> {
    const NAME: &'static str = "quick_cache_sync";
    fn new(capacity: usize) -> Self {
        quick_cache::sync::Cache::new(capacity)
    }
    fn get(&self, key: u64) -> bool {
        quick_cache::sync::Cache::get(self, &key).is_some()
    }
    fn insert(&self, key: u64, value: u64) {
        quick_cache::sync::Cache::insert(self, key, value);
    }
}

/// Runs `ops`, returning (gets, hits).
fn run<C: Concurrent>(cache: &C, ops: &[Op]) -> (u64, u64) {
    let (mut gets, mut hits) = (0, 0);
    for op in ops {
        if op.read {
            gets += 1;
            let hit = cache.get(op.key);
            hits += u64::from(hit);
            if !hit {
                cache.insert(op.key, op.key);
            }
        } else {
            cache.insert(op.key, op.key);
        }
    }
    (gets, hits)
}

fn throughput<C: Concurrent>(
    c: &mut Criterion,
    streams: &[Vec<Op>],
    hit_ratios: &mut Vec<(String, f64)>,
) {
    let cache = C::new(CAPACITY);
    // Warm up to steady state, then measure the hit ratio on operations not seen before.
    run(&cache, &streams[0]);
    let measured = support::zipf_ops(
        HIT_RATIO_OPS,
        KEYS,
        ZIPF_S,
        READ_PERCENT,
        support::SEED + 99,
    );
    let (gets, hits) = run(&cache, &measured);
    #[allow(clippy::cast_precision_loss)]
    hit_ratios.push((C::NAME.to_owned(), hits as f64 / gets as f64));

    let mut group = c.benchmark_group("concurrent_zipf_90read");
    for threads in [1usize, 2] {
        // Each thread walks its own stream and resumes where it stopped in the last sample.
        let cursors: Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_function(BenchmarkId::new(C::NAME, threads), |b| {
            b.iter_custom(|iters| {
                let barrier = Barrier::new(threads + 1);
                std::thread::scope(|s| {
                    for (stream, cursor) in streams.iter().zip(&cursors) {
                        let (cache, barrier) = (&cache, &barrier);
                        s.spawn(move || {
                            let mut i = cursor.load(Ordering::Relaxed);
                            barrier.wait();
                            for _ in 0..iters {
                                let op = stream[i];
                                if op.read {
                                    if !black_box(cache.get(op.key)) {
                                        cache.insert(op.key, op.key);
                                    }
                                } else {
                                    cache.insert(op.key, op.key);
                                }
                                i = (i + 1) % stream.len();
                            }
                            cursor.store(i, Ordering::Relaxed);
                        });
                    }
                    barrier.wait();
                    let start = Instant::now();
                    // Leaving the scope joins every thread, so the clock stops after the last.
                    start
                })
                .elapsed()
            });
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let streams: Vec<Vec<Op>> = (0..2)
        .map(|t| support::zipf_ops(STREAM, KEYS, ZIPF_S, READ_PERCENT, support::SEED + t))
        .collect();
    let mut hit_ratios = Vec::new();
    throughput::<Weighed>(c, &streams, &mut hit_ratios);
    throughput::<WeighedS3>(c, &streams, &mut hit_ratios);
    throughput::<Mutex<lru::LruCache<u64, u64>>>(c, &streams, &mut hit_ratios);
    throughput::<quick_cache::sync::Cache<u64, u64>>(c, &streams, &mut hit_ratios);
    throughput::<moka::sync::Cache<u64, u64>>(c, &streams, &mut hit_ratios);
    println!("\nhit ratios (gets that hit, {HIT_RATIO_OPS} ops after warm-up, 1 thread):");
    for (name, ratio) in hit_ratios {
        println!("  {name:<24} {:.2}%", ratio * 100.0);
    }
}

criterion_group! {
    name = concurrent;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(concurrent);
