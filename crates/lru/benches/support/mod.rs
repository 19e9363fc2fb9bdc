//! Workload generation shared by the benchmarks: seeded, so every run measures the same keys.

#![allow(dead_code)] // each bench binary uses part of this module

use rand::distr::{Alphanumeric, Distribution};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rand_distr::Zipf;

pub(crate) const SEED: u64 = 0x6765_6563_6163_6865; // "geecache"

/// `n` distinct keys of 16 to 32 ASCII bytes.
pub(crate) fn string_keys(n: usize, seed: u64) -> Vec<String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    while keys.len() < n {
        let len = rng.random_range(16..=32);
        let key: String = (0..len)
            .map(|_| char::from(Alphanumeric.sample(&mut rng)))
            .collect();
        if seen.insert(key.clone()) {
            keys.push(key);
        }
    }
    keys
}

/// `n` indices below `bound`, uniformly at random.
pub(crate) fn uniform_indices(n: usize, bound: usize, seed: u64) -> Vec<usize> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(0..bound)).collect()
}

/// One operation of the concurrent workload: a key, and whether it is a read or a write.
#[derive(Clone, Copy)]
pub(crate) struct Op {
    pub(crate) key: u64,
    pub(crate) read: bool,
}

/// `n` operations over `keys` keys drawn from Zipf(`s`), `read_percent` of them reads.
///
/// Ranks are scrambled (multiplied by an odd constant) so that hot keys are not small
/// consecutive integers, which some hashers would treat kindly.
pub(crate) fn zipf_ops(n: usize, keys: u64, s: f64, read_percent: u32, seed: u64) -> Vec<Op> {
    let mut rng = SmallRng::seed_from_u64(seed);
    #[allow(clippy::cast_precision_loss)]
    let zipf = Zipf::new(keys as f64, s).expect("valid Zipf parameters");
    (0..n)
        .map(|_| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let rank = zipf.sample(&mut rng) as u64;
            Op {
                key: rank.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                read: rng.random_range(0..100) < read_percent,
            }
        })
        .collect()
}
