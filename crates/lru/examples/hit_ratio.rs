//! Hit ratios of our two policies beside `quick_cache`, `moka` and Belady's OPT, on synthetic
//! traces; prints one markdown table.
//!
//! ```text
//! cargo run --release -p geecache-lru --example hit_ratio
//! ```
//!
//! Every cache counts entries (unit weights: our caches get a weigher of 1 per entry, the
//! others count items), so a capacity means the same thing in every column. Each request is a
//! read-through: `get`, and on a miss `insert` the key. The traces are made from a fixed seed,
//! so a run is reproducible:
//!
//! - **Zipf s, c%**: 2 000 000 requests over 200 000 keys drawn from Zipf(s); capacity c% of
//!   the keys.
//! - **loop**: keys `0..11 000` in order, again and again; capacity 10 000 (the loop is 10%
//!   larger than the cache, so LRU always evicts the key needed next).
//! - **Zipf + scans**: Zipf(0.99) as above, capacity 1%, and every 100 000 requests a pass over
//!   five times the capacity of keys never seen before (or again).
//! - **shifting**: Zipf(0.99), capacity 1%, but every 500 000 requests the ranks map to a new
//!   set of keys, so the hot set moves four times.
//!
//! `moka` is `moka::sync::Cache` with `run_pending_tasks` called after every insert, so that its
//! evictions keep up with the trace and it never holds more than its capacity while being
//! measured. OPT is Belady's offline optimum with bypass (a key whose next use is later than
//! every cached key's is not admitted), computed from each request's next use with a
//! `BinaryHeap`: an upper bound for any policy.

use std::collections::{BinaryHeap, HashMap};

use geecache_lru::{Cache, Policy};
use rand::SeedableRng;
use rand::distr::Distribution;
use rand::rngs::SmallRng;
use rand_distr::Zipf;

const SEED: u64 = 0x6765_6563_6163_6865; // "geecache"
const KEYS: u64 = 200_000;
const REQUESTS: usize = 2_000_000;

/// Spreads ranks over the key space, so hot keys are not small consecutive integers.
fn scramble(rank: u64) -> u64 {
    rank.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn zipf_ranks(s: f64, n: usize, seed: u64) -> impl Iterator<Item = u64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    #[allow(clippy::cast_precision_loss)]
    let zipf = Zipf::new(KEYS as f64, s).expect("valid Zipf parameters");
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (0..n).map(move |_| zipf.sample(&mut rng) as u64)
}

fn zipf(s: f64) -> Vec<u64> {
    zipf_ranks(s, REQUESTS, SEED).map(scramble).collect()
}

fn looping(len: u64) -> Vec<u64> {
    (0..REQUESTS as u64).map(|i| scramble(i % len)).collect()
}

fn with_scans(capacity: usize) -> Vec<u64> {
    let mut fresh = KEYS; // ranks at or above KEYS are never drawn by the Zipf
    let mut trace = Vec::with_capacity(REQUESTS);
    for (i, rank) in zipf_ranks(0.99, REQUESTS, SEED + 1).enumerate() {
        if i > 0 && i % 100_000 == 0 {
            for _ in 0..5 * capacity {
                trace.push(scramble(fresh));
                fresh += 1;
            }
        }
        trace.push(scramble(rank));
    }
    trace
}

fn shifting() -> Vec<u64> {
    zipf_ranks(0.99, REQUESTS, SEED + 2)
        .enumerate()
        .map(|(i, rank)| scramble(rank + (i / 500_000) as u64 * KEYS))
        .collect()
}

#[allow(clippy::cast_precision_loss)]
fn ratio(hits: usize, trace: &[u64]) -> f64 {
    hits as f64 / trace.len() as f64
}

fn unit(_: &u64, _: &u64) -> usize {
    1
}

fn ours(policy: Policy, capacity: usize, trace: &[u64]) -> f64 {
    let mut cache =
        Cache::with_weigher_and_policy(capacity, unit as fn(&u64, &u64) -> usize, policy);
    let mut hits = 0;
    for &key in trace {
        if cache.get(&key).is_some() {
            hits += 1;
        } else {
            cache.add(key, key);
        }
    }
    ratio(hits, trace)
}

fn quick(capacity: usize, trace: &[u64]) -> f64 {
    let mut cache = quick_cache::unsync::Cache::<u64, u64>::new(capacity);
    let mut hits = 0;
    for &key in trace {
        if cache.get(&key).is_some() {
            hits += 1;
        } else {
            cache.insert(key, key);
        }
    }
    ratio(hits, trace)
}

fn moka(capacity: usize, trace: &[u64]) -> f64 {
    let cache = moka::sync::Cache::<u64, u64>::new(capacity as u64);
    let mut hits = 0;
    for &key in trace {
        if cache.get(&key).is_some() {
            hits += 1;
        } else {
            cache.insert(key, key);
            cache.run_pending_tasks();
        }
    }
    ratio(hits, trace)
}

/// Belady's OPT with bypass: evict (or do not admit) whatever is next used furthest away.
fn opt(capacity: usize, trace: &[u64]) -> f64 {
    const NEVER: usize = usize::MAX;
    let mut next_use = vec![NEVER; trace.len()];
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (i, &key) in trace.iter().enumerate().rev() {
        next_use[i] = seen.insert(key, i).unwrap_or(NEVER);
    }
    // Cached keys and their next use; the heap may hold stale pairs, skipped when met.
    let mut cached: HashMap<u64, usize> = HashMap::with_capacity(capacity + 1);
    let mut furthest: BinaryHeap<(usize, u64)> = BinaryHeap::new();
    let mut hits = 0;
    for (i, &key) in trace.iter().enumerate() {
        let next = next_use[i];
        if let Some(slot) = cached.get_mut(&key) {
            hits += 1;
            *slot = next;
            furthest.push((next, key));
            continue;
        }
        if next == NEVER {
            continue;
        }
        if cached.len() < capacity {
            cached.insert(key, next);
            furthest.push((next, key));
            continue;
        }
        while let Some(&(when, victim)) = furthest.peek() {
            if cached.get(&victim) == Some(&when) {
                break;
            }
            furthest.pop();
        }
        if let Some(&(when, victim)) = furthest.peek()
            && when > next
        {
            furthest.pop();
            cached.remove(&victim);
            cached.insert(key, next);
            furthest.push((next, key));
        }
    }
    ratio(hits, trace)
}

fn percent(r: f64) -> String {
    format!("{:.2}%", r * 100.0)
}

fn main() {
    let one = (KEYS / 100) as usize;
    let ten = (KEYS / 10) as usize;
    let rows: Vec<(&str, usize, Vec<u64>)> = vec![
        ("Zipf 0.99, 1%", one, zipf(0.99)),
        ("Zipf 0.99, 10%", ten, zipf(0.99)),
        ("Zipf 0.8, 1%", one, zipf(0.8)),
        ("Zipf 0.8, 10%", ten, zipf(0.8)),
        ("loop 11 000 keys", 10_000, looping(11_000)),
        ("Zipf 0.99 + scans of 5x capacity", one, with_scans(one)),
        ("Zipf 0.99, shifting hot set", one, shifting()),
    ];
    println!("| trace | capacity | LRU (ours) | S3-FIFO (ours) | quick_cache | moka | OPT |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, capacity, trace) in &rows {
        println!(
            "| {name} | {capacity} | {} | {} | {} | {} | {} |",
            percent(ours(Policy::Lru, *capacity, trace)),
            percent(ours(Policy::S3Fifo, *capacity, trace)),
            percent(quick(*capacity, trace)),
            percent(moka(*capacity, trace)),
            percent(opt(*capacity, trace)),
        );
    }
}
