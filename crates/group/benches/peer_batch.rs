//! Peer micro-batching: what gathering concurrent single fetches into batch requests costs the
//! asking group, beside sending each alone, in the same run.
//!
//! 64 callers at once each get a different key that another node owns, from a fake peer that
//! answers a request (single or batch) after 1 ms of tokio time and spends no CPU, so the time
//! measured is the group's own: its flights, and with a window, the coalescer's task, lock and
//! channels. The asking group keeps no hot copies, so every get is a peer fetch. Everything
//! runs on one current-thread runtime on the benchmark's thread, and each iteration is timed in
//! that thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`): wall time would count the window's wait,
//! which costs no CPU. What a peer request costs on the wire is measured in
//! `crates/transport-http/benches/batch.rs` (`coalesced_single_gets`).
//!
//! Run: `cargo bench -p geecache-group --bench peer_batch`.
#![allow(unsafe_code)] // one `clock_gettime` call, in `thread_cpu_time`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use geecache_group::{
    BoxFuture, Group, LoadError, Loaded, PeerError, PeerGetter, PeerPicker, RemoveMode, getter_fn,
};

const CALLERS: usize = 64;
const PEER_LATENCY: Duration = Duration::from_millis(1);

/// A peer that answers after `PEER_LATENCY`, and counts its requests.
#[derive(Default)]
struct SlowPeer {
    requests: AtomicU64,
}

impl PeerGetter for SlowPeer {
    fn get<'a>(
        &'a self,
        _group: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Loaded, PeerError>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            tokio::time::sleep(PEER_LATENCY).await;
            Ok(Loaded::from(key.to_owned()))
        })
    }

    fn get_many<'a>(
        &'a self,
        _group: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Result<Loaded, PeerError>>, PeerError>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            tokio::time::sleep(PEER_LATENCY).await;
            Ok(keys.iter().map(|k| Ok(Loaded::from(k.clone()))).collect())
        })
    }

    fn takes_batches(&self) -> bool {
        true
    }

    fn remove<'a>(
        &'a self,
        _group: &'a str,
        _key: &'a str,
        _mode: RemoveMode,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    fn name(&self) -> &str {
        "slow-peer"
    }
}

struct Picker(Arc<SlowPeer>);

impl PeerPicker for Picker {
    fn pick_peer(&self, _key: &str) -> Option<Arc<dyn PeerGetter>> {
        Some(Arc::clone(&self.0) as _)
    }

    fn all_peers(&self) -> Vec<Arc<dyn PeerGetter>> {
        vec![Arc::clone(&self.0) as _]
    }
}

fn group(peer: &Arc<SlowPeer>, window: Duration) -> Arc<Group> {
    Group::builder("bench")
        .hot_admission(0)
        .peer_batch_window(window)
        .peers(Arc::new(Picker(Arc::clone(peer))))
        .getter(getter_fn(|key: String| async move {
            Ok::<_, LoadError>(Loaded::from(key))
        }))
        .build()
        .unwrap()
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

fn concurrent_single_gets(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys: Vec<String> = (0..CALLERS).map(|i| format!("user:{i:08}")).collect();
    let mut bench = c.benchmark_group("peer_batch_64_single_gets_cpu");
    bench.throughput(Throughput::Elements(CALLERS as u64));
    for window_ms in [0u64, 1] {
        let peer = Arc::new(SlowPeer::default());
        // Built inside the runtime: a group starts its sweeper on the runtime it is built in.
        let group = runtime.block_on(async { group(&peer, Duration::from_millis(window_ms)) });
        let mut gets = 0u64;
        bench.bench_function(BenchmarkId::new("window_ms", window_ms), |b| {
            b.iter_custom(|iters| {
                let start = thread_cpu_time();
                runtime.block_on(async {
                    for _ in 0..iters {
                        let results = join_all(keys.iter().map(|k| group.get(k))).await;
                        black_box(results);
                    }
                });
                gets += iters * CALLERS as u64;
                thread_cpu_time().saturating_sub(start)
            });
        });
        let requests = peer.requests.load(Ordering::Relaxed);
        println!(
            "window {window_ms} ms: {requests} peer requests for {gets} gets, {:.4} per get",
            requests as f64 / gets.max(1) as f64
        );
    }
    bench.finish();
}

criterion_group!(benches, concurrent_single_gets);
criterion_main!(benches);
