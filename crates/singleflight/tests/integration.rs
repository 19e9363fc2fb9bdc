//! Behaviour of `Group` under real runtimes: collapsing, parallelism across keys, cancellation,
//! panics, shared errors, `forget`, and the `Send` guarantee.

#[path = "integration/cancel.rs"]
mod cancel;
#[path = "integration/collapse.rs"]
mod collapse;
#[path = "integration/errors.rs"]
mod errors;
#[path = "integration/forget.rs"]
mod forget;
#[path = "integration/panics.rs"]
mod panics;
#[path = "integration/send.rs"]
mod send;

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

/// Polls `future` once with the current task's waker.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

/// Polls `future` once with the current task's waker, catching a panic.
async fn poll_catching<F: Future + Unpin>(future: &mut F) -> std::thread::Result<Poll<F::Output>> {
    poll_fn(|cx| {
        let poll = || Pin::new(&mut *future).poll(cx);
        Poll::Ready(std::panic::catch_unwind(std::panic::AssertUnwindSafe(poll)))
    })
    .await
}

/// Yields to the runtime until `ready()` holds, at most `rounds` times; whether it held.
///
/// Used to wait until spawned callers have joined a flight (observed through `Group::callers`):
/// a bounded count of scheduler turns, not a sleep.
async fn yield_until(rounds: usize, mut ready: impl FnMut() -> bool) -> bool {
    for _ in 0..rounds {
        if ready() {
            return true;
        }
        tokio::task::yield_now().await;
    }
    ready()
}

/// Marks the panics that tests cause on purpose, so the hook below keeps them off stderr.
const DELIBERATE: &str = "deliberate panic";

/// Installs (once) a panic hook that is silent for `DELIBERATE` panics only.
fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if !message.is_some_and(|m| m.contains(DELIBERATE)) {
                report(info);
            }
        }));
    });
}
