//! What a cache miss costs on the machine at hand: one load at a time, each depending on the last,
//! over arrays from 1 MiB to 32 MiB.
//!
//! Not a benchmark of the cache. It gives the scale for reading `single_thread`: a hit there
//! touches a few scattered cache lines (table, entry, key bytes), so its time is a small multiple
//! of the latency measured here for a working set of its size (about 20 MiB: 100 000 entries,
//! their keys, and the keys looked up).
//!
//! The array holds one random cycle (Sattolo's algorithm) through all its 64-byte lines, so no
//! prefetcher can guess the next address.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// `usize`s per 64-byte cache line.
const LINE: usize = 64 / size_of::<usize>();

/// An array of `bytes` whose first word in each line holds the index of the next line to visit.
fn cycle(bytes: usize, seed: u64) -> Vec<usize> {
    let lines = bytes / 64;
    let mut order: Vec<usize> = (0..lines).collect();
    let mut rng = SmallRng::seed_from_u64(seed);
    // Sattolo: a uniformly random permutation that is a single cycle.
    for i in (1..lines).rev() {
        let j = rng.random_range(0..i);
        order.swap(i, j);
    }
    let mut next = vec![0; lines * LINE];
    for (k, &line) in order.iter().enumerate() {
        next[line * LINE] = order[(k + 1) % lines] * LINE;
    }
    next
}

fn chase(c: &mut Criterion) {
    let mut group = c.benchmark_group("dependent_load");
    group.throughput(Throughput::Elements(1));
    for mib in [1, 2, 4, 8, 16, 32] {
        let next = cycle(mib << 20, 0x6765_6563);
        group.bench_function(BenchmarkId::new("mib", mib), |b| {
            let mut at = 0;
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    at = next[at];
                }
                let elapsed = start.elapsed();
                black_box(at);
                elapsed
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = memory;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = chase
}
criterion_main!(memory);
