//! `Group::get` beside `moka::future::Cache::get_with` doing the same job.
//!
//! Run: `cargo bench -p geecache-group --bench group`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use geecache_group::{ByteView, Group, LoadError, Loaded, getter_fn};
use moka::future::Cache as Moka;

const WARM_KEYS: usize = 10_000;

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user:{i:08}")).collect()
}

fn value_of(key: &str) -> ByteView {
    ByteView::from(format!("{key:-<64}").into_bytes())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn group(cache_bytes: usize) -> Arc<Group> {
    Group::builder("bench")
        .cache_bytes(cache_bytes)
        .getter(getter_fn(|key: String| async move {
            Ok::<_, LoadError>(Loaded::new(value_of(&key)))
        }))
        .build()
        .unwrap()
}

/// Runs `per_thread(iters / threads)` on `threads` OS threads, each with its own runtime, and
/// returns the wall time until the slowest is done: criterion divides it by `iters`, giving the
/// cluster of threads' time per get (throughput), not one thread's latency.
fn on_threads<F>(threads: usize, iters: u64, per_thread: F) -> Duration
where
    F: Fn(usize, u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Sync,
{
    let share = iters.div_ceil(threads as u64);
    if threads == 1 {
        // One thread: run right here, so no thread start-up lands in the measurement.
        let rt = runtime();
        let start = Instant::now();
        rt.block_on(per_thread(0, share));
        return start.elapsed();
    }
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let per_thread = &per_thread;
            scope.spawn(move || runtime().block_on(per_thread(t, share)));
        }
    });
    start.elapsed()
}

fn hit(c: &mut Criterion) {
    let keys = Arc::new(keys(WARM_KEYS));
    let rt = runtime();
    let ours = group(0);
    let moka: Moka<String, ByteView> = Moka::new(WARM_KEYS as u64 * 2);
    rt.block_on(async {
        for key in keys.iter() {
            ours.get(key).await.unwrap();
            moka.get_with(key.clone(), async { value_of(key) }).await;
        }
    });
    let mut group_ = c.benchmark_group("group_get_hit");
    for threads in [1usize, 2] {
        group_.throughput(Throughput::Elements(1));
        group_.bench_function(BenchmarkId::new("geecache", threads), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, |t, n| {
                    let (ours, keys) = (Arc::clone(&ours), Arc::clone(&keys));
                    Box::pin(async move {
                        for i in 0..n as usize {
                            let key = &keys[(i * 7919 + t * 4099) % WARM_KEYS];
                            black_box(ours.get(key).await.unwrap());
                        }
                    })
                })
            });
        });
        group_.bench_function(BenchmarkId::new("moka_get_with", threads), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, |t, n| {
                    let (moka, keys) = (moka.clone(), Arc::clone(&keys));
                    Box::pin(async move {
                        for i in 0..n as usize {
                            let key = &keys[(i * 7919 + t * 4099) % WARM_KEYS];
                            // get_with takes an owned key, as a real caller's would be.
                            let v = moka.get_with(key.clone(), async { value_of(key) }).await;
                            black_box(v);
                        }
                    })
                })
            });
        });
    }
    group_.finish();
}

fn miss(c: &mut Criterion) {
    // Cycling over far more keys than fit keeps every get a miss with an instant loader.
    let keys = keys(200_000);
    let rt = runtime();
    let budget_entries = 1_000;
    let ours = group(budget_entries * (12 + 64));
    let moka: Moka<String, ByteView> = Moka::new(budget_entries as u64);
    let mut group_ = c.benchmark_group("group_get_miss");
    group_.throughput(Throughput::Elements(1));
    let mut next = 0usize;
    group_.bench_function("geecache", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    next = (next + 1) % keys.len();
                    black_box(ours.get(&keys[next]).await.unwrap());
                }
                start.elapsed()
            })
        });
    });
    let mut next = 0usize;
    group_.bench_function("moka_get_with", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    next = (next + 1) % keys.len();
                    let key = &keys[next];
                    black_box(moka.get_with(key.clone(), async { value_of(key) }).await);
                }
                start.elapsed()
            })
        });
    });
    group_.finish();
}

criterion_group!(benches, hit, miss);
criterion_main!(benches);
