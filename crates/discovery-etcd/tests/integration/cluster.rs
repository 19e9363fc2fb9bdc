//! Nodes joining and leaving a healthy cluster.

use std::time::Duration;

use geecache_discovery_etcd::{Membership, Registration};

use crate::etcd::Etcd;
use crate::support::{PATIENCE, TTL, config, current, sorted, stored_keys, url, wait_for_peers};

#[tokio::test]
async fn three_registrations_give_every_membership_the_same_sorted_list() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let config = config(&etcd, "three");
    // Started before anyone registers: it learns every node through the watch.
    let early = Membership::start(&config).await.unwrap();
    assert_eq!(
        current(&early),
        Some(vec![]),
        "an empty cluster is an empty list, not None"
    );

    // Registered out of order, so that sorting is visible.
    let urls = [url(9003), url(9001), url(9002)];
    let mut registrations = Vec::new();
    for url in &urls {
        registrations.push(Registration::start(&config, url).await.unwrap());
    }
    let expected = sorted(&urls.iter().collect::<Vec<_>>());

    // Started after: it learns every node through its first read, so `start` returns it.
    let late = Membership::start(&config).await.unwrap();
    assert_eq!(current(&late), Some(expected.clone()));
    let spawned = Membership::spawn(&config);

    for membership in [&early, &late, &spawned] {
        wait_for_peers(membership, &expected, PATIENCE).await;
    }

    // etcd holds one key per node, each under the lease its registration reports.
    let mut stored = stored_keys(&etcd, &config).await;
    stored.sort();
    let mut registered: Vec<(String, i64)> = registrations
        .iter()
        .map(|r| (config.node_key(r.url()), r.lease().expect("registered")))
        .collect();
    registered.sort();
    assert_eq!(stored, registered);

    for registration in registrations {
        registration.shutdown().await.unwrap();
    }
    for membership in [early, late, spawned] {
        wait_for_peers(&membership, &[], PATIENCE).await;
        membership.shutdown().await;
    }
}

#[tokio::test]
async fn a_graceful_shutdown_disappears_from_the_others_within_a_second() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let config = config(&etcd, "graceful");
    let (a, b, c) = (url(9001), url(9002), url(9003));
    let stays_a = Registration::start(&config, &a).await.unwrap();
    let leaves = Registration::start(&config, &b).await.unwrap();
    let stays_c = Registration::start(&config, &c).await.unwrap();
    let memberships = [
        Membership::start(&config).await.unwrap(),
        Membership::start(&config).await.unwrap(),
    ];
    for membership in &memberships {
        wait_for_peers(membership, &sorted(&[&a, &b, &c]), PATIENCE).await;
    }

    leaves.shutdown().await.unwrap();
    // The revoke deleted the key before `shutdown` returned; no TTL involved.
    let keys: Vec<String> = stored_keys(&etcd, &config)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        !keys.contains(&config.node_key(&b)),
        "key still stored: {keys:?}"
    );
    for membership in &memberships {
        wait_for_peers(membership, &sorted(&[&a, &c]), Duration::from_secs(1)).await;
    }

    stays_a.shutdown().await.unwrap();
    stays_c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_registration_dropped_without_shutdown_disappears_within_its_ttl() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let config = config(&etcd, "crash");
    let (a, b) = (url(9001), url(9002));
    let survivor = Registration::start(&config, &a).await.unwrap();
    let crashed = Registration::start(&config, &b).await.unwrap();
    let membership = Membership::start(&config).await.unwrap();
    wait_for_peers(&membership, &sorted(&[&a, &b]), PATIENCE).await;

    // Dropping stops the keep-alives without revoking, as a crash would.
    drop(crashed);
    // The last keep-alive was at most TTL/3 ago, so the lease has well over a second left:
    // the key must still be there, or drop revoked it.
    let keys: Vec<String> = stored_keys(&etcd, &config)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        keys.contains(&config.node_key(&b)),
        "dropping revoked the lease: {keys:?}"
    );

    wait_for_peers(&membership, &sorted(&[&a]), TTL + Duration::from_secs(1)).await;
    assert!(survivor.lease().is_some(), "the survivor stays registered");
    survivor.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_new_node_joins_and_every_other_node_sees_it() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let config = config(&etcd, "join");
    let (a, b, c) = (url(9001), url(9002), url(9003));
    // Each node runs a registration and a membership, as a server does.
    let mut nodes = Vec::new();
    for url in [&a, &b] {
        let registration = Registration::start(&config, url).await.unwrap();
        nodes.push((registration, Membership::start(&config).await.unwrap()));
    }
    for (_, membership) in &nodes {
        wait_for_peers(membership, &sorted(&[&a, &b]), PATIENCE).await;
    }

    let newcomer = Registration::start(&config, &c).await.unwrap();
    let newcomer_view = Membership::start(&config).await.unwrap();
    let all = sorted(&[&a, &b, &c]);
    assert_eq!(current(&newcomer_view), Some(all.clone()));
    for (_, membership) in &nodes {
        wait_for_peers(membership, &all, PATIENCE).await;
    }

    newcomer.shutdown().await.unwrap();
    for (registration, _) in nodes {
        registration.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn clusters_and_stray_keys_stay_out_of_each_others_lists() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let cluster_a = config(&etcd, "a");
    // "ab" starts with "a": only the `/` after the cluster name keeps them apart.
    let cluster_ab = config(&etcd, "ab");
    let in_a = Membership::start(&cluster_a).await.unwrap();
    let in_ab = Membership::start(&cluster_ab).await.unwrap();

    let (a1, a2, ab1) = (url(9001), url(9002), url(9101));
    let _a1 = Registration::start(&cluster_a, &a1).await.unwrap();
    let _ab1 = Registration::start(&cluster_ab, &ab1).await.unwrap();
    // Keys next to the node keys that name no node.
    let mut client = etcd.client().await;
    for stray in [
        "/geecache/a/nodes/",
        "/geecache/a/nodesx",
        "/geecache/a/config",
    ] {
        client.put(stray, "x", None).await.unwrap();
    }
    // Watch events arrive in revision order: once a2 shows up, the strays were seen.
    let _a2 = Registration::start(&cluster_a, &a2).await.unwrap();

    wait_for_peers(&in_a, &sorted(&[&a1, &a2]), PATIENCE).await;
    wait_for_peers(&in_ab, &sorted(&[&ab1]), PATIENCE).await;
    // A fresh read applies the same rules as the watch.
    let reread = Membership::start(&cluster_a).await.unwrap();
    assert_eq!(current(&reread), Some(sorted(&[&a1, &a2])));
}
