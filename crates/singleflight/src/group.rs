use std::borrow::Borrow;
use std::fmt;
use std::future::{Future, poll_fn};
use std::hash::{BuildHasher, Hash, RandomState};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::{Pin, pin};
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll};

use crate::Error;
use crate::flight::{Inner, Joined, Outcome, Polled};
use crate::sync::{Mutex, MutexGuard};

/// Runs at most one piece of work per key at a time and gives its result to every caller that
/// asked for that key meanwhile.
///
/// `K` is the key, `V` the value the work produces (cloned for each caller), `E` the error it may
/// return (shared by every caller behind an [`Arc`]). A group is `Send + Sync` when `K` and `V`
/// are `Send` and `E` is `Send + Sync`; share it by reference or in an `Arc`.
///
/// ```
/// use geecache_singleflight::Group;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let group = Group::<&str, u32, String>::new();
/// let value = group.work("answer", || async { Ok(42) }).await?;
/// assert_eq!(value, 42);
/// assert_eq!(group.in_flight(), 0); // nothing is kept once every call has returned
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Group<K, V, E> {
    pub(crate) inner: Mutex<Inner<K, V, E>>,
    // std's SipHash, not a faster unkeyed hash: keys often come straight from requests, and a
    // randomly keyed hash keeps a crafted key set from piling into one bucket under the lock.
    hasher: RandomState,
}

impl<K, V, E> Group<K, V, E> {
    /// An empty group; it allocates nothing until the first call.
    #[must_use]
    pub fn new() -> Self {
        Group {
            inner: Mutex::new(Inner::new()),
            hasher: RandomState::new(),
        }
    }

    /// The number of flights this group holds state for: running, being handed from a cancelled
    /// leader to a waiter, or finished with outcomes some waiters have yet to pick up. Forgotten
    /// flights that still run are included.
    ///
    /// It is zero whenever no call to [`work`](Self::work) is pending, however those calls ended
    /// (completed, failed, panicked or dropped): a group keeps nothing between flights.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V, E>> {
        // Every state transition completes before the lock holder calls code that may unwind
        // (see `flight.rs`), so a poisoned lock still guards consistent state: recovering it keeps
        // one panicking `Clone` or `Eq` from failing every later call.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    pub(crate) fn validate(&self)
    where
        K: Eq,
    {
        self.lock().validate();
    }
}

impl<K: Hash + Eq, V: Clone, E> Group<K, V, E> {
    /// Runs the work for `key` once for all the calls that overlap, and returns its result to
    /// each of them.
    ///
    /// The first call for a key becomes the flight's *leader*: it calls its own `f` and drives
    /// the future `f` returns. A call for the same key that arrives while that flight runs becomes
    /// a *waiter*: it never calls its `f` unless it has to take over (below), and it returns the
    /// flight's outcome. A call that arrives after the flight finished starts a new one; nothing
    /// is cached. The future returned by `f` may borrow from the caller (it is not spawned), and
    /// the future returned by `work` is `Send` when `K`, `V`, `F` and `Fut` are `Send` and `E` is
    /// `Send + Sync`.
    ///
    /// # What each caller sees
    ///
    /// | the flight's work… | the leader (whose `f` ran) gets | each waiter gets |
    /// |---|---|---|
    /// | returns `Ok(v)` | `Ok(v)` | `Ok(v.clone())` |
    /// | returns `Err(e)` | `Err(Error::Failed(arc))` | `Err(Error::Failed(arc))`, the same `Arc` ([`Arc::ptr_eq`]) |
    /// | panics, in `f` or in its future | the panic, resumed with its original payload | `Err(Error::Panicked)` |
    /// | is cancelled: the leader's `work` future is dropped | nothing (it was dropped; its work future is dropped with it) | the flight goes on: one waiter becomes the leader and runs its own `f`; every waiter gets the outcome of that run, as in the rows above |
    ///
    /// So a waiter never hangs because of its leader and never fails merely because its leader
    /// went away: a caller timing out, a client disconnecting, a `select!` choosing another
    /// branch only ever cost that one caller. Each cancelled leader causes exactly one
    /// re-execution, by the waiter it hands over to; if that waiter is dropped before it takes
    /// over, the next waiter is chosen, and if no waiter is left the flight simply ends. A waiter
    /// that is dropped just leaves.
    ///
    /// The leader sees the panic and not an error because the panic is its own: a singleflight
    /// call should fail in the same way as calling `f().await` directly. Waiters get an error
    /// because the bug is not in their code. After a panic the group stays usable and the next
    /// call for the key starts a fresh flight.
    ///
    /// A flight advances only while its current leader is polled, like any future. A caller
    /// that keeps its `work` future alive without polling it (say, in a branch of a `select!`
    /// that is not being polled) delays the flight for every other caller of that key; dropping
    /// the future instead is always safe. For the same reason, calling `work` for a key from
    /// inside the work for that same key waits forever.
    ///
    /// # Errors
    ///
    /// [`Error::Failed`] when the work returned an error, [`Error::Panicked`] when it panicked in
    /// another caller's flight; see the table above.
    ///
    /// # Panics
    ///
    /// Resumes the panic of this caller's own `f` or of the future it returned.
    ///
    /// # Example
    ///
    /// A cancelled leader does not strand the caller that waits on it:
    ///
    /// ```
    /// use std::future::{pending, Future};
    /// use std::pin::pin;
    /// use std::task::{Context, Poll, Waker};
    /// use geecache_singleflight::Group;
    ///
    /// let group = Group::<&str, &str, ()>::new();
    /// let mut cx = Context::from_waker(Waker::noop());
    ///
    /// // The leader starts work that will never finish...
    /// let mut leader = Box::pin(group.work("k", pending));
    /// assert!(leader.as_mut().poll(&mut cx).is_pending());
    /// // ...a second caller joins it instead of starting its own...
    /// let mut waiter = pin!(group.work("k", || async { Ok("from the waiter") }));
    /// assert!(waiter.as_mut().poll(&mut cx).is_pending());
    /// // ...and when the leader is dropped, the waiter takes over with its own closure.
    /// drop(leader);
    /// assert_eq!(waiter.as_mut().poll(&mut cx), Poll::Ready(Ok("from the waiter")));
    /// assert_eq!(group.in_flight(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn work<F, Fut>(&self, key: K, f: F) -> Result<V, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        // Hashed before locking: with SipHash this is the longest step, and it needs no lock.
        let hash = self.hasher.hash_one(&key);
        let (joined, unused_key) = self.lock().join(key, hash);
        drop(unused_key);
        let leader = match joined {
            Joined::Lead { flight } => Leader::new(self, flight),
            Joined::Wait { flight, slot } => match (Waiter::new(self, flight, slot)).await {
                Resolved::Done(outcome) => return outcome,
                Resolved::Lead(leader) => leader,
            },
        };
        leader.run(f).await
    }

    /// Detaches the running flight for `key`, if any, so that the next call for `key` starts a
    /// new flight instead of joining it.
    ///
    /// The detached flight still runs to completion and still gives its outcome to its leader and
    /// to every caller that had joined it; it still hands over if its leader is dropped. Use this
    /// when the value being computed is known to be stale (say, the key was just written), so
    /// that no new caller receives it.
    pub fn forget<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        self.lock().forget(hash, key);
    }

    /// How many callers share the flight that a call for `key` would join now: its leader and
    /// its waiters. Zero when no flight for `key` is running (a forgotten one does not count).
    #[must_use]
    pub fn callers<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        self.lock().callers(hash, key)
    }
}

impl<K, V, E> Default for Group<K, V, E> {
    fn default() -> Self {
        Group::new()
    }
}

impl<K, V, E> fmt::Debug for Group<K, V, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Group");
        // `try_lock`: formatting must not block, nor deadlock when done under the lock.
        match self.inner.try_lock() {
            Ok(inner) => out.field("in_flight", &inner.len()),
            Err(_) => out.field("in_flight", &format_args!("<locked>")),
        };
        out.finish_non_exhaustive()
    }
}

/// The role of the caller that runs the work. Dropping it before [`Leader::settle`] (the caller's
/// `work` future was cancelled) hands the flight to a waiter.
struct Leader<'a, K, V, E> {
    group: &'a Group<K, V, E>,
    flight: usize,
    settled: bool,
}

impl<'a, K, V: Clone, E> Leader<'a, K, V, E> {
    fn new(group: &'a Group<K, V, E>, flight: usize) -> Self {
        Leader {
            group,
            flight,
            settled: false,
        }
    }

    /// Calls `f`, drives its future, and shares the outcome.
    async fn run<F, Fut>(self, f: F) -> Outcome<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        // Panics are caught around each step rather than left to unwind: an unwinding leader
        // would look like a cancelled one and hand the work to a waiter, which would then run
        // the same failing work again, and so on for every waiter.
        let caught = match catch_unwind(AssertUnwindSafe(f)) {
            Ok(work) => {
                // Pinned in place rather than boxed: the flight costs no allocation of its own.
                let mut work = pin!(work);
                poll_fn(|cx| poll_catching(work.as_mut(), cx)).await
            }
            Err(payload) => Err(payload),
        };
        match caught {
            Ok(Ok(value)) => self.settle(Ok(value)),
            Ok(Err(error)) => self.settle(Err(Error::Failed(Arc::new(error)))),
            Err(payload) => {
                drop(self.settle(Err(Error::Panicked)));
                resume_unwind(payload)
            }
        }
    }

    /// Publishes the outcome to the waiters and wakes them.
    fn settle(mut self, outcome: Outcome<V, E>) -> Outcome<V, E> {
        let mut inner = self.group.lock();
        // If this unwinds (a panicking `V::clone`), `settled` is still false and the drop below
        // hands the flight over instead of leaving the waiters behind.
        let (outcome, wakers, finished) = inner.complete(self.flight, outcome);
        drop(inner);
        self.settled = true;
        drop(finished);
        for waker in wakers {
            waker.wake();
        }
        outcome
    }
}

impl<K, V, E> Drop for Leader<'_, K, V, E> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let mut inner = self.group.lock();
        let (heir, abandoned) = inner.leader_gone(self.flight);
        drop(inner);
        drop(abandoned);
        if let Some(heir) = heir {
            heir.wake();
        }
    }
}

fn poll_catching<T>(
    work: Pin<&mut impl Future<Output = T>>,
    cx: &mut Context<'_>,
) -> Poll<std::thread::Result<T>> {
    match catch_unwind(AssertUnwindSafe(|| work.poll(cx))) {
        Ok(Poll::Pending) => Poll::Pending,
        Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
        Err(payload) => Poll::Ready(Err(payload)),
    }
}

/// The role of a caller that joined a running flight: a future that resolves to the flight's
/// outcome, or to the lead if the leader went away and this waiter is the heir. Dropping it
/// before then takes the waiter out of the flight (passing the lead on if it was the heir).
struct Waiter<'a, K, V, E> {
    group: &'a Group<K, V, E>,
    flight: usize,
    slot: usize,
    settled: bool,
}

enum Resolved<'a, K, V, E> {
    Done(Outcome<V, E>),
    Lead(Leader<'a, K, V, E>),
}

impl<'a, K, V, E> Waiter<'a, K, V, E> {
    fn new(group: &'a Group<K, V, E>, flight: usize, slot: usize) -> Self {
        Waiter {
            group,
            flight,
            slot,
            settled: false,
        }
    }
}

impl<'a, K, V: Clone, E> Future for Waiter<'a, K, V, E> {
    type Output = Resolved<'a, K, V, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut inner = self.group.lock();
        let (polled, finished) = inner.poll_waiter(self.flight, self.slot, cx.waker());
        drop(inner);
        let resolved = match polled {
            Polled::Pending => return Poll::Pending,
            Polled::Done(outcome) => Resolved::Done(outcome),
            Polled::Lead => Resolved::Lead(Leader::new(self.group, self.flight)),
        };
        self.settled = true;
        drop(finished);
        Poll::Ready(resolved)
    }
}

impl<K, V, E> Drop for Waiter<'_, K, V, E> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let mut inner = self.group.lock();
        let (heir, finished) = inner.waiter_gone(self.flight, self.slot);
        drop(inner);
        drop(finished);
        if let Some(heir) = heir {
            heir.wake();
        }
    }
}
