use std::collections::BTreeSet;
use std::sync::Arc;

/// The live peers of one cluster, as last read or watched from etcd.
///
/// A `BTreeSet` rather than a `HashSet`: every published list must be sorted, so that nodes
/// that saw the same events hand their rings identical input, and a sorted set gives that order
/// for free.
#[derive(Clone, Debug)]
pub(crate) struct PeerSet {
    /// `{prefix}/{cluster}/nodes/`; a key's peer URL is what follows it.
    nodes_prefix: String,
    peers: BTreeSet<String>,
}

impl PeerSet {
    pub(crate) fn new(nodes_prefix: String) -> Self {
        PeerSet {
            nodes_prefix,
            peers: BTreeSet::new(),
        }
    }

    /// Replaces the whole set with the peers named by `keys`, as after a fresh read.
    pub(crate) fn replace<'a>(&mut self, keys: impl IntoIterator<Item = &'a [u8]>) {
        self.peers = keys
            .into_iter()
            .filter_map(|key| self.peer_of(key))
            .collect();
    }

    /// Applies a put of `key`; keys that name no peer are ignored.
    pub(crate) fn put(&mut self, key: &[u8]) {
        if let Some(peer) = self.peer_of(key) {
            self.peers.insert(peer);
        }
    }

    /// Applies a delete of `key`.
    pub(crate) fn delete(&mut self, key: &[u8]) {
        if let Some(peer) = self.peer_of(key) {
            self.peers.remove(&peer);
        }
    }

    /// The peers in sorted order.
    pub(crate) fn to_list(&self) -> Arc<[String]> {
        self.peers.iter().cloned().collect()
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
