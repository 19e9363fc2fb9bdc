//! Writes: a client sets a key's value, or purges a whole group, across the cluster.
//!
//! A set goes to the key's owner, which stores the value in its main cache and tells every
//! other member to drop its copy (the removal fan-out of `removal.rs`). A purge drops every
//! value of the group on every member. Both move the removal epoch, so a load that was in
//! flight finishes for its callers but is not cached over the newer state, and both hold the
//! group's write lock while they change the caches, so no load can slip an older value in
//! between (see `Group::writes`).

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::cache::{Tier, now};
use crate::error::{PeerError, Rejected};
use crate::getter::Loaded;
use crate::group::{Group, shown};
use crate::peers::PeerGetter;
use crate::removal::FANOUT_LIMIT;

/// What a cluster-wide [`Group::set`] achieved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Written {
    /// Whether this node stored the value, as the key's owner.
    pub stored_here: bool,
    /// Members that did not confirm they dropped their copy of the key, by
    /// [`PeerGetter::name`], sorted. Such a member may serve the old value until it expires
    /// or is evicted.
    pub unconfirmed: Vec<String>,
}

/// What a cluster-wide [`Group::purge`] achieved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Purged {
    /// How many values this node dropped.
    pub dropped_here: usize,
    /// Members that did not confirm the purge, sorted.
    pub unconfirmed: Vec<String>,
}

/// Why [`Group::set`] stored nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetError {
    /// The key is empty; groups never store the empty key.
    #[error("empty key")]
    EmptyKey,
    /// The source's key check refuses the key, so no get could ever read the value.
    #[error(transparent)]
    Rejected(Rejected),
    /// The key's owner did not take the value (unreachable, timed out, or a node that takes no
    /// writes, such as a Go groupcache node). Nothing was stored anywhere; this node dropped
    /// its own copy.
    #[error("the key's owner {owner} did not store the value: {error}")]
    Owner {
        /// The owner's name ([`PeerGetter::name`]).
        owner: String,
        /// What went wrong.
        #[source]
        error: PeerError,
    },
}

impl Group {
    /// Stores `value` (with its time to live, or the group's) as the value of `key` across the
    /// cluster: at the key's owner, in its main cache, while every other member drops its copy.
    /// A load of the key in flight anywhere does not overwrite it.
    ///
    /// A cache write, not a write to the source: a value that is evicted, expires or is
    /// removed is loaded from the source again. Use it when the source just changed and the
    /// new value is at hand.
    ///
    /// ```
    /// use geecache_group::{Group, Loaded, LoadError, getter_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let scores = Group::builder("scores")
    ///     .getter(getter_fn(|_key: String| async { Ok::<_, LoadError>(Loaded::from("630")) }))
    ///     .build()?;
    /// assert_eq!(scores.get("Tom").await?, "630");
    /// scores.set("Tom", Loaded::from("631")).await?;
    /// assert_eq!(scores.get("Tom").await?, "631");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`SetError::EmptyKey`] and [`SetError::Rejected`] for a key no get could read, and
    /// [`SetError::Owner`] when another node owns the key and did not store the value.
    pub async fn set(&self, key: &str, value: Loaded) -> Result<Written, SetError> {
        self.check_write(key)?;
        let picker = self.picker();
        let Some(owner) = picker.and_then(|p| p.pick_peer(key)) else {
            return Ok(self.set_as_owner(key, value).await);
        };
        // This node's own copy goes first: the owner's fan-out will tell it again.
        self.remove_local(key);
        let timeout: Duration = self.peer_timeout();
        let answer = tokio::time::timeout(timeout, owner.set(self.name(), key, value))
            .await
            .unwrap_or(Err(PeerError::Timeout(timeout)));
        match answer {
            Ok(mut unconfirmed) => {
                // A get here may have fetched the old value back before the owner had the
                // new one.
                self.remove_local(key);
                if let Some(picker) = picker {
                    unconfirmed.retain(|name| !picker.is_self(name));
                }
                Ok(Written {
                    stored_here: false,
                    unconfirmed: sorted(unconfirmed),
                })
            }
            Err(error) => {
                tracing::warn!(group = self.name(), key = %shown(key), owner = owner.name(), %error,
                    "owner did not store a set value");
                Err(SetError::Owner {
                    owner: owner.name().to_owned(),
                    error,
                })
            }
        }
    }

    /// Stores `value` here as the key's owner and tells every other member to drop its copy:
    /// what a node does when a peer asks it to store a set value. It never forwards the value
    /// to another owner, whatever its ring says.
    ///
    /// # Errors
    ///
    /// [`SetError::EmptyKey`] and [`SetError::Rejected`], as [`set`](Self::set).
    pub async fn set_for_peer(&self, key: &str, value: Loaded) -> Result<Written, SetError> {
        self.check_write(key)?;
        Ok(self.set_as_owner(key, value).await)
    }

    /// [`set_for_peer`](Self::set_for_peer) for a key already checked.
    pub(crate) async fn set_as_owner(&self, key: &str, value: Loaded) -> Written {
        self.store_set(key, value);
        let unconfirmed = match self.picker() {
            Some(picker) => self.fan_out(picker.as_ref(), key).await,
            None => Vec::new(),
        };
        Written {
            stored_here: true,
            unconfirmed: sorted(unconfirmed),
        }
    }

    /// Drops every value of the group on every member, and keeps loads in flight anywhere from
    /// caching what they bring. Each request to a peer is bounded by the group's peer timeout;
    /// at most 16 run at once.
    pub async fn purge(&self) -> Purged {
        let dropped_here = self.purge_local();
        let Some(picker) = self.picker() else {
            return Purged {
                dropped_here,
                unconfirmed: Vec::new(),
            };
        };
        // A hand-written window rather than `buffer_unordered`: a stream of closures over the
        // peers makes a future the compiler cannot prove `Send` for every lifetime.
        let mut waiting = picker.all_peers().into_iter();
        let mut asking = FuturesUnordered::new();
        let mut unconfirmed = Vec::new();
        loop {
            while asking.len() < FANOUT_LIMIT {
                match waiting.next() {
                    Some(peer) => asking.push(self.purge_peer(peer)),
                    None => break,
                }
            }
            match asking.next().await {
                Some(Some(name)) => unconfirmed.push(name),
                Some(None) => {}
                None => break,
            }
        }
        unconfirmed.retain(|name| !picker.is_self(name));
        Purged {
            dropped_here,
            unconfirmed: sorted(unconfirmed),
        }
    }

    /// Drops every value of the group here (main and hot caches, and cached "not found"s);
    /// loads in flight finish for their callers but are not cached. Returns how many values
    /// went. What a node does when a peer purges the group.
    pub fn purge_local(&self) -> usize {
        let _exclusive = self.writes.write().unwrap_or_else(PoisonError::into_inner);
        self.bump_epoch();
        let dropped = self.inner.caches.clear();
        self.stats.purges.incr();
        dropped
    }

    /// Asks one member to purge the group; its name if it did not confirm.
    async fn purge_peer(&self, peer: Arc<dyn PeerGetter>) -> Option<String> {
        let timeout = self.peer_timeout();
        let answer = tokio::time::timeout(timeout, peer.purge(self.name()))
            .await
            .unwrap_or(Err(PeerError::Timeout(timeout)));
        let error = answer.err()?;
        tracing::warn!(group = self.name(), peer = peer.name(), %error, "peer did not confirm a purge");
        Some(peer.name().to_owned())
    }

    fn check_write(&self, key: &str) -> Result<(), SetError> {
        if key.is_empty() {
            return Err(SetError::EmptyKey);
        }
        self.inner.getter.check_key(key).map_err(SetError::Rejected)
    }

    /// Puts a set value in the main cache, over anything a load in flight may bring.
    fn store_set(&self, key: &str, value: Loaded) {
        let ttl = value.ttl().or(self.inner.ttl);
        let value = value.into_value();
        let _exclusive = self.writes.write().unwrap_or_else(PoisonError::into_inner);
        // Loads that started before this write are not cached, and later gets do not join
        // their flights.
        self.bump_epoch();
        self.forget_flights(key);
        self.inner.caches.remove(key);
        if ttl != Some(Duration::ZERO) {
            let expires = ttl.and_then(|ttl| now().checked_add(ttl));
            self.inner.caches.insert(Tier::Main, key, value, expires);
        }
        self.stats.sets.incr();
    }
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort_unstable();
    names.dedup();
    names
}
