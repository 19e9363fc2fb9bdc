//! The cluster view: who the members are, who owns a key, and which members are healthy.

mod health;
mod latency;
mod picker;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use geecache_consistenthash::{HashFn, Preset, Ring};

pub use health::{HealthPolicy, PeerState};

use crate::cache::now;
use crate::error::PeerError;
use crate::getter::{BoxFuture, Loaded};
#[cfg(doc)]
use crate::peers::PeerPicker;
use crate::peers::{PeerGetter, RemoveMode};
use crate::random::{self, RandomSource};
use health::{Change, Health, Outcome};
use latency::{Board, Latency};

/// How many rings from before changes of membership a cluster keeps for peeks.
const PREVIOUS_RINGS: usize = 4;

/// The members of a cluster and their health; a [`PeerPicker`] for any transport.
///
/// It holds the consistent-hash ring of member names, one [`PeerGetter`] per member (made by the transport, e.g. an HTTP client
/// for a URL) and each member's health. A key goes to the first member of its
/// [successors](geecache_consistenthash::Ring::successors) whose circuit is not open: its owner
/// while the owner answers, the next member on the ring while the owner is skipped. Every node
/// derives the same order from the same ring, so a dead owner's keys are still loaded once in
/// the cluster, by its successor, instead of once per node. A fetch that failed before the
/// owner's circuit opened (it was on its way when the owner hung) goes to that same member
/// ([`PeerPicker::pick_after`]), so those keys too are loaded once.
///
/// ```
/// use std::sync::Arc;
/// use geecache_group::{BoxFuture, Cluster, Loaded, PeerError, PeerGetter, PeerPicker, RemoveMode};
///
/// /// A stand-in transport: every peer answers "not found".
/// struct Nowhere(String);
///
/// impl PeerGetter for Nowhere {
///     fn get<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<Loaded, PeerError>> {
///         Box::pin(async { Err(PeerError::NotFound) })
///     }
///     fn remove<'a>(&'a self, _: &'a str, _: &'a str, _: RemoveMode)
///         -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
///         Box::pin(async { Ok(Vec::new()) })
///     }
///     fn name(&self) -> &str {
///         &self.0
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cluster = Cluster::builder("node-a").build();
/// cluster.set_members(["node-a", "node-b", "node-c"], |name| {
///     Ok::<_, std::convert::Infallible>(Arc::new(Nowhere(name.to_owned())) as Arc<dyn PeerGetter>)
/// })?;
/// let owner = cluster.owner_of("k1").ok_or("empty ring")?;
/// match cluster.pick_peer("k1") {
///     Some(peer) => assert_eq!(peer.name(), owner), // another node owns it: ask it
///     None => assert_eq!(owner, "node-a"),          // this node owns it: load it here
/// }
/// # Ok(())
/// # }
/// ```
///
///
/// Build one with [`Cluster::builder`], give it members with [`Cluster::set_members`], and
/// register it with the group ([`GroupBuilder::peers`](crate::GroupBuilder::peers)).
pub struct Cluster {
    self_name: String,
    preset: Preset,
    replicas: usize,
    policy: HealthPolicy,
    random: RandomSource,
    /// How long after a change of membership a new owner peeks at a key's previous owner.
    handoff: Duration,
    /// Every member's answer times, to tell a slow member from the rest.
    board: Arc<Board>,
    /// Readers clone the `Arc` (or look up under the read lock, never held across an await);
    /// `set_members` builds a whole new `Members` and swaps it in, so a request sees either
    /// the old ring and peers or the new ones, never a mix.
    members: RwLock<Arc<Members>>,
}

struct Members {
    ring: Ring<HashFn>,
    /// Every member but this node, by name.
    peers: HashMap<String, Arc<Member>>,
    /// The rings before the last changes of membership, newest first, each with the time of
    /// the change that replaced it: those within the hand-off period, at most
    /// [`PREVIOUS_RINGS`]. More than one, because changes come in series (a rolling restart
    /// makes one every few seconds): a node back from a restart must still find where its
    /// keys went when it left, after the next node's restart has replaced the ring again.
    previous: Vec<(Ring<HashFn>, Instant)>,
    /// Members of the previous ring that are no longer members: a node leaving gracefully
    /// still answers peeks at the keys it held while it drains, so its new owners can take
    /// them (only [`PeerPicker::previous_owner`] looks here).
    departed: HashMap<String, Arc<Member>>,
    /// Changes of membership so far, and when the last one came.
    changes: u64,
    changed_at: Option<Instant>,
}

/// One member's health, as [`Cluster::health`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerHealth {
    /// The member's name (a transport's peer name, e.g. its URL).
    pub name: String,
    /// Where its circuit is.
    pub state: PeerState,
    /// How many times its circuit has opened since it joined.
    pub openings: u64,
}

impl Cluster {
    /// Starts building the cluster view of the node called `self_name`. Every node must name
    /// every member, itself included, by the same string: the ring hashes it.
    pub fn builder(self_name: impl Into<String>) -> ClusterBuilder {
        ClusterBuilder {
            self_name: self_name.into(),
            preset: Preset::Groupcache,
            replicas: 0,
            policy: HealthPolicy::default(),
            random: None,
            handoff: Duration::from_secs(60),
        }
    }

    /// Replaces the members with `names` (this node is added if missing), in that order.
    ///
    /// `connect` makes the peer of a new member; a member that stays keeps its peer, and with
    /// it its connections and its health. The order matters only when two members' points
    /// collide on the ring (the member listed later wins), so give every node the same list.
    ///
    /// # Errors
    ///
    /// The first error `connect` returns; then nothing changes.
    pub fn set_members<I, S, E>(
        &self,
        names: I,
        mut connect: impl FnMut(&str) -> Result<Arc<dyn PeerGetter>, E>,
    ) -> Result<(), E>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut list: Vec<String> = Vec::new();
        for name in names {
            let name = name.into();
            if !list.contains(&name) {
                list.push(name);
            }
        }
        if !list.contains(&self.self_name) {
            list.push(self.self_name.clone());
        }
        // Built outside the lock: hashing the virtual nodes is the slow part.
        let current = self.current();
        let mut ring = self.preset.ring(self.replicas);
        ring.add(list.iter().map(String::as_str));
        let mut peers = HashMap::with_capacity(list.len());
        for name in list.into_iter().filter(|name| *name != self.self_name) {
            let member = match current.peers.get(&name) {
                Some(member) => Arc::clone(member),
                None => Arc::new(Member {
                    getter: connect(&name)?,
                    health: Health::new(self.policy),
                    policy: self.policy,
                    latency: Arc::default(),
                    board: Arc::clone(&self.board),
                    random: Arc::clone(&self.random),
                }),
            };
            peers.insert(name, member);
        }
        let latencies = peers.values().map(|m| Arc::clone(&m.latency)).collect();
        // A new owner of a key asks the old one first, for a while after a real change. A
        // node's first list is a change too: it joins (or comes back to) a cluster whose other
        // members held its keys without it, so its previous ring is theirs.
        let changed = {
            let mut old: Vec<&str> = current.ring.members().collect();
            let mut new: Vec<&str> = ring.members().collect();
            old.sort_unstable();
            new.sort_unstable();
            old != new
        };
        let (changes, changed_at) = match changed {
            false => (current.changes, current.changed_at),
            true => (current.changes + 1, Some(now())),
        };
        let previous = match changed {
            false => current.previous.clone(),
            true => {
                let at = now();
                let replaced = match current.ring.len() > 1 {
                    true => Some(current.ring.clone()),
                    false => {
                        let mut others = self.preset.ring(self.replicas);
                        others.add(ring.members().filter(|m| *m != self.self_name));
                        (!others.is_empty()).then_some(others)
                    }
                };
                let older = (current.previous.iter())
                    .filter(|(_, when)| at.saturating_duration_since(*when) < self.handoff)
                    .cloned();
                (replaced.map(|r| (r, at)).into_iter())
                    .chain(older)
                    .take(PREVIOUS_RINGS)
                    .collect()
            }
        };
        let mut departed = HashMap::new();
        for (before, _) in &previous {
            for name in before.members().filter(|name| !peers.contains_key(*name)) {
                if let Some(member) = current.peers.get(name).or(current.departed.get(name)) {
                    departed.insert(name.to_owned(), Arc::clone(member));
                }
            }
        }
        let next = Arc::new(Members {
            ring,
            peers,
            previous,
            departed,
            changes,
            changed_at,
        });
        self.board.replace(latencies);
        *self.members.write().unwrap_or_else(PoisonError::into_inner) = next;
        Ok(())
    }

    /// This node's name.
    #[must_use]
    pub fn self_name(&self) -> &str {
        &self.self_name
    }

    /// The members, sorted, this node included.
    #[must_use]
    pub fn members(&self) -> Vec<String> {
        let mut members: Vec<String> = self.current().ring.members().map(str::to_owned).collect();
        members.sort_unstable();
        members
    }

    /// The member that owns `key` on the ring, healthy or not; may be this node.
    #[must_use]
    pub fn owner_of(&self, key: &str) -> Option<String> {
        self.current().ring.get(key).map(str::to_owned)
    }

    /// The ring this cluster places keys with.
    #[must_use]
    pub fn ring(&self) -> Preset {
        self.preset
    }

    /// Each member's share of the keys, sorted by member: how evenly the ring spreads them.
    #[must_use]
    pub fn shares(&self) -> Vec<(String, f64)> {
        let members = self.current();
        let mut shares: Vec<(String, f64)> = (members.ring.shares().into_iter())
            .map(|(member, share)| (member.to_owned(), share))
            .collect();
        shares.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        shares
    }

    /// Every other member's health, sorted by name.
    #[must_use]
    pub fn health(&self) -> Vec<PeerHealth> {
        let members = self.current();
        let mut health: Vec<PeerHealth> = (members.peers.iter())
            .map(|(name, member)| PeerHealth {
                name: name.clone(),
                state: member.health.state(),
                openings: member.health.openings(),
            })
            .collect();
        health.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        health
    }

    fn current(&self) -> Arc<Members> {
        Arc::clone(&self.members.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("self", &self.self_name)
            .field("ring", &self.preset)
            .field("replicas", &self.replicas)
            .field("members", &self.members())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Cluster`]; start with [`Cluster::builder`].
#[must_use = "a builder does nothing until .build() is called"]
pub struct ClusterBuilder {
    self_name: String,
    preset: Preset,
    replicas: usize,
    policy: HealthPolicy,
    random: Option<RandomSource>,
    handoff: Duration,
}

impl ClusterBuilder {
    /// For how long after a change of membership a key's new owner asks its previous owner
    /// for the key ([`PeerGetter::peek`]) before loading it from the source. Default 60 s;
    /// zero turns the hand-off off.
    pub fn handoff(mut self, period: Duration) -> Self {
        self.handoff = period;
        self
    }

    /// Which ring places keys on members. Default [`Preset::Groupcache`], Go groupcache's, so
    /// a cluster agrees with Go nodes unless told otherwise. Every node must use the same.
    pub fn ring(mut self, preset: Preset) -> Self {
        self.preset = preset;
        self
    }

    /// Virtual nodes per member; `0` (the default) means the ring's own
    /// ([`Preset::default_replicas`]). Every node must use the same.
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    /// When a member's circuit opens and how long it stays open. Default
    /// [`HealthPolicy::default`].
    pub fn health(mut self, policy: HealthPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The randomness that jitters probe times. Default: a fast per-thread generator.
    pub fn random(mut self, random: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.random = Some(Arc::new(random));
        self
    }

    /// The cluster, with this node as its only member until [`Cluster::set_members`].
    pub fn build(self) -> Cluster {
        let mut ring = self.preset.ring(self.replicas);
        ring.add([self.self_name.as_str()]);
        let replicas = ring.replicas();
        Cluster {
            self_name: self.self_name,
            preset: self.preset,
            replicas,
            policy: self.policy.normalized(),
            random: self.random.unwrap_or_else(random::default_source),
            handoff: self.handoff,
            board: Arc::default(),
            members: RwLock::new(Arc::new(Members {
                ring,
                peers: HashMap::new(),
                previous: Vec::new(),
                departed: HashMap::new(),
                changes: 0,
                changed_at: None,
            })),
        }
    }
}

impl fmt::Debug for ClusterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterBuilder")
            .field("self_name", &self.self_name)
            .field("ring", &self.preset)
            .field("replicas", &self.replicas)
            .field("health", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A member: the transport's peer, and the breaker every call to it reports to.
struct Member {
    getter: Arc<dyn PeerGetter>,
    health: Health,
    policy: HealthPolicy,
    latency: Arc<Latency>,
    board: Arc<Board>,
    random: RandomSource,
}

impl Member {
    /// Whether an answer that took `elapsed` makes this member a slow outlier. A probe is
    /// judged by its own time, and one that passes starts a fresh average.
    fn judge(&self, elapsed: Duration) -> Outcome {
        if self.health.state() == PeerState::HalfOpen {
            return match self.board.threshold(&self.latency, &self.policy) {
                Some(limit) if elapsed > limit => Outcome::Slow,
                _ => {
                    self.latency.restart(elapsed);
                    Outcome::Answered
                }
            };
        }
        self.latency.observe(elapsed);
        match self.board.is_slow(&self.latency, &self.policy) {
            true => Outcome::Slow,
            false => Outcome::Answered,
        }
    }

    fn record(&self, outcome: Outcome) {
        let change = self.health.record(outcome, now(), (self.random)());
        match change {
            Some(Change::Opened { backoff }) => tracing::warn!(
                peer = self.getter.name(),
                ?outcome,
                ?backoff,
                "peer circuit opened: skipping the peer, its keys go to the next member"
            ),
            Some(Change::Closed) => {
                tracing::info!(
                    peer = self.getter.name(),
                    "peer circuit closed: peer is back"
                );
            }
            None => {}
        }
    }
}

/// One call to a member: reports its outcome when it ends, or `Unreachable` when it is dropped
/// unfinished (the group's peer timeout passed).
struct Attempt<'a> {
    member: &'a Member,
    started: Instant,
    reported: bool,
    /// Whether its answer time counts towards the member's average (single gets only).
    timed: bool,
}

impl<'a> Attempt<'a> {
    /// A single get: its answer time is judged against the other members' single gets.
    fn timed(member: &'a Member) -> Self {
        Attempt {
            member,
            started: now(),
            reported: false,
            timed: true,
        }
    }

    /// Any other call (a batch, a hand-over, a write, a purge, a peek): its failures count, its
    /// answer time does not. A batch of a hundred keys, or a hand-over of thousands, takes
    /// longer than one key by its nature; timed like one, it would make a healthy member that
    /// serves them look slow and eject it, at a membership change for a hand-over.
    fn untimed(member: &'a Member) -> Self {
        // Built in full: `..Attempt::timed(member)` would drop a second attempt, unreported,
        // which counts as a call that never ended.
        Attempt {
            member,
            started: now(),
            reported: false,
            timed: false,
        }
    }

    fn report<T>(mut self, result: &Result<T, PeerError>) {
        self.reported = true;
        if let Err(PeerError::OverLimit(_)) = result {
            // This node's own limit, not the peer's failure: the breaker hears nothing.
            return;
        }
        let outcome = match Outcome::of(result) {
            Outcome::Answered if self.timed => {
                let elapsed = now().saturating_duration_since(self.started);
                self.member.judge(elapsed)
            }
            other => other,
        };
        self.member.record(outcome);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.member.record(Outcome::Unreachable);
        }
    }
}

impl PeerGetter for Member {
    fn get<'a>(&'a self, group: &'a str, key: &'a str) -> BoxFuture<'a, Result<Loaded, PeerError>> {
        Box::pin(async move {
            let attempt = Attempt::timed(self);
            let result = self.getter.get(group, key).await;
            attempt.report(&result);
            result
        })
    }

    fn get_many<'a>(
        &'a self,
        group: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Result<Loaded, PeerError>>, PeerError>> {
        Box::pin(async move {
            // A batch of one key (a quiet window of micro-batching) is a single get's work.
            let attempt = match keys.len() {
                1 => Attempt::timed(self),
                _ => Attempt::untimed(self),
            };
            let result = self.getter.get_many(group, keys).await;
            attempt.report(&result);
            result
        })
    }

    fn set<'a>(
        &'a self,
        group: &'a str,
        key: &'a str,
        value: Loaded,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
        Box::pin(async move {
            let attempt = Attempt::untimed(self);
            let result = self.getter.set(group, key, value).await;
            attempt.report(&result);
            result
        })
    }

    fn purge<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<(), PeerError>> {
        Box::pin(async move {
            let attempt = Attempt::untimed(self);
            let result = self.getter.purge(group).await;
            attempt.report(&result);
            result
        })
    }

    fn remove<'a>(
        &'a self,
        group: &'a str,
        key: &'a str,
        mode: RemoveMode,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
        Box::pin(async move {
            let attempt = Attempt::untimed(self);
            let result = self.getter.remove(group, key, mode).await;
            attempt.report(&result);
            result
        })
    }

    fn peek<'a>(
        &'a self,
        group: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Loaded>, PeerError>> {
        Box::pin(async move {
            let attempt = Attempt::untimed(self);
            let result = self.getter.peek(group, key).await;
            attempt.report(&result);
            result
        })
    }

    fn hand_over<'a>(
        &'a self,
        group: &'a str,
        values: Vec<(String, Loaded)>,
    ) -> BoxFuture<'a, Result<usize, PeerError>> {
        Box::pin(async move {
            let attempt = Attempt::untimed(self);
            let result = self.getter.hand_over(group, values).await;
            attempt.report(&result);
            result
        })
    }

    fn takes_batches(&self) -> bool {
        self.getter.takes_batches()
    }

    fn name(&self) -> &str {
        self.getter.name()
    }
}
