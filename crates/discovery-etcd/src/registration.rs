use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use etcd_client::{Client, LeaseKeepAliveStream, LeaseKeeper, PutOptions};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::client::{connect, request};
use crate::config::validate_peer_url;
use crate::task::BackgroundTask;
use crate::{Config, Error};

/// This node's entry in the cluster: a key under a lease that a background task keeps alive.
///
/// [`start`](Registration::start) puts `{prefix}/{cluster}/nodes/{self_url}` (see
/// [`Config::node_key`]) under a fresh lease with the configured TTL. A background task then
/// renews the lease every TTL/3. If the lease is lost (etcd restarted without its data, a
/// network blip longer than the TTL, someone revoked it) or the connection breaks, the task
/// registers again on its own, with jittered exponential backoff, logging at `warn` when it
/// loses the registration and at `info` when it has it back.
///
/// Leaving the cluster:
/// - [`shutdown`](Registration::shutdown) puts the key once more and revokes the lease; etcd
///   deletes the key at once and every [`Membership`](crate::Membership) drops this node with
///   its next event (the put tells a membership settling after an etcd outage that this is a
///   leave, not a lease that ran out).
/// - Dropping a `Registration` without `shutdown` only stops the keep-alives, exactly as if the
///   process had crashed: peers keep the node until the lease's TTL runs out.
///
/// Two processes registering the same URL share one key; the last to register owns it.
pub struct Registration {
    url: String,
    key: String,
    lease: watch::Receiver<Option<i64>>,
    held: Arc<Mutex<Held>>,
    request_timeout: Duration,
    task: BackgroundTask,
}

impl Registration {
    /// Registers `self_url` (e.g. `http://10.0.0.1:8001`, the base URL peers dial) in the
    /// cluster and starts keeping the registration alive. When this returns `Ok`, the key is in
    /// etcd.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] if `self_url` is not an `http://` or `https://` URL;
    /// [`Error::Etcd`] or [`Error::Timeout`] if etcd cannot be reached or refuses. Only this
    /// first registration reports etcd failures; later ones are retried in the background.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub async fn start(config: &Config, self_url: &str) -> Result<Registration, Error> {
        validate_peer_url(self_url)?;
        let client = connect(config).await?;
        let held = Arc::new(Mutex::new(Held {
            client: client.clone(),
            lease: None,
        }));
        let (registered, lease) = watch::channel(None);
        let registrar = Registrar {
            key: config.node_key(self_url),
            url: self_url.to_string(),
            config: config.clone(),
            held: Arc::clone(&held),
            registered,
        };
        let session = match registrar.register(client).await {
            Ok(session) => session,
            Err(error) => {
                // A lease granted before the failure would otherwise linger (perhaps with the
                // key) for a whole TTL. Best effort: the first error is the one to report.
                let _ = revoke(&held, config.request_timeout()).await;
                return Err(error);
            }
        };
        info!(
            cluster = config.cluster(),
            url = self_url,
            lease = session.lease,
            "registered with etcd"
        );
        registrar.registered.send_replace(Some(session.lease));
        let task = BackgroundTask::spawn(registrar.run(session));
        Ok(Registration {
            url: self_url.to_string(),
            key: config.node_key(self_url),
            lease,
            held,
            request_timeout: config.request_timeout(),
            task,
        })
    }

    /// The URL this node registered under.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The ID of the lease that currently holds this node's key, or `None` while the
    /// registration is being renewed after a lost lease or connection.
    #[must_use]
    pub fn lease(&self) -> Option<i64> {
        *self.lease.borrow()
    }

    /// A receiver that follows [`lease`](Registration::lease): `Some(id)` while registered,
    /// `None` while registering again. Useful for health checks.
    #[must_use]
    pub fn subscribe_lease(&self) -> watch::Receiver<Option<i64>> {
        self.lease.clone()
    }

    /// Stops the keep-alives, puts the key once more (see the type's docs) and revokes the
    /// lease, so that etcd deletes the key at once and peers drop this node without waiting for
    /// the TTL.
    ///
    /// # Errors
    ///
    /// [`Error::Etcd`] or [`Error::Timeout`] if the revoke did not reach etcd; the key then
    /// disappears when the lease's TTL runs out, as after a crash.
    pub async fn shutdown(self) -> Result<(), Error> {
        // Stop the task first, so that no re-registration can put the key back after the
        // revoke.
        let Registration {
            url,
            key,
            held,
            request_timeout,
            task,
            ..
        } = self;
        task.stop().await;
        announce_leave(&held, &key, &url, request_timeout).await;
        revoke(&held, request_timeout).await
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("url", &self.url)
            .field("lease", &self.lease())
            .finish_non_exhaustive()
    }
}

/// What `shutdown` needs, shared with the task: the newest lease that may still exist and the
/// client that last reached etcd.
///
/// A std `Mutex`, not tokio's: it is never held across an `.await`, only to copy these out.
struct Held {
    client: Client,
    lease: Option<i64>,
}

/// Puts the key once more, on the lease about to be revoked. After an etcd outage, a
/// [`Membership`](crate::Membership) holds a member whose registration from before the outage
/// is deleted (its lease may have just run out while it registers again); a put tells it this
/// registration is current, so that the delete that follows counts as the leave it is. Best
/// effort: the revoke after it is what leaving takes.
async fn announce_leave(held: &Mutex<Held>, key: &str, url: &str, timeout: Duration) {
    let (mut client, lease) = {
        let held = held.lock().unwrap_or_else(PoisonError::into_inner);
        (held.client.clone(), held.lease)
    };
    let Some(lease) = lease else {
        return;
    };
    if let Err(error) = put_key(&mut client, key, url, lease, timeout).await {
        debug!(url, %error, "could not announce the leave; revoking all the same");
    }
}

/// Puts this node's key, its URL as the value, under `lease`.
async fn put_key(
    client: &mut Client,
    key: &str,
    url: &str,
    lease: i64,
    timeout: Duration,
) -> Result<(), Error> {
    let options = PutOptions::new().with_lease(lease);
    request("put", timeout, client.put(key, url, Some(options)))
        .await
        .map(drop)
}

/// Revokes the held lease, if any.
async fn revoke(held: &Mutex<Held>, timeout: Duration) -> Result<(), Error> {
    let (mut client, lease) = {
        let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
        (held.client.clone(), held.lease.take())
    };
    let Some(lease) = lease else {
        return Ok(());
    };
    match request("lease revoke", timeout, client.lease_revoke(lease)).await {
        Ok(_) => Ok(()),
        // The lease ran out before we revoked it, so its key is already gone: the outcome
        // shutdown is for. etcd reports this only in the status message.
        Err(Error::Etcd {
            source: etcd_client::Error::GRpcStatus(status),
            ..
        }) if status.message().contains("lease not found") => Ok(()),
        Err(error) => Err(error),
    }
}

/// The background side of a [`Registration`].
struct Registrar {
    config: Config,
    key: String,
    url: String,
    held: Arc<Mutex<Held>>,
    registered: watch::Sender<Option<i64>>,
}

/// A live lease with its keep-alive stream.
struct Session {
    lease: i64,
    keeper: LeaseKeeper,
    replies: LeaseKeepAliveStream,
}

/// Why keeping a lease alive stopped.
enum Lost {
    /// etcd answered a keep-alive with TTL 0: the lease expired or was revoked.
    Expired,
    /// No keep-alive was answered before the lease would have run out.
    Unanswered,
    /// The keep-alive stream failed or closed.
    Connection(Error),
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lost::Expired => f.write_str("etcd says the lease expired or was revoked"),
            Lost::Unanswered => f.write_str("no keep-alive was answered within the TTL"),
            Lost::Connection(error) => write!(f, "{error}"),
        }
    }
}

impl Registrar {
    /// Keeps the registration alive for as long as the task runs.
    async fn run(self, mut session: Session) {
        loop {
            let lost = self.keep_alive(&mut session).await;
            let old = session.lease;
            self.registered.send_replace(None);
            warn!(
                cluster = self.config.cluster(),
                url = %self.url,
                lease = old,
                reason = %lost,
                "lost the etcd registration; registering again"
            );
            session = self.register_with_backoff().await;
            self.registered.send_replace(Some(session.lease));
            if session.lease == old {
                info!(url = %self.url, lease = old, "etcd registration restored on the same lease");
            } else {
                info!(
                    url = %self.url,
                    old_lease = old,
                    lease = session.lease,
                    "registered with etcd again under a new lease"
                );
            }
        }
    }

    /// Renews the lease every TTL/3 until something goes wrong, and says what.
    async fn keep_alive(&self, session: &mut Session) -> Lost {
        let ttl = self.config.ttl();
        // Three renewals per TTL: one lost or late renewal never costs the lease.
        let period = ttl / 3;
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The lease was confirmed alive just now, by the reply that opened this session.
        let mut expires = Instant::now() + ttl;
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(source) = session.keeper.keep_alive().await {
                        return Lost::Connection(Error::Etcd { operation: "lease keep-alive", source });
                    }
                }
                // `message` is cancel-safe: it polls the stream once per call and loses nothing
                // when the other branch wins.
                reply = session.replies.message() => match reply {
                    Ok(Some(reply)) if reply.ttl() > 0 => {
                        let left = Duration::from_secs(u64::try_from(reply.ttl()).unwrap_or(0));
                        expires = Instant::now() + left;
                    }
                    Ok(Some(_)) => return Lost::Expired,
                    Ok(None) => {
                        let source = etcd_client::Error::LeaseKeepAliveError(
                            "etcd closed the keep-alive stream".to_string(),
                        );
                        return Lost::Connection(Error::Etcd { operation: "lease keep-alive", source });
                    }
                    Err(source) => {
                        return Lost::Connection(Error::Etcd { operation: "lease keep-alive", source });
                    }
                },
                () = tokio::time::sleep_until(expires) => return Lost::Unanswered,
            }
        }
    }

    /// Registers until it works, pausing with jittered exponential backoff between attempts.
    async fn register_with_backoff(&self) -> Session {
        let mut backoff = Backoff::new(self.config.backoff());
        let mut attempt: u64 = 1;
        loop {
            let result = match connect(&self.config).await {
                Ok(client) => self.register(client).await,
                Err(error) => Err(error),
            };
            match result {
                Ok(session) => return session,
                Err(error) => debug!(
                    url = %self.url,
                    attempt,
                    %error,
                    "etcd registration attempt failed; retrying"
                ),
            }
            tokio::time::sleep(backoff.next_pause()).await;
            attempt += 1;
        }
    }

    /// One registration attempt through `client`: resume the held lease if etcd still has it,
    /// otherwise grant a new one; then put the key under it.
    async fn register(&self, mut client: Client) -> Result<Session, Error> {
        let timeout = self.config.request_timeout();
        let old = {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            held.client = client.clone();
            held.lease
        };
        if let Some(lease) = old {
            // Resuming beats a new lease: after a short outage etcd still has the lease (it
            // even restores leases when it restarts), and the key never left it.
            match request("lease keep-alive", timeout, client.lease_keep_alive(lease)).await {
                Ok((keeper, replies)) => {
                    // Put again anyway: it is cheap, and it brings the key back if someone
                    // deleted it while the lease lived on.
                    self.put(&mut client, lease).await?;
                    return Ok(Session {
                        lease,
                        keeper,
                        replies,
                    });
                }
                // etcd answered that the lease is gone (the client reports it this way): fall
                // through to a new one. Any other error means etcd was not reached.
                Err(Error::Etcd {
                    source: etcd_client::Error::LeaseKeepAliveError(_),
                    ..
                }) => debug!(url = %self.url, lease, "the old lease is gone; granting a new one"),
                Err(error) => return Err(error),
            }
        }
        let grant = request(
            "lease grant",
            timeout,
            client.lease_grant(self.config.ttl_secs(), None),
        )
        .await?;
        let lease = grant.id();
        // Record the lease before anything else can fail, so that shutdown (or the next
        // attempt) knows about it.
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lease = Some(lease);
        self.put(&mut client, lease).await?;
        let (keeper, replies) =
            request("lease keep-alive", timeout, client.lease_keep_alive(lease)).await?;
        Ok(Session {
            lease,
            keeper,
            replies,
        })
    }

    async fn put(&self, client: &mut Client, lease: i64) -> Result<(), Error> {
        let timeout = self.config.request_timeout();
        put_key(client, &self.key, &self.url, lease, timeout).await
    }
}
