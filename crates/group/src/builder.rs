use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use geecache_lru::Policy;

use crate::cache::{Caches, Charge};
use crate::error::BuildError;
use crate::getter::{DynGetter, Getter};
use crate::group::{Group, Inner};
use crate::peers::PeerPicker;
use crate::random::{self, RandomSource};
use crate::rate::HotAdmission;
use crate::registry::Registry;
use crate::sweeper;

/// Configures and builds a [`Group`]; start with [`Group::builder`].
#[must_use = "a builder does nothing until .build() is called"]
pub struct GroupBuilder {
    name: String,
    cache_bytes: usize,
    getter: Option<Arc<dyn DynGetter>>,
    ttl: Option<Duration>,
    hot_ratio: usize,
    hot_admission: HotAdmission,
    batch_concurrency: usize,
    peer_batch_window: Duration,
    negative_ttl: Option<Duration>,
    policy: Policy,
    charge: Charge,
    random: Option<RandomSource>,
    peer_timeout: Duration,
    sweep_interval: Option<Duration>,
    peers: Option<Arc<dyn PeerPicker>>,
    registry: Option<Registry>,
}

impl GroupBuilder {
    /// The eviction policy of a group that does not choose one: S3-FIFO, which beat exact LRU's
    /// hit ratio on every trace measured (Zipf, a loop just over capacity, scans, a shifting
    /// hot set) at LRU's speed and memory (`docs/performance.md`). [`geecache_lru`]'s own
    /// default stays LRU: that crate is an LRU cache first.
    pub const DEFAULT_POLICY: Policy = Policy::S3Fifo;

    pub(crate) fn new(name: impl Into<String>) -> Self {
        GroupBuilder {
            name: name.into(),
            cache_bytes: 64 << 20,
            getter: None,
            ttl: None,
            hot_ratio: 8,
            hot_admission: HotAdmission::default(),
            batch_concurrency: 16,
            peer_batch_window: Duration::ZERO,
            negative_ttl: None,
            policy: Self::DEFAULT_POLICY,
            charge: Charge::Payload,
            random: None,
            peer_timeout: Duration::from_secs(1),
            sweep_interval: None,
            peers: None,
            registry: None,
        }
    }

    /// The byte budget for the main and hot caches together (key plus value bytes); 0 means
    /// unbounded. Default: 64 MiB.
    pub fn cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// The loader that fetches a key from the source of truth. Required.
    pub fn getter(mut self, getter: impl Getter) -> Self {
        self.getter = Some(Arc::new(getter));
        self
    }

    /// How long a value stays fresh unless its loader says otherwise. Default: forever.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The hot cache may hold up to `main bytes / ratio` before it, rather than the main
    /// cache, gives up bytes to the budget. Default: 8, as groupcache.
    pub fn hot_cache_ratio(mut self, ratio: usize) -> Self {
        self.hot_ratio = ratio;
        self
    }

    /// Keeps a copy of a value fetched from a peer in the hot cache one time in `n`, at random
    /// (0: never, 1: always), whatever its owner measured: groupcache's rule
    /// ([`HotAdmission::Random`]). Default: by rate ([`hot_qps`](Self::hot_qps)).
    pub fn hot_admission(mut self, one_in: u32) -> Self {
        self.hot_admission = HotAdmission::Random(one_in);
        self
    }

    /// Keeps a copy of a value fetched from a peer in the hot cache when the key's owner
    /// measured at least `qps` requests per second for it ([`HotAdmission::Rate`]); a peer that
    /// sends no rate (a Go node) gets groupcache's one in ten. The default,
    /// [`HotAdmission::DEFAULT_QPS`], is a little more than a request every twenty seconds
    /// (`docs/performance.md` has the runs that chose it).
    pub fn hot_qps(mut self, qps: f64) -> Self {
        self.hot_admission = HotAdmission::Rate(qps);
        self
    }

    /// How values fetched from peers are admitted to the hot cache, as one setting:
    /// [`hot_admission`](Self::hot_admission) and [`hot_qps`](Self::hot_qps) set it too.
    pub fn hot(mut self, admission: HotAdmission) -> Self {
        self.hot_admission = admission;
        self
    }

    /// Which entries the main and hot caches give up when the budget is full: S3-FIFO
    /// ([`Policy::S3Fifo`], the default, [`DEFAULT_POLICY`](Self::DEFAULT_POLICY)), which keeps
    /// a key used once (a scan, a crawler) from pushing out the keys used often, or least
    /// recently used ([`Policy::Lru`], groupcache's); see `docs/performance.md` for the hit
    /// ratios of each on the same traces.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// What [`cache_bytes`](Self::cache_bytes) counts of each entry: its key and value bytes
    /// ([`Charge::Payload`], the default, as groupcache), or those plus the entry's bookkeeping
    /// ([`Charge::Memory`]), so that the budget bounds the memory the caches take.
    pub fn charge(mut self, charge: Charge) -> Self {
        self.charge = charge;
        self
    }

    /// The source of randomness behind hot-cache admission: a value is admitted when
    /// `random() % n == 0`. Default: a fast per-thread generator. Tests inject a fixed sequence.
    pub fn random(mut self, random: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.random = Some(Arc::new(random));
        self
    }

    /// Caches "not found" for `ttl`: when the source says it has no value for a key this node
    /// owns, gets of that key (from clients or peers) are answered "not found" for that long
    /// without asking the source again. Only the owner keeps the answer; other nodes ask it.
    /// Removing or setting the key forgets it. Default: off, every miss asks the source.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// How many keys of one [`Group::get_many`](crate::Group::get_many) this node loads from
    /// its source at the same time (its own keys, and those of peers that failed): a batch of
    /// a thousand keys must not become a thousand concurrent source requests. Keys fetched
    /// from peers are not counted here: each peer gets one request. Default: 16; 0 is taken
    /// as 1.
    pub fn batch_concurrency(mut self, loads: usize) -> Self {
        self.batch_concurrency = loads.max(1);
        self
    }

    /// Gathers the single fetches this node makes to one peer within `window` into one batch
    /// request ([`PeerGetter::get_many`](crate::PeerGetter::get_many)), as a busy node's many
    /// remote flights otherwise make one request each. The first fetch for a peer opens the
    /// window; fetches within it join; at its end, or once it holds a batch's bound of keys
    /// ([`GET_MANY_BATCH`](crate::GET_MANY_BATCH) keys,
    /// [`GET_MANY_BATCH_BYTES`](crate::GET_MANY_BATCH_BYTES) of keys), one request goes out.
    /// Each caller still gets its own key's answer, as a single get would, within its own peer
    /// timeout counted from its call; one that gives up leaves the others' request alone. A
    /// peer that takes no batches ([`PeerGetter::takes_batches`](crate::PeerGetter::takes_batches))
    /// is asked key by key, without the wait.
    ///
    /// Every coalesced fetch waits up to `window` longer, so this pays when a peer request
    /// costs more than the wait: `docs/performance.md` has the runs. Default: zero, off; at
    /// most 10 ms.
    pub fn peer_batch_window(mut self, window: Duration) -> Self {
        self.peer_batch_window = window;
        self
    }

    /// How long to wait for a peer before asking the key's stand-in
    /// ([`PeerPicker::pick_after`]) or loading locally instead:
    /// a fetch whose owner and stand-in both time out waits it twice. Default: 1 s.
    pub fn peer_timeout(mut self, timeout: Duration) -> Self {
        self.peer_timeout = timeout;
        self
    }

    /// How often the background sweeper purges expired entries. Default: half the TTL
    /// (between 100 ms and 60 s), or 30 s when the group has no default TTL.
    pub fn sweep_interval(mut self, every: Duration) -> Self {
        self.sweep_interval = Some(every);
        self
    }

    /// The peer picker, if it exists before the group; see [`Group::register_peers`].
    pub fn peers(mut self, picker: Arc<dyn PeerPicker>) -> Self {
        self.peers = Some(picker);
        self
    }

    /// Puts the built group in `registry` (e.g. [`groups::global`](crate::groups::global)),
    /// where a server finds it by name. Default: in no registry; see [`Registry`].
    pub fn register(mut self, registry: &Registry) -> Self {
        self.registry = Some(registry.clone());
        self
    }

    /// Builds the group, registers it if [`register`](Self::register) said where, and starts
    /// its sweeper if a tokio runtime is running.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] names the setting at fault: no getter, an empty name, a name the
    /// registry holds already, a zero hot-cache ratio, a hot-cache rate threshold that is
    /// negative or not a number, a zero duration, or a peer batch window over 10 ms.
    pub fn build(self) -> Result<Arc<Group>, BuildError> {
        if self.name.is_empty() {
            return Err(BuildError::EmptyName);
        }
        let Some(getter) = self.getter else {
            return Err(BuildError::MissingGetter(self.name));
        };
        if self.hot_ratio == 0 {
            return Err(BuildError::InvalidHotRatio(self.hot_ratio));
        }
        if let HotAdmission::Rate(qps) = self.hot_admission
            && !(qps.is_finite() && qps >= 0.0)
        {
            return Err(BuildError::InvalidHotQps(qps));
        }
        for (setting, value) in [
            ("ttl", self.ttl),
            ("peer_timeout", Some(self.peer_timeout)),
            ("negative_ttl", self.negative_ttl),
            ("sweep_interval", self.sweep_interval),
        ] {
            if value == Some(Duration::ZERO) {
                return Err(BuildError::ZeroDuration(setting));
            }
        }
        if self.peer_batch_window > crate::coalesce::MAX_WINDOW {
            return Err(BuildError::PeerBatchWindowTooLong(self.peer_batch_window));
        }
        let sweep_every = self.sweep_interval.unwrap_or(match self.ttl {
            Some(ttl) => (ttl / 2).clamp(Duration::from_millis(100), Duration::from_secs(60)),
            None => Duration::from_secs(30),
        });
        let peers = OnceLock::new();
        if let Some(picker) = self.peers {
            let _ = peers.set(picker);
        }
        let inner = Inner {
            name: self.name,
            cache_bytes: self.cache_bytes,
            getter,
            caches: Caches::new(self.cache_bytes, self.hot_ratio, self.policy, self.charge),
            ttl: self.ttl,
            hot_admission: self.hot_admission,
            random: self.random.unwrap_or_else(random::default_source),
            peer_timeout: self.peer_timeout,
            batch_concurrency: self.batch_concurrency,
            coalescer: crate::coalesce::Coalescer::new(self.peer_batch_window),
            negative_ttl: self.negative_ttl,
            peers,
        };
        let group =
            Arc::new_cyclic(|weak| Group::new(inner, sweeper::spawn(weak.clone(), sweep_every)));
        if let Some(registry) = &self.registry {
            registry.insert(Arc::clone(&group))?;
        }
        Ok(group)
    }
}

impl fmt::Debug for GroupBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupBuilder")
            .field("name", &self.name)
            .field("cache_bytes", &self.cache_bytes)
            .field("ttl", &self.ttl)
            .field("hot_ratio", &self.hot_ratio)
            .field("hot_admission", &self.hot_admission)
            .field("policy", &self.policy)
            .field("charge", &self.charge)
            .field("peer_timeout", &self.peer_timeout)
            .field("peer_batch_window", &self.peer_batch_window)
            .finish_non_exhaustive()
    }
}
