use std::collections::BTreeSet;
use std::sync::Arc;

/// The live peers of one cluster, as last read or watched from etcd, and the peers held over
/// from before an outage while the cluster settles after it.
///
/// A `BTreeSet` rather than a `HashSet`: every published list must be sorted, so that nodes
/// that saw the same events hand their rings identical input, and a sorted set gives that order
/// for free.
#[derive(Clone, Debug)]
pub(crate) struct PeerSet {
    /// `{prefix}/{cluster}/nodes/`; a key's peer URL is what follows it.
    nodes_prefix: String,
    peers: BTreeSet<String>,
    /// Peers the list had before an outage whose registration ended in it or just after it:
    /// missing from the read after the outage, or deleted while the cluster settles. Their
    /// leases ran out while etcd could not be reached (by them or by this node), and they are
    /// likely registering again at this moment. They stay in the list until they do, or until
    /// [`settle`](PeerSet::settle).
    held: BTreeSet<String>,
    /// While the cluster settles after an outage: the peers listed after it whose registration
    /// predates it, as far as this set knows (no put seen since). A delete of one of them is
    /// taken for its lease running out, which may happen just after the outage, when etcd is
    /// reachable again but the peer's keep-alive has not got through yet: it is held.
    unconfirmed: BTreeSet<String>,
}

impl PeerSet {
    pub(crate) fn new(nodes_prefix: String) -> Self {
        PeerSet {
            nodes_prefix,
            peers: BTreeSet::new(),
            held: BTreeSet::new(),
            unconfirmed: BTreeSet::new(),
        }
    }

    /// Replaces the whole set with the peers named by `keys`, as after a fresh read, with
    /// nothing held and nothing settling.
    pub(crate) fn replace<'a>(&mut self, keys: impl IntoIterator<Item = &'a [u8]>) {
        self.settle();
        self.peers = keys
            .into_iter()
            .filter_map(|key| self.peer_of(key))
            .collect();
    }

    /// As [`replace`](PeerSet::replace), as after the read that follows an outage: the peers
    /// of the list before it that the read did not find are held, and the cluster settles
    /// until [`settle`](PeerSet::settle): every peer now listed counts as unconfirmed. Returns
    /// whether any peer is held.
    pub(crate) fn replace_holding<'a>(&mut self, keys: impl IntoIterator<Item = &'a [u8]>) -> bool {
        let before: BTreeSet<String> = self.peers.union(&self.held).cloned().collect();
        self.replace(keys);
        self.held = before.difference(&self.peers).cloned().collect();
        self.unconfirmed = self.peers.union(&self.held).cloned().collect();
        self.holds()
    }

    /// Whether any peer is held.
    pub(crate) fn holds(&self) -> bool {
        !self.held.is_empty()
    }

    /// The held peers, in sorted order.
    pub(crate) fn held(&self) -> Vec<String> {
        self.held.iter().cloned().collect()
    }

    /// Ends the settling after an outage: the held peers, which did not register again, leave
    /// the list, and deletes apply at once again.
    pub(crate) fn settle(&mut self) {
        self.held.clear();
        self.unconfirmed.clear();
    }

    /// Applies a put of `key`; keys that name no peer are ignored. A peer put is registered
    /// anew: no longer held, nor unconfirmed.
    pub(crate) fn put(&mut self, key: &[u8]) {
        if let Some(peer) = self.peer_of(key) {
            self.held.remove(&peer);
            self.unconfirmed.remove(&peer);
            self.peers.insert(peer);
        }
    }

    /// Applies a delete of `key`. While the cluster settles, an unconfirmed peer is held
    /// instead (see the field); returns whether it was. Any other peer leaves the list, a held
    /// one too: it registered again, and then left.
    pub(crate) fn delete(&mut self, key: &[u8]) -> bool {
        let Some(peer) = self.peer_of(key) else {
            return false;
        };
        if self.peers.remove(&peer) && self.unconfirmed.contains(&peer) {
            self.held.insert(peer);
            return true;
        }
        self.held.remove(&peer);
        false
    }

    /// The peers and the held peers, in sorted order.
    pub(crate) fn to_list(&self) -> Arc<[String]> {
        self.peers.union(&self.held).cloned().collect()
    }

    /// The peer URL a key names: what follows the nodes prefix, if that is non-empty UTF-8.
    ///
    /// The key, not the value, is the source of truth: a delete event carries only the key.
    fn peer_of(&self, key: &[u8]) -> Option<String> {
        let rest = key.strip_prefix(self.nodes_prefix.as_bytes())?;
        let url = std::str::from_utf8(rest).ok()?;
        (!url.is_empty()).then(|| url.to_string())
    }

    /// Checks the invariants: every peer is a non-empty name, and the list is strictly sorted.
    #[cfg(test)]
    pub(crate) fn validate(&self) {
        let list = self.to_list();
        assert!(list.iter().all(|peer| !peer.is_empty()), "empty peer name");
        assert!(
            list.windows(2).all(|pair| pair[0] < pair[1]),
            "list not strictly sorted: {list:?}"
        );
    }
}
