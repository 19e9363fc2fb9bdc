//! A batch get against the same keys fetched one by one, on a warm three-node cluster over
//! real HTTP on loopback.
//!
//! All three nodes and the caller run on one current-thread runtime, so the time per key is
//! the CPU the whole cluster spends on it (both ends of every request), not a latency that
//! overlaps with other work. The asking node keeps no hot copies, so every key is a fetch from
//! its owner, which has it cached: what a warm cluster does for keys another node owns.
//!
//! `coalesced_single_gets` times the same single gets at once, with the asking group's peer
//! batch window off and at 1 ms, in the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`):
//! wall time would count the window's wait, which costs no CPU.
//!
//! Run: `cargo bench -p geecache-transport-http --bench batch`.
#![allow(unsafe_code)] // one `clock_gettime` call, in `thread_cpu_time`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use geecache_group::{Group, LoadError, Loaded, Registry, getter_fn};
use geecache_transport_http::{HttpPool, RouterConfig, router, serve};

const KEYS: usize = 100;

struct Node {
    url: String,
    group: Arc<Group>,
    pool: Arc<HttpPool>,
}

async fn cluster(window: Duration) -> Vec<Node> {
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let urls: Vec<String> = (listeners.iter())
        .map(|l| format!("http://{}", l.local_addr().unwrap()))
        .collect();
    let mut nodes = Vec::new();
    for (listener, url) in listeners.into_iter().zip(&urls) {
        let pool = HttpPool::builder(url.as_str()).build().unwrap();
        pool.set_peers(&urls).unwrap();
        let registry = Registry::new();
        let group = Group::builder("bench")
            .register(&registry)
            .hot_admission(0)
            .peer_batch_window(window)
            .peers(pool.clone())
            .getter(getter_fn(|key: String| async move {
                Ok::<_, LoadError>(Loaded::from(vec![b'v'; 100 + key.len()]))
            }))
            .build()
            .unwrap();
        let app = router(RouterConfig::new(registry).pool(pool.clone()));
        tokio::spawn(serve(listener, app, std::future::pending()));
        nodes.push(Node {
            url: url.clone(),
            group,
            pool,
        });
    }
    nodes
}

fn batch_vs_single(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let nodes = runtime.block_on(cluster(Duration::ZERO));
    let asker = &nodes[0];
    let keys = warm_keys(&runtime, asker);

    let mut group = c.benchmark_group("warm_cluster_100_keys");
    group.throughput(Throughput::Elements(KEYS as u64));
    group.bench_function(BenchmarkId::new("get_many", KEYS), |b| {
        b.iter(|| runtime.block_on(async { black_box(asker.group.get_many(&keys).await) }));
    });
    group.bench_function(BenchmarkId::new("single_gets_at_once", KEYS), |b| {
        b.iter(|| {
            runtime.block_on(async {
                black_box(join_all(keys.iter().map(|k| asker.group.get(k))).await)
            })
        });
    });
    group.finish();
}

/// `KEYS` keys another node than `asker` owns, warmed at their owners.
fn warm_keys(runtime: &tokio::runtime::Runtime, asker: &Node) -> Vec<String> {
    let keys: Vec<String> = (0..)
        .map(|i| format!("user:{i:08}"))
        .filter(|k| asker.pool.owner_of(k).as_deref() != Some(asker.url.as_str()))
        .take(KEYS)
        .collect();
    runtime.block_on(async {
        for key in &keys {
            asker.group.get(key).await.unwrap();
        }
    });
    keys
}

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

fn coalesced_single_gets(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Both clusters exist for the whole run, so neither is timed on memory the other just
    // freed; the windows are set when the groups are built.
    let off = runtime.block_on(cluster(Duration::ZERO));
    let on = runtime.block_on(cluster(Duration::from_millis(1)));
    let mut group = c.benchmark_group("coalesced_single_gets_cpu");
    group.throughput(Throughput::Elements(KEYS as u64));
    for (window_ms, nodes) in [(0, &off), (1, &on)] {
        let asker = &nodes[0];
        let keys = warm_keys(&runtime, asker);
        group.bench_function(BenchmarkId::new("window_ms", window_ms), |b| {
            b.iter_custom(|iters| {
                let start = thread_cpu_time();
                runtime.block_on(async {
                    for _ in 0..iters {
                        black_box(join_all(keys.iter().map(|k| asker.group.get(k))).await);
                    }
                });
                thread_cpu_time().saturating_sub(start)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, batch_vs_single, coalesced_single_gets);
criterion_main!(benches);
