//! The `geecache` binary's code: run a cache node (`serve`), watch a three-node cluster at
//! work (`demo`), or fetch values from a running node (`get`).
//!
//! The binary wires the library crates together: a `geecache_group::Group` per configured
//! group, fed by a data source (`demo`, `dir:PATH` or `http:URL`), reached by peers and clients
//! through `geecache_transport_http` or `geecache_transport_grpc`, with Prometheus metrics,
//! health and readiness routes, and graceful shutdown. docs/operations.md is the operator's
//! manual.
//!
//! This is a library only so that code outside the binary can reach its parsers: [`run`] is
//! the binary's whole `main`, and the fuzz targets call a few entry points that are not part of
//! the API. To embed a cache in a program, use the `geecache` crate instead.
//!
//! ```no_run
//! // What `main` does: parse the process's arguments and run the command they name.
//! let status = geecache_server::run();
//! # let _ = status;
//! ```

#![deny(missing_docs)]

mod cli;
mod client;
mod config;
mod demo;
mod get;
mod get_many;
mod membership;
mod metrics;
mod node;
mod serve;
mod shutdown;
mod source;
mod tls;

#[doc(hidden)]
pub mod fuzzing;

#[cfg(test)]
mod tests;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use cli::Command;

/// Parses the process's arguments and runs the command they name: the `geecache` binary's
/// `main`. The exit code is 0 on success and 2 for settings that cannot run; docs/operations.md
/// lists the others.
#[must_use]
pub fn run() -> ExitCode {
    let cli = cli::parse();
    match &cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Get(args) => get::run(args),
    }
}

/// The name of the runtime's threads: its workers, and its blocking pool's threads too.
const WORKER_THREAD_NAME: &str = "geecache-worker";

/// The threads a command's runtime runs its tasks on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Workers {
    /// The calling thread alone (a short-lived client command).
    CallingThread,
    /// A pool of worker threads: this many, or (`None`) one per CPU the process may use.
    Pool(Option<usize>),
}

/// The tokio runtime a command runs on, or `None` after saying on stderr why it could not start.
pub(crate) fn start_runtime(workers: Workers) -> Option<tokio::runtime::Runtime> {
    let mut builder = match workers {
        Workers::CallingThread => tokio::runtime::Builder::new_current_thread(),
        Workers::Pool(threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            // A name of at most 15 bytes, which the kernel keeps whole: it is what `top -H`
            // and `/proc/PID/task/*/comm` show.
            builder.thread_name(WORKER_THREAD_NAME);
            if let Some(n) = threads {
                builder.worker_threads(n);
            }
            builder
        }
    };
    match builder.enable_all().build() {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            eprintln!("geecache: cannot start the async runtime: {e}");
            None
        }
    }
}

/// Stops `runtime` without waiting for its blocking threads.
///
/// Dropping a runtime waits for every blocking thread to return, and one stuck on a file (a
/// FIFO, a hung mount) never does: the node would log "drained; bye" and never exit. This is
/// called once the drain is over, when nothing is left to wait for; the stuck threads end with
/// the process.
pub(crate) fn stop_runtime(runtime: tokio::runtime::Runtime) {
    runtime.shutdown_background();
}

/// Logs go to stderr (stdout carries results: the listening line, values, the demo's
/// tables), as `key=value` lines filtered by `filter`.
pub(crate) fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into log files or collectors.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
