//! The get-hit cost of S3-FIFO over LRU's, read from a busy machine: paired, interleaved
//! batches, in thread CPU time.
//!
//! ```text
//! cargo run --release -p geecache-lru --example hit_ab            # 2,000 pairs
//! cargo run --release -p geecache-lru --example hit_ab -- 500     # fewer
//! ```
//!
//! `benches/single_thread.rs` times each policy for seconds, one after the other; on a machine
//! shared with other work the two rows see different neighbours, and their ratio moved from
//! 0.6x to 1.7x between runs. Here both caches (100,000 entries each, keys of 16 to 32 bytes,
//! 64-byte shared values, uniform lookups: the benchmark's `get_hit` set-up) are built first,
//! then the program alternates batches of 10,000 hits, LRU then S3-FIFO then S3-FIFO then LRU
//! and so on, each timed in the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, which leaves out
//! time spent waiting for a core). Each pair of neighbouring batches gives one ratio; the
//! program prints the median ratio and its quartiles, and the median time per hit of each.

#![allow(unsafe_code)] // one `clock_gettime` call, in `thread_cpu_time`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use geecache_lru::{Cache, Policy, Weigh};
use rand::distr::{Alphanumeric, Distribution};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

const ENTRIES: usize = 100_000;
const BATCH: usize = 10_000;

/// The CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable `timespec` for the duration of the call, and
    // `CLOCK_THREAD_CPUTIME_ID` is a clock every Linux and BSD kernel provides.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

fn keys(rng: &mut SmallRng) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(ENTRIES);
    let mut keys = Vec::with_capacity(ENTRIES);
    while keys.len() < ENTRIES {
        let len = rng.random_range(16..=32);
        let key: String = (0..len)
            .map(|_| char::from(Alphanumeric.sample(rng)))
            .collect();
        if seen.insert(key.clone()) {
            keys.push(key);
        }
    }
    keys
}

/// Time per hit, in nanoseconds, over `BATCH` hits starting at `order[*next]`.
#[allow(clippy::cast_precision_loss)]
fn batch(cache: &mut Cache<String, Arc<[u8]>>, order: &[&str], next: &mut usize) -> f64 {
    let start = thread_cpu_time();
    for _ in 0..BATCH {
        black_box(cache.get(order[*next]));
        *next = (*next + 1) % order.len();
    }
    let spent = thread_cpu_time().saturating_sub(start);
    spent.as_secs_f64() * 1e9 / BATCH as f64
}

fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: usize| v[(v.len() - 1) * q / 4];
    (at(1), at(2), at(3))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pairs: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 2_000,
    };
    if !(1..=100_000).contains(&pairs) {
        return Err("pairs: 1 to 100000".into());
    }
    let mut rng = SmallRng::seed_from_u64(0x6765_6563_6163_6865);
    let keys = keys(&mut rng);
    let value: Arc<[u8]> = Arc::from(&[0x5a; 64][..]);
    let budget = keys.iter().map(|k| k.weight() + value.weight()).sum();
    let fill = |policy| {
        let mut cache = Cache::with_policy(budget, policy);
        for key in &keys {
            cache.add(key.clone(), Arc::clone(&value));
        }
        cache
    };
    let mut caches = [fill(Policy::Lru), fill(Policy::S3Fifo)];
    let order: Vec<&str> = (0..1 << 20)
        .map(|_| keys[rng.random_range(0..ENTRIES)].as_str())
        .collect();
    // One pass over the order first: every counter saturated, every line touched once.
    for cache in &mut caches {
        let mut next = 0;
        for _ in 0..order.len() / BATCH {
            batch(cache, &order, &mut next);
        }
    }
    let (mut lru, mut s3, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut next = [0, 0];
    for pair in 0..pairs {
        // Alternate which policy goes first, so neither always follows the other.
        let first = pair % 2;
        let a = batch(&mut caches[first], &order, &mut next[first]);
        let b = batch(&mut caches[1 - first], &order, &mut next[1 - first]);
        let (l, s) = if first == 0 { (a, b) } else { (b, a) };
        lru.push(l);
        s3.push(s);
        ratios.push(s / l);
    }
    let (q1, median, q3) = quartiles(ratios);
    println!(
        "{pairs} pairs of {BATCH} hits: S3-FIFO / LRU median {median:.3} (quartiles {q1:.3} to {q3:.3}); \
         median ns per hit: LRU {:.1}, S3-FIFO {:.1}",
        quartiles(lru).1,
        quartiles(s3).1
    );
    Ok(())
}
