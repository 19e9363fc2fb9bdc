use std::fmt;
use std::sync::Arc;

use etcd_client::{Client, EventType, GetOptions, WatchOptions};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::client::{connect, request};
use crate::liveness::{Due, Liveness};
use crate::peers::PeerSet;
use crate::task::BackgroundTask;
use crate::{Config, Error};

/// The live peer list of one cluster, kept current by watching etcd.
///
/// A background task reads every key under [`Config::nodes_prefix`], then watches the prefix
/// from the read's revision + 1, so no change between the read and the watch is missed. Each
/// time the set of peers changes it publishes the complete list, sorted, through a
/// [`tokio::sync::watch`] channel: `None` until the first read, then `Some(list)`, this node
/// included if it registered.
///
/// If etcd becomes unreachable, the last list stays in force (a node keeps serving with the
/// ring it has) while the task reconnects with jittered exponential backoff. On reconnecting it
/// reads the whole set again rather than resuming the old watch (the history it would resume
/// from may have been compacted meanwhile, and a read is a single request), and publishes a
/// list only if the set differs. Interruptions are logged at `warn`, the
/// resumed watch at `info`.
///
/// After an outage the list **settles** for one lease TTL ([`Config::ttl`]) from the read
/// that follows it. A peer the list had before the outage that the read does not find is held
/// in the list until it registers again, and so is one whose registration from before the
/// outage is deleted meanwhile; when the TTL is up, the held peers that did not come back leave
/// the list. Why: an outage longer than two thirds of the TTL (etcd cut off from the nodes, not
/// restarted) lets leases run out, during it or just after it (etcd is back, but a peer's
/// keep-alive has not got through yet), and the nodes register again one by one as they
/// reconnect. Published as it comes, that would shrink every ring for a moment, move keys to
/// new owners and back, and have them loaded again. A peer that really went away during the
/// outage leaves the list one TTL later than it would have (the peer circuit breaker routes
/// around it meanwhile). One that leaves gracefully goes at once: a delete does not say
/// whether a lease ran out or was revoked, so
/// [`Registration::shutdown`](crate::Registration::shutdown) puts its key once more before it
/// revokes, and a peer put after the outage counts as registered anew.
///
/// For that, an outage long enough for a lease to run out must end the watch: one it lived
/// through would deliver every expiry and then every registration, a shrink and a growth. A
/// watch silent for a sixth of the TTL asks etcd for a progress report (etcd 3.4 and later
/// answer one at once), and one whose report does not come within another sixth ends. So it
/// is found dead within a third of the TTL, before any lease can run out (keep-alives go every
/// third of the TTL, so only an outage of two thirds of it or more ends a lease). The
/// connection's own pings would take up to 15 s (the `liveness` module says why).
pub struct Membership {
    peers: watch::Receiver<Option<Arc<[String]>>>,
    connected: watch::Receiver<bool>,
    task: BackgroundTask,
}

impl Membership {
    /// Reads the current peer list, then watches for changes in the background. When this
    /// returns `Ok`, [`current`](Membership::current) is `Some`.
    ///
    /// # Errors
    ///
    /// [`Error::Etcd`] or [`Error::Timeout`] if the first read fails. Use
    /// [`spawn`](Membership::spawn) to start without etcd and keep trying instead.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub async fn start(config: &Config) -> Result<Membership, Error> {
        let (mut watcher, peers, connected) = Watcher::new(config);
        let session = watcher.read().await?;
        Ok(Membership::launch(watcher, Some(session), peers, connected))
    }

    /// Starts watching in the background and returns at once, whether or not etcd is
    /// reachable; the first list arrives through [`subscribe`](Membership::subscribe) when the
    /// first read succeeds.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    #[must_use]
    pub fn spawn(config: &Config) -> Membership {
        let (watcher, peers, connected) = Watcher::new(config);
        Membership::launch(watcher, None, peers, connected)
    }

    fn launch(
        watcher: Watcher,
        session: Option<Session>,
        peers: ListReceiver,
        connected: watch::Receiver<bool>,
    ) -> Membership {
        Membership {
            peers,
            connected,
            task: BackgroundTask::spawn(watcher.run(session)),
        }
    }

    /// A receiver of peer lists: `None` until the first list, then each complete, sorted list
    /// as the set changes.
    ///
    /// A new receiver counts a list that is already there as unseen, so a loop over
    /// [`changed`](watch::Receiver::changed) starts with it. After
    /// [`shutdown`](Membership::shutdown) or drop, `changed` returns an error; the last list
    /// stays readable.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<[String]>>> {
        self.peers.clone()
    }

    /// The latest peer list, or `None` if none has been read yet.
    #[must_use]
    pub fn current(&self) -> Option<Arc<[String]>> {
        self.peers.borrow().clone()
    }

    /// Whether the watch is live. While it is not, the list is the last one known and may be
    /// stale.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// A receiver that follows [`is_connected`](Membership::is_connected). Useful for health
    /// checks.
    #[must_use]
    pub fn subscribe_connected(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }

    /// Stops watching. When this returns, the background task is gone.
    pub async fn shutdown(self) {
        self.task.stop().await;
    }
}

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Membership")
            .field("current", &self.current())
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

/// The receiving end of the peer-list channel.
type ListReceiver = watch::Receiver<Option<Arc<[String]>>>;

/// The background side of a [`Membership`].
struct Watcher {
    config: Config,
    nodes_prefix: String,
    set: PeerSet,
    peers: watch::Sender<Option<Arc<[String]>>>,
    connected: watch::Sender<bool>,
    /// When the settling after an outage ends (the held peers leave the list), if it goes on.
    settle_at: Option<Instant>,
}

/// A successful read: the client that made it and the revision it saw.
struct Session {
    client: Client,
    revision: i64,
}

/// Why a watch ended.
enum Ended {
    Failed(Error),
    /// etcd cancelled the watch, e.g. because the revision to resume from was compacted.
    Canceled {
        reason: String,
        compact_revision: i64,
    },
    Closed,
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Failed(error) => write!(f, "{error}"),
            Ended::Canceled {
                reason,
                compact_revision,
            } => write!(
                f,
                "etcd cancelled the watch ({reason:?}, compacted at revision {compact_revision})"
            ),
            Ended::Closed => f.write_str("etcd closed the watch stream"),
        }
    }
}

impl Watcher {
    fn new(config: &Config) -> (Watcher, ListReceiver, watch::Receiver<bool>) {
        let (peers, peers_rx) = watch::channel(None);
        let (connected, connected_rx) = watch::channel(false);
        let nodes_prefix = config.nodes_prefix();
        let watcher = Watcher {
            config: config.clone(),
            set: PeerSet::new(nodes_prefix.clone()),
            nodes_prefix,
            peers,
            connected,
            settle_at: None,
        };
        (watcher, peers_rx, connected_rx)
    }

    /// Reconnects and re-watches for as long as the task runs.
    async fn run(mut self, mut session: Option<Session>) {
        let mut backoff = Backoff::new(self.config.backoff());
        let mut failed_attempts: u64 = 0;
        loop {
            let ended = match session.take() {
                Some(session) => self.watch(session, failed_attempts).await,
                None => match self.read().await {
                    Ok(session) => self.watch(session, failed_attempts).await,
                    Err(error) => Ended::Failed(error),
                },
            };
            if self.connected.send_replace(false) {
                // The watch was live until now: a new outage (or a cancelled watch) begins.
                warn!(
                    cluster = self.config.cluster(),
                    reason = %ended,
                    "etcd watch interrupted; keeping the last peer list while reconnecting"
                );
                backoff.reset();
                failed_attempts = 1;
            } else {
                failed_attempts += 1;
                if failed_attempts == 1 {
                    warn!(cluster = self.config.cluster(), error = %ended, "cannot reach etcd; retrying");
                } else {
                    debug!(
                        cluster = self.config.cluster(),
                        attempt = failed_attempts,
                        error = %ended,
                        "cannot reach etcd; retrying"
                    );
                }
            }
            tokio::time::sleep(backoff.next_pause()).await;
        }
    }

    /// Reads the whole set with a fresh client and publishes it.
    ///
    /// A fresh client per read: after a failure we want a new connection attempt now, not
    /// whatever state the old connection was left in; the backoff already limits how often
    /// that happens.
    async fn read(&mut self) -> Result<Session, Error> {
        let mut client = connect(&self.config).await?;
        let response = request(
            "range read",
            self.config.request_timeout(),
            client.get(
                self.nodes_prefix.as_str(),
                Some(GetOptions::new().with_prefix()),
            ),
        )
        .await?;
        let Some(header) = response.header() else {
            let source = etcd_client::Error::Internal("range response without header".into());
            return Err(Error::Etcd {
                operation: "range read",
                source,
            });
        };
        let revision = header.revision();
        let now = Instant::now();
        if self.settle_at.is_some_and(|at| at <= now) {
            // Held through an earlier outage and not back in time: not held again.
            self.settle();
        }
        let keys = response.kvs().iter().map(|kv| kv.key());
        if self.peers.borrow().is_none() {
            // The first read: nothing was listed before it.
            self.set.replace(keys);
        } else {
            let holds = self.set.replace_holding(keys);
            // Settling that is under way keeps its end: an etcd that comes and goes must not
            // keep a peer that is gone listed for ever.
            let at = *self.settle_at.get_or_insert(now + self.config.ttl());
            if holds {
                info!(
                    cluster = self.config.cluster(),
                    held = ?self.set.held(),
                    for_ms = at.saturating_duration_since(now).as_millis(),
                    "peers listed before the outage are not registered yet; keeping them while they register again"
                );
            }
        }
        self.publish();
        Ok(Session { client, revision })
    }

    /// Watches from just after the session's revision, applying events until the watch ends.
    async fn watch(&mut self, session: Session, failed_attempts: u64) -> Ended {
        let Session {
            mut client,
            revision,
        } = session;
        // revision + 1, not "from now": a node that registered or left between the read and
        // this call is an event in that range, so the watch replays it instead of missing it.
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1);
        let mut stream = match request(
            "watch",
            self.config.request_timeout(),
            client.watch(self.nodes_prefix.as_str(), Some(options)),
        )
        .await
        {
            Ok(stream) => stream,
            Err(error) => return Ended::Failed(error),
        };
        self.connected.send_replace(true);
        if failed_attempts > 0 {
            info!(
                cluster = self.config.cluster(),
                revision,
                attempts = failed_attempts,
                "etcd watch resumed after re-reading the peer list"
            );
        } else {
            debug!(
                cluster = self.config.cluster(),
                revision, "watching the peer list"
            );
        }
        let mut liveness = Liveness::new(self.config.ttl(), Instant::now());
        loop {
            let wake = self
                .settle_at
                .map_or(liveness.deadline(), |at| at.min(liveness.deadline()));
            let message = tokio::select! {
                // Cancelling `message` between messages loses none: the stream keeps them.
                message = stream.message() => message,
                () = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if self.settle_at.is_some_and(|at| at <= now) {
                        self.settle();
                        self.publish();
                    }
                    match liveness.due(now) {
                        Some(Due::Probe) => {
                            let asked = request(
                                "watch progress request",
                                self.config.request_timeout(),
                                stream.request_progress(),
                            );
                            if let Err(error) = asked.await {
                                return Ended::Failed(error);
                            }
                        }
                        Some(Due::Dead) => {
                            return Ended::Failed(Error::Timeout {
                                operation: "watch progress report",
                                after: liveness.quiet(),
                            });
                        }
                        None => {}
                    }
                    continue;
                }
            };
            liveness.heard(Instant::now());
            let response = match message {
                Ok(Some(response)) => response,
                Ok(None) => return Ended::Closed,
                Err(source) => {
                    return Ended::Failed(Error::Etcd {
                        operation: "watch",
                        source,
                    });
                }
            };
            if response.canceled() {
                return Ended::Canceled {
                    reason: response.cancel_reason().to_string(),
                    compact_revision: response.compact_revision(),
                };
            }
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                match event.event_type() {
                    EventType::Put => self.set.put(kv.key()),
                    EventType::Delete => {
                        if self.set.delete(kv.key()) {
                            info!(
                                cluster = self.config.cluster(),
                                key = %String::from_utf8_lossy(kv.key()),
                                "a registration from before the outage ended; keeping the peer while it registers again"
                            );
                        }
                    }
                }
            }
            // One publication per response: the events of one transaction arrive together,
            // and peers should never see the half-applied set in between.
            self.publish();
        }
    }

    /// Ends the settling after an outage: the held peers, which did not register again in
    /// time, leave the list.
    fn settle(&mut self) {
        if self.set.holds() {
            info!(
                cluster = self.config.cluster(),
                gone = ?self.set.held(),
                "peers listed before the outage did not register again; dropping them"
            );
        }
        self.set.settle();
        self.settle_at = None;
    }

    /// Publishes the set if it differs from the last published list.
    fn publish(&self) {
        let list = self.set.to_list();
        self.peers.send_if_modified(|current| {
            if current.as_deref() == Some(&*list) {
                return false;
            }
            debug!(cluster = self.config.cluster(), peers = ?list, "peer list changed");
            *current = Some(list);
            true
        });
    }
}
