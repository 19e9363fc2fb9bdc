//! The remote path of a get: asking the key's owner, and what a node makes of its answer —
//! a value (kept as a hot copy or not), "not found", or a failure that sends the key to the
//! owner's stand-in and then to the local loader.
//!
//! Kept apart from `group.rs`, which holds the group and its local path, because this is the
//! half of a get that depends on other nodes: the picker, the peer timeout, hot admission and
//! the fallbacks.

use std::sync::Arc;

use crate::cache::Tier;
use crate::error::{Error, PeerError};
use crate::getter::Loaded;
use crate::group::{Fetched, Group, Origin, Source, shown};
use crate::peers::PeerGetter;
use crate::rate::HotAdmission;

impl Group {
    /// The peer to ask for `key`, or `None` when this node loads it: a peer's request is never
    /// forwarded, and a client's goes where the picker says, after the members it skipped are
    /// probed in the background.
    pub(crate) fn owner_elsewhere(&self, key: &str, origin: Origin) -> Option<Arc<dyn PeerGetter>> {
        match origin {
            Origin::Peer => None,
            Origin::Client => {
                let pick = self.inner.peers.get()?.pick(key);
                for probe in pick.probes {
                    self.probe(probe, key);
                }
                pick.peer
            }
        }
    }

    /// Asks `peer` for `key` in the background, within the peer timeout, only for its health:
    /// the picker's wrapper records the answer or the timeout, which closes or reopens the
    /// peer's circuit. The value is not kept (the request that led here is being served by
    /// the next member). Outside a tokio runtime there is nothing to run it on, and the peer
    /// is probed again after one more backoff.
    fn probe(&self, peer: Arc<dyn PeerGetter>, key: &str) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (group, key, timeout) = (self.name().to_owned(), key.to_owned(), self.peer_timeout());
        runtime.spawn(async move {
            let answer = tokio::time::timeout(timeout, peer.get(&group, &key)).await;
            tracing::debug!(
                group,
                peer = peer.name(),
                answered = answer.is_ok(),
                "probed"
            );
        });
    }

    pub(crate) async fn load_remotely(
        &self,
        key: &str,
        peer: Arc<dyn PeerGetter>,
    ) -> Result<Fetched, Error> {
        if let Some(hit) = self.flight_hit(key) {
            return Ok(hit);
        }
        self.stats.loads_deduped.incr();
        let epoch = self.epoch_now();
        let answer = self.ask_peer(&peer, key).await;
        self.peer_answered(key, &peer, answer, epoch).await
    }

    /// Asks `peer` for `key` within the peer timeout: in the peer's batch window when the
    /// group has one, else alone.
    async fn ask_peer(&self, peer: &Arc<dyn PeerGetter>, key: &str) -> Result<Loaded, PeerError> {
        let timeout = self.inner.peer_timeout;
        match &self.inner.coalescer {
            Some(coalescer) => (coalescer.fetch(&self.inner.name, peer, key, timeout)).await,
            None => tokio::time::timeout(timeout, peer.get(&self.inner.name, key))
                .await
                .unwrap_or(Err(PeerError::Timeout(timeout))),
        }
    }

    /// What a remote flight makes of the owner's answer (asked for at `epoch`): its value is
    /// kept in the hot cache as `hot_admission` says; "not found" and "rejected" are
    /// answers. A failure that says nothing of the key sends the key to the owner's stand-in
    /// ([`PeerPicker::pick_after`](crate::PeerPicker::pick_after)), asked once; any other
    /// failure, or the stand-in's, falls back to the local loader.
    ///
    /// Why the stand-in and not the local loader at once: every node that was asking the
    /// failed owner would load the key, each from the source; the stand-in is the member every
    /// node picks once it skips the owner, so the key is loaded once in the cluster, by the
    /// node that goes on loading it while the owner's circuit is open. Why only one hop: a
    /// chain of stand-ins would add a peer timeout per dead member to a request that a local
    /// load ends at once.
    pub(crate) async fn peer_answered(
        &self,
        key: &str,
        peer: &Arc<dyn PeerGetter>,
        answer: Result<Loaded, PeerError>,
        epoch: u64,
    ) -> Result<Fetched, Error> {
        let error = match self.answered(key, answer, epoch) {
            Answered::Done(result) => return result,
            Answered::Failed(error) => error,
        };
        let stand_in = match says_nothing_of_key(&error) {
            true => self.stand_in(key, peer.name()),
            false => None,
        };
        self.peer_failed(key, peer, &error, stand_in.as_deref());
        let Some(stand_in) = stand_in else {
            return self.load_locally(key).await;
        };
        let answer = self.ask_peer(&stand_in, key).await;
        match self.answered(key, answer, epoch) {
            Answered::Done(result) => result,
            Answered::Failed(error) => {
                // One hop only: the stand-in's failure is not passed on to a stand-in of its
                // own; this node loads the key.
                self.peer_failed(key, &stand_in, &error, None);
                self.load_locally(key).await
            }
        }
    }

    /// A peer's answer for `key` made into this node's result: a value (kept in the hot cache
    /// as `hot_admission` says), "not found" or "rejected"; or the failure, for the caller to
    /// fall back from.
    fn answered(&self, key: &str, answer: Result<Loaded, PeerError>, epoch: u64) -> Answered {
        match answer {
            Ok(loaded) => {
                self.stats.peer_loads.incr();
                let into = self.admit_to_hot(loaded.minute_qps()).then_some(Tier::Hot);
                let (value, ttl) = self.store(key, loaded, into, epoch);
                Answered::Done(Ok(Fetched {
                    value,
                    ttl,
                    source: Source::Peer,
                    rate: None,
                }))
            }
            Err(PeerError::NotFound) => Answered::Done(Err(Error::NotFound)),
            Err(PeerError::Rejected(rejected)) => Answered::Done(Err(self.rejected(key, rejected))),
            Err(error) => Answered::Failed(error),
        }
    }

    /// The peer to ask for `key` once `failed` failed, or `None` when this node is the
    /// stand-in (or the picker names none); the members due a probe are probed on the way.
    fn stand_in(&self, key: &str, failed: &str) -> Option<Arc<dyn PeerGetter>> {
        let pick = self.inner.peers.get()?.pick_after(key, failed);
        for probe in pick.probes {
            self.probe(probe, key);
        }
        pick.peer
    }

    /// Counts and logs a failed fetch from `peer`, and says where the key goes next.
    fn peer_failed(
        &self,
        key: &str,
        peer: &Arc<dyn PeerGetter>,
        error: &PeerError,
        stand_in: Option<&dyn PeerGetter>,
    ) {
        self.stats.peer_errors.incr();
        let next = stand_in.map_or("this node", |p| p.name());
        match self.warnings.admit(peer.name()) {
            Some(held_back) => tracing::warn!(group = self.name(), key = %shown(key),
                peer = peer.name(), %error, next, held_back,
                "peer fetch failed; asking the next member, or loading here when it is this \
                 node (one line per peer per 10 s; held_back counts the failures not logged \
                 since)"),
            None => tracing::debug!(group = self.name(), key = %shown(key),
                peer = peer.name(), %error, next, "peer fetch failed"),
        }
    }

    /// Whether to keep a copy of a peer's value, whose owner measured `rate` requests per
    /// second for its key (`None`: the peer sent no rate, as a Go peer does).
    pub(crate) fn admit_to_hot(&self, rate: Option<f64>) -> bool {
        let one_in = |n: u32| n != 0 && (self.inner.random)().is_multiple_of(u64::from(n));
        match (self.inner.hot_admission, rate) {
            (HotAdmission::Random(n), _) => one_in(n),
            (HotAdmission::Rate(threshold), Some(rate)) => rate >= threshold,
            (HotAdmission::Rate(_), None) => one_in(HotAdmission::GROUPCACHE_ONE_IN),
        }
    }
}

/// A peer's answer, as far as the remote flight is concerned.
enum Answered {
    /// A result for the caller: a value, "not found" or "rejected".
    Done(Result<Fetched, Error>),
    /// The peer failed; the caller falls back.
    Failed(PeerError),
}

/// Whether a failed fetch says nothing of the key, so that another member asked for it would
/// most likely answer: the peer timed out, could not be reached, or answered with a server
/// error (a whole batch that failed so counts by its cause). A malformed answer, a request the
/// peer refused (4xx: a wrong token, an unknown group) or this node's own limit would most
/// likely end the same way at another member; the key is loaded here, as it always was.
///
/// The status is read by its class only, which both transports give alike (a gRPC code comes
/// as its HTTP counterpart). A 500 is the owner's source failing for the key, which may be the
/// owner's trouble alone (its connection to the source, its disk), so it goes to the stand-in
/// too: a source that is down for every node is then tried three times for the request
/// (owner, stand-in, here) rather than twice, never more.
fn says_nothing_of_key(error: &PeerError) -> bool {
    match error {
        PeerError::Timeout(_) | PeerError::Unavailable(_) => true,
        PeerError::Status { status, .. } => *status >= 500,
        PeerError::Batch(cause) => says_nothing_of_key(cause),
        _ => false,
    }
}
