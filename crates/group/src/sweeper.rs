use std::sync::Weak;
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;

use crate::group::Group;

/// Starts the task that purges expired entries, and drops values of keys a change of membership
/// gave away ([`Group::settle`]), every `every`, if a tokio runtime is running.
///
/// The task holds the group weakly, so it never keeps a dropped group alive; the group aborts
/// it on drop as well, so it stops at once rather than at its next tick.
pub(crate) fn spawn(group: Weak<Group>, every: Duration) -> Option<AbortHandle> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let task = runtime.spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate; nothing can have expired yet
        loop {
            ticks.tick().await;
            let Some(group) = group.upgrade() else { break };
            let purged = group.purge_expired();
            if purged > 0 {
                tracing::debug!(group = group.name(), purged, "purged expired entries");
            }
            let dropped = group.settle();
            if dropped > 0 {
                tracing::info!(
                    group = group.name(),
                    dropped,
                    "dropped values of keys now owned by other nodes"
                );
            }
        }
    });
    Some(task.abort_handle())
}
