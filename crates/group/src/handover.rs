//! A graceful leave: the leaving node gives its keys to their next owners before it stops.
//!
//! Without it, a node that leaves takes its main cache with it, and every key it owned is
//! loaded from the source again by its new owner; a rolling restart of a cluster reloads the
//! whole cache. The peek of a hand-off period (the new owner asks the previous one) saves only
//! the keys asked for while the leaving node still answers. So the leaving node pushes instead:
//! each value of its main cache goes to the member that owns its key once this node is gone
//! ([`PeerPicker::heir`]), which stores it as its own ([`Group::take_handed`]). The protocol
//! lives here, behind the peer traits; a transport carries it with
//! [`PeerGetter::hand_over`], many values per call.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::Error;
use crate::cache::{Cached, Tier};
use crate::getter::Loaded;
use crate::group::Group;
use crate::peers::{HAND_OVER_BATCH, HAND_OVER_BATCH_BYTES, PeerGetter, PeerPicker};

/// At most this many batches are on their way at once: enough to keep the heirs busy while
/// this node gathers the next ones, few enough that a leaving node under load does not crowd
/// out the requests it is still answering.
const IN_FLIGHT: usize = 4;

/// What [`Group::hand_over`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandOver {
    /// Values the next owner took.
    pub sent: usize,
    /// Values not taken: no heir, a transport that cannot hand over, a failed or timed-out
    /// call (the heir is sent nothing more), or the budget ran out first.
    pub kept: usize,
}

impl Group {
    /// Sends each value of this node's main cache for a key it owns to the key's next owner,
    /// as this node leaves: in batches per heir, a few at once, each within the peer timeout,
    /// all within `budget` (what is not sent by then is left). Call it after the other members
    /// have been told this node is leaving, and keep answering peeks meanwhile; without peers
    /// it sends nothing.
    pub async fn hand_over(&self, budget: Duration) -> HandOver {
        let Some(picker) = self.inner.peers.get() else {
            return HandOver::default();
        };
        // Only the keys this node owns: values of keys given away by an earlier change were
        // pushed to their owners then ([`Group::rebalance`]), and pushing them again would
        // spend the time the node has on what its heirs already hold.
        let picker = Arc::clone(picker);
        self.push(budget, move |key| picker.owns(key)).await
    }

    /// After a change of membership, sends each value of the main cache whose key this node
    /// no longer owns to the key's owner, as [`hand_over`](Self::hand_over) does; the values
    /// stay here until the change settles ([`Group::settle`]), for peeks. A node that joins
    /// (or comes back empty) so gets its keys at once, whether or not they are asked for
    /// during the hand-off period, and whatever other change follows. Call it when the peer
    /// list changes; without peers it sends nothing.
    pub async fn rebalance(&self, budget: Duration) -> HandOver {
        let Some(picker) = self.inner.peers.get() else {
            return HandOver::default();
        };
        let picker = Arc::clone(picker);
        self.push(budget, move |key| !picker.owns(key)).await
    }

    /// Sends the main-cache values whose keys `which` picks to their heirs, in batches per
    /// heir ([`HAND_OVER_BATCH`] values or [`HAND_OVER_BATCH_BYTES`] at most, whichever comes
    /// first), [`IN_FLIGHT`] batches at once.
    ///
    /// Every heir is tried, whatever its circuit says (a circuit opened because reads timed out
    /// on a busy peer, or because it answered slowly, says little of whether it takes values
    /// now; skipping it would keep them all). An heir whose call fails or times out is sent
    /// nothing more: a dead or hung heir costs one peer timeout of the budget, not one per batch.
    async fn push(&self, budget: Duration, which: impl Fn(&str) -> bool) -> HandOver {
        let mut done = HandOver::default();
        let Some(picker) = self.inner.peers.get() else {
            return done;
        };
        let mut entries = self.inner.caches.main_entries();
        entries.retain(|(key, _)| which(key));
        let total = entries.len();
        let mut waiting = entries.into_iter();
        let mut batches = Batches::default();
        let mut failed = HashSet::new();
        let mut sending = FuturesUnordered::new();
        let deadline = tokio::time::Instant::now() + budget;
        loop {
            while sending.len() < IN_FLIGHT {
                let Some((heir, values)) =
                    batches.next_full(&mut waiting, picker.as_ref(), &failed)
                else {
                    break;
                };
                sending.push(self.give(heir, values));
            }
            match tokio::time::timeout_at(deadline, sending.next()).await {
                Ok(Some((_, Some(taken)))) => done.sent += taken,
                Ok(Some((heir, None))) => {
                    failed.insert(heir);
                }
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        group = self.name(),
                        ?budget,
                        "hand-over cut short by its time budget"
                    );
                    break;
                }
            }
        }
        done.kept = total - done.sent;
        self.stats.handed_out.add(done.sent as u64);
        done
    }

    /// Stores a value that a leaving peer handed to this node, its key's next owner, in the
    /// main cache. It may arrive before this node hears of the change of membership; if the
    /// key is not this node's then, it is dropped when the change settles ([`Group::settle`]).
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`], or [`Error::Rejected`] when the source's key check refuses the key.
    pub fn take_handed(&self, key: &str, value: Loaded) -> Result<(), Error> {
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        self.inner.getter.check_key(key).map_err(Error::Rejected)?;
        let epoch = self.epoch_now();
        self.store(key, value, Some(Tier::Main), epoch);
        self.stats.handed_in.incr();
        Ok(())
    }

    /// One batch to `heir`, within the peer timeout: the heir's name, and how many values it
    /// took, or `None` when the call failed or timed out.
    async fn give(&self, heir: Arc<dyn PeerGetter>, values: Handed) -> (String, Option<usize>) {
        let count = values.len();
        let call = heir.hand_over(self.name(), values);
        let taken = match tokio::time::timeout(self.peer_timeout(), call).await {
            Ok(Ok(taken)) => Some(taken.min(count)),
            Ok(Err(error)) => {
                tracing::debug!(group = self.name(), peer = heir.name(), count, %error,
                    "hand-over refused; sending this heir nothing more");
                None
            }
            Err(_) => {
                tracing::debug!(
                    group = self.name(),
                    peer = heir.name(),
                    count,
                    "hand-over timed out; sending this heir nothing more"
                );
                None
            }
        };
        (heir.name().to_owned(), taken)
    }
}

/// Values for one call of [`PeerGetter::hand_over`].
type Handed = Vec<(String, Loaded)>;

/// The values on their way to each heir, gathered into batches.
#[derive(Default)]
struct Batches {
    /// Per heir (by name): the heir and its batch so far.
    open: HashMap<String, (Arc<dyn PeerGetter>, Batch)>,
}

#[derive(Default)]
struct Batch {
    values: Handed,
    bytes: usize,
}

impl Batches {
    /// Takes entries from `waiting` until some heir's batch is full, and returns it; once
    /// `waiting` is empty, returns the partly filled batches one by one. Entries whose key has
    /// no heir, or an heir in `failed`, are skipped (they count as kept), and so are the
    /// batches of heirs that failed since they were begun.
    fn next_full(
        &mut self,
        waiting: &mut impl Iterator<Item = (String, Cached)>,
        picker: &dyn PeerPicker,
        failed: &HashSet<String>,
    ) -> Option<(Arc<dyn PeerGetter>, Handed)> {
        for (key, entry) in waiting.by_ref() {
            let Some(heir) = picker.heir(&key) else {
                continue;
            };
            if failed.contains(heir.name()) {
                continue;
            }
            let bytes = key.len() + entry.value.len();
            let value = Loaded::new(entry.value.clone()).with_optional_ttl(entry.ttl());
            let name = heir.name().to_owned();
            let (_, batch) = self
                .open
                .entry(name.clone())
                .or_insert_with(|| (heir, Batch::default()));
            batch.values.push((key, value));
            batch.bytes += bytes;
            if batch.values.len() >= HAND_OVER_BATCH || batch.bytes >= HAND_OVER_BATCH_BYTES {
                let (heir, batch) = self.open.remove(&name)?;
                return Some((heir, batch.values));
            }
        }
        loop {
            let name = self.open.keys().next()?.clone();
            let (heir, batch) = self.open.remove(&name)?;
            if !failed.contains(&name) {
                return Some((heir, batch.values));
            }
        }
    }
}
