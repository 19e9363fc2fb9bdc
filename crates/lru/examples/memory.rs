//! What a cache full of 1 KiB values costs in memory beyond the bytes its budget counts;
//! prints one markdown table.
//!
//! ```text
//! cargo run --release -p geecache-lru --example memory              # every row, one process each
//! cargo run --release -p geecache-lru --example memory -- s3fifo 128  # one row
//! cargo run --release -p geecache-lru --example memory -- s3fifo 128 300  # churn for 5 minutes
//! ```
//!
//! Each row runs in a process of its own, so that what one cache leaves behind in the allocator
//! does not count against the next. The cache is a `SegmentedCache<String, Bytes>` with the
//! default 16 segments, the shape of a group's cache: keys of 20 bytes, values of 1 KiB, each
//! weighing key + value bytes. It is filled to its budget, then churned by read-through requests
//! (a `get`, and on a miss an `add` of a fresh 1 KiB value) drawn uniformly from twice as many
//! keys as fit, ten times as many requests as entries fit, so that every slot has been evicted
//! and refilled several times over (or, given a number of seconds, rounds of as many requests
//! as entries fit until that much time has passed, at least ten).
//!
//! Columns: the budget; the entries held and what they weigh; what is live in the allocator,
//! as asked for by the program (a counting global allocator), split into the blocks of values,
//! the small blocks (keys, and the shared headers `Bytes` makes on its first clone), and the
//! large ones (the cache's slot arrays and hash tables); then the resident set from
//! `/proc/self/status` (`VmRSS`, and its peak `VmHWM`), over the budget. Resident beyond live
//! is the allocator's own: its per-block headers and rounding, and freed memory it has not
//! returned to the system.

#![allow(unsafe_code)] // `GlobalAlloc` is an unsafe trait; this impl only forwards to `System`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use geecache_lru::{Policy, SegmentedCache};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

const VALUE: usize = 1024;
const MIB: usize = 1 << 20;

/// Live bytes by block size: up to 256 bytes, up to 64 KiB, and larger.
static LIVE: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];

fn class(size: usize) -> usize {
    match size {
        0..=256 => 0,
        257..=65_536 => 1,
        _ => 2,
    }
}

struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees are ours; the counters are atomics that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE[class(layout.size())].fetch_add(layout.size(), Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE[class(layout.size())].fetch_add(layout.size(), Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE[class(layout.size())].fetch_sub(layout.size(), Relaxed);
        LIVE[class(new_size)].fetch_add(new_size, Relaxed);
        // SAFETY: `ptr` and `layout` come from this allocator, i.e. from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE[class(layout.size())].fetch_sub(layout.size(), Relaxed);
        // SAFETY: `ptr` and `layout` come from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A `/proc/self/status` field in bytes (its value is in kB).
fn status(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn key(n: u64) -> String {
    format!("key:{n:016x}") // 20 bytes
}

#[allow(clippy::cast_precision_loss)]
fn mib(bytes: usize) -> String {
    format!("{:.1}", bytes as f64 / MIB as f64)
}

#[allow(clippy::cast_precision_loss)]
fn one_row(policy: Policy, budget_mib: usize, churn: Duration) {
    let budget = budget_mib * MIB;
    let cache = SegmentedCache::<String, Bytes>::builder(budget)
        .policy(policy)
        .weigher(|k: &String, v: &Bytes| k.len() + v.len())
        .build()
        .expect("a power-of-two segment count and a budget of many MiB");
    let fits = (budget / (VALUE + 20)) as u64;
    let mut rng = SmallRng::seed_from_u64(7);
    let fresh = |rng: &mut SmallRng| {
        let mut value = vec![0u8; VALUE];
        rng.fill(&mut value[..]);
        Bytes::from(value)
    };
    for n in 0..fits {
        cache.add(key(n), fresh(&mut rng));
    }
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < 10 || start.elapsed() < churn {
        for _ in 0..fits {
            let n = rng.random_range(0..2 * fits);
            if cache.get(key(n).as_str()).is_none() {
                cache.add(key(n), fresh(&mut rng));
            }
        }
        rounds += 1;
    }
    let live: Vec<usize> = LIVE.iter().map(|c| c.load(Relaxed)).collect();
    let rss = status("VmRSS");
    println!(
        "| {policy:?} | {budget_mib} MiB | {} | {} | {} | {} | {} | {} | {} | {} | {:.3}x |",
        cache.len(),
        mib(cache.bytes()),
        mib(live.iter().sum()),
        mib(live[1]),
        mib(live[0]),
        mib(live[2]),
        mib(rss),
        mib(status("VmHWM")),
        rss as f64 / budget as f64,
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [policy, budget, rest @ ..] = &args[..] {
        let policy = match policy.as_str() {
            "lru" => Policy::Lru,
            "s3fifo" => Policy::S3Fifo,
            other => return Err(format!("unknown policy {other:?}: lru or s3fifo").into()),
        };
        // Bounded, so that one row takes seconds and fits in this machine's memory.
        let budget: usize = budget.parse()?;
        if !(1..=1024).contains(&budget) {
            return Err(format!("budget {budget} MiB: 1 to 1024").into());
        }
        let churn = match rest {
            [] => Duration::ZERO,
            [seconds] => Duration::from_secs(seconds.parse()?),
            _ => return Err("arguments: POLICY MIB [SECONDS]".into()),
        };
        // Bounded by the hour, so that a mistyped figure does not run for days.
        if churn > Duration::from_secs(3600) {
            return Err("churn: at most 3600 seconds".into());
        }
        one_row(policy, budget, churn);
        return Ok(());
    }
    println!(
        "| policy | budget | entries | weight MiB | live MiB | values | small blocks | large blocks | VmRSS MiB | VmHWM MiB | RSS / budget |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let me = std::env::current_exe()?;
    for budget in ["128", "256"] {
        for policy in ["lru", "s3fifo"] {
            let out = Command::new(&me).args([policy, budget]).output()?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
            }
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
    }
    Ok(())
}
