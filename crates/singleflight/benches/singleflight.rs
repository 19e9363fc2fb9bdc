//! What a singleflight call costs, beside `async_singleflight` in the same run.
//!
//! - `uncontended`: one call for an idle key, polled to completion with a no-op waker (the work is
//!   ready at once), against awaiting the same work directly.
//! - `one_key`, `distinct_keys`, `zipf_keys`: 1,000 callers joined in one task on a current-thread
//!   tokio runtime; each flight's work yields once, so every caller of a key arrives while its
//!   flight runs. `one_key` is the stampede (1 execution, 999 waiters), `distinct_keys` is 1,000
//!   independent flights, `zipf_keys` draws keys from a Zipf(s = 1) law over 1,000 keys (seeded).
//!   `direct` awaits the 1,000 works without any sharing: the cost of the harness itself.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use async_singleflight::Group as TheirGroup;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use geecache_singleflight::Group;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Zipf};

const CALLERS: usize = 1_000;

/// Runs a future that completes on its first poll.
fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("an uncontended call completes at once"),
    }
}

async fn ready_work() -> Result<u64, ()> {
    Ok(black_box(7))
}

async fn yielding_work() -> Result<u64, ()> {
    tokio::task::yield_now().await;
    Ok(black_box(7))
}

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("uncontended");
    group.throughput(Throughput::Elements(1));
    group.bench_function("direct", |b| b.iter(|| now(ready_work())));
    let ours = Group::<u64, u64, ()>::new();
    group.bench_function("geecache", |b| {
        b.iter(|| now(ours.work(black_box(42), ready_work)))
    });
    let theirs = TheirGroup::<u64, u64, ()>::new();
    group.bench_function("async_singleflight", |b| {
        b.iter(|| now(theirs.work(black_box(&42), ready_work())))
    });
    group.finish();
}

/// 1,000 concurrent callers with the given keys, under both crates.
fn callers(c: &mut Criterion, name: &str, keys: &[u64]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(keys.len() as u64));
    // The harness alone: every caller runs its work, nothing is shared. The floor, not a peer.
    group.bench_function(BenchmarkId::new("direct", keys.len()), |b| {
        b.iter(|| runtime.block_on(join_all(keys.iter().map(|_| yielding_work()))))
    });
    let ours = Group::<u64, u64, ()>::new();
    group.bench_function(BenchmarkId::new("geecache", keys.len()), |b| {
        b.iter(|| {
            runtime.block_on(join_all(
                keys.iter().map(|&key| ours.work(key, yielding_work)),
            ))
        })
    });
    let theirs = TheirGroup::<u64, u64, ()>::new();
    group.bench_function(BenchmarkId::new("async_singleflight", keys.len()), |b| {
        b.iter(|| {
            runtime.block_on(join_all(
                keys.iter().map(|key| theirs.work(key, yielding_work())),
            ))
        })
    });
    group.finish();
}

fn contended(c: &mut Criterion) {
    callers(c, "one_key", &[42; CALLERS]);
    let distinct: Vec<u64> = (0..CALLERS as u64).collect();
    callers(c, "distinct_keys", &distinct);
    let mut rng = SmallRng::seed_from_u64(0x5EED);
    let zipf = Zipf::new(CALLERS as f64, 1.0).expect("valid Zipf parameters");
    let skewed: Vec<u64> = (0..CALLERS).map(|_| zipf.sample(&mut rng) as u64).collect();
    callers(c, "zipf_keys", &skewed);
}

criterion_group!(benches, uncontended, contended);
criterion_main!(benches);
