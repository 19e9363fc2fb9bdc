use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use geecache_byteview::ByteView;
use geecache_singleflight as singleflight;
use tokio::task::AbortHandle;

use crate::builder::GroupBuilder;
use crate::cache::{Cached, Caches, Tier, now};
use crate::error::{AlreadyRegistered, Error, LoadError};
use crate::getter::{DynGetter, Loaded};
use crate::peers::PeerPicker;
use crate::random::RandomSource;
use crate::rate::{HotAdmission, Rate};
use crate::stats::{Counters, Stats};
use crate::warnings::PeerWarnings;

/// Where a get came from, which decides whether it may be forwarded to a peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A client or in-process caller: a miss goes to the owning peer first.
    #[default]
    Client,
    /// Another node that chose this one as the key's owner: a miss is loaded here, never
    /// forwarded again.
    Peer,
}

/// Where a value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// The main cache: a value this node loaded earlier.
    MainCache,
    /// The hot cache: a copy of a value another node owns.
    HotCache,
    /// Fetched from the owning peer just now.
    Peer,
    /// Loaded by the local getter just now.
    Loader,
}

/// A value with the facts a server needs to pass it on.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Fetched {
    /// The value.
    pub value: ByteView,
    /// How long it has left to live, if it expires.
    pub ttl: Option<Duration>,
    /// Where it came from.
    pub source: Source,
    /// The key's request rate at this node, in requests per second (a decaying average over
    /// about a minute, as of its last request), when this node holds the value as its owner:
    /// from the main cache, or loaded just now into it. `None` for a copy of another node's
    /// value. A server answering a peer sends it along (`minute_qps` on the wire), and the
    /// peer decides by it whether to keep a hot copy ([`HotAdmission::Rate`]).
    ///
    /// [`HotAdmission::Rate`]: crate::HotAdmission::Rate
    pub rate: Option<f64>,
}

impl PartialEq for Fetched {
    fn eq(&self, other: &Self) -> bool {
        // The rate compared as bits, so that `Eq` holds whatever it is.
        let bits = |f: &Fetched| f.rate.map(f64::to_bits);
        (self.value == other.value && self.ttl == other.ttl && self.source == other.source)
            && bits(self) == bits(other)
    }
}

impl Eq for Fetched {}

/// A named cache namespace: local and hot caches, a loader, peers and statistics.
///
/// Build one with [`Group::builder`]; see the [crate docs](crate) for the request path.
pub struct Group {
    pub(crate) inner: Inner,
    /// One flight per key for local loads. These flights run the local loader and make no
    /// peer call that could wait on another node's flight: the one peer call, a peek at a
    /// key's previous owner after a change of membership, is answered from that node's cache
    /// without any flight. (The loader itself may go over the network, to a database or an
    /// HTTP origin: that is the source of truth, which never calls back into the cluster.)
    pub(crate) local: singleflight::Group<String, Fetched, Error>,
    /// One flight per key for fetches from the owning peer (which fall back to `local`).
    pub(crate) remote: singleflight::Group<String, Fetched, Error>,
    pub(crate) stats: Counters,
    /// Bumped by every `remove`: a load that started before a removal must not cache its
    /// (possibly stale) value after it.
    epoch: AtomicU64,
    /// The picker's settled changes of membership last acted on (see [`Group::settle`]).
    settled: AtomicU64,
    /// Held shared by a load storing its value, and exclusively by a write
    /// ([`Group::set`], [`Group::purge`]): a load's check of the epoch and its insert then
    /// happen wholly before a write or wholly after it, so the value a client set is never
    /// replaced by an older one a load was bringing in. (A removal needs no lock: the load
    /// checks the epoch again after its insert and takes its value back out.)
    pub(crate) writes: RwLock<()>,
    /// Failed fetches and removals are logged at most once per peer per interval.
    pub(crate) warnings: PeerWarnings,
    sweeper: Option<AbortHandle>,
}

/// The configuration part of a group, assembled by the builder.
pub(crate) struct Inner {
    pub(crate) name: String,
    pub(crate) cache_bytes: usize,
    pub(crate) getter: Arc<dyn DynGetter>,
    pub(crate) caches: Caches,
    pub(crate) ttl: Option<Duration>,
    pub(crate) hot_admission: HotAdmission,
    pub(crate) random: RandomSource,
    pub(crate) peer_timeout: Duration,
    pub(crate) negative_ttl: Option<Duration>,
    pub(crate) batch_concurrency: usize,
    /// Gathers single fetches to a peer into batches, when the group has a batch window.
    pub(crate) coalescer: Option<crate::coalesce::Coalescer>,
    pub(crate) peers: OnceLock<Arc<dyn PeerPicker>>,
}

impl Group {
    /// Starts building a group called `name`.
    pub fn builder(name: impl Into<String>) -> GroupBuilder {
        GroupBuilder::new(name)
    }

    pub(crate) fn new(inner: Inner, sweeper: Option<AbortHandle>) -> Self {
        Group {
            inner,
            local: singleflight::Group::new(),
            remote: singleflight::Group::new(),
            stats: Counters::default(),
            epoch: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            writes: RwLock::new(()),
            warnings: PeerWarnings::default(),
            sweeper,
        }
    }

    /// The group's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The byte budget of the main and hot caches together (0: unbounded).
    #[must_use]
    pub fn cache_bytes(&self) -> usize {
        self.inner.cache_bytes
    }

    /// Bytes held now in the main and hot caches together.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.inner.caches.bytes()
    }

    /// Gives the group its peers. Done once; until then every miss loads locally.
    ///
    /// # Errors
    ///
    /// [`AlreadyRegistered`] if the group has a picker already (from the builder or an earlier
    /// call): a group's notion of who owns a key must not change under it. To change the
    /// members, change them inside the picker.
    pub fn register_peers(&self, picker: Arc<dyn PeerPicker>) -> Result<(), AlreadyRegistered> {
        self.inner
            .peers
            .set(picker)
            .map_err(|_| AlreadyRegistered(self.inner.name.clone()))
    }

    /// How long the group waits for a peer, on every call (fetches and removals alike).
    #[must_use]
    pub fn peer_timeout(&self) -> Duration {
        self.inner.peer_timeout
    }

    pub(crate) fn picker(&self) -> Option<&Arc<dyn PeerPicker>> {
        self.inner.peers.get()
    }

    /// The value of `key`, from the cache, the owning peer or the loader.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`] for `""`, [`Error::NotFound`] when the source has no such key,
    /// [`Error::Rejected`] when the source refuses it, and [`Error::Load`] or
    /// [`Error::Panicked`] when the local loader fails. A failing peer is never an error here:
    /// the group loads locally instead.
    pub async fn get(&self, key: &str) -> Result<ByteView, Error> {
        self.fetch(key, Origin::Client).await.map(|f| f.value)
    }

    /// Like [`get`](Self::get), for a server: says where the get came from and returns the
    /// value's remaining time to live and source as well.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn fetch(&self, key: &str, origin: Origin) -> Result<Fetched, Error> {
        if let Some(hit) = self.lookup(key, origin)? {
            return Ok(hit);
        }
        let result = match self.owner_elsewhere(key, origin) {
            None => self.load_locally(key).await,
            Some(peer) => {
                let flight = self
                    .remote
                    .work(key.to_owned(), || self.load_remotely(key, peer));
                flight.await.map_err(flight_error)
            }
        };
        if matches!(result, Err(Error::NotFound)) {
            self.stats.not_found.incr();
        }
        result
    }

    /// The first steps of every get: the key checks, the counters, and the caches. `Ok(None)`
    /// is a miss, counted as a load.
    pub(crate) fn lookup(&self, key: &str, origin: Origin) -> Result<Option<Fetched>, Error> {
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        // Before the cache: a key the source refuses must be refused the same way whether
        // or not a value happens to be cached under it. It is not counted as a get, so every
        // get is still a hit or a load.
        if let Err(rejected) = self.inner.getter.check_key(key) {
            return Err(self.rejected(key, rejected));
        }
        self.stats.gets.incr();
        if origin == Origin::Peer {
            self.stats.server_requests.incr();
        }
        if let Some((entry, source)) = self.inner.caches.get(key, origin == Origin::Peer) {
            return Ok(Some(fetched(entry, source)));
        }
        self.stats.loads.incr();
        Ok(None)
    }

    /// The value of `key` if this node has it cached (main or hot cache), without loading it,
    /// asking a peer or touching the caches' recency: what a server answers a peer's
    /// [`PeerGetter::peek`](crate::PeerGetter::peek) with.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get) for a key no get could take: [`Error::EmptyKey`] and
    /// [`Error::Rejected`].
    pub fn peek(&self, key: &str) -> Result<Option<Fetched>, Error> {
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        self.inner.getter.check_key(key).map_err(Error::Rejected)?;
        let Some((entry, source)) = self.inner.caches.peek(key) else {
            return Ok(None);
        };
        self.stats.peeks_served.incr();
        Ok(Some(fetched(entry, source)))
    }

    /// Drops `key` from this node's caches (main and hot) and makes later gets start afresh,
    /// even while a load of it is in flight. Returns whether a value was cached.
    ///
    /// Other nodes keep their copies; [`remove`](Self::remove) reaches them too.
    pub fn remove_local(&self, key: &str) -> bool {
        // Order matters: bump the epoch before removing, so a load that stores after this
        // point sees the new epoch and takes its value back out (see `store`).
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.forget_flights(key);
        self.inner.caches.remove(key)
    }

    /// Later gets of `key` start flights of their own instead of joining those running.
    pub(crate) fn forget_flights(&self, key: &str) {
        self.local.forget(key);
        self.remote.forget(key);
    }

    /// Removes every expired entry now; the background sweeper calls this periodically.
    /// Returns how many entries went.
    pub fn purge_expired(&self) -> usize {
        self.inner.caches.purge_expired(now())
    }

    /// Drops from the main cache the values of keys this node no longer owns, if a change of
    /// membership has settled since the last call ([`PeerPicker::settled_changes`]: its
    /// hand-off period is over, so their new owners had the time to peek at them). Returns how
    /// many values went. The background sweeper calls this on every tick.
    ///
    /// Dropped rather than moved to the hot cache: moved, they would push out the copies the
    /// hot cache holds for being asked for here, and still answer for keys whose owner now
    /// loads, refreshes and removes them.
    pub fn settle(&self) -> usize {
        let Some(picker) = self.inner.peers.get() else {
            return 0;
        };
        let settled = picker.settled_changes();
        if self.settled.swap(settled, Ordering::AcqRel) == settled {
            return 0;
        }
        let dropped = self.inner.caches.drop_from_main(|key| picker.owns(key));
        self.stats.unowned_dropped.add(dropped as u64);
        dropped
    }

    /// A snapshot of the group's counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let (main, hot) = self.inner.caches.stats();
        let s = &self.stats;
        Stats {
            gets: s.gets.get(),
            cache_hits: main.hits + hot.hits + s.flight_hits.get(),
            peer_loads: s.peer_loads.get(),
            peer_errors: s.peer_errors.get(),
            loads: s.loads.get(),
            loads_deduped: s.loads_deduped.get(),
            local_loads: s.local_loads.get(),
            local_load_errors: s.local_load_errors.get(),
            not_found: s.not_found.get(),
            keys_rejected: s.keys_rejected.get(),
            handoffs: s.handoffs.get(),
            peeks_served: s.peeks_served.get(),
            unowned_dropped: s.unowned_dropped.get(),
            handed_out: s.handed_out.get(),
            handed_in: s.handed_in.get(),
            negative_hits: s.negative_hits.get(),
            sets: s.sets.get(),
            purges: s.purges.get(),
            server_requests: s.server_requests.get(),
            main,
            hot,
        }
    }

    /// With a negative time to live, remembers at the key's owner that the source has no value
    /// for `key` (unless a removal or a write came since `epoch`). A node standing in for
    /// another owner does not: the owner's answer is the one to keep, and keeping it on every
    /// node would need every node to hear of the key's creation.
    fn remember_missing(&self, key: &str, epoch: u64) {
        let Some(ttl) = self.inner.negative_ttl else {
            return;
        };
        if self.local_tier(key) != Tier::Main {
            return;
        }
        let Some(deadline) = now().checked_add(ttl) else {
            return;
        };
        let _shared = self.writes.read().unwrap_or_else(PoisonError::into_inner);
        if self.epoch.load(Ordering::SeqCst) == epoch {
            self.inner.caches.insert_missing(key, deadline);
            if self.epoch.load(Ordering::SeqCst) != epoch {
                self.inner.caches.remove(key);
            }
        }
    }

    /// A flight's first step: the value may have been cached since its caller missed.
    pub(crate) fn flight_hit(&self, key: &str) -> Option<Fetched> {
        let (entry, source) = self.inner.caches.peek(key)?;
        self.stats.flight_hits.incr();
        Some(fetched(entry, source))
    }

    pub(crate) async fn load_locally(&self, key: &str) -> Result<Fetched, Error> {
        let flight = self.local.work(key.to_owned(), || async {
            if let Some(hit) = self.flight_hit(key) {
                return Ok(hit);
            }
            self.stats.loads_deduped.incr();
            if self.inner.negative_ttl.is_some() && self.inner.caches.is_missing(key) {
                self.stats.negative_hits.incr();
                return Err(Error::NotFound);
            }
            let epoch = self.epoch.load(Ordering::SeqCst);
            if let Some(handed) = self.take_over(key, epoch).await {
                return Ok(handed);
            }
            // A loader is user code: its panic becomes an error for every caller of the
            // flight, the leader included, instead of unwinding through a server's handler.
            match CatchUnwind(self.inner.getter.get_boxed(key)).await {
                Ok(Ok(loaded)) => {
                    self.stats.local_loads.incr();
                    let tier = self.local_tier(key);
                    let (value, ttl) = self.store(key, loaded, Some(tier), epoch);
                    Ok(Fetched {
                        value,
                        ttl,
                        source: Source::Loader,
                        rate: (tier == Tier::Main).then(|| f64::from(Rate::FIRST)),
                    })
                }
                Ok(Err(LoadError::NotFound)) => {
                    self.remember_missing(key, epoch);
                    Err(Error::NotFound)
                }
                Ok(Err(LoadError::Rejected(rejected))) => Err(self.rejected(key, rejected)),
                Ok(Err(error)) => {
                    self.stats.local_load_errors.incr();
                    tracing::debug!(group = self.name(), key = %shown(key), %error, "load failed");
                    Err(Error::Load(Arc::new(error)))
                }
                Err(()) => {
                    self.stats.local_load_errors.incr();
                    tracing::error!(group = self.name(), key = %shown(key), "loader panicked");
                    Err(Error::Panicked)
                }
            }
        });
        flight.await.map_err(flight_error)
    }

    /// After a change of membership, a key this node now owns may still be cached at its
    /// previous owner: ask it (cache only, within the peer timeout) before going to the source.
    /// Any failure or "not cached" just means loading as usual.
    async fn take_over(&self, key: &str, epoch: u64) -> Option<Fetched> {
        let previous = self.inner.peers.get()?.previous_owner(key)?;
        let timeout = self.inner.peer_timeout;
        let peek = tokio::time::timeout(timeout, previous.peek(&self.inner.name, key));
        let loaded = match peek.await {
            Ok(Ok(Some(loaded))) => loaded,
            Ok(Ok(None)) => return None,
            Ok(Err(error)) => {
                tracing::debug!(group = self.name(), key = %shown(key), peer = previous.name(), %error,
                    "previous owner could not hand the key over; loading it");
                return None;
            }
            Err(_) => return None,
        };
        self.stats.handoffs.incr();
        let tier = self.local_tier(key);
        let (value, ttl) = self.store(key, loaded, Some(tier), epoch);
        Some(Fetched {
            value,
            ttl,
            source: Source::Peer,
            rate: (tier == Tier::Main).then(|| f64::from(Rate::FIRST)),
        })
    }

    /// Where a value this node loaded goes: the main cache when the node owns the key, the hot
    /// cache when it stood in for an owner that was skipped or failed, so that the copy is
    /// the first to go once the owner is back.
    pub(crate) fn local_tier(&self, key: &str) -> Tier {
        match self.inner.peers.get() {
            Some(picker) if !picker.owns(key) => Tier::Hot,
            _ => Tier::Main,
        }
    }

    /// The removal epoch now: a value stored with it is taken back out if a removal comes
    /// in between (see `store`).
    pub(crate) fn epoch_now(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Moves the removal epoch on: loads that started before are not cached.
    pub(crate) fn bump_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts and logs a refused key, and makes it the caller's error.
    pub(crate) fn rejected(&self, key: &str, rejected: crate::Rejected) -> Error {
        self.stats.keys_rejected.incr();
        tracing::debug!(
            group = self.name(),
            key = %shown(key),
            reason = rejected.reason(),
            "key rejected"
        );
        Error::Rejected(rejected)
    }

    /// Caches a loaded value in `into` (`None`: nowhere) unless a removal raced with the load,
    /// and returns it with its time to live.
    pub(crate) fn store(
        &self,
        key: &str,
        loaded: Loaded,
        into: Option<Tier>,
        epoch: u64,
    ) -> (ByteView, Option<Duration>) {
        let ttl = loaded.ttl().or(self.inner.ttl);
        let value = loaded.into_value();
        let Some(into) = into.filter(|_| ttl != Some(Duration::ZERO)) else {
            return (value, ttl);
        };
        let _shared = self.writes.read().unwrap_or_else(PoisonError::into_inner);
        if self.epoch.load(Ordering::SeqCst) == epoch {
            let expires = ttl.and_then(|ttl| now().checked_add(ttl));
            self.inner.caches.insert(into, key, value.clone(), expires);
            // A removal may have come between the check above and the insert: if so, take
            // the value back out. Whichever order the two ran in, the key ends up uncached.
            if self.epoch.load(Ordering::SeqCst) != epoch {
                self.inner.caches.remove(key);
            }
        }
        (value, ttl)
    }
}

/// Logged keys are cut to this many characters: a key may be 64 KiB, and a line per failed
/// request that long would make the log the biggest thing a node writes.
const SHOWN_KEY_CHARS: usize = 120;

/// `key` as logs show it: whole when short, else its start and how long it was.
pub(crate) fn shown(key: &str) -> std::borrow::Cow<'_, str> {
    match key.char_indices().nth(SHOWN_KEY_CHARS) {
        None => std::borrow::Cow::Borrowed(key),
        Some((cut, _)) => format!("{}... ({} bytes)", &key[..cut], key.len()).into(),
    }
}

/// Every caller of a flight sees the flight's own error.
pub(crate) fn flight_error(error: singleflight::Error<Error>) -> Error {
    match error {
        singleflight::Error::Failed(error) => Error::clone(&error),
        // Loader panics are caught inside the local flight, so this is a peer client that
        // panicked in a remote flight: its waiters see `Panicked`; its leader unwinds.
        _ => Error::Panicked,
    }
}

/// Turns a panic while polling the inner future into `Err(())`.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The future is dropped right after a panic and never polled again, so whatever
        // state the panic left half-written is never observed.
        match panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut self.0).poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

fn fetched(entry: Cached, source: Source) -> Fetched {
    let ttl = entry.ttl();
    Fetched {
        value: entry.value,
        ttl,
        source,
        rate: (source == Source::MainCache).then(|| f64::from(entry.rate.get().latest())),
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(sweeper) = &self.sweeper {
            sweeper.abort();
        }
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("name", &self.inner.name)
            .field("cache_bytes", &self.inner.cache_bytes)
            .field("ttl", &self.inner.ttl)
            .field("bytes", &self.bytes())
            .finish_non_exhaustive()
    }
}
