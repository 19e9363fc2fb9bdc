use std::sync::Arc;

use crate::error::PeerError;
use crate::getter::{BoxFuture, Loaded};

/// What [`PeerPicker::pick`] chose for a key.
#[derive(Default)]
#[non_exhaustive]
pub struct Pick {
    /// The peer to ask, or `None` when this node loads the key.
    pub peer: Option<Arc<dyn PeerGetter>>,
    /// Peers whose circuit is due a probe: ask each for the key, apart from the request, and
    /// let the answer (or the peer timeout) decide its health. Usually empty.
    pub probes: Vec<Arc<dyn PeerGetter>>,
}

impl Pick {
    /// A choice of `peer`, with nothing to probe.
    #[must_use]
    pub fn new(peer: Option<Arc<dyn PeerGetter>>) -> Self {
        Pick {
            peer,
            probes: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Pick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |p: &Arc<dyn PeerGetter>| p.name().to_owned();
        f.debug_struct("Pick")
            .field("peer", &self.peer.as_ref().map(name))
            .field("probes", &self.probes.iter().map(name).collect::<Vec<_>>())
            .finish()
    }
}

/// Chooses the node that owns a key, and knows every other member.
///
/// The HTTP transport implements it over a consistent-hash ring of peer URLs; tests implement
/// it over in-memory fakes. It is registered once per group
/// ([`Group::register_peers`](crate::Group::register_peers)).
pub trait PeerPicker: Send + Sync + 'static {
    /// The peer that owns `key`, or `None` when this node owns it (or knows no peers).
    ///
    /// Called on every miss, so it should be cheap: no I/O, no allocation beyond an `Arc` clone.
    fn pick_peer(&self, key: &str) -> Option<Arc<dyn PeerGetter>>;

    /// As [`pick_peer`](Self::pick_peer), with the peers to probe apart: a skipped peer whose
    /// backoff has passed is returned in [`Pick::probes`] rather than as the peer to ask, and
    /// the request goes on to the next member. The group probes those in the background, so no
    /// client request waits on a peer that may still hang. Default: [`pick_peer`]'s choice,
    /// nothing to probe (a picker without health probes with the request itself).
    ///
    /// [`pick_peer`]: Self::pick_peer
    fn pick(&self, key: &str) -> Pick {
        Pick::new(self.pick_peer(key))
    }

    /// Whom to ask for `key` once `failed` (a [`PeerGetter::name`], the peer [`pick`] chose)
    /// failed in a way that says nothing of the key (it timed out, could not be reached, or
    /// answered with a server error): the stand-in every node picks when it skips `failed`,
    /// so that the key is still loaded once in the cluster, not once per node that was
    /// asking. [`Pick::peer`] `None` means this node is the stand-in and loads the key.
    ///
    /// The group asks the stand-in once; if that fails too it loads the key itself, and it
    /// never calls this again for the same request, so a fetch makes at most one extra hop.
    /// Default: load locally, as when a picker has no such order.
    ///
    /// [`pick`]: Self::pick
    fn pick_after(&self, key: &str, failed: &str) -> Pick {
        let _ = (key, failed);
        Pick::default()
    }

    /// Every member but this node: whom a removal is fanned out to.
    fn all_peers(&self) -> Vec<Arc<dyn PeerGetter>>;

    /// The member that owned `key` before the last change of membership, while that change is
    /// recent (the hand-off period): a new owner asks it with [`PeerGetter::peek`] before
    /// loading the key from the source. `None` when the owner did not change, the period is
    /// over, or the previous owner is gone or failing. Default: never.
    fn previous_owner(&self, key: &str) -> Option<Arc<dyn PeerGetter>> {
        let _ = key;
        None
    }

    /// Whether this node owns `key` on the ring, rather than standing in for an owner that is
    /// skipped or failed. A value this node loads for a key it does not own goes to its hot
    /// cache, which gives up bytes first, so the stand-in copy does not outlive the owner's
    /// return. Default: every key is this node's.
    fn owns(&self, key: &str) -> bool {
        let _ = key;
        true
    }

    /// The member that owns `key` once this node has left: the first other member after the
    /// key on the ring, whether or not its circuit is closed (the hand-over stops sending to
    /// an heir after a call to it fails). A node leaving gracefully hands it the key's value
    /// ([`PeerGetter::hand_over`]). Default: none, and nothing is handed over.
    fn heir(&self, key: &str) -> Option<Arc<dyn PeerGetter>> {
        let _ = key;
        None
    }

    /// How many changes of membership are settled: it moves on a change once the hand-off
    /// period that follows it is over. Each time it moves, the group drops from its main cache
    /// the values of keys this node no longer owns ([`owns`](Self::owns)): they were kept
    /// through the hand-off so that their new owner could peek at them, and kept longer they
    /// would answer for keys whose owner now loads and removes them, so a changed source value
    /// would stay stale here. Default: never moves.
    fn settled_changes(&self) -> u64 {
        0
    }

    /// Whether `name` (a [`PeerGetter::name`]) is this node's own. An owner fanning out a
    /// removal may list the asking node among those that did not confirm; the asker drops
    /// itself from that list. Default: no name is this node's.
    fn is_self(&self, name: &str) -> bool {
        let _ = name;
        false
    }
}

/// What a removal asks of the peer that receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemoveMode {
    /// "Drop your copy": the receiver removes the key from its own caches, nothing more.
    Local,
    /// "You own this key": the receiver removes it and tells every other member to drop its
    /// copy, but never forwards the request to another owner, whatever its ring says.
    Owner,
}

/// The most keys [`PeerGetter::get_many`] is given in one call: a [`Group::get_many`] with more
/// keys for one peer sends several calls, side by side.
///
/// [`Group::get_many`]: crate::Group::get_many
pub const GET_MANY_BATCH: usize = 256;

/// The most key bytes [`Group::get_many`] puts in one [`PeerGetter::get_many`] call, unless
/// one key alone is larger (it then goes by itself): a peer refuses a request body over its
/// limit (4 MiB by default), and every key of a refused batch is loaded by the asking node.
///
/// [`Group::get_many`]: crate::Group::get_many
pub const GET_MANY_BATCH_BYTES: usize = 1 << 20;

/// The most values [`PeerGetter::hand_over`] is given in one call.
pub const HAND_OVER_BATCH: usize = 256;

/// The most bytes of values [`PeerGetter::hand_over`] is given in one call, unless one value
/// alone is larger (it then goes by itself).
pub const HAND_OVER_BATCH_BYTES: usize = 1 << 20;

/// Talks to one peer: fetches keys from it, and asks it to drop them.
///
/// It returns boxed futures (rather than being `async fn`s) because the picker hands peers
/// out as trait objects, chosen per request. The group bounds every call with its peer
/// timeout ([`GroupBuilder::peer_timeout`](crate::GroupBuilder::peer_timeout)) and drops
/// the future when it passes, so an implementation needs no deadline of its own.
pub trait PeerGetter: Send + Sync + 'static {
    /// Asks the peer for `key` in `group`. The peer loads it locally if it must; it never
    /// forwards the request again.
    fn get<'a>(&'a self, group: &'a str, key: &'a str) -> BoxFuture<'a, Result<Loaded, PeerError>>;

    /// Asks the peer for each of `keys` in `group` in one request, as [`get`](Self::get) asks for
    /// one: `Ok` holds one answer per key, in the order of `keys`; `Err` means the request as a
    /// whole failed (unreachable, timed out, refused), and the caller falls back for every key.
    /// The group never sends more than [`GET_MANY_BATCH`] keys (nor more than
    /// [`GET_MANY_BATCH_BYTES`] of them unless one key is larger), nor the same key twice.
    ///
    /// The default asks for each key with [`get`](Self::get), all at once: right for a
    /// transport (or a peer) that has no batch request, and still one round trip of latency.
    fn get_many<'a>(
        &'a self,
        group: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Result<Loaded, PeerError>>, PeerError>> {
        Box::pin(async move {
            let gets = keys.iter().map(|key| self.get(group, key));
            Ok(futures_util::future::join_all(gets).await)
        })
    }

    /// Whether [`get_many`](Self::get_many) asks for its keys in one request, so that single
    /// fetches made to this peer within a short window gain by going out together
    /// ([`GroupBuilder::peer_batch_window`](crate::GroupBuilder::peer_batch_window)). A
    /// transport answers from what it knows of the peer: `false` once the peer showed it has
    /// no batch request (a Go node), and the group then asks it key by key without waiting.
    /// Default: `false`, as the default `get_many` asks key by key.
    fn takes_batches(&self) -> bool {
        false
    }

    /// Asks the peer to remove `key` from `group` as `mode` says. On success, returns the
    /// members the peer could not confirm the removal with (empty for [`RemoveMode::Local`]).
    fn remove<'a>(
        &'a self,
        group: &'a str,
        key: &'a str,
        mode: RemoveMode,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>>;

    /// Asks the peer for `key` from its caches only: `Ok(None)` when it holds no copy. The peer
    /// never loads the key for a peek, and never waits on a load of it, so a peek can be made
    /// from inside a flight without any risk of two nodes waiting on each other. Used to hand
    /// keys over after a change of membership. Default: the transport cannot peek, and every
    /// peek finds nothing.
    fn peek<'a>(
        &'a self,
        group: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Loaded>, PeerError>> {
        let _ = (group, key);
        Box::pin(std::future::ready(Ok(None)))
    }

    /// Gives the peer `values`, each for a key it owns once this node has left or since a
    /// change of membership: the peer stores them as its own, so a restart or a scale-in does
    /// not send the keys back to the source. Returns how many the peer took; a key it refuses
    /// (its source's key check, say) is left out, not an error. `Ok(0)` when this transport
    /// (or this peer) cannot take values, which is the default.
    ///
    /// One call carries many values because a node has a few seconds to hand over its whole
    /// cache while it leaves: one request per value spends that time on request overhead.
    /// The group sends at most [`HAND_OVER_BATCH`] values, of at most
    /// [`HAND_OVER_BATCH_BYTES`] in all unless a single value is larger, per call.
    fn hand_over<'a>(
        &'a self,
        group: &'a str,
        values: Vec<(String, Loaded)>,
    ) -> BoxFuture<'a, Result<usize, PeerError>> {
        let _ = (group, values);
        Box::pin(std::future::ready(Ok(0)))
    }

    /// Asks the peer, the owner of `key`, to store `value` as a client's write
    /// ([`Group::set_for_peer`](crate::Group::set_for_peer)): it stores it in its main cache and
    /// tells every other member to drop its copy. Returns the members it could not confirm
    /// that with. Default: [`PeerError::Unsupported`], a transport (or a peer) that takes no
    /// writes.
    fn set<'a>(
        &'a self,
        group: &'a str,
        key: &'a str,
        value: Loaded,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
        let _ = (group, key, value);
        Box::pin(std::future::ready(Err(PeerError::Unsupported("set"))))
    }

    /// Asks the peer to drop every value of `group` it holds, and every load in flight from
    /// being cached ([`Group::purge_local`](crate::Group::purge_local)); it tells no one else.
    /// Default: [`PeerError::Unsupported`].
    fn purge<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<(), PeerError>> {
        let _ = group;
        Box::pin(std::future::ready(Err(PeerError::Unsupported("purge"))))
    }

    /// A name for logs and errors, e.g. the peer's base URL.
    fn name(&self) -> &str;
}
