//! Property tests of the ring's consistency guarantees, for each hasher (including one whose
//! points collide often, so the tie rule is part of every property) and each assignment rule.

use std::collections::HashSet;

use geecache_consistenthash::{Assignment, Crc32, Murmur3, Ring, RingHash};
use proptest::prelude::*;

type HashFn = fn(&[u8]) -> u32;

fn crc(bytes: &[u8]) -> u32 {
    Crc32.hash(bytes)
}

fn murmur(bytes: &[u8]) -> u32 {
    Murmur3.hash(bytes)
}

/// Only 64 distinct ring positions: equal points are the rule, not the exception.
fn coarse(bytes: &[u8]) -> u32 {
    Murmur3.hash(bytes) % 64
}

/// A hasher and an assignment rule.
#[derive(Clone, Copy, Debug)]
struct Config(HashFn, Assignment);

fn config() -> impl Strategy<Value = Config> {
    let hasher = prop_oneof![
        Just(crc as HashFn),
        Just(murmur as HashFn),
        Just(coarse as HashFn)
    ];
    let assignment = prop_oneof![Just(Assignment::Successor), Just(Assignment::Nearest)];
    (hasher, assignment).prop_map(|(h, a)| Config(h, a))
}

/// Distinct member names, in a random order.
fn members(range: std::ops::Range<usize>) -> impl Strategy<Value = Vec<String>> {
    prop::collection::hash_set("[a-z0-9:/.]{1,24}", range)
        .prop_map(|set| set.into_iter().collect::<Vec<_>>())
        .prop_shuffle()
}

fn keys() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), 1..200)
}

fn empty(Config(hash, assignment): Config, replicas: usize) -> Ring<HashFn> {
    Ring::builder()
        .replicas(replicas)
        .hasher(hash)
        .assignment(assignment)
        .build()
}

fn ring(config: Config, replicas: usize, members: &[String]) -> Ring<HashFn> {
    let mut ring = empty(config, replicas);
    ring.add(members.iter().cloned());
    ring
}

/// Whether two different members have a point at the same hash (then the tie rule, which
/// depends on insertion order, decides some keys).
fn has_cross_member_collision(ring: &Ring<HashFn>) -> bool {
    let points: Vec<(u32, &str)> = ring.points().collect();
    points
        .windows(2)
        .any(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_key_maps_to_a_member(
        config in config(),
        replicas in 1..80usize,
        members in members(1..10),
        keys in keys(),
    ) {
        let ring = ring(config, replicas, &members);
        for key in &keys {
            let owner = ring.get(key);
            prop_assert!(owner.is_some_and(|m| members.iter().any(|x| x == m)), "{:?}", owner);
        }
    }

    #[test]
    fn get_is_deterministic_and_independent_of_insertion_order(
        config in config(),
        replicas in 1..80usize,
        members in members(1..10),
        keys in keys(),
    ) {
        let forward = ring(config, replicas, &members);
        prop_assume!(!has_cross_member_collision(&forward));
        let mut reversed: Vec<String> = members.clone();
        reversed.reverse();
        let backward = ring(config, replicas, &reversed);
        let mut one_by_one = empty(config, replicas);
        for m in &members {
            one_by_one.add([m.as_str()]);
        }
        for key in &keys {
            let owner = forward.get(key);
            prop_assert_eq!(owner, forward.get(key));
            prop_assert_eq!(owner, backward.get(key));
            prop_assert_eq!(owner, one_by_one.get(key));
        }
    }

    #[test]
    fn removing_a_member_moves_only_its_keys(
        config in config(),
        replicas in 1..80usize,
        members in members(2..10),
        victim in any::<prop::sample::Index>(),
        keys in keys(),
    ) {
        let before = ring(config, replicas, &members);
        let victim = victim.get(&members).as_str();
        let mut after = before.clone();
        prop_assert!(after.remove(victim));
        prop_assert!(!after.contains(victim));
        for key in &keys {
            let (old, new) = (before.get(key), after.get(key));
            prop_assert_ne!(new, Some(victim));
            if old != Some(victim) {
                prop_assert_eq!(new, old, "a key of another member moved");
            }
        }
    }

    #[test]
    fn adding_a_member_moves_keys_only_to_it(
        config in config(),
        replicas in 1..80usize,
        mut members in members(2..11),
        keys in keys(),
    ) {
        let newcomer = members.pop().expect("at least two members");
        let before = ring(config, replicas, &members);
        let mut after = before.clone();
        after.add([newcomer.as_str()]);
        for key in &keys {
            let (old, new) = (before.get(key), after.get(key));
            prop_assert!(new == old || new == Some(newcomer.as_str()), "{:?} -> {:?}", old, new);
        }
    }

    #[test]
    fn re_adding_a_member_changes_nothing(
        config in config(),
        replicas in 1..40usize,
        members in members(1..8),
        again in any::<prop::sample::Index>(),
        keys in keys(),
    ) {
        let before = ring(config, replicas, &members);
        let mut after = before.clone();
        after.add([again.get(&members).as_str()]);
        prop_assert_eq!(after.points().collect::<Vec<_>>(), before.points().collect::<Vec<_>>());
        for key in &keys {
            prop_assert_eq!(after.get(key), before.get(key));
        }
    }

    #[test]
    fn set_is_clear_then_add(
        config in config(),
        replicas in 1..40usize,
        first in members(0..6),
        second in members(0..6),
    ) {
        let mut ring = ring(config, replicas, &first);
        ring.set(second.iter().cloned());
        let fresh = self::ring(config, replicas, &second);
        prop_assert_eq!(ring.members().collect::<Vec<_>>(), fresh.members().collect::<Vec<_>>());
        prop_assert_eq!(ring.points().collect::<Vec<_>>(), fresh.points().collect::<Vec<_>>());
        let unique: HashSet<&str> = ring.members().collect();
        prop_assert_eq!(unique.len(), ring.len());
    }
}

/// What `successors` must yield, written the plain way: the owner, then the members of the
/// points clockwise from the key's position (the first point at or after its hash), each once.
fn successors_model(ring: &Ring<HashFn>, hash: HashFn, key: &[u8]) -> Vec<String> {
    let Some(owner) = ring.get(key) else {
        return Vec::new();
    };
    let points: Vec<(u32, &str)> = ring.points().collect();
    let h = hash(key);
    let start = points.iter().position(|&(p, _)| p >= h).unwrap_or(0);
    let mut order = vec![owner.to_owned()];
    for i in 0..points.len() {
        let member = points[(start + i) % points.len()].1;
        if !order.iter().any(|m| m == member) {
            order.push(member.to_owned());
        }
    }
    order
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    // Successor routing relies on this: every node derives the same fallback order, the owner
    // comes first, and every member appears exactly once.
    #[test]
    fn successors_are_the_owner_then_each_member_once_clockwise(
        config in config(),
        replicas in 1..40usize,
        members in members(0..12),
        keys in keys(),
    ) {
        let ring = ring(config, replicas, &members);
        for key in &keys {
            let order: Vec<String> = ring.successors(key).map(str::to_owned).collect();
            prop_assert_eq!(&order, &successors_model(&ring, config.0, key));
            prop_assert_eq!(order.len(), members.len());
            prop_assert_eq!(ring.successors(key).len(), members.len());
            prop_assert_eq!(order.first().map(String::as_str), ring.get(key));
            let distinct: HashSet<&String> = order.iter().collect();
            prop_assert_eq!(distinct.len(), order.len());
        }
    }
}

// Past 256 members the iterator stops using its inline bitset; the order must not change.
#[test]
fn successors_of_a_ring_of_hundreds_match_the_model() {
    let members: Vec<String> = (0..300).map(|i| format!("node-{i:03}")).collect();
    for config in [
        Config(crc as HashFn, Assignment::Successor),
        Config(coarse as HashFn, Assignment::Nearest),
    ] {
        let ring = ring(config, 3, &members);
        for key in ["a", "user:1", "k-300", ""] {
            let order: Vec<String> = ring.successors(key).map(str::to_owned).collect();
            assert_eq!(
                order,
                successors_model(&ring, config.0, key.as_bytes()),
                "{key:?}"
            );
            assert_eq!(order.len(), 300);
        }
    }
}

#[test]
fn an_empty_ring_has_no_successors() {
    let ring = Ring::default();
    assert_eq!(ring.successors("k").next(), None);
    assert_eq!(ring.successors("k").len(), 0);
}
