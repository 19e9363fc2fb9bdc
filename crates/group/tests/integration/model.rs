//! A model-based property test: any sequence of gets, peer gets and removals on a small
//! cluster returns exactly what the source holds, keeps every budget and keeps the books.

use proptest::prelude::*;

use geecache_group::{Origin, Source};

use crate::support::*;

#[derive(Clone, Debug)]
enum Op {
    Get { node: usize, key: u8 },
    PeerGet { node: usize, key: u8 },
    Remove { node: usize, key: u8 },
    Missing { node: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, any::<u8>()).prop_map(|(node, key)| Op::Get { node, key }),
        2 => (0..3usize, any::<u8>()).prop_map(|(node, key)| Op::PeerGet { node, key }),
        2 => (0..3usize, any::<u8>()).prop_map(|(node, key)| Op::Remove { node, key }),
        1 => (0..3usize).prop_map(|node| Op::Missing { node }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_cluster_always_answers_what_the_source_holds(ops in prop::collection::vec(op(), 1..120)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            // A tight budget (about 12 entries a node) so eviction runs all the time.
            let nodes = cluster(3, |b| b.cache_bytes(12 * 18).hot_admission(2));
            // The model is the source itself: `value_of(key)` for keys starting with `k`,
            // "not found" for the rest. Removal and eviction may change where an answer
            // comes from, never what it is.
            for op in ops {
                match op {
                    Op::Get { node, key } => {
                        let key = format!("k{key}");
                        let value = nodes[node].group.get(&key).await.unwrap();
                        prop_assert_eq!(value, value_of(&key));
                    }
                    Op::PeerGet { node, key } => {
                        let key = format!("k{key}");
                        let fetched = nodes[node].group.fetch(&key, Origin::Peer).await.unwrap();
                        prop_assert_eq!(fetched.value, value_of(&key));
                    }
                    Op::Remove { node, key } => {
                        let key = format!("k{key}");
                        nodes[node].group.remove_local(&key);
                        // Gone from this node: a local get must load it afresh.
                        let fetched = nodes[node].group.fetch(&key, Origin::Peer).await.unwrap();
                        prop_assert_eq!(fetched.source, Source::Loader);
                        prop_assert_eq!(fetched.value, value_of(&key));
                    }
                    Op::Missing { node } => {
                        prop_assert!(nodes[node].group.get("missing").await.unwrap_err().is_not_found());
                    }
                }
                for node in &nodes {
                    assert_stats_add_up(&node.group);
                }
            }
            Ok(())
        })?;
    }
}
