//! A batch get against the same keys fetched one by one, on a warm three-node cluster over
//! real HTTP on loopback.
//!
//! All three nodes and the caller run on one current-thread runtime, so the time per key is
//! the CPU the whole cluster spends on it (both ends of every request), not a latency that
//! overlaps with other work. The asking node keeps no hot copies, so every key is a fetch from
//! its owner, which has it cached: what a warm cluster does for keys another node owns.
//!
//! Run: `cargo bench -p geecache-transport-http --bench batch`.

use std::hint::black_box;
use std::sync::Arc;

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

async fn cluster() -> Vec<Node> {
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
    let nodes = runtime.block_on(cluster());
    let asker = &nodes[0];
    // Keys another node owns, warmed at their owners.
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
    let _ = &nodes[1].group;

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

criterion_group!(benches, batch_vs_single);
criterion_main!(benches);
