//! etcd going away, coming back, and losing leases behind the nodes' backs.

use std::time::Duration;

use geecache_discovery_etcd::{Config, Error, Membership, Registration};
use tokio::time::Instant;

use crate::etcd::Etcd;
use crate::proxy::Proxy;
use crate::support::{
    PATIENCE, TTL, config, current, sorted, stored_keys, url, wait_for_peers, wait_until,
};

#[tokio::test]
async fn an_etcd_restart_keeps_the_last_list_then_everything_converges() {
    let Some(mut etcd) = Etcd::start().await else {
        return;
    };
    let config = config(&etcd, "restart");
    let (a, b, c, d) = (url(9001), url(9002), url(9003), url(9004));
    let mut registrations = Vec::new();
    for url in [&a, &b, &c] {
        registrations.push(Registration::start(&config, url).await.unwrap());
    }
    let memberships = [
        Membership::start(&config).await.unwrap(),
        Membership::spawn(&config),
    ];
    let before = sorted(&[&a, &b, &c]);
    let mut lists = Vec::new();
    for membership in &memberships {
        wait_for_peers(membership, &before, PATIENCE).await;
        let mut rx = membership.subscribe();
        rx.borrow_and_update();
        lists.push(rx);
    }

    etcd.stop();
    // Wait until every task has noticed the outage...
    for membership in &memberships {
        let mut connected = membership.subscribe_connected();
        wait_until(&mut connected, PATIENCE, "disconnected membership", |c| !c).await;
    }
    for registration in &registrations {
        let mut lease = registration.subscribe_lease();
        wait_until(&mut lease, PATIENCE, "lost registration", Option::is_none).await;
    }
    // ...then keep etcd down for longer than a lease's TTL, watching the lists all the while:
    // the last list stays in force, and nothing is published. Here the timeout running out is
    // the expected outcome; a publication ends the wait early and fails the test.
    let quiet_until = Instant::now() + TTL + Duration::from_secs(1);
    for rx in &mut lists {
        let change = tokio::time::timeout_at(quiet_until, rx.changed()).await;
        assert!(
            change.is_err(),
            "a list was published during the outage: {:?}",
            *rx.borrow()
        );
    }
    for membership in &memberships {
        assert_eq!(current(membership), Some(before.clone()));
        assert!(!membership.is_connected());
    }
    for registration in &registrations {
        assert_eq!(registration.lease(), None, "registered while etcd is down");
    }

    // Same data dir, same ports.
    etcd.launch().await;
    for registration in &registrations {
        let mut lease = registration.subscribe_lease();
        wait_until(
            &mut lease,
            PATIENCE,
            "restored registration",
            Option::is_some,
        )
        .await;
    }
    for membership in &memberships {
        let mut connected = membership.subscribe_connected();
        wait_until(&mut connected, PATIENCE, "reconnected membership", |c| *c).await;
        wait_for_peers(membership, &before, PATIENCE).await;
    }

    // The watches are live again: a join and a graceful leave both come through.
    let newcomer = Registration::start(&config, &d).await.unwrap();
    for membership in &memberships {
        wait_for_peers(membership, &sorted(&[&a, &b, &c, &d]), PATIENCE).await;
    }
    registrations.remove(0).shutdown().await.unwrap();
    for membership in &memberships {
        wait_for_peers(membership, &sorted(&[&b, &c, &d]), PATIENCE).await;
    }
    newcomer.shutdown().await.unwrap();
}

// This node loses etcd for longer than the leases (a network fault between the two; etcd
// itself runs on), and the leases of two peers run out meanwhile. The read after the outage
// finds neither, but both stay listed: one registers again and nothing changes; the other does
// not, and leaves the list one of this node's lease TTLs later. A third peer's lease runs out
// just after the outage: it is held as well, and leaves with the second. A fourth, which kept
// its registration through the outage, leaves gracefully meanwhile: it goes at once.
#[tokio::test]
async fn peers_missing_after_an_outage_are_held_until_they_register_again() {
    outage_while_leases_run_out(Fault::Cut).await;
}

// The same, but the fault drops packets rather than closing the connection: nothing tells the
// watch it is dead. It must find out by itself before a lease could run out (an outage of two
// thirds of the TTL at the least), or it would live through the outage and deliver both
// expiries as deletes, and the list would lose b and c, then get b back.
#[tokio::test]
async fn a_stalled_watch_ends_before_a_lease_can_run_out() {
    outage_while_leases_run_out(Fault::Stall).await;
}

/// How the proxy keeps this node from etcd.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Cut,
    Stall,
}

async fn outage_while_leases_run_out(fault: Fault) {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let cluster = format!("held-{fault:?}").to_lowercase();
    let config = config(&etcd, &cluster);
    let proxy = Proxy::start(etcd.client_url()).await;
    // This node's TTL, the time it holds a missing peer, is long enough that a busy machine
    // puts b back within it.
    let hold = Duration::from_secs(8);
    let through = Config::builder()
        .endpoint(proxy.url())
        .cluster(&cluster)
        .ttl(hold)
        .request_timeout(Duration::from_secs(1))
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .build()
        .unwrap();
    let (a, b, c, d, e) = (url(9001), url(9002), url(9003), url(9004), url(9005));
    let registration = Registration::start(&config, &a).await.unwrap();
    let leaves = Registration::start(&config, &e).await.unwrap();
    // b, c and d registered as a node does, on leases this test ends.
    let mut client = etcd.client().await;
    let mut leases = Vec::new();
    for peer in [&b, &c] {
        leases.push(register_on_lease(&mut client, &config, peer).await);
    }
    let late = register_on_lease(&mut client, &config, &d).await;
    let membership = Membership::start(&through).await.unwrap();
    let all = sorted(&[&a, &b, &c, &d, &e]);
    assert_eq!(current(&membership), Some(all.clone()));

    let mut connected = membership.subscribe_connected();
    // `start` returns after the read; the watch opens just after.
    wait_until(&mut connected, PATIENCE, "watching membership", |c| *c).await;
    let found_out_within = match fault {
        Fault::Cut => {
            proxy.cut();
            PATIENCE
        }
        Fault::Stall => {
            proxy.stall();
            hold * 2 / 3
        }
    };
    // Out of this node's sight, both leases end (as they run out: etcd deletes the keys).
    for lease in &leases {
        client.lease_revoke(*lease).await.unwrap();
    }
    wait_until(
        &mut connected,
        found_out_within,
        "watch ended by the fault",
        |c| !c,
    )
    .await;
    proxy.heal();
    wait_until(&mut connected, PATIENCE, "reconnected membership", |c| *c).await;
    assert_eq!(
        current(&membership),
        Some(all.clone()),
        "the read after the outage found a, d and e, and b and c are held"
    );

    // d's lease runs out now, as one whose keep-alive had not got through yet would; b
    // registers again within the TTL; c and d never do.
    let mut lists = membership.subscribe();
    lists.borrow_and_update();
    client.lease_revoke(late).await.unwrap();
    register_on_lease(&mut client, &config, &b).await;
    leaves.shutdown().await.unwrap();
    wait_until(&mut lists, PATIENCE, "e gone", |list| {
        let list = list.as_deref().expect("a list");
        assert!(
            list.contains(&e) || list.contains(&c),
            "e was held like c, and left with it: {list:?}"
        );
        !list.contains(&e)
    })
    .await;
    let settled = sorted(&[&a, &b]);
    wait_until(&mut lists, hold + PATIENCE, "c and d released", |list| {
        let list = list.as_deref().expect("a list");
        assert!(list.contains(&b), "b left the list: {list:?}");
        assert_eq!(
            list.contains(&c),
            list.contains(&d),
            "d left the list before the held c: {list:?}"
        );
        list == &settled[..]
    })
    .await;
    registration.shutdown().await.unwrap();
}

/// Puts `peer`'s key on a lease of its own, as a node registers; returns the lease.
async fn register_on_lease(client: &mut etcd_client::Client, config: &Config, peer: &str) -> i64 {
    let lease = client.lease_grant(60, None).await.unwrap().id();
    let options = etcd_client::PutOptions::new().with_lease(lease);
    client
        .put(config.node_key(peer), "", Some(options))
        .await
        .unwrap();
    lease
}

#[tokio::test]
async fn a_revoked_lease_is_replaced_by_a_new_registration() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let config = config(&etcd, "revoked");
    let a = url(9001);
    let registration = Registration::start(&config, &a).await.unwrap();
    let membership = Membership::start(&config).await.unwrap();
    assert_eq!(current(&membership), Some(vec![a.clone()]));
    let old = registration.lease().expect("registered");

    // Someone (an operator, a lease expiry during a long pause) removes the lease.
    etcd.client().await.lease_revoke(old).await.unwrap();

    let mut lease = registration.subscribe_lease();
    wait_until(&mut lease, PATIENCE, "a new lease", |l| {
        l.is_some_and(|l| l != old)
    })
    .await;
    let new = registration.lease().expect("registered again");
    wait_for_peers(&membership, &sorted(&[&a]), PATIENCE).await;
    assert_eq!(
        stored_keys(&etcd, &config).await,
        [(config.node_key(&a), new)]
    );
    registration.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_etcd_start_fails_and_spawn_waits_for_it() {
    let Some(mut etcd) = Etcd::prepare() else {
        return;
    };
    // etcd is not running yet: its ports are chosen, nothing listens.
    let config = config(&etcd, "late");
    let a = url(9001);

    let spawned = Membership::spawn(&config);
    let error = Registration::start(&config, &a).await.unwrap_err();
    assert!(
        matches!(error, Error::Timeout { .. } | Error::Etcd { .. }),
        "{error}"
    );
    let error = Membership::start(&config).await.unwrap_err();
    assert!(
        matches!(error, Error::Timeout { .. } | Error::Etcd { .. }),
        "{error}"
    );
    // A bad URL is refused before anything is contacted.
    let error = Registration::start(&config, "127.0.0.1:9001")
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidUrl { .. }), "{error}");
    assert_eq!(
        current(&spawned),
        None,
        "no list can exist before etcd was ever read"
    );
    assert!(!spawned.is_connected());

    etcd.launch().await;
    let registration = Registration::start(&config, &a).await.unwrap();
    wait_for_peers(&spawned, &sorted(&[&a]), PATIENCE).await;
    assert!(spawned.is_connected());

    registration.shutdown().await.unwrap();
    wait_for_peers(&spawned, &[], PATIENCE).await;
    spawned.shutdown().await;
}
