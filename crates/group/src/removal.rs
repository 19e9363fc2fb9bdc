//! Cluster-wide removal: ask the owner, who tells everyone; or tell everyone yourself.
//!
//! A removal must reach two kinds of copies: the owner's value in its main cache, and the hot
//! copies any node may keep. The node asked to remove a key drops its own copy, then asks the
//! key's owner to remove it "as owner" ([`RemoveMode::Owner`]): the owner drops its value
//! and tells every other member to drop theirs ([`RemoveMode::Local`]). When this node owns the
//! key, or the owner cannot be reached, it tells every member itself. The protocol lives here,
//! behind the peer traits, so every transport gets it by implementing [`PeerGetter::remove`].

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::group::{Group, shown};
use crate::peers::{PeerGetter, PeerPicker, RemoveMode};

/// At most this many removals of one fan-out are in flight at once: a removal in a large
/// cluster must not open a connection to every node at the same instant.
pub(crate) const FANOUT_LIMIT: usize = 16;

/// What a cluster-wide [`Group::remove`] achieved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Removal {
    /// Whether this node had the key cached.
    pub cached_here: bool,
    /// Members that did not confirm they dropped the key (unreachable, timed out, or answered
    /// with an error), by [`PeerGetter::name`], sorted. A member that is down serves nothing;
    /// one that answered with an error may still hold a copy until it expires or is evicted.
    pub unconfirmed: Vec<String>,
}

impl Removal {
    /// Whether every member confirmed.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.unconfirmed.is_empty()
    }
}

impl Group {
    /// Removes `key` everywhere in the cluster, as far as the cluster can be reached.
    ///
    /// The key is dropped here; then, if another node owns it, that owner is asked to remove it
    /// and to tell every other member to drop its copy; if this node owns it (or the owner
    /// cannot be reached), this node tells every member itself. Each request to a peer is
    /// bounded by the group's peer timeout; at most 16 run at once. Without peers this is
    /// [`remove_local`](Self::remove_local).
    pub async fn remove(&self, key: &str) -> Removal {
        let cached_here = self.remove_local(key);
        let Some(picker) = self.picker() else {
            return Removal {
                cached_here,
                unconfirmed: Vec::new(),
            };
        };
        let mut unconfirmed = match picker.pick_peer(key) {
            None => self.fan_out(picker.as_ref(), key).await,
            Some(owner) => match self.ask(owner.as_ref(), key, RemoveMode::Owner).await {
                Ok(unconfirmed) => unconfirmed,
                Err(error) => {
                    tracing::warn!(group = self.name(), key = %shown(key), owner = owner.name(), %error,
                        "owner did not take the removal; telling every peer directly");
                    self.fan_out(picker.as_ref(), key).await
                }
            },
        };
        // Again, after the others: a get here may have fetched the old value back from a peer
        // that had not dropped it yet. (A load that raced with the first removal is never
        // cached; this covers a hot copy fetched in between.)
        self.remove_local(key);
        unconfirmed.retain(|name| !picker.is_self(name));
        finish(cached_here, unconfirmed)
    }

    /// Removes `key` here and tells every other member to drop its copy: what the owner does
    /// when a peer asks it to remove a key ([`RemoveMode::Owner`]). It never forwards the
    /// request to another owner, whatever the ring says, so two nodes whose rings disagree
    /// cannot bounce a removal between them.
    pub async fn remove_as_owner(&self, key: &str) -> Removal {
        let cached_here = self.remove_local(key);
        let unconfirmed = match self.picker() {
            Some(picker) => self.fan_out(picker.as_ref(), key).await,
            None => Vec::new(),
        };
        finish(cached_here, unconfirmed)
    }

    /// What a server does with a removal a peer sent: [`remove_local`](Self::remove_local)
    /// or [`remove_as_owner`](Self::remove_as_owner), as `mode` says.
    pub async fn remove_for_peer(&self, key: &str, mode: RemoveMode) -> Removal {
        match mode {
            RemoveMode::Owner => self.remove_as_owner(key).await,
            _ => finish(self.remove_local(key), Vec::new()),
        }
    }

    /// Tells every member but this node to drop `key`; returns those that did not confirm.
    pub(crate) async fn fan_out(&self, picker: &dyn PeerPicker, key: &str) -> Vec<String> {
        let mut waiting = picker.all_peers().into_iter();
        let mut asking = FuturesUnordered::new();
        let mut unconfirmed = Vec::new();
        loop {
            while asking.len() < FANOUT_LIMIT {
                match waiting.next() {
                    Some(peer) => asking.push(self.tell(peer, key)),
                    None => break,
                }
            }
            match asking.next().await {
                Some(Some(name)) => unconfirmed.push(name),
                Some(None) => {}
                None => return unconfirmed,
            }
        }
    }

    /// Tells one member to drop its copy; its name if it did not confirm.
    async fn tell(&self, peer: Arc<dyn PeerGetter>, key: &str) -> Option<String> {
        let error = self
            .ask(peer.as_ref(), key, RemoveMode::Local)
            .await
            .err()?;
        match self.warnings.admit(peer.name()) {
            Some(held_back) => tracing::warn!(group = self.name(), key = %shown(key),
                peer = peer.name(), %error, held_back,
                "peer did not confirm a removal (one line per peer per 10 s; held_back counts \
                 the failures not logged since)"),
            None => tracing::debug!(group = self.name(), key = %shown(key), peer = peer.name(),
                %error, "peer did not confirm a removal"),
        }
        Some(peer.name().to_owned())
    }

    /// One removal request, within the peer timeout.
    async fn ask(
        &self,
        peer: &dyn PeerGetter,
        key: &str,
        mode: RemoveMode,
    ) -> Result<Vec<String>, crate::PeerError> {
        let timeout: Duration = self.peer_timeout();
        tokio::time::timeout(timeout, peer.remove(self.name(), key, mode))
            .await
            .unwrap_or(Err(crate::PeerError::Timeout(timeout)))
    }
}

fn finish(cached_here: bool, mut unconfirmed: Vec<String>) -> Removal {
    unconfirmed.sort_unstable();
    unconfirmed.dedup();
    Removal {
        cached_here,
        unconfirmed,
    }
}
