//! The default ring against vectors produced by the unmodified Go groupcache library
//! (see `tests/data/README.md`).

use geecache_consistenthash::{Crc32, Ring, RingHash};

const PEERS: [&str; 3] = [
    "http://127.0.0.1:8001",
    "http://127.0.0.1:8002",
    "http://127.0.0.1:8003",
];

/// The lines of a vector file. Read as bytes and split on `\n` only, so that no key is
/// reinterpreted; the file ends with a newline, which is not an empty last line.
fn lines(file: &'static [u8]) -> Vec<&'static [u8]> {
    let body = file.strip_suffix(b"\n").unwrap_or(file);
    body.split(|&b| b == b'\n').collect()
}

/// Splits on the FIRST tab only: one key contains a tab, and one key is empty.
fn split_first_tab(line: &[u8]) -> (&[u8], &[u8]) {
    let tab = line
        .iter()
        .position(|&b| b == b'\t')
        .unwrap_or_else(|| panic!("no tab in {:?}", String::from_utf8_lossy(line)));
    (&line[..tab], &line[tab + 1..])
}

fn groupcache_ring() -> Ring {
    let mut ring = Ring::default();
    ring.set(PEERS);
    ring
}

#[test]
fn owners_match_go_groupcache_for_every_key() {
    let ring = groupcache_ring();
    let lines = lines(include_bytes!("../data/groupcache-owners-3nodes-r50.tsv"));
    assert_eq!(lines.len(), 10_014);

    let mut awkward = Vec::new();
    for (number, line) in lines.iter().enumerate() {
        let (owner, key) = split_first_tab(line);
        let owner = std::str::from_utf8(owner).expect("owners are URLs");
        assert_eq!(
            ring.get(key),
            Some(owner),
            "line {}: key {:?}",
            number + 1,
            String::from_utf8_lossy(key)
        );
        if number >= 10_000 {
            awkward.push(key);
        }
    }
    // The awkward keys were really parsed as written, not lost to a sloppier split.
    assert!(awkward.contains(&&b""[..]), "the empty key");
    assert!(awkward.contains(&&b"tab\tx"[..]), "the key with a tab");
    assert!(awkward.contains(&"caf\u{e9}".as_bytes()), "a non-ASCII key");
}

#[test]
fn ring_points_match_go_groupcache() {
    let ring = groupcache_ring();
    let lines = lines(include_bytes!("../data/groupcache-ring-3nodes-r50.tsv"));
    let expected: Vec<(u32, String)> = lines
        .iter()
        .map(|line| {
            let line = std::str::from_utf8(line).expect("ring file is ASCII");
            let mut columns = line.split('\t');
            let (hash, vnode, owner) = (
                columns.next().expect("hash column"),
                columns.next().expect("virtual-node column"),
                columns.next().expect("owner column"),
            );
            let hash: u32 = hash.parse().expect("decimal crc32");
            // The virtual-node key is decimal(i) ++ owner, and its CRC-32 is the point.
            let replica = vnode
                .strip_suffix(owner)
                .expect("vnode ends with its owner");
            assert!(replica.parse::<usize>().is_ok_and(|i| i < 50), "{vnode}");
            assert_eq!(Crc32.hash(vnode.as_bytes()), hash, "{vnode}");
            (hash, owner.to_owned())
        })
        .collect();
    let ours: Vec<(u32, String)> = ring
        .points()
        .map(|(hash, owner)| (hash, owner.to_owned()))
        .collect();
    assert_eq!(ours.len(), 150);
    assert_eq!(ours, expected);
}

#[test]
fn peer_order_does_not_change_owners_without_collisions() {
    // The vector ring has no equal points, so the order peers are added in cannot matter.
    let mut reversed = Ring::default();
    reversed.add(PEERS.iter().rev().copied());
    let ring = groupcache_ring();
    for i in 0..2_000 {
        let key = format!("k{i}");
        assert_eq!(reversed.get(&key), ring.get(&key), "{key}");
    }
}
