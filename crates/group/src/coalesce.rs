//! Peer micro-batching: single fetches from this node to one peer, made within a short window,
//! go out as one [`PeerGetter::get_many`] request.
//!
//! [`Group::get_many`](crate::Group::get_many) batches the keys one caller gives at once; this
//! batches the keys many callers ask for one at a time (a busy node's remote flights). The
//! first fetch for a peer opens a window and spawns a task that sends the window's keys when it
//! ends, or as soon as they reach a peer batch's bounds ([`GET_MANY_BATCH`] keys,
//! [`GET_MANY_BATCH_BYTES`] of keys): so no more than one batch's worth of callers ever waits
//! on an open window per peer, and a full one goes out at once.
//!
//! The request is sent by a spawned task, not by the first caller's future: a caller that gives
//! up (its own peer timeout, or its client went away) just drops its receiver, and the others'
//! request goes on. A key whose caller has left by the window's end is not sent.
//!
//! Singleflight is not this module's business: a remote flight (one per key) calls
//! [`Coalescer::fetch`] in place of [`PeerGetter::get`], so the batch only ever holds distinct
//! keys, except after a removal made a key's next get start a new flight while the old one
//! still waits; that second caller is asked for alone, since a batch holds each key once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::PeerError;
use crate::getter::Loaded;
use crate::peers::{GET_MANY_BATCH, GET_MANY_BATCH_BYTES, PeerGetter};

/// How a peer answered one key: what `PeerGetter::get` would have returned for it.
type Answer = Result<Loaded, PeerError>;

/// The longest window a group may set: past a few milliseconds, every coalesced get waits
/// longer than the round trip it saves.
pub(crate) const MAX_WINDOW: Duration = Duration::from_millis(10);

/// The open windows of one group, one per peer at most.
pub(crate) struct Coalescer {
    window: Duration,
    max_keys: usize,
    max_bytes: usize,
    /// The open window of each peer, by [`PeerGetter::name`]. Shared with the windows' tasks,
    /// which take their window out of it when it ends.
    open: Arc<Mutex<HashMap<String, Open>>>,
    next_id: AtomicU64,
}

/// A peer's window while callers may still join it.
struct Open {
    /// Which window this is: the task of an older one, flushed early, must not take it.
    id: u64,
    batch: Batch,
    /// Hands the batch to the window's task before its end, when it is full.
    flush: oneshot::Sender<Batch>,
}

/// The keys of one window, each with where its answer goes.
#[derive(Default)]
struct Batch {
    keys: Vec<String>,
    waiters: Vec<oneshot::Sender<Answer>>,
    bytes: usize,
}

impl Batch {
    /// Whether `key` may join without breaking a bound (a batch is never empty here).
    fn fits(&self, key: &str, max_keys: usize, max_bytes: usize) -> bool {
        self.keys.len() < max_keys && self.bytes + key.len() <= max_bytes
    }

    fn push(&mut self, key: &str, waiter: oneshot::Sender<Answer>) {
        self.keys.push(key.to_owned());
        self.waiters.push(waiter);
        self.bytes += key.len();
    }

    fn is_full(&self, max_keys: usize, max_bytes: usize) -> bool {
        self.keys.len() >= max_keys || self.bytes >= max_bytes
    }
}

impl Coalescer {
    /// A coalescer with windows of `window`, or `None` for a zero window (off).
    pub(crate) fn new(window: Duration) -> Option<Self> {
        Self::bounded(window, GET_MANY_BATCH, GET_MANY_BATCH_BYTES)
    }

    /// As [`new`](Self::new), with a window's bounds given (tests use small ones).
    pub(crate) fn bounded(window: Duration, max_keys: usize, max_bytes: usize) -> Option<Self> {
        (!window.is_zero()).then(|| Coalescer {
            window,
            max_keys: max_keys.max(1),
            max_bytes,
            open: Arc::default(),
            next_id: AtomicU64::new(0),
        })
    }

    /// Asks `peer` for `key` of `group`, within `timeout` counted from now: in the peer's open
    /// window when it takes batches, else alone. The answer is the one a single get would
    /// have had; a batch that failed as a whole gives each key its error
    /// ([`PeerError::Batch`], or the timeout).
    pub(crate) async fn fetch(
        &self,
        group: &str,
        peer: &Arc<dyn PeerGetter>,
        key: &str,
        timeout: Duration,
    ) -> Answer {
        let Some(answer) = self.join(group, peer, key, timeout) else {
            return tokio::time::timeout(timeout, peer.get(group, key))
                .await
                .unwrap_or(Err(PeerError::Timeout(timeout)));
        };
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => answer,
            // The window's task ended without sending: only when the runtime shuts down.
            Ok(Err(_)) => Err(PeerError::Malformed("batch ended without an answer".into())),
            Err(_) => Err(PeerError::Timeout(timeout)),
        }
    }

    /// Puts `key` in `peer`'s open window, opening one if there is none, and returns where
    /// its answer will come; `None` when the key is to be asked for alone.
    fn join(
        &self,
        group: &str,
        peer: &Arc<dyn PeerGetter>,
        key: &str,
        timeout: Duration,
    ) -> Option<oneshot::Receiver<Answer>> {
        // A peer without batches would be asked key by key anyway, after the window: no gain.
        // A key over the byte bound would go alone anyway.
        if !peer.takes_batches() || key.len() > self.max_bytes {
            return None;
        }
        // The window's task needs a runtime to run on; without one, ask alone.
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (waiter, answer) = oneshot::channel();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let name = peer.name();
        if let Some(window) = open.get_mut(name) {
            // A linear scan: a window holds few keys, and a hash set per window would cost
            // more than it saves.
            if window.batch.keys.iter().any(|k| k == key) {
                return None;
            }
            if window.batch.fits(key, self.max_keys, self.max_bytes) {
                window.batch.push(key, waiter);
                if window.batch.is_full(self.max_keys, self.max_bytes) {
                    flush(&mut open, name);
                }
                return Some(answer);
            }
            // The key would break a bound: the window goes now, and the key opens the next.
            flush(&mut open, name);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (flush_to, flushed) = oneshot::channel();
        let mut batch = Batch::default();
        batch.push(key, waiter);
        if batch.is_full(self.max_keys, self.max_bytes) {
            // Nothing could join it: send it as it is, without a window.
            drop(open);
            runtime.spawn(send(batch, Arc::clone(peer), group.to_owned(), timeout));
            return Some(answer);
        }
        open.insert(
            name.to_owned(),
            Open {
                id,
                batch,
                flush: flush_to,
            },
        );
        drop(open);
        let due = Due {
            open: Arc::clone(&self.open),
            id,
            name: name.to_owned(),
            flushed,
        };
        let window = self.window;
        let (peer, group) = (Arc::clone(peer), group.to_owned());
        runtime.spawn(async move {
            if let Some(batch) = due.batch(window).await {
                send(batch, peer, group, timeout).await;
            }
        });
        Some(answer)
    }
}

/// Takes `name`'s window out of `open` and hands its batch to the window's task at once.
fn flush(open: &mut HashMap<String, Open>, name: &str) {
    if let Some(window) = open.remove(name) {
        // The task holds the receiver until the batch arrives, or the runtime is gone.
        let _ = window.flush.send(window.batch);
    }
}

/// What a window's task needs to find its batch when the window ends.
struct Due {
    open: Arc<Mutex<HashMap<String, Open>>>,
    id: u64,
    name: String,
    flushed: oneshot::Receiver<Batch>,
}

impl Due {
    /// The window's batch: flushed to it early, or taken out of `open` at the window's end.
    async fn batch(mut self, window: Duration) -> Option<Batch> {
        if let Ok(flushed) = tokio::time::timeout(window, &mut self.flushed).await {
            return flushed.ok();
        }
        let taken = {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            match open.get(&self.name) {
                Some(window) if window.id == self.id => open.remove(&self.name),
                _ => None,
            }
        };
        match taken {
            Some(window) => Some(window.batch),
            // Not there, or a newer window: ours was flushed, under that lock, just as its
            // time ran out, so the batch is in the channel already.
            None => self.flushed.await.ok(),
        }
    }
}

/// Sends `batch` to `peer` as one request, within `timeout`, and hands each waiter its key's
/// answer. Keys whose callers have gone are left out; with none left, nothing is sent.
async fn send(batch: Batch, peer: Arc<dyn PeerGetter>, group: String, timeout: Duration) {
    let (keys, waiters): (Vec<String>, Vec<_>) = (batch.keys.into_iter())
        .zip(batch.waiters)
        .filter(|(_, waiter)| !waiter.is_closed())
        .unzip();
    if keys.is_empty() {
        return;
    }
    let request = tokio::time::timeout(timeout, peer.get_many(&group, &keys)).await;
    match crate::batch::answers(request, keys.len(), timeout) {
        Ok(answers) => {
            for (waiter, answer) in waiters.into_iter().zip(answers) {
                // A caller that gave up meanwhile no longer wants its answer.
                let _ = waiter.send(answer);
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            for waiter in waiters {
                let _ = waiter.send(Err(crate::batch::shared(&error)));
            }
        }
    }
}

#[cfg(test)]
mod tests;
