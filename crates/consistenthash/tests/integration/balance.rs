//! Balance claims made in the docs, checked with exact ring shares (no key sampling, so the
//! results are exact for the given member names and cannot flake).

use geecache_consistenthash::Ring;

fn max_over_mean<H: geecache_consistenthash::RingHash>(ring: &Ring<H>) -> f64 {
    let shares = ring.shares();
    let max = shares.iter().map(|&(_, s)| s).fold(0.0, f64::max);
    max * shares.len() as f64
}

#[test]
fn balanced_ring_keeps_3_to_10_members_within_5_percent() {
    let schemes: [fn(usize) -> String; 3] = [
        |i| format!("http://127.0.0.1:{}", 8001 + i),
        |i| format!("http://10.0.0.{}:8080", i + 1),
        |i| format!("http://cache-{i}.svc.cluster.local:9000"),
    ];
    for name in schemes {
        for members in 3..=10 {
            let mut ring = Ring::balanced();
            ring.add((0..members).map(name));
            let balance = max_over_mean(&ring);
            assert!(
                balance <= 1.05,
                "{} members like {}: {balance:.3}",
                members,
                name(0)
            );
        }
    }
}

#[test]
fn shares_agree_with_go_groupcache_owner_counts() {
    // The Go vectors assign 10 000 keys; each member's count must be close to its exact share
    // (five standard deviations of the binomial sampling error, about 2.3 points).
    let mut ring = Ring::default();
    ring.add([
        "http://127.0.0.1:8001",
        "http://127.0.0.1:8002",
        "http://127.0.0.1:8003",
    ]);
    let vectors = include_str!("../data/groupcache-owners-3nodes-r50.tsv");
    let owners: Vec<&str> = vectors
        .lines()
        .take(10_000)
        .map(|line| line.split_once('\t').expect("owner<TAB>key").0)
        .collect();
    for (member, share) in ring.shares() {
        let counted = owners.iter().filter(|&&o| o == member).count() as f64 / 10_000.0;
        assert!(
            (counted - share).abs() < 0.023,
            "{member}: {counted} vs {share}"
        );
    }
    // And the default is as unbalanced as the docs say: one peer gets over 40%.
    assert!(max_over_mean(&ring) > 1.2);
}
