//! The built-in table: synthetic player rows, slow on purpose, that count their own loads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use geecache_group::{LoadError, Loaded};

/// Rows in the default table.
pub(crate) const DEFAULT_ROWS: u32 = 100_000;
/// Simulated latency of one load in the default table.
pub(crate) const DEFAULT_DELAY: Duration = Duration::from_millis(2);

/// A read-only table of `rows` synthetic rows keyed `player-000000`, `player-000001`, ...
///
/// It stands in for a slow database: every load sleeps `delay`. It also counts how often each
/// row was loaded, across every clone, so a demo running several nodes on one table can prove
/// that the cluster loaded each key once.
#[derive(Clone, Debug)]
pub(crate) struct DemoTable {
    rows: u32,
    delay: Duration,
    loads: Arc<[AtomicU32]>,
}

/// Configures a [`DemoTable`].
#[derive(Debug)]
#[must_use]
pub(crate) struct DemoTableBuilder {
    rows: u32,
    delay: Duration,
}

impl DemoTableBuilder {
    /// How many rows (default 100 000).
    pub(crate) fn rows(mut self, rows: u32) -> Self {
        self.rows = rows;
        self
    }

    /// How long each load takes (default 2 ms).
    pub(crate) fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub(crate) fn build(self) -> DemoTable {
        DemoTable {
            rows: self.rows,
            delay: self.delay,
            loads: (0..self.rows).map(|_| AtomicU32::new(0)).collect(),
        }
    }
}

/// What the load counters say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LoadSummary {
    /// Rows loaded at least once.
    pub(crate) distinct_keys: u64,
    /// Loads in total.
    pub(crate) total_loads: u64,
    /// The most loads of any one row.
    pub(crate) max_loads_per_key: u32,
}

impl DemoTable {
    pub(crate) fn builder() -> DemoTableBuilder {
        DemoTableBuilder {
            rows: DEFAULT_ROWS,
            delay: DEFAULT_DELAY,
        }
    }

    /// The number of rows.
    pub(crate) fn rows(&self) -> u32 {
        self.rows
    }

    /// The key of row `i`.
    pub(crate) fn key(i: u32) -> String {
        format!("player-{i:06}")
    }

    /// The row a key names, if it names one (only the canonical spelling does).
    pub(crate) fn row_of(&self, key: &str) -> Option<u32> {
        let digits = key.strip_prefix("player-")?;
        if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let i: u32 = digits.parse().ok()?;
        // "player-0000001" would parse to row 1 too; only one spelling may name a row, or
        // the cache would hold the same row under several keys.
        (i < self.rows && Self::key(i) == key).then_some(i)
    }

    /// The value of row `i`: a small JSON object, the same on every node and every run.
    pub(crate) fn value(i: u32) -> String {
        // A fixed mixing function, not a seeded RNG: the value must be computable by the
        // load generator to check every answer it gets.
        let h = u64::from(i)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
        format!(
            "{{\"player\":\"{}\",\"score\":{},\"level\":{}}}",
            Self::key(i),
            h % 100_000,
            (h >> 32) % 100 + 1
        )
    }

    /// Loads a row: sleeps the simulated delay, counts the load, returns the value.
    pub(crate) async fn get(&self, key: &str) -> Result<Loaded, LoadError> {
        let Some(i) = self.row_of(key) else {
            return Err(LoadError::NotFound);
        };
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if let Some(count) = self.loads.get(i as usize) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Loaded::from(Self::value(i)))
    }

    /// The load count of every row, in row order.
    pub(crate) fn load_counts(&self) -> Vec<u32> {
        self.loads
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// How often rows were loaded, across every clone of this table.
    pub(crate) fn load_summary(&self) -> LoadSummary {
        let mut summary = LoadSummary::default();
        for count in self.loads.iter() {
            let n = count.load(Ordering::Relaxed);
            if n > 0 {
                summary.distinct_keys += 1;
                summary.total_loads += u64::from(n);
                summary.max_loads_per_key = summary.max_loads_per_key.max(n);
            }
        }
        summary
    }
}
