//! `bare-axum`: the floor. An axum server that answers `GET /api/{group}/{key}` with a
//! constant, so a request costs only what tokio, hyper and axum routing cost.
//!
//! It doubles as the slow origin of the all-miss run: `GET /objects/{key}` answers a value
//! made from the key after `--delay`, standing in for the database a cache sits in front of.
//! The origin counts what it serves, for the chaos runs to tell how often each key was loaded:
//! `GET /loads` answers `{"requests":N,"keys":K}` (K distinct keys) since the last
//! `DELETE /loads`, and `GET /loads/keys` answers the count of each key. The counts grow with the keys asked for, which is the harness's own bounded
//! key set; this program listens on loopback, or on a host's address inside a network-namespace
//! lab (`geecache_bench_e2e::hosts`), and nowhere else.
//!
//! It prints `listening on http://ADDR` on stdout once bound, like `geecache serve`.

use std::collections::HashMap;
use std::hash::BuildHasher as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::routing::get;
use clap::Parser;
use geecache_bench_e2e::duration;

/// A constant HTTP server on loopback.
#[derive(Debug, Parser)]
#[command(name = "bare-axum", version, about)]
struct Args {
    /// Address to listen on (loopback, or a host's address inside a network-namespace lab);
    /// port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// How long `GET /objects/{key}` waits before answering.
    #[arg(long, default_value = "1ms", value_parser = duration::parse)]
    delay: Duration,

    /// Tokio worker threads [default: one per core, as `geecache serve` uses without `--threads`].
    #[arg(long)]
    threads: Option<usize>,

    /// The share of keys, in percent, that `GET /objects/{key}` answers `404` for (after
    /// `--delay`, and counted as loads like the others): a source without some of the keys
    /// asked for. Which keys is decided by a hash of the key, the same in every run.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    missing_percent: u8,
}

/// The answer of every `/api` request: the size and shape of a row of geecache's demo table,
/// so both servers write a body of about the same length.
const CONSTANT: &str = r#"{"player":"player-000000","score":12345,"level":42}"#;

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare-axum: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    // Loopback, or a lab host's address, which exists only inside the lab's namespaces.
    let ip = args.listen.ip();
    if !ip.is_loopback() && !geecache_bench_e2e::hosts::is_lab_address(ip) {
        bail!(
            "--listen {} is neither a loopback address nor a lab host's",
            args.listen
        );
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: &Args) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/api/{group}/{key}", get(constant))
        .route("/objects/{key}", get(object))
        .route("/loads", get(loads).delete(reset_loads))
        .route("/loads/keys", get(loads_per_key))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(Origin {
            delay: args.delay,
            missing_percent: args.missing_percent,
            loads: Arc::default(),
        });
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    axum::serve(listener, app)
        .with_graceful_shutdown(stop_signal())
        .await
        .context("server failed")
}

async fn constant() -> ([(header::HeaderName, &'static str); 1], &'static str) {
    // The same content type geecache's client route answers with.
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        CONSTANT,
    )
}

/// The origin's settings and what it has served.
#[derive(Clone)]
struct Origin {
    delay: Duration,
    /// Keys answered `404`, in percent.
    missing_percent: u8,
    /// Requests per key since the last reset.
    loads: Arc<Mutex<HashMap<String, u64>>>,
}

async fn object(
    State(origin): State<Origin>,
    Path(key): Path<String>,
) -> Result<String, StatusCode> {
    tokio::time::sleep(origin.delay).await;
    let missing = is_missing(&key, origin.missing_percent);
    let value = format!(r#"{{"key":"{key}","value":{}}}"#, key.len());
    *(origin.loads.lock().unwrap_or_else(PoisonError::into_inner))
        .entry(key)
        .or_default() += 1;
    if missing {
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(value)
}

/// Whether `key` is one of the `percent` in a hundred keys the origin does not have.
fn is_missing(key: &str, percent: u8) -> bool {
    // SipHash with fixed keys: the same keys are missing in every run of this build.
    let hash = std::hash::BuildHasherDefault::<std::hash::DefaultHasher>::default().hash_one(key);
    hash % 100 < u64::from(percent)
}

async fn loads(State(origin): State<Origin>) -> Json<serde_json::Value> {
    let loads = origin.loads.lock().unwrap_or_else(PoisonError::into_inner);
    Json(serde_json::json!({
        "requests": loads.values().sum::<u64>(),
        "keys": loads.len(),
    }))
}

/// Every key served since the last reset, with how many times: the soak's per-key check.
async fn loads_per_key(State(origin): State<Origin>) -> Json<HashMap<String, u64>> {
    Json(
        origin
            .loads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
    )
}

async fn reset_loads(State(origin): State<Origin>) -> &'static str {
    origin
        .loads
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    "reset\n"
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_missing;

    #[test]
    fn the_missing_share_is_what_was_asked_for() {
        let keys: Vec<String> = (0..10_000).map(|i| format!("key-{i:06}")).collect();
        let share = |percent| keys.iter().filter(|k| is_missing(k, percent)).count();
        assert_eq!(share(0), 0);
        assert_eq!(share(100), keys.len());
        let thirty = share(30);
        assert!((2_700..=3_300).contains(&thirty), "{thirty} of 10,000");
        // The same keys every time: a key missing once is missing always.
        assert!(keys.iter().all(|k| is_missing(k, 30) == is_missing(k, 30)));
    }
}
