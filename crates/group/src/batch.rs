//! Many keys at once: [`Group::get_many`] asks each owning peer once for all of its keys.
//!
//! The hard part is keeping singleflight per key while sending one request per peer. Each
//! missing key still gets its own remote flight, so a single get of the same key joins it (and
//! a batch joins a single get's flight). A flight whose leader is this batch does not call
//! the peer itself: it registers its key in the peer's [`Outbox`] and waits for its answer.
//! Once every flight of the batch has been polled once (so every leader has registered), the
//! outbox closes and its keys go out in one [`PeerGetter::get_many`] call. A flight that
//! becomes leader later (it joined another caller's flight, and that caller went away) finds
//! the outbox closed and asks the peer alone, as a single get does.
//!
//! Spawning a task per peer would be the simpler shape, but the futures borrow the group and
//! the caller's keys, and a dropped `get_many` must cancel its requests: everything runs inside
//! the caller's future instead.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_util::future::join_all;
use futures_util::task::AtomicWaker;
use futures_util::{StreamExt, stream};
use geecache_byteview::ByteView;
use tokio::sync::oneshot;

use crate::error::{Error, PeerError};
use crate::getter::Loaded;
use crate::group::{Fetched, Group, Origin};
use crate::peers::{GET_MANY_BATCH, GET_MANY_BATCH_BYTES, PeerGetter};

/// How a peer answered one key: what `PeerGetter::get` would have returned for it.
type Answer = Result<Loaded, PeerError>;

/// The keys of a batch not sent yet, each with where its answer goes.
type Waiting = Vec<(String, oneshot::Sender<Answer>)>;

impl Group {
    /// The values of `keys`, one result per key in the order given, as [`get`](Self::get)
    /// would return each of them.
    ///
    /// Keys owned by other nodes are fetched with **one request per owning peer**
    /// ([`PeerGetter::get_many`]); keys this node owns are loaded side by side, at most
    /// [`GroupBuilder::batch_concurrency`](crate::GroupBuilder::batch_concurrency) at a time.
    /// Each key still has its own flight: a key that another get is loading already is
    /// joined, not loaded twice, and a key given twice is loaded once. A peer request that
    /// fails falls back for its own keys only, each as its single get would: to the peer's
    /// stand-in ([`PeerPicker::pick_after`](crate::PeerPicker::pick_after)), asked key by key
    /// (gathered into batches when the group has a peer batch window), or to a local load.
    /// Regrouping the keys into one batch per stand-in would save requests only while a peer
    /// is failing, at the price of a second outbox for flights that are already running.
    /// Partial results are normal: some keys found, some not, some failed.
    ///
    /// ```
    /// use geecache_group::{Group, Loaded, LoadError, getter_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let scores = Group::builder("scores")
    ///     .getter(getter_fn(|key: String| async move {
    ///         match key.as_str() {
    ///             "Tom" => Ok(Loaded::from("630")),
    ///             "Jack" => Ok(Loaded::from("589")),
    ///             _ => Err(LoadError::NotFound),
    ///         }
    ///     }))
    ///     .build()?;
    ///
    /// let values = scores.get_many(&["Tom", "Sam", "Jack", "Tom"]).await;
    /// assert_eq!(values[0].as_ref().unwrap(), "630");
    /// assert!(values[1].as_ref().unwrap_err().is_not_found());
    /// assert_eq!(values[2].as_ref().unwrap(), "589");
    /// assert_eq!(values[3].as_ref().unwrap(), "630");
    /// assert_eq!(scores.stats().local_loads, 2); // Tom once, Jack once
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_many<K: AsRef<str>>(&self, keys: &[K]) -> Vec<Result<ByteView, Error>> {
        let fetched = self.fetch_many(keys, Origin::Client).await;
        fetched.into_iter().map(|f| f.map(|f| f.value)).collect()
    }

    /// Like [`get_many`](Self::get_many), for a server: says where the request came from (a
    /// peer's batch is loaded here, never forwarded) and returns each value's time to live and
    /// source as well.
    pub async fn fetch_many<K: AsRef<str>>(
        &self,
        keys: &[K],
        origin: Origin,
    ) -> Vec<Result<Fetched, Error>> {
        let mut results: Vec<Option<Result<Fetched, Error>>> = vec![None; keys.len()];
        // Each distinct missing key, with the positions that asked for it.
        let mut missing: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            match self.lookup(key.as_ref(), origin) {
                Ok(Some(hit)) => results[i] = Some(Ok(hit)),
                Ok(None) => missing.entry(key.as_ref()).or_default().push(i),
                Err(error) => results[i] = Some(Err(error)),
            }
        }
        // Who loads each missing key: this node, or the peer that owns it.
        let mut local = Vec::new();
        let mut by_peer: HashMap<String, (Arc<dyn PeerGetter>, Vec<&str>)> = HashMap::new();
        for &key in missing.keys() {
            match self.owner_elsewhere(key, origin) {
                None => local.push(key),
                Some(peer) => {
                    let name = peer.name().to_owned();
                    by_peer
                        .entry(name)
                        .or_insert((peer, Vec::new()))
                        .1
                        .push(key);
                }
            }
        }
        // Closures returning `async` blocks that borrow `&str`s would not be general enough
        // for a `Send` future (a known limit of the compiler's lifetime inference); named
        // `async fn`s are.
        let loads = stream::iter(local.into_iter().map(str::to_owned))
            .map(|key| self.load_keyed(key))
            .buffer_unordered(self.inner.batch_concurrency)
            .collect::<Vec<_>>();
        let fetches = join_all(
            by_peer
                .into_values()
                .map(|(peer, keys)| self.fetch_from(peer, keys)),
        );
        let (loaded, fetched) = futures_util::future::join(loads, fetches).await;
        let loaded = loaded.iter().map(|(key, result)| (key.as_str(), result));
        let fetched = fetched.iter().flatten().map(|(key, result)| (*key, result));
        for (key, result) in loaded.chain(fetched) {
            if matches!(result, Err(Error::NotFound)) {
                self.stats.not_found.incr();
            }
            for &i in &missing[key] {
                results[i] = Some(result.clone());
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every key is answered: hit, refused, loaded or fetched"))
            .collect()
    }

    async fn load_keyed(&self, key: String) -> (String, Result<Fetched, Error>) {
        let loaded = self.load_locally(&key).await;
        (key, loaded)
    }

    /// Fetches `keys` from `peer`, [`GET_MANY_BATCH`] keys or [`GET_MANY_BATCH_BYTES`] of keys
    /// per request, the requests side by side.
    async fn fetch_from<'k>(
        &self,
        peer: Arc<dyn PeerGetter>,
        keys: Vec<&'k str>,
    ) -> Vec<(&'k str, Result<Fetched, Error>)> {
        let chunks = requests(&keys, GET_MANY_BATCH, GET_MANY_BATCH_BYTES);
        let fetched = join_all(chunks.map(|chunk| self.fetch_batch(&peer, chunk))).await;
        fetched.into_iter().flatten().collect()
    }

    /// Fetches `keys` (distinct, at most [`GET_MANY_BATCH`]) from `peer`: one flight per key,
    /// one request for the keys whose flight this call leads.
    async fn fetch_batch<'k>(
        &self,
        peer: &Arc<dyn PeerGetter>,
        keys: &[&'k str],
    ) -> Vec<(&'k str, Result<Fetched, Error>)> {
        let outbox = &Outbox::new(keys.len());
        let flights = keys
            .iter()
            .map(|&key| FirstPoll::new(self.remote_flight(key, peer, outbox), outbox));
        let send = self.send_batch(peer, outbox);
        let (results, ()) = futures_util::future::join(join_all(flights), send).await;
        results
    }

    /// Sends the keys registered in `outbox` once all of its flights were polled, and hands
    /// each flight its answer.
    async fn send_batch(&self, peer: &Arc<dyn PeerGetter>, outbox: &Outbox) {
        outbox.all_polled().await;
        let (keys, senders): (Vec<String>, Vec<_>) = outbox.close().into_iter().unzip();
        if keys.is_empty() {
            return;
        }
        let timeout = self.inner.peer_timeout;
        let request = peer.get_many(&self.inner.name, &keys);
        match answers(
            tokio::time::timeout(timeout, request).await,
            keys.len(),
            timeout,
        ) {
            Ok(answers) => {
                for (sender, answer) in senders.into_iter().zip(answers) {
                    // A flight that was dropped meanwhile no longer wants its answer.
                    let _ = sender.send(answer);
                }
            }
            Err(error) => {
                let error = Arc::new(error);
                for sender in senders {
                    let _ = sender.send(Err(shared(&error)));
                }
            }
        }
    }

    /// The remote flight of one key of a batch: it joins a flight already running for the key,
    /// or leads one whose answer comes from the batch.
    async fn remote_flight<'k>(
        &self,
        key: &'k str,
        peer: &Arc<dyn PeerGetter>,
        outbox: &Outbox,
    ) -> (&'k str, Result<Fetched, Error>) {
        let flight = self.remote.work(key.to_owned(), || {
            let slot = outbox.register(key).map(|receiver| Registered {
                epoch: self.epoch_now(),
                receiver,
            });
            self.leader_of_batched(key, Arc::clone(peer), slot)
        });
        (key, flight.await.map_err(crate::group::flight_error))
    }

    async fn leader_of_batched(
        &self,
        key: &str,
        peer: Arc<dyn PeerGetter>,
        slot: Option<Registered>,
    ) -> Result<Fetched, Error> {
        match slot {
            Some(answer) => self.batched_flight(key, &peer, answer).await,
            None => self.load_remotely(key, peer).await,
        }
    }

    /// The work of a remote flight whose key went out in a batch: as a single fetch from the
    /// owner, with the batch's answer for the key instead of a request of its own.
    async fn batched_flight(
        &self,
        key: &str,
        peer: &Arc<dyn PeerGetter>,
        answer: Registered,
    ) -> Result<Fetched, Error> {
        if let Some(hit) = self.flight_hit(key) {
            return Ok(hit);
        }
        self.stats.loads_deduped.incr();
        let Registered { epoch, receiver } = answer;
        let answer = receiver.await.unwrap_or_else(|_| {
            // The batch was dropped without an answer: only when the whole `get_many` was,
            // and this flight with it; a waiter taking the flight over runs its own closure.
            Err(PeerError::Malformed("batch ended without an answer".into()))
        });
        self.peer_answered(key, peer, answer, epoch).await
    }
}

/// One key's place in an [`Outbox`]: the epoch when it registered (a value must not outlive a
/// removal that came after) and where its answer arrives.
struct Registered {
    epoch: u64,
    receiver: oneshot::Receiver<Answer>,
}

/// The keys of one batch to one peer, gathered while the batch's flights are first polled.
struct Outbox {
    /// `None` once the batch went out.
    keys: Mutex<Option<Waiting>>,
    /// Flights not polled yet: the batch goes out when this reaches zero.
    unpolled: AtomicUsize,
    waker: AtomicWaker,
}

impl Outbox {
    fn new(flights: usize) -> Self {
        Outbox {
            keys: Mutex::new(Some(Vec::with_capacity(flights))),
            unpolled: AtomicUsize::new(flights),
            waker: AtomicWaker::new(),
        }
    }

    /// Adds `key` to the batch, unless it went out already.
    fn register(&self, key: &str) -> Option<oneshot::Receiver<Answer>> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let (sender, receiver) = oneshot::channel();
        keys.as_mut()?.push((key.to_owned(), sender));
        Some(receiver)
    }

    /// Takes the batch's keys; later registrations find it closed.
    fn close(&self) -> Waiting {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.take().unwrap_or_default()
    }

    fn polled_once(&self) {
        if self.unpolled.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.waker.wake();
        }
    }

    /// Waits until every flight of the batch has been polled once.
    async fn all_polled(&self) {
        std::future::poll_fn(|cx| {
            self.waker.register(cx.waker());
            match self.unpolled.load(Ordering::Acquire) {
                0 => Poll::Ready(()),
                _ => Poll::Pending,
            }
        })
        .await;
    }
}

/// A future that tells its outbox when it has been polled for the first time.
struct FirstPoll<'o, F> {
    inner: Pin<Box<F>>,
    outbox: Option<&'o Outbox>,
}

impl<'o, F> FirstPoll<'o, F> {
    fn new(inner: F, outbox: &'o Outbox) -> Self {
        FirstPoll {
            inner: Box::pin(inner),
            outbox: Some(outbox),
        }
    }
}

impl<F: Future> Future for FirstPoll<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let output = self.inner.as_mut().poll(cx);
        if let Some(outbox) = self.outbox.take() {
            outbox.polled_once();
        }
        output
    }
}

impl<F> Drop for FirstPoll<'_, F> {
    fn drop(&mut self) {
        // Dropped before its first poll: it will never register, so do not wait for it.
        if let Some(outbox) = self.outbox.take() {
            outbox.polled_once();
        }
    }
}

/// A batch request's answers, one per key of the `keys` it asked for, or why it failed as a
/// whole (`Elapsed`: it took longer than `timeout`).
pub(crate) fn answers(
    request: Result<Result<Vec<Answer>, PeerError>, tokio::time::error::Elapsed>,
    keys: usize,
    timeout: std::time::Duration,
) -> Result<Vec<Answer>, PeerError> {
    match request {
        Ok(Ok(answers)) if answers.len() == keys => Ok(answers),
        Ok(Ok(answers)) => Err(PeerError::Malformed(format!(
            "{} answers to a batch of {keys} keys",
            answers.len(),
        ))),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(PeerError::Timeout(timeout)),
    }
}

/// The same failure for every key of a failed batch: a timeout stays a timeout (what the key's
/// single fetch would have seen), anything else is wrapped once and shared.
pub(crate) fn shared(error: &Arc<PeerError>) -> PeerError {
    match **error {
        PeerError::Timeout(after) => PeerError::Timeout(after),
        _ => PeerError::Batch(Arc::clone(error)),
    }
}

/// Splits `keys` into runs of at most `max_keys` keys and `max_bytes` of key bytes, in order; a
/// key longer than `max_bytes` goes alone. Counting keys alone let 256 keys of 64 KiB make a
/// 16 MiB request, which a peer refuses whole.
fn requests<'a, 'k>(
    keys: &'a [&'k str],
    max_keys: usize,
    max_bytes: usize,
) -> impl Iterator<Item = &'a [&'k str]> {
    let mut rest = keys;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let end = (rest.iter())
            .take(max_keys)
            .position(|key| {
                bytes += key.len();
                bytes > max_bytes
            })
            .map_or(rest.len().min(max_keys), |over| over.max(1));
        let (run, after) = rest.split_at(end);
        rest = after;
        Some(run)
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::requests;

    proptest! {
        /// The runs are the keys, in order, each within both limits unless it is one key
        /// longer than the byte limit alone, and each run as long as the limits allow.
        #[test]
        fn requests_split_keys_within_both_limits(
            lens in proptest::collection::vec(0usize..40, 0..60),
            max_keys in 1usize..8,
            max_bytes in 1usize..64,
        ) {
            let owned: Vec<String> = lens.iter().map(|&n| "k".repeat(n)).collect();
            let keys: Vec<&str> = owned.iter().map(String::as_str).collect();
            let runs: Vec<&[&str]> = requests(&keys, max_keys, max_bytes).collect();
            prop_assert_eq!(runs.concat(), keys.clone());
            for (i, run) in runs.iter().enumerate() {
                let bytes: usize = run.iter().map(|k| k.len()).sum();
                prop_assert!(!run.is_empty());
                prop_assert!(run.len() <= max_keys);
                prop_assert!(bytes <= max_bytes || run.len() == 1, "{:?}", run);
                // Not split early: the next key would have broken a limit.
                if let Some(next) = runs.get(i + 1) {
                    prop_assert!(run.len() == max_keys || bytes + next[0].len() > max_bytes);
                }
            }
        }
    }
}
