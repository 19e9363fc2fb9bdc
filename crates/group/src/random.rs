use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;

/// A source of random numbers, injectable so tests can decide hot-cache admission.
pub(crate) type RandomSource = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The default source: a per-thread xorshift64*, seeded from the OS-keyed `RandomState`.
///
/// Admission to the hot cache needs a fair coin, not a cryptographic one; a thread-local
/// generator costs a few nanoseconds and no lock, where a shared one would be a contended line.
pub(crate) fn default_source() -> RandomSource {
    Arc::new(next)
}

fn next() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(0u64) | 1);
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}
