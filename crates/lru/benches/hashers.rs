//! Which hash function the caches use: hashing a key alone, and a `hashbrown::HashTable<u32>`
//! probe shaped like the cache's (100 000 string keys in a side vector, the table holding
//! indices), with SipHash (std's default), FNV-1a (groupcache's choice for sharding),
//! foldhash-fast and foldhash-quality.

mod support;

use std::hash::{BuildHasher, Hasher};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hashbrown::HashTable;

/// 64-bit FNV-1a, one byte at a time.
#[derive(Clone, Copy, Default)]
struct Fnv1a;

struct Fnv1aHasher(u64);

impl BuildHasher for Fnv1a {
    type Hasher = Fnv1aHasher;
    fn build_hasher(&self) -> Fnv1aHasher {
        Fnv1aHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1aHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

fn hash_alone<S: BuildHasher>(c: &mut Criterion, name: &str, state: &S, keys: &[String]) {
    let mut group = c.benchmark_group("hash_str_16_32");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % keys.len();
            state.hash_one(black_box(keys[i].as_str()))
        });
    });
    group.finish();

    let mut group = c.benchmark_group("hash_u64");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
            state.hash_one(black_box(i))
        });
    });
    group.finish();
}

fn probe<S: BuildHasher>(
    c: &mut Criterion,
    name: &str,
    state: &S,
    keys: &[String],
    order: &[usize],
) {
    let mut table = HashTable::<u32>::new();
    for (i, key) in keys.iter().enumerate() {
        let i = u32::try_from(i).expect("few keys");
        table.insert_unique(state.hash_one(key.as_str()), i, |&j| {
            state.hash_one(keys[j as usize].as_str())
        });
    }
    let mut group = c.benchmark_group("table_probe_str");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        let mut next = 0;
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let key = keys[order[next]].as_str();
                let found = table.find(state.hash_one(key), |&j| keys[j as usize] == key);
                black_box(found);
                next = (next + 1) % order.len();
            }
            start.elapsed()
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let keys = support::string_keys(100_000, support::SEED);
    let order = support::uniform_indices(1 << 20, keys.len(), support::SEED + 1);
    let sip = std::hash::RandomState::new();
    let fast = foldhash::fast::RandomState::default();
    let quality = foldhash::quality::RandomState::default();
    hash_alone(c, "siphash13", &sip, &keys);
    hash_alone(c, "fnv1a", &Fnv1a, &keys);
    hash_alone(c, "foldhash_fast", &fast, &keys);
    hash_alone(c, "foldhash_quality", &quality, &keys);
    probe(c, "siphash13", &sip, &keys, &order);
    probe(c, "fnv1a", &Fnv1a, &keys, &order);
    probe(c, "foldhash_fast", &fast, &keys, &order);
    probe(c, "foldhash_quality", &quality, &keys, &order);
}

criterion_group! {
    name = hashers;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(hashers);
