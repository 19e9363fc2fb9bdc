//! Prints the balance and key-movement tables recorded in `docs/performance.md`.
//!
//! ```text
//! cargo run --release -p geecache-consistenthash --example balance
//! ```
//!
//! Table 1 routes 1 000 000 seeded random keys through rings of 3 to 100 members named like
//! groupcache peers (`http://127.0.0.1:8001`, ...). It reports the busiest member's key count over
//! the mean (1.000 is perfect) and the fraction of keys that move when member `n + 1` joins
//! (ideal: `1/(n+1)`, all of them to the newcomer; the program checks that none moves elsewhere).
//!
//! Table 2 shows how balance depends on the replica count. It uses [`Ring::shares`], the exact
//! share of the hash space each member owns, so it has no sampling noise, and it reports the
//! worst case over several member naming schemes.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use geecache_consistenthash::{Assignment, BALANCED_REPLICAS, Crc32, Murmur3, Ring, RingHash};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const KEYS: usize = 1_000_000;
const SIZES: [usize; 6] = [3, 5, 8, 10, 30, 100];

type HashFn = fn(&[u8]) -> u32;

fn crc32(bytes: &[u8]) -> u32 {
    Crc32.hash(bytes)
}

fn murmur3(bytes: &[u8]) -> u32 {
    Murmur3.hash(bytes)
}

fn peer(i: usize) -> String {
    format!("http://127.0.0.1:{}", 8001 + i)
}

/// A way of routing keys to member indices `0..n`.
#[derive(Clone, Copy)]
enum Scheme {
    Ours(&'static str, usize, HashFn, Assignment),
    HashRing,
    Jump,
}

enum Router {
    Ours(Ring<HashFn>, HashMap<String, usize>),
    HashRing(hashring::HashRing<(usize, usize)>),
    Jump(usize),
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Ours(name, ..) => name,
            Scheme::HashRing => "`hashring` 0.3 (SipHash), 50 vnodes",
            Scheme::Jump => "jump hash (members leave only from the end)",
        }
    }

    fn build(self, n: usize) -> Router {
        match self {
            Scheme::Ours(_, replicas, hasher, assignment) => {
                let mut ring = Ring::builder()
                    .replicas(replicas)
                    .hasher(hasher)
                    .assignment(assignment)
                    .build();
                ring.add((0..n).map(peer));
                Router::Ours(ring, (0..n).map(|i| (peer(i), i)).collect())
            }
            Scheme::HashRing => {
                // `hashring` has no virtual nodes of its own; its documentation builds them so.
                let mut ring = hashring::HashRing::new();
                ring.batch_add((0..n).flat_map(|m| (0..50).map(move |v| (m, v))).collect());
                Router::HashRing(ring)
            }
            Scheme::Jump => Router::Jump(n),
        }
    }
}

impl Router {
    fn route(&self, key: &[u8]) -> usize {
        match self {
            Router::Ours(ring, index) => index[ring.get(key).expect("non-empty ring")],
            Router::HashRing(ring) => ring.get(&key).expect("non-empty ring").0,
            Router::Jump(n) => {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                key.hash(&mut h);
                jump(h.finish(), *n)
            }
        }
    }
}

/// Jump consistent hash (Lamping & Veach, 2014).
fn jump(mut key: u64, buckets: usize) -> usize {
    let (mut b, mut j) = (-1i64, 0i64);
    while j < buckets as i64 {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as usize
}

fn keys() -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(0x6765_6563);
    (0..KEYS)
        .map(|_| format!("key:{:016x}", rng.random::<u64>()).into_bytes())
        .collect()
}

/// (max/mean keys per member, fraction of keys moved when member n+1 joins).
fn measure(scheme: Scheme, n: usize, keys: &[Vec<u8>]) -> (f64, f64) {
    let (before, after) = (scheme.build(n), scheme.build(n + 1));
    let mut counts = vec![0usize; n];
    let mut moved = 0usize;
    for key in keys {
        let owner = before.route(key);
        counts[owner] += 1;
        let new_owner = after.route(key);
        if new_owner != owner {
            assert_eq!(new_owner, n, "a key moved between old members");
            moved += 1;
        }
    }
    let max = counts.iter().copied().max().unwrap_or(0) as f64;
    let mean = keys.len() as f64 / n as f64;
    (max / mean, moved as f64 / keys.len() as f64)
}

fn header(first: &str, columns: impl Iterator<Item = String>) {
    let columns: Vec<String> = columns.collect();
    println!("| {first} | {} |", columns.join(" | "));
    println!("|---|{}", "---|".repeat(columns.len()));
}

fn table_one() {
    use Assignment::{Nearest, Successor};
    let schemes = [
        Scheme::Ours(
            "CRC-32, r=50 (`Ring::default()`, groupcache)",
            50,
            crc32,
            Successor,
        ),
        Scheme::Ours("CRC-32, r=160", 160, crc32, Successor),
        Scheme::Ours("CRC-32, r=2048", 2048, crc32, Successor),
        Scheme::Ours("Murmur3, r=160", 160, murmur3, Successor),
        Scheme::Ours("Murmur3, r=2048", 2048, murmur3, Successor),
        Scheme::Ours(
            "Murmur3, r=2048, nearest (`Ring::balanced()`)",
            BALANCED_REPLICAS,
            murmur3,
            Nearest,
        ),
        Scheme::HashRing,
        Scheme::Jump,
    ];
    let keys = keys();
    println!("Table 1: max/mean keys per member / keys moved when member n+1 joins, {KEYS} keys\n");
    header("ring", SIZES.iter().map(|n| format!("n={n}")));
    for scheme in schemes {
        let cells: Vec<String> = SIZES
            .iter()
            .map(|&n| {
                let (balance, moved) = measure(scheme, n, &keys);
                format!("{balance:.3} / {:.1}%", moved * 100.0)
            })
            .collect();
        println!("| {} | {} |", scheme.name(), cells.join(" | "));
    }
    let ideal: Vec<String> = SIZES
        .iter()
        .map(|&n| format!("1.000 / {:.1}%", 100.0 / (n + 1) as f64))
        .collect();
    println!("| ideal | {} |\n", ideal.join(" | "));
}

fn naming_schemes() -> [fn(usize) -> String; 6] {
    [
        |i| format!("http://127.0.0.1:{}", 8001 + i),
        |i| format!("http://10.0.0.{}:8080", i + 1),
        |i| format!("http://cache-{i}.svc.cluster.local:9000"),
        |i| format!("node{i}"),
        |i| format!("http://192.168.{}.{}:80", i / 7, 10 + 3 * i),
        |i| format!("https://geecache-{:02}.example.net", i * 11 + 5),
    ]
}

fn table_two() {
    use Assignment::{Nearest, Successor};
    let replicas = [50, 160, 512, 1024, 2048, 4096];
    let rows: [(&str, HashFn, Assignment); 3] = [
        ("CRC-32", crc32, Successor),
        ("Murmur3", murmur3, Successor),
        ("Murmur3, nearest", murmur3, Nearest),
    ];
    println!(
        "Table 2: worst max/mean over {} member naming schemes, exact shares\n",
        naming_schemes().len()
    );
    header("hash, n", replicas.iter().map(|r| format!("r={r}")));
    for (name, hasher, assignment) in rows {
        for members in [3usize, 5, 10] {
            let cells: Vec<String> = replicas
                .iter()
                .map(|&r| {
                    let worst = naming_schemes()
                        .iter()
                        .map(|naming| {
                            let mut ring = Ring::builder()
                                .replicas(r)
                                .hasher(hasher)
                                .assignment(assignment)
                                .build();
                            ring.add((0..members).map(naming));
                            let shares = ring.shares();
                            let max = shares.iter().map(|&(_, s)| s).fold(0.0, f64::max);
                            max * members as f64
                        })
                        .fold(0.0, f64::max);
                    format!("{worst:.3}")
                })
                .collect();
            println!("| {name}, {members} | {} |", cells.join(" | "));
        }
    }
    println!();
}

fn main() {
    table_one();
    table_two();
}
