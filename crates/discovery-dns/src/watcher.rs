use std::fmt;
use std::sync::Arc;

use hickory_resolver::TokioResolver;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

use crate::lookup::{resolve, resolver};
use crate::task::BackgroundTask;
use crate::{Config, Error};

/// What a [`Watcher`] has done so far, for health checks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// Lookups finished, successful or not.
    pub lookups: u64,
    /// Lookups failed since the last success (0 while DNS answers).
    pub failed_in_a_row: u64,
}

/// The live peer list behind a DNS name, kept current by asking again every interval.
///
/// A background task looks the target up at once and then every [`Config::interval`]. Each
/// time the answer's set of peers differs from the last one published, it publishes the
/// complete list, sorted, through a [`tokio::sync::watch`] channel: `None` until the first
/// successful lookup, then `Some(list)`.
///
/// A failed lookup (no answer, an error, an empty answer) changes nothing: the last list stays
/// in force, so a DNS outage does not take a cache cluster apart. The first failure of a
/// streak is logged at `warn`, the rest at `debug`, and the recovery at `info` with the
/// streak's length, so a long outage writes two lines, not one per interval.
pub struct Watcher {
    peers: watch::Receiver<Option<Arc<[String]>>>,
    status: watch::Receiver<Status>,
    task: BackgroundTask,
}

impl Watcher {
    /// Starts polling in the background and returns at once, whether or not DNS answers.
    ///
    /// # Errors
    ///
    /// [`Error::SystemConfig`] when no server is configured and `/etc/resolv.conf` cannot be
    /// read. Lookup failures are never returned; see [`Watcher`].
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn spawn(config: &Config) -> Result<Watcher, Error> {
        let resolver = resolver(config)?;
        let (peers_tx, peers) = watch::channel(None);
        let (status_tx, status) = watch::channel(Status::default());
        let task = BackgroundTask::spawn(poll(resolver, config.clone(), peers_tx, status_tx));
        Ok(Watcher {
            peers,
            status,
            task,
        })
    }

    /// A receiver of peer lists: `None` until the first successful lookup, then each complete,
    /// sorted list as the set changes.
    ///
    /// A new receiver counts a list that is already there as unseen, so a loop over
    /// [`changed`](watch::Receiver::changed) starts with it. After
    /// [`shutdown`](Watcher::shutdown) or drop, `changed` returns an error.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<[String]>>> {
        self.peers.clone()
    }

    /// The latest peer list, or `None` if no lookup has succeeded yet.
    #[must_use]
    pub fn current(&self) -> Option<Arc<[String]>> {
        self.peers.borrow().clone()
    }

    /// A receiver of the [`Status`], updated after every lookup.
    #[must_use]
    pub fn subscribe_status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// The status now.
    #[must_use]
    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// Stops polling. When this returns, the background task is gone.
    pub async fn shutdown(self) {
        self.task.stop().await;
    }
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("current", &self.current())
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

async fn poll(
    resolver: TokioResolver,
    config: Config,
    peers: watch::Sender<Option<Arc<[String]>>>,
    status: watch::Sender<Status>,
) {
    let target = config.target().to_string();
    let mut ticks = tokio::time::interval(config.interval());
    // After a slow lookup, wait a whole interval again rather than firing a burst to catch up.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut streak = Streak::default();
    loop {
        ticks.tick().await;
        match resolve(&resolver, &config).await {
            Ok(list) => {
                if let Some(failed) = streak.succeeded() {
                    info!(target = %target, failed, "DNS answers again");
                }
                peers.send_if_modified(|current| {
                    if current.as_deref() == Some(list.as_slice()) {
                        return false;
                    }
                    debug!(target = %target, peers = ?list, "member list from DNS changed");
                    *current = Some(list.into());
                    true
                });
            }
            Err(error) => {
                if streak.failed() {
                    warn!(
                        target = %target,
                        error = %error,
                        "DNS lookup failed; keeping the last member list until it answers again"
                    );
                } else {
                    debug!(target = %target, error = %error, "DNS lookup failed again");
                }
            }
        }
        status.send_modify(|s| {
            s.lookups += 1;
            s.failed_in_a_row = streak.length();
        });
    }
}

/// Consecutive failed lookups, so that only the first of a streak is logged loudly.
#[derive(Debug, Default)]
pub(crate) struct Streak(u64);

impl Streak {
    /// Records a failure; true when it starts a streak (the one to log).
    pub(crate) fn failed(&mut self) -> bool {
        self.0 += 1;
        self.0 == 1
    }

    /// Records a success; the length of the streak it ended, if any.
    pub(crate) fn succeeded(&mut self) -> Option<u64> {
        let ended = std::mem::take(&mut self.0);
        (ended > 0).then_some(ended)
    }

    /// Failures since the last success.
    pub(crate) fn length(&self) -> u64 {
        self.0
    }
}
