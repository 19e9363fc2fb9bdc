//! The demo's load generator: Zipf-distributed keys, round-robin over nodes, over HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use indicatif::ProgressBar;
use rand::rngs::SmallRng;
use rand::{RngExt as _, SeedableRng as _};
use rand_distr::Zipf;

use crate::client::{self, HttpClient};
use crate::get::value_url;
use crate::source::DemoTable;

/// When a run ends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stop {
    /// After this many requests.
    Requests(u64),
    /// After this long.
    Elapsed(Duration),
}

/// A workload to run.
#[derive(Clone, Debug)]
pub(crate) struct Workload {
    /// Node base URLs; request `i` goes to `targets[i % len]`.
    pub(crate) targets: Vec<String>,
    /// The group to read.
    pub(crate) group: String,
    /// Keys are rows `0..keys` of the demo table.
    pub(crate) keys: u32,
    /// Zipf exponent.
    pub(crate) zipf: f64,
    /// Requests in flight at once.
    pub(crate) concurrency: u32,
    /// When to stop.
    pub(crate) stop: Stop,
    /// RNG seed; worker `w` uses `seed + w`.
    pub(crate) seed: u64,
    /// Turns `true` to end the run early (Ctrl-C): no request is sent after it, and the run
    /// returns what it saw so far.
    pub(crate) interrupted: tokio::sync::watch::Receiver<bool>,
}

/// What one target saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TargetCounts {
    /// Requests sent to it.
    pub(crate) sent: u64,
    /// Answered 200 with the right value.
    pub(crate) ok: u64,
    /// Answered anything else, or not at all.
    pub(crate) failed: u64,
}

/// What a run saw.
#[derive(Clone, Debug, Default)]
pub(crate) struct Outcome {
    /// Per target, in the order of `Workload::targets`.
    pub(crate) targets: Vec<TargetCounts>,
    /// How long the run took.
    pub(crate) elapsed: Duration,
    /// The first failure, to show the reader why.
    pub(crate) first_error: Option<String>,
}

impl Outcome {
    /// Requests sent.
    pub(crate) fn sent(&self) -> u64 {
        self.targets.iter().map(|t| t.sent).sum()
    }

    /// Requests that failed.
    pub(crate) fn failed(&self) -> u64 {
        self.targets.iter().map(|t| t.failed).sum()
    }
}

#[derive(Default)]
struct Shared {
    next: AtomicU64,
    sent: Vec<AtomicU64>,
    ok: Vec<AtomicU64>,
    failed: Vec<AtomicU64>,
    first_error: std::sync::Mutex<Option<String>>,
}

/// Runs `workload`, ticking `progress` once per request.
pub(crate) async fn run(workload: &Workload, http: &HttpClient, progress: &ProgressBar) -> Outcome {
    let n = workload.targets.len();
    let shared = Arc::new(Shared {
        sent: (0..n).map(|_| AtomicU64::new(0)).collect(),
        ok: (0..n).map(|_| AtomicU64::new(0)).collect(),
        failed: (0..n).map(|_| AtomicU64::new(0)).collect(),
        ..Shared::default()
    });
    let started = Instant::now();
    let deadline = match workload.stop {
        Stop::Elapsed(d) => Some(started + d),
        Stop::Requests(_) => None,
    };
    let limit = match workload.stop {
        Stop::Requests(n) => n,
        Stop::Elapsed(_) => u64::MAX,
    };
    let zipf = Zipf::new(f64::from(workload.keys), workload.zipf)
        .expect("keys >= 1 and a positive exponent are checked by the CLI");
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..workload.concurrency {
        let shared = Arc::clone(&shared);
        let http = http.clone();
        let workload = workload.clone();
        let progress = progress.clone();
        workers.spawn(async move {
            let mut rng = SmallRng::seed_from_u64(workload.seed.wrapping_add(u64::from(w)));
            loop {
                let i = shared.next.fetch_add(1, Ordering::Relaxed);
                if i >= limit
                    || deadline.is_some_and(|d| Instant::now() >= d)
                    || *workload.interrupted.borrow()
                {
                    break;
                }
                let target = (i % workload.targets.len() as u64) as usize;
                // Zipf ranks start at 1; rank 1 (row 0) is the most requested.
                let rank: f64 = rng.sample(zipf);
                let row = (rank as u32).saturating_sub(1).min(workload.keys - 1);
                let key = DemoTable::key(row);
                let url = value_url(&workload.targets[target], &workload.group, &key);
                shared.sent[target].fetch_add(1, Ordering::Relaxed);
                let answer = client::get(&http, &url, None, Duration::from_secs(10), 1 << 20).await;
                let error = match answer {
                    Ok(f) if f.status == StatusCode::OK && f.body == DemoTable::value(row) => None,
                    Ok(f) if f.status == StatusCode::OK => Some(format!("{url}: wrong value")),
                    Ok(f) => Some(format!(
                        "{url}: {} {}",
                        f.status,
                        String::from_utf8_lossy(&f.body).trim()
                    )),
                    Err(e) => Some(format!("{url}: {e}")),
                };
                match error {
                    None => shared.ok[target].fetch_add(1, Ordering::Relaxed),
                    Some(e) => {
                        let mut first = shared
                            .first_error
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        first.get_or_insert(e);
                        shared.failed[target].fetch_add(1, Ordering::Relaxed)
                    }
                };
                progress.inc(1);
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let targets = (0..n)
        .map(|t| TargetCounts {
            sent: shared.sent[t].load(Ordering::Relaxed),
            ok: shared.ok[t].load(Ordering::Relaxed),
            failed: shared.failed[t].load(Ordering::Relaxed),
        })
        .collect();
    let first_error = shared
        .first_error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Outcome {
        targets,
        elapsed: started.elapsed(),
        first_error,
    }
}
