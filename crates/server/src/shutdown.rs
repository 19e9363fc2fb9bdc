//! The signals that stop a node: SIGTERM (orchestrators) and SIGINT (Ctrl-C).

use std::future::Future;

/// Starts listening for SIGTERM and SIGINT at once, and returns a future that completes on the
/// first of them and names it.
///
/// Listening starts at the call, not at the first poll: a node reports itself ready before it
/// waits for a signal, and a SIGTERM sent in between must stop it gracefully, not kill it with
/// the signal's default action (exit status 143, no drain). Call it before serving.
pub(crate) fn listen() -> impl Future<Output = &'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                },
                (term, int) => {
                    let error = term.err().or(int.err()).map(|e| e.to_string());
                    tracing::warn!(
                        error,
                        "cannot listen for SIGTERM; only Ctrl-C stops this node"
                    );
                    let _ = tokio::signal::ctrl_c().await;
                    "SIGINT"
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
