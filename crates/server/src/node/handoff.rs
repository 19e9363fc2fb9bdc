//! The hand-off of a node that leaves: it gives its values to their keys' next owners, then
//! keeps answering while those owners peek at it.
//!
//! A leaving node has left the membership, so its peers own its keys now. Stopping at once
//! would send every one of them back to the source: a rolling restart would reload the whole
//! cache. So it first pushes each value of its main cache to the key's next owner
//! (`Group::hand_over`). What did not go (the time ran out, a peer refused) can still be taken
//! by a peek: for a while after the change, a new owner asks the previous one (this node)
//! before loading. Waiting a fixed time for those would hold every shutdown, even when no peer
//! peeks (hand-off off, no traffic); so the node waits while peeks keep arriving.

use std::sync::Arc;
use std::time::Duration;

use geecache_group::Registry;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::membership::PeerSink;

/// The least time given to peers to hear of the change (etcd's watch delivers it in
/// milliseconds) and send their first peeks.
const FIRST_PEEKS: Duration = Duration::from_secs(2);
/// A quiet spell this long, with no peek served, ends the hand-off.
const QUIET: Duration = Duration::from_secs(1);
/// How often the peek counters are read.
const EVERY: Duration = Duration::from_millis(100);

/// Hands every group's values over, then answers peeks ([`serve_peeks`]), all within `budget`.
pub(crate) async fn leave(registry: &Registry, budget: Duration) {
    let start = Instant::now();
    for group in registry.all() {
        let left = budget.saturating_sub(start.elapsed());
        let handed = group.hand_over(left).await;
        tracing::info!(
            group = group.name(),
            sent = handed.sent,
            kept = handed.kept,
            "handed values over to their keys' next owners"
        );
    }
    serve_peeks(registry, budget.saturating_sub(start.elapsed())).await;
}

/// Returns once no peek has been served for [`QUIET`] (and at least [`FIRST_PEEKS`] have
/// passed), or after `budget` at the most.
async fn serve_peeks(registry: &Registry, budget: Duration) {
    let start = Instant::now();
    let first = FIRST_PEEKS.min(budget);
    let mut served = peeks_served(registry);
    let mut last_peek = start;
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let now = ticks.tick().await;
        if now.duration_since(start) >= budget {
            tracing::info!(?budget, "hand-off cut short: peers were still taking keys");
            return;
        }
        let seen = peeks_served(registry);
        if seen != served {
            served = seen;
            last_peek = now;
        }
        if now.duration_since(start) >= first && now.duration_since(last_peek) >= QUIET {
            tracing::info!(
                took = ?now.duration_since(start),
                "hand-off done: peers stopped taking keys"
            );
            return;
        }
    }
}

fn peeks_served(registry: &Registry) -> u64 {
    registry.all().iter().map(|g| g.stats().peeks_served).sum()
}

/// The pool (of either transport) as the membership's sink: after each change of members, it
/// also pushes the values of keys this node gave away to their new owners (`Group::rebalance`),
/// in the background, so a node that joins or comes back gets its keys at once.
///
/// One task does the pushing, one change at a time; changes that come while it works are
/// folded into one more round. Stopping a round half-way instead would drop calls in flight,
/// and a call dropped unfinished counts against the peer's health, as a timeout does.
pub(crate) struct Rebalancing {
    pool: Arc<dyn PeerSink>,
    changed: watch::Sender<u64>,
}

impl Rebalancing {
    /// `budget` bounds each round; zero turns the pushes off (as `--handoff 0s` turns the
    /// hand-off off). Call within a tokio runtime: the pushing task starts here.
    pub(crate) fn new(pool: Arc<dyn PeerSink>, registry: Registry, budget: Duration) -> Self {
        let (changed, mut rounds) = watch::channel(0);
        if !budget.is_zero() {
            tokio::spawn(async move {
                // Ends when the sink is dropped with its node.
                while rounds.changed().await.is_ok() {
                    for group in registry.all() {
                        let handed = group.rebalance(budget).await;
                        if handed.sent + handed.kept > 0 {
                            tracing::info!(
                                group = group.name(),
                                sent = handed.sent,
                                kept = handed.kept,
                                "pushed the values of keys given away to their new owners"
                            );
                        }
                    }
                }
            });
        }
        Rebalancing { pool, changed }
    }
}

impl PeerSink for Rebalancing {
    fn set_peers(&self, peers: &[String]) -> Result<(), String> {
        let mut before = self.pool.peers();
        self.pool.set_peers(peers)?;
        let mut after = self.pool.peers();
        before.sort_unstable();
        after.sort_unstable();
        if before != after {
            self.changed.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    fn peers(&self) -> Vec<String> {
        self.pool.peers()
    }
}
