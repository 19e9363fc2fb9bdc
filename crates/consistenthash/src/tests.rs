use proptest::prelude::*;

use super::*;
use crate::hash::murmur3_32;
use crate::ring::push_decimal;

#[test]
fn murmur3_matches_reference_vectors() {
    // Published MurmurHash3_x86_32 vectors (smhasher; also in Guava's and mmh3's test suites).
    // They cover every tail length (0 to 3 bytes) and non-zero seeds.
    assert_eq!(murmur3_32(b"", 0), 0);
    assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
    assert_eq!(murmur3_32(b"", 0xffff_ffff), 0x81f1_6f39);
    assert_eq!(murmur3_32(&[0, 0, 0, 0], 0), 0x2362_f9de);
    assert_eq!(murmur3_32(&[0x21, 0x43, 0x65, 0x87], 0), 0xf55b_516b);
    assert_eq!(murmur3_32(&[0x21, 0x43, 0x65], 0), 0x7e4a_8634);
    assert_eq!(murmur3_32(&[0x21, 0x43], 0), 0xa0f7_b07a);
    assert_eq!(murmur3_32(&[0x21], 0), 0x7266_1cf4);
    assert_eq!(
        murmur3_32(&[0x21, 0x43, 0x65, 0x87], 0x5082_edee),
        0x2362_f9de
    );
    assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
    assert_eq!(murmur3_32(b"Hello, world!", 1234), 0xfaf6_cdb3);
    assert_eq!(
        murmur3_32(b"The quick brown fox jumps over the lazy dog", 0),
        0x2e4f_f723
    );
}

#[test]
fn rings_can_be_shared_across_threads() {
    // The HTTP pool keeps a ring in an `Arc` and clones it to rebuild on membership changes.
    fn shareable<T: Send + Sync + Clone + std::fmt::Debug>() {}
    shareable::<Ring>();
    shareable::<Ring<Murmur3>>();
    shareable::<Ring<fn(&[u8]) -> u32>>();
    shareable::<RingBuilder<Murmur3>>();
}

#[test]
fn crc32_is_ieee() {
    // The check value of CRC-32/ISO-HDLC (zlib, Go's crc32.ChecksumIEEE).
    assert_eq!(Crc32.hash(b"123456789"), 0xcbf4_3926);
}

#[test]
fn decimal_matches_format() {
    let mut buf = b"x".to_vec();
    for n in [0, 7, 10, 49, 1234, usize::MAX] {
        buf.truncate(1);
        push_decimal(&mut buf, n);
        assert_eq!(buf, format!("x{n}").into_bytes());
    }
}

#[test]
fn empty_ring_has_no_owner() {
    let mut ring = Ring::default();
    ring.validate();
    assert_eq!(ring.get("k"), None);
    assert!(ring.is_empty());
    ring.add(["a"]);
    ring.remove("a");
    ring.validate();
    assert_eq!(ring.get("k"), None);
    ring.set(Vec::<String>::new());
    assert_eq!(ring.get(""), None);
}

#[test]
fn replicas_zero_means_default_and_huge_is_clamped() {
    assert_eq!(Ring::new(0).replicas(), DEFAULT_REPLICAS);
    assert_eq!(Ring::default().replicas(), 50);
    assert_eq!(Ring::new(usize::MAX).replicas(), MAX_REPLICAS);
    assert_eq!(Ring::balanced().replicas(), BALANCED_REPLICAS);
}

#[test]
fn single_member_owns_everything() {
    let mut ring = Ring::new(1);
    ring.add(["only"]);
    ring.validate();
    for key in ["", "a", "zzzzzz", "\u{0}"] {
        assert_eq!(ring.get(key), Some("only"));
    }
}

#[test]
fn duplicates_are_ignored_and_order_is_insertion_order() {
    let mut ring = Ring::new(3);
    ring.add(["b", "a", "b"]);
    ring.add(["c", "a"]);
    ring.validate();
    assert_eq!(ring.members().collect::<Vec<_>>(), ["b", "a", "c"]);
    assert_eq!(ring.len(), 3);
    assert_eq!(ring.points().len(), 9);
    assert!(ring.contains("a") && !ring.contains("d"));
    assert!(!ring.remove("d"));
    assert!(ring.remove("a"));
    ring.validate();
    assert_eq!(ring.members().collect::<Vec<_>>(), ["b", "c"]);
    ring.set(["x", "y", "x"]);
    ring.validate();
    assert_eq!(ring.members().collect::<Vec<_>>(), ["x", "y"]);
}

#[test]
fn equal_points_go_to_the_member_added_last() {
    // Every point and key hashes to the same value: every tie goes to the latest member.
    let constant = |_: &[u8]| 7u32;
    let mut ring = Ring::with_hasher(2, constant);
    ring.add(["first", "second"]);
    ring.validate();
    assert_eq!(ring.get("k"), Some("second"));
    ring.add(["third"]);
    assert_eq!(ring.get("k"), Some("third"));
    ring.remove("third");
    ring.validate();
    assert_eq!(ring.get("k"), Some("second"));
    ring.remove("second");
    assert_eq!(ring.get("k"), Some("first"));
}

#[test]
fn keys_past_the_last_point_wrap_to_the_first() {
    // Points at hash = first byte of the name, i.e. b'0' + replica: 48 and 49.
    let first_byte = |b: &[u8]| b.first().map_or(0, |&c| u32::from(c));
    let mut ring = Ring::with_hasher(2, first_byte);
    ring.add(["m"]);
    ring.add(["n"]); // same points; "n" wins both ties
    ring.validate();
    assert_eq!(
        ring.points().map(|(h, _)| h).collect::<Vec<_>>(),
        [48, 48, 49, 49]
    );
    assert_eq!(ring.get([200u8]), Some("n")); // past the last point: wraps
    assert_eq!(ring.get([0u8]), Some("n"));
    ring.remove("n");
    assert_eq!(ring.get([200u8]), Some("m"));
}

#[test]
fn debug_names_the_hasher_and_members() {
    let mut ring = Ring::new(2);
    ring.add(["a"]);
    let text = format!("{ring:?}");
    assert!(text.contains("Crc32"), "{text}");
    assert!(text.contains("\"a\""), "{text}");
    assert!(text.contains("points: 2"), "{text}");
}

/// A ring hash with few distinct values, so points and keys collide often and the tie rule is
/// exercised on nearly every step.
fn coarse(bytes: &[u8]) -> u32 {
    Crc32.hash(bytes) % 16
}

fn crc(bytes: &[u8]) -> u32 {
    Crc32.hash(bytes)
}

fn murmur(bytes: &[u8]) -> u32 {
    Murmur3.hash(bytes)
}

/// The dumb model: a member list and, for lookups, a linear scan over freshly computed points.
#[derive(Default)]
struct Model {
    members: Vec<String>,
}

impl Model {
    fn add(&mut self, members: &[String]) {
        for m in members {
            if !self.members.contains(m) {
                self.members.push(m.clone());
            }
        }
    }

    fn get(
        &self,
        hash: fn(&[u8]) -> u32,
        replicas: usize,
        assignment: Assignment,
        key: &[u8],
    ) -> Option<&str> {
        let h = hash(key);
        // (point hash, member position) for every virtual node, recomputed on every lookup.
        let mut points = Vec::new();
        for (position, member) in self.members.iter().enumerate() {
            for replica in 0..replicas {
                let point = hash(format!("{replica}{member}").as_bytes());
                points.push((point, position));
            }
        }
        // The point at the smallest distance; among equal distances (equal hashes), the member
        // with the highest position, i.e. added last.
        let closest = |distance: &dyn Fn(u32) -> u32| {
            points
                .iter()
                .map(|&(p, pos)| (distance(p), std::cmp::Reverse(pos)))
                .min()
        };
        let (ahead, successor) = closest(&|p| p.wrapping_sub(h))?;
        let (behind, predecessor) = closest(&|p| h.wrapping_sub(p))?;
        let owner = match assignment {
            Assignment::Nearest if behind < ahead => predecessor.0,
            _ => successor.0,
        };
        Some(&self.members[owner])
    }
}

#[derive(Clone, Debug)]
enum Op {
    Add(Vec<String>),
    Remove(String),
    Set(Vec<String>),
    Get(Vec<u8>),
}

fn member() -> impl Strategy<Value = String> {
    (0..8u8).prop_map(|i| format!("http://10.0.0.{i}:8000"))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => prop::collection::vec(member(), 0..4).prop_map(Op::Add),
        2 => member().prop_map(Op::Remove),
        1 => prop::collection::vec(member(), 0..6).prop_map(Op::Set),
        5 => prop::collection::vec(any::<u8>(), 0..12).prop_map(Op::Get),
    ]
}

fn assignment() -> impl Strategy<Value = Assignment> {
    prop_oneof![Just(Assignment::Successor), Just(Assignment::Nearest)]
}

fn hasher() -> impl Strategy<Value = fn(&[u8]) -> u32> {
    prop_oneof![
        Just(crc as fn(&[u8]) -> u32),
        Just(murmur as fn(&[u8]) -> u32),
        Just(coarse as fn(&[u8]) -> u32),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ring_matches_model(
        hash in hasher(),
        assignment in assignment(),
        replicas in 1..12usize,
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let mut ring = Ring::builder()
            .replicas(replicas)
            .hasher(hash)
            .assignment(assignment)
            .build();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Add(members) => {
                    ring.add(members.iter().cloned());
                    model.add(&members);
                }
                Op::Remove(member) => {
                    let present = model.members.contains(&member);
                    model.members.retain(|m| *m != member);
                    prop_assert_eq!(ring.remove(&member), present);
                }
                Op::Set(members) => {
                    ring.set(members.clone());
                    model.members.clear();
                    model.add(&members);
                }
                Op::Get(key) => {
                    prop_assert_eq!(ring.get(&key), model.get(hash, replicas, assignment, &key));
                }
            }
            ring.validate();
            let expected: Vec<&str> = model.members.iter().map(String::as_str).collect();
            prop_assert_eq!(ring.members().collect::<Vec<_>>(), expected);
            prop_assert_eq!(ring.len(), model.members.len());
            prop_assert_eq!(ring.is_empty(), model.members.is_empty());
        }
    }

    #[test]
    fn index_agrees_with_binary_search(
        replicas in 1..300usize,
        members in 1..12usize,
        assignment in assignment(),
        keys in prop::collection::vec(any::<u32>(), 1..64),
    ) {
        // Rings of 1 to 3300 points (so of 2 to 4096 index buckets): the bucket index must
        // answer as a plain binary search over all points does.
        let mut ring = Ring::builder().replicas(replicas).assignment(assignment).build();
        ring.add((0..members).map(|i| format!("m{i}")));
        ring.validate();
        let points: Vec<(u32, &str)> = ring.points().collect();
        // Exact point positions, their neighbours and midpoints are where an off-by-one shows.
        let edges = points.windows(2).step_by(5).flat_map(|w| {
            let (p, q) = (w[0].0, w[1].0);
            let mid = p + (q - p) / 2;
            [p.wrapping_sub(1), p, p.wrapping_add(1), mid, mid.wrapping_add(1)]
        });
        for hash in keys.into_iter().chain([0, u32::MAX]).chain(edges) {
            let i = points.partition_point(|&(p, _)| p < hash);
            let (next, next_owner) = *points.get(i).unwrap_or(&points[0]);
            let before = if i == 0 { points.len() - 1 } else { i - 1 };
            let first_of_run = points.partition_point(|&(p, _)| p < points[before].0);
            let (previous, previous_owner) = points[first_of_run];
            let expected = match assignment {
                Assignment::Nearest
                    if hash.wrapping_sub(previous) < next.wrapping_sub(hash) => previous_owner,
                _ => next_owner,
            };
            prop_assert_eq!(ring.owner_of_hash_for_tests(hash), Some(expected));
        }
    }

    #[test]
    fn shares_count_the_hash_space_exactly(
        members in 1..6usize,
        replicas in 1..6usize,
        assignment in assignment(),
    ) {
        // Points on a grid of 2^26 (a coarse hash, so runs of equal points occur too); then
        // ownership only changes at multiples of 2^25, and probing every 2^20th position
        // counts each member's share exactly.
        let grid = |b: &[u8]| (Murmur3.hash(b) % 64) << 26;
        let mut ring = Ring::builder()
            .replicas(replicas)
            .hasher(grid)
            .assignment(assignment)
            .build();
        ring.add((0..members).map(|i| format!("m{i}")));
        let mut probed = std::collections::HashMap::<&str, u64>::new();
        for step in 0..(1u32 << 12) {
            // The probe sits just after each boundary, away from the exact midpoint tie.
            let owner = ring.owner_of_hash_for_tests((step << 20) | 1).expect("non-empty");
            *probed.entry(owner).or_default() += 1;
        }
        let shares = ring.shares();
        prop_assert!((shares.iter().map(|(_, s)| s).sum::<f64>() - 1.0).abs() < 1e-9);
        for (member, share) in shares {
            let sampled = *probed.get(member).unwrap_or(&0) as f64 / 4096.0;
            prop_assert!((share - sampled).abs() < 1e-6, "{member}: {share} vs {sampled}");
        }
    }
}
