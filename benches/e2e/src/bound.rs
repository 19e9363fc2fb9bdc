//! The fewest peer fetches per request that any hot-cache admission rule can reach on the
//! settled warm run: the figure a measured one is read against.
//!
//! On the warm run every request draws its key from the same Zipf distribution, independently
//! of the others (the independent reference model). Under that model, the most hits a cache of
//! `C` entries can expect without knowing the future come from holding the `C` most probable
//! keys, whatever the rule that chose them (Aho, Denning and Ullman's A0). A node of the warm
//! run keeps every key it owns in its main cache (one it dropped would be loaded from the
//! origin again), so its hot cache has what is left of its budget, and its requests for other
//! nodes' keys that this cannot hold are peer fetches under any admission rule.
//!
//! ```
//! use geecache_bench_e2e::bound::{least_peer_fetches, Warm};
//!
//! let warm = Warm { keys: 1_000, zipf: 0.99, budget_bytes: 40_000, entry_bytes: 60.0 };
//! // Two nodes, keys shared by parity: each keeps its 500 keys (30,000 bytes) and has room
//! // for 166 hot copies of the other's.
//! let fetches = least_peer_fetches(&warm, 2, |key| (key % 2) as usize);
//! assert!(fetches > 0.0 && fetches < 0.5, "{fetches}");
//! ```

/// The warm run's load and each node's budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Warm {
    /// Keys `0..keys`; key `i` has Zipf rank `i + 1`, as `loadgen --mode zipf` draws them.
    pub keys: u64,
    /// The Zipf exponent.
    pub zipf: f64,
    /// Each node's cache budget, main and hot together.
    pub budget_bytes: u64,
    /// What one entry weighs in that budget, on average.
    pub entry_bytes: f64,
}

/// Peer fetches per client request when every node's hot cache holds the most requested keys
/// of other nodes that fit the budget its own keys leave, with requests spread evenly over
/// `nodes` nodes and `owner` giving each key's node (`0..nodes`).
///
/// # Panics
///
/// If `owner` names a node outside `0..nodes`.
#[must_use]
#[allow(clippy::cast_precision_loss)] // counts of keys and bytes far below 2^52
pub fn least_peer_fetches(warm: &Warm, nodes: usize, owner: impl Fn(u64) -> usize) -> f64 {
    if nodes == 0 || warm.keys == 0 {
        return 0.0;
    }
    let weights: Vec<f64> = (1..=warm.keys)
        .map(|rank| (rank as f64).powf(-warm.zipf))
        .collect();
    let total: f64 = weights.iter().sum();
    let owners: Vec<usize> = (0..warm.keys).map(&owner).collect();
    let mut own = vec![0_u64; nodes];
    for &node in &owners {
        own[node] += 1;
    }
    let mut fetches = 0.0;
    for (node, &owned) in own.iter().enumerate() {
        let left = warm.budget_bytes as f64 - owned as f64 * warm.entry_bytes;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let hot = (left / warm.entry_bytes).max(0.0) as usize;
        // Keys are in rank order, so the other nodes' keys come most requested first.
        let missed: f64 = (owners.iter().zip(&weights))
            .filter(|(o, _)| **o != node)
            .skip(hot)
            .map(|(_, w)| w)
            .sum();
        fetches += missed / total / nodes as f64;
    }
    fetches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warm(budget_bytes: u64) -> Warm {
        Warm {
            keys: 300,
            zipf: 0.99,
            budget_bytes,
            entry_bytes: 10.0,
        }
    }

    fn by_thirds(key: u64) -> usize {
        (key % 3) as usize
    }

    #[test]
    fn a_budget_for_every_key_leaves_no_fetch() {
        assert_eq!(least_peer_fetches(&warm(3_000), 3, by_thirds), 0.0);
    }

    #[test]
    fn a_budget_for_its_own_keys_only_fetches_every_other_key() {
        // No hot copies: two requests in three are for another node's key.
        let fetches = least_peer_fetches(&warm(1_000), 3, by_thirds);
        assert!((fetches - 2.0 / 3.0).abs() < 0.01, "{fetches}");
    }

    #[test]
    fn more_budget_never_fetches_more() {
        let fetched: Vec<f64> = (1_000..=3_000)
            .step_by(100)
            .map(|b| least_peer_fetches(&warm(b), 3, by_thirds))
            .collect();
        assert!(fetched.windows(2).all(|w| w[1] <= w[0]), "{fetched:?}");
    }

    /// The bound keeps the most requested keys: no other choice of as many hot keys, tried
    /// exhaustively on a small case, misses less.
    #[test]
    fn no_other_hot_set_of_the_same_size_misses_less() {
        let warm = Warm {
            keys: 8,
            zipf: 0.8,
            budget_bytes: 60,
            entry_bytes: 10.0,
        };
        let owner = |key: u64| usize::from(key >= 4);
        let bound = least_peer_fetches(&warm, 2, owner);
        let p: Vec<f64> = (1..=8).map(|r| f64::from(r).powf(-0.8)).collect();
        let total: f64 = p.iter().sum();
        // Each node owns 4 keys and has room for 2 of the other's 4.
        let mut best = f64::MAX;
        for a in 0_u32..16 {
            for b in 0_u32..16 {
                if a.count_ones() != 2 || b.count_ones() != 2 {
                    continue;
                }
                let missed = |held: u32, others: &[f64]| -> f64 {
                    (others.iter().enumerate())
                        .filter(|(i, _)| held & (1 << i) == 0)
                        .map(|(_, w)| w)
                        .sum()
                };
                let fetches = (missed(a, &p[4..]) + missed(b, &p[..4])) / total / 2.0;
                best = best.min(fetches);
            }
        }
        assert!((bound - best).abs() < 1e-12, "{bound} against {best}");
    }
}
