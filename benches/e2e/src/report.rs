//! What one load-generator run measured, as the JSON line `loadgen` prints.

use serde::{Deserialize, Serialize};

/// The result of one `loadgen` run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Requests answered with a 2xx status inside the measured window.
    pub ok: u64,
    /// Of the `ok` requests, those slower than `loadgen --slow-over` (0 without it).
    #[serde(default)]
    pub slow: u64,
    /// Connections the servers closed between requests and that were opened again (a
    /// `Connection: close`, a restart): not failures, no request was lost.
    #[serde(default)]
    pub reconnects: u64,
    /// Requests answered with any other status.
    pub bad_status: u64,
    /// Batch requests (`loadgen --batch`) answered 2xx whose body did not answer every key
    /// asked, in the order asked: a request error, like `bad_status`.
    #[serde(default)]
    pub bad_answers: u64,
    /// Requests that failed on the connection (refused, reset, timed out).
    pub failed: u64,
    /// Connections that could not be (re)established.
    pub connect_failures: u64,
    /// Wall time of the measured window, in seconds.
    pub elapsed_s: f64,
    /// `ok / elapsed_s`.
    pub requests_per_s: f64,
    /// Keys answered with a value in the `ok` requests: one per request for single gets, up
    /// to `--batch` per request for batches.
    #[serde(default)]
    pub keys: u64,
    /// Keys that a batch answered 2xx gave an error for (not found, a failed load): counted
    /// apart from the request errors, since the request as a whole succeeded.
    #[serde(default)]
    pub key_errors: u64,
    /// `keys / elapsed_s`.
    #[serde(default)]
    pub keys_per_s: f64,
    /// Median latency of the 2xx requests, in microseconds.
    pub p50_us: f64,
    /// 90th percentile latency, in microseconds.
    pub p90_us: f64,
    /// 99th percentile latency, in microseconds.
    pub p99_us: f64,
    /// Slowest request, in microseconds.
    pub max_us: f64,
    /// CPU time (user + system) the load generator itself used in the window, in seconds.
    pub loadgen_cpu_s: f64,
    /// Connections kept open.
    pub connections: usize,
    /// Tokio worker threads of the load generator.
    pub threads: usize,
    /// TLS handshakes the load generator finished, warm-up connections included (0 over
    /// plain HTTP).
    #[serde(default)]
    pub tls_handshakes: u64,
    /// Of `tls_handshakes`, those that resumed an earlier session instead of a full
    /// handshake.
    #[serde(default)]
    pub tls_resumed: u64,
}

impl LoadReport {
    /// Every request that did not come back 2xx, or came back 2xx without answering every
    /// key it asked for.
    #[must_use]
    pub fn errors(&self) -> u64 {
        self.bad_status + self.failed + self.bad_answers
    }
}

/// The `q`-quantile (0.0..=1.0) of sorted values, by the nearest-rank method; `None` when empty.
///
/// Nearest rank returns a value that was observed, never an interpolation between two, which
/// is what a latency percentile should be.
#[must_use]
pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let q = q.clamp(0.0, 1.0);
    // ceil(q * n) as a 1-based rank, at least 1.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// The median of `values`: the middle one, or the mean of the middle two when their number is
/// even; `None` when empty or when a value is NaN. Sorts `values` in place.
#[must_use]
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        f64::midpoint(values[mid - 1], values[mid])
    })
}
