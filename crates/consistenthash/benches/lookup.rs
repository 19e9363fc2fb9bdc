//! Lookup and build cost of `Ring` beside the `hashring` crate and jump consistent hashing.
//!
//! ```text
//! cargo bench -p geecache-consistenthash --bench lookup -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Keys are drawn from a Zipf distribution (s = 1.0) over a million key names with a seeded RNG,
//! as a cache sees them; each iteration looks up all of them, so throughput is in lookups.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use geecache_consistenthash::{Murmur3, Ring, RingHash};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::Zipf;

const LOOKUPS: usize = 10_000;

fn member(i: usize) -> String {
    format!("http://10.0.{}.{}:8000", i / 250, i % 250 + 1)
}

fn keys() -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(0x6765_6563_6163_6865);
    let zipf = Zipf::new(1_000_000.0, 1.0).expect("valid Zipf parameters");
    (0..LOOKUPS)
        .map(|_| format!("user:{}", rng.sample(zipf) as u64))
        .collect()
}

/// A virtual node for `hashring`, which has no virtual nodes of its own: its documentation
/// builds them this way.
#[derive(Clone, Debug, Hash, PartialEq)]
struct VNode {
    member: String,
    id: usize,
}

fn hashring_ring(members: usize, replicas: usize) -> hashring::HashRing<VNode> {
    let mut ring = hashring::HashRing::new();
    ring.batch_add(
        (0..members)
            .flat_map(|m| {
                (0..replicas).map(move |id| VNode {
                    member: member(m),
                    id,
                })
            })
            .collect(),
    );
    ring
}

/// Jump consistent hash (Lamping & Veach, 2014): no table at all, perfect balance, but members
/// can only be added or removed at the end of the list. The lower bound a table-based ring
/// could hope for.
fn jump(mut key: u64, buckets: usize) -> usize {
    let (mut b, mut j) = (-1i64, 0i64);
    while j < buckets as i64 {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as usize
}

fn lookup(c: &mut Criterion) {
    let keys = keys();
    for n in [3usize, 10, 100] {
        let mut group = c.benchmark_group(format!("lookup/{n}-members"));
        group.throughput(Throughput::Elements(keys.len() as u64));

        let mut compatible = Ring::default();
        compatible.add((0..n).map(member));
        group.bench_function("geecache compatible (crc32, r=50)", |b| {
            b.iter(|| {
                for key in &keys {
                    black_box(compatible.get(black_box(key)));
                }
            })
        });

        let mut balanced = Ring::balanced();
        balanced.add((0..n).map(member));
        group.bench_function("geecache balanced (murmur3, r=2048, nearest)", |b| {
            b.iter(|| {
                for key in &keys {
                    black_box(balanced.get(black_box(key)));
                }
            })
        });

        let peer = hashring_ring(n, 50);
        group.bench_function("hashring (siphash, r=50)", |b| {
            b.iter(|| {
                for key in &keys {
                    black_box(peer.get(black_box(&key.as_str())).map(|v| &v.member));
                }
            })
        });

        // The same key hash as the balanced ring, so the difference is the algorithm.
        let members: Vec<String> = (0..n).map(member).collect();
        group.bench_function("jump (murmur3)", |b| {
            b.iter(|| {
                for key in &keys {
                    let hash = u64::from(Murmur3.hash(black_box(key).as_bytes()));
                    black_box(&members[jump(hash, members.len())]);
                }
            })
        });
        group.finish();
    }
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    for n in [10usize, 100] {
        let members: Vec<String> = (0..n).map(member).collect();
        group.bench_with_input(
            BenchmarkId::new("geecache compatible (crc32, r=50)", n),
            &members,
            |b, members| {
                b.iter(|| {
                    let mut ring = Ring::default();
                    ring.add(members.iter().cloned());
                    ring
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("geecache balanced (murmur3, r=2048, nearest)", n),
            &members,
            |b, members| {
                b.iter(|| {
                    let mut ring = Ring::balanced();
                    ring.add(members.iter().cloned());
                    ring
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("hashring (siphash, r=50)", n),
            &n,
            |b, &n| b.iter(|| hashring_ring(n, 50)),
        );
    }
    group.finish();
}

criterion_group!(benches, lookup, build);
criterion_main!(benches);
