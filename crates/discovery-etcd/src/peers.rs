use std::collections::BTreeSet;
use std::sync::Arc;

/// The live peers of one cluster, as last read or watched from etcd, and the peers held over
/// from before an outage.
///
/// A `BTreeSet` rather than a `HashSet`: every published list must be sorted, so that nodes
/// that saw the same events hand their rings identical input, and a sorted set gives that order
/// for free.
#[derive(Clone, Debug)]
pub(crate) struct PeerSet {
    /// `{prefix}/{cluster}/nodes/`; a key's peer URL is what follows it.
    nodes_prefix: String,
    peers: BTreeSet<String>,
    /// Peers the list had before an outage that the read after it did not find: their leases
    /// ran out while etcd could not be reached (by them or by this node), and they are likely
    /// registering again at this moment. They stay in the list until they do, until an event
    /// deletes them, or until [`release_held`](PeerSet::release_held).
    held: BTreeSet<String>,
}

impl PeerSet {
    pub(crate) fn new(nodes_prefix: String) -> Self {
        PeerSet {
            nodes_prefix,
            peers: BTreeSet::new(),
            held: BTreeSet::new(),
        }
    }

    /// Replaces the whole set with the peers named by `keys`, as after a fresh read, with
    /// nothing held.
    pub(crate) fn replace<'a>(&mut self, keys: impl IntoIterator<Item = &'a [u8]>) {
        self.held.clear();
        self.peers = keys
            .into_iter()
            .filter_map(|key| self.peer_of(key))
            .collect();
    }

    /// As [`replace`](PeerSet::replace), as after the read that follows an outage: the peers
    /// of the list before it that the read did not find are held. Returns whether any are.
    pub(crate) fn replace_holding<'a>(&mut self, keys: impl IntoIterator<Item = &'a [u8]>) -> bool {
        let before: BTreeSet<String> = self.peers.union(&self.held).cloned().collect();
        self.replace(keys);
        self.held = before.difference(&self.peers).cloned().collect();
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

    /// Drops the held peers from the list: those that did not register again are gone.
    pub(crate) fn release_held(&mut self) {
        self.held.clear();
    }

    /// Applies a put of `key`; keys that name no peer are ignored.
    pub(crate) fn put(&mut self, key: &[u8]) {
        if let Some(peer) = self.peer_of(key) {
            self.held.remove(&peer);
            self.peers.insert(peer);
        }
    }

    /// Applies a delete of `key`: a held peer deleted is gone too (it registered again and
    /// left).
    pub(crate) fn delete(&mut self, key: &[u8]) {
        if let Some(peer) = self.peer_of(key) {
            self.held.remove(&peer);
            self.peers.remove(&peer);
        }
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
