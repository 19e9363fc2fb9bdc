//! The LRU hit path alone, with everything in the CPU's caches: 1 024 `u64` entries, looked up
//! in a random order that repeats.
//!
//! `single_thread`'s `get_hit` is bound by memory latency (100 000 entries, string keys), which
//! hides a few instructions more or less on the hit path. This benchmark is the opposite: the
//! working set fits in L1/L2, so what it measures is the instructions themselves. It uses only
//! the API every version of the crate has, so the same file can time an older checkout and
//! show what a change (such as the policy choice) costs the LRU path.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use geecache_lru::Cache;

const ENTRIES: u64 = 1024;

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn benches(c: &mut Criterion) {
    let keys: Vec<u64> = (0..ENTRIES)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();
    let mut state = 0x6765_6563_6163_6865;
    #[allow(clippy::cast_possible_truncation)]
    let order: Vec<u64> = (0..1 << 16)
        .map(|_| keys[(xorshift(&mut state) % ENTRIES) as usize])
        .collect();
    // u64 key + u64 value: 16 bytes an entry, and room for exactly `ENTRIES`.
    let mut cache = Cache::<u64, u64>::new(16 * ENTRIES as usize);
    for &k in &keys {
        cache.add(k, k);
    }
    let mut group = c.benchmark_group("hit_in_cache");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter("geecache_lru"), |b| {
        let mut next = 0;
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(cache.get(&order[next]));
                next = (next + 1) & (order.len() - 1);
            }
            start.elapsed()
        });
    });
    group.finish();
}

criterion_group! {
    name = hit_path;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(hit_path);
