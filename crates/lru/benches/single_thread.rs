//! One thread: a hit on a full cache, and an insert that evicts, beside the `lru` crate,
//! `hashlink::LruCache`, and (as a non-LRU reference point) `quick_cache::unsync::Cache`. Our
//! cache runs twice: with the default LRU policy (`geecache_lru`) and with S3-FIFO
//! (`geecache_s3fifo`), so the ratio of those two rows is what the policy costs or saves.
//!
//! 100 000 entries, keys of 16–32 bytes, 64-byte values. Every implementation holds the same
//! entries: ours gets a byte budget equal to the weight of the first 100 000 entries, the
//! others a capacity of 100 000 items. The insert benchmark also times a `discard` row: the
//! loop alone, with no cache, which every other row pays too.
//!
//! `get_hit_cpu` times the same hits for both policies in CPU time of the benchmark thread
//! rather than wall time (`ThreadCpuTime`, below). On a machine shared with other work, wall
//! time also counts the time the thread waited for a core, which moved a row by up to 2x from
//! one run to the next; the CPU clock leaves that out, so the ratio of the two policies can be
//! read from a busy machine (what it still includes: caches and the TLB refilled after another
//! process ran on the core).

#![allow(unsafe_code)] // one `clock_gettime` call, in `thread_cpu_time`

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use geecache_lru::{Cache, Policy, Weigh};
use std::sync::{Arc, LazyLock};

const ENTRIES: usize = 100_000;
/// Keys cycled through by the insert benchmark: a key comes back after 300 000 inserts, long
/// after it was evicted, so every insert is of an absent key and evicts.
const POOL: usize = 4 * ENTRIES;
/// Keys made at a time, outside the timed part of the insert benchmark.
const BATCH: usize = 1024;
/// A shared 64-byte value (like a cached `ByteView`): storing it costs a reference count.
static VALUE: LazyLock<Arc<[u8]>> = LazyLock::new(|| Arc::from(&[0x5a; 64][..]));

type Bytes = Arc<[u8]>;

fn value() -> Bytes {
    Arc::clone(&VALUE)
}

/// The operations each benchmark needs, for each implementation.
trait Lru {
    const NAME: &'static str;
    fn with_room_for(keys: &[String]) -> Self;
    fn add(&mut self, key: String, value: Bytes);
    fn hit(&mut self, key: &str) -> bool;
}

struct Ours(Cache<String, Bytes>);
impl Lru for Ours {
    const NAME: &'static str = "geecache_lru";
    fn with_room_for(keys: &[String]) -> Self {
        let budget = keys.iter().map(|k| k.weight() + value().weight()).sum();
        Ours(Cache::new(budget))
    }
    fn add(&mut self, key: String, value: Bytes) {
        self.0.add(key, value);
    }
    fn hit(&mut self, key: &str) -> bool {
        self.0.get(key).is_some()
    }
}

struct OursS3(Cache<String, Bytes>);
impl Lru for OursS3 {
    const NAME: &'static str = "geecache_s3fifo";
    fn with_room_for(keys: &[String]) -> Self {
        let budget = keys.iter().map(|k| k.weight() + value().weight()).sum();
        OursS3(Cache::with_policy(budget, Policy::S3Fifo))
    }
    fn add(&mut self, key: String, value: Bytes) {
        self.0.add(key, value);
    }
    fn hit(&mut self, key: &str) -> bool {
        self.0.get(key).is_some()
    }
}

struct LruCrate(lru::LruCache<String, Bytes>);
impl Lru for LruCrate {
    const NAME: &'static str = "lru";
    fn with_room_for(keys: &[String]) -> Self {
        LruCrate(lru::LruCache::new(keys.len().try_into().unwrap()))
    }
    fn add(&mut self, key: String, value: Bytes) {
        self.0.put(key, value);
    }
    fn hit(&mut self, key: &str) -> bool {
        self.0.get(key).is_some()
    }
}

struct Hashlink(hashlink::LruCache<String, Bytes>);
impl Lru for Hashlink {
    const NAME: &'static str = "hashlink";
    fn with_room_for(keys: &[String]) -> Self {
        Hashlink(hashlink::LruCache::new(keys.len()))
    }
    fn add(&mut self, key: String, value: Bytes) {
        self.0.insert(key, value);
    }
    fn hit(&mut self, key: &str) -> bool {
        self.0.get(key).is_some()
    }
}

struct QuickUnsync(quick_cache::unsync::Cache<String, Bytes>);
impl Lru for QuickUnsync {
    const NAME: &'static str = "quick_cache_unsync";
    fn with_room_for(keys: &[String]) -> Self {
        QuickUnsync(quick_cache::unsync::Cache::new(keys.len()))
    }
    fn add(&mut self, key: String, value: Bytes) {
        self.0.insert(key, value);
    }
    fn hit(&mut self, key: &str) -> bool {
        self.0.get(key).is_some()
    }
}

/// Not a cache: takes each key and drops it. Its time in `add_with_eviction` is what the loop
/// itself costs (making a key, the value's reference count, one `free`), under every other row.
struct Discard;
impl Lru for Discard {
    const NAME: &'static str = "discard";
    fn with_room_for(_: &[String]) -> Self {
        Discard
    }
    fn add(&mut self, key: String, value: Bytes) {
        black_box((key, value));
    }
    /// Holds nothing, so nothing is ever found (and `get_hit` does not run it).
    fn hit(&mut self, _: &str) -> bool {
        false
    }
}

fn filled<C: Lru>(keys: &[String]) -> C {
    let mut cache = C::with_room_for(&keys[..ENTRIES]);
    for key in &keys[..ENTRIES] {
        cache.add(key.clone(), value());
    }
    cache
}

fn get_hit<C: Lru>(c: &mut Criterion, keys: &[String], order: &[usize]) {
    let mut cache: C = filled(keys);
    // quick_cache may decline to admit some keys; look up only the ones every cache holds.
    let order: Vec<&str> = order
        .iter()
        .map(|&i| keys[i].as_str())
        .filter(|k| cache.hit(k))
        .collect();
    let mut group = c.benchmark_group("get_hit");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter(C::NAME), |b| {
        let mut next = 0;
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(cache.hit(order[next]));
                next = (next + 1) % order.len();
            }
            start.elapsed()
        });
    });
    group.finish();
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

/// Criterion's measurement in the benchmark thread's CPU time (see the module docs).
struct ThreadCpuTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_time()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_secs_f64() * 1e9
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Nanoseconds, as for wall time, so criterion prints them the same way.
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

/// `get_hit` in thread CPU time, for our two policies; both caches are built before either is
/// timed, so neither is laid out in memory the other has just freed.
fn get_hit_cpu(c: &mut Criterion<ThreadCpuTime>) {
    let keys = support::string_keys(POOL, support::SEED);
    let order = support::uniform_indices(1 << 20, ENTRIES, support::SEED + 1);
    let mut lru: Ours = filled(&keys);
    let mut s3: OursS3 = filled(&keys);
    let order: Vec<&str> = order.iter().map(|&i| keys[i].as_str()).collect();
    let mut group = c.benchmark_group("get_hit_cpu");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter(Ours::NAME), |b| {
        time_hits(b, &mut lru, &order);
    });
    group.bench_function(BenchmarkId::from_parameter(OursS3::NAME), |b| {
        time_hits(b, &mut s3, &order);
    });
    group.finish();
}

fn time_hits<C: Lru>(b: &mut criterion::Bencher<'_, ThreadCpuTime>, cache: &mut C, order: &[&str]) {
    let mut next = 0;
    b.iter_custom(|iters| {
        let start = thread_cpu_time();
        for _ in 0..iters {
            black_box(cache.hit(order[next]));
            next = (next + 1) % order.len();
        }
        thread_cpu_time().saturating_sub(start)
    });
}

fn add_evict<C: Lru>(c: &mut Criterion, keys: &[String]) {
    let mut cache: C = filled(keys);
    let mut group = c.benchmark_group("add_with_eviction");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter(C::NAME), |b| {
        let mut next = ENTRIES;
        b.iter_custom(|iters| {
            // Owned keys are made outside the timed loop, a small batch at a time, so that the
            // key an insert receives is in cache, as a key just read from a request is (a batch
            // of millions of keys made up front would add a cache miss per insert to every row).
            // Dropping the evicted keys is inside, for every implementation alike.
            let mut elapsed = Duration::ZERO;
            let mut left = iters;
            let mut batch = Vec::with_capacity(BATCH);
            while left > 0 {
                let n = left.min(BATCH as u64);
                left -= n;
                batch.extend((0..n).map(|_| {
                    next = (next + 1) % POOL;
                    keys[next].clone()
                }));
                let start = Instant::now();
                for key in batch.drain(..) {
                    cache.add(key, value());
                }
                elapsed += start.elapsed();
            }
            elapsed
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let keys = support::string_keys(POOL, support::SEED);
    let order = support::uniform_indices(1 << 20, ENTRIES, support::SEED + 1);
    get_hit::<Ours>(c, &keys, &order);
    get_hit::<OursS3>(c, &keys, &order);
    get_hit::<LruCrate>(c, &keys, &order);
    get_hit::<Hashlink>(c, &keys, &order);
    get_hit::<QuickUnsync>(c, &keys, &order);
    add_evict::<Discard>(c, &keys);
    add_evict::<Ours>(c, &keys);
    add_evict::<OursS3>(c, &keys);
    add_evict::<LruCrate>(c, &keys);
    add_evict::<Hashlink>(c, &keys);
    add_evict::<QuickUnsync>(c, &keys);
}

criterion_group! {
    name = single_thread;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_group! {
    name = single_thread_cpu;
    config = Criterion::default()
        .with_measurement(ThreadCpuTime)
        .warm_up_time(Duration::from_secs(1));
    targets = get_hit_cpu
}
criterion_main!(single_thread, single_thread_cpu);
