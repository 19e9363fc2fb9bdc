use std::sync::Arc;
use std::time::Duration;

use geecache_discovery_dns::{Config, Error, Status, Watcher, lookup};
use tokio::sync::watch;

use crate::dnsmasq::Dnsmasq;

/// How long any wait may take before the test fails; the waits end far sooner when it passes.
const DEADLINE: Duration = Duration::from_secs(30);

/// Short, so changes show quickly; the assertions never depend on it.
const INTERVAL: Duration = Duration::from_millis(50);

fn config(server: &Dnsmasq, target: &str) -> Config {
    Config::builder()
        .target(target)
        .interval(INTERVAL)
        .timeout(Duration::from_millis(500))
        .name_server(server.address())
        .build()
        .expect("a valid config")
}

fn urls(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Waits until the published list is `expected`.
async fn wait_for_list(lists: &mut watch::Receiver<Option<Arc<[String]>>>, expected: &[String]) {
    let waited = tokio::time::timeout(DEADLINE, async {
        loop {
            if lists.borrow_and_update().as_deref() == Some(expected) {
                return;
            }
            lists.changed().await.expect("the watcher runs");
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "list is {:?}, expected {expected:?}",
        lists.borrow()
    );
}

/// Waits until a status satisfies `done`, and returns it.
async fn wait_for_status(
    status: &mut watch::Receiver<Status>,
    done: impl Fn(&Status) -> bool,
) -> Status {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let now = *status.borrow_and_update();
            if done(&now) {
                return now;
            }
            status.changed().await.expect("the watcher runs");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("status stuck at {:?}", *status.borrow()))
}

#[tokio::test]
async fn members_added_and_removed_in_dns_are_published() {
    let Some(server) = Dnsmasq::start("192.0.2.1 peers.test\n192.0.2.2 peers.test\n", &[]) else {
        return;
    };
    let watcher = Watcher::spawn(&config(&server, "peers.test:8001")).unwrap();
    let mut lists = watcher.subscribe();
    wait_for_list(
        &mut lists,
        &urls(&["http://192.0.2.1:8001", "http://192.0.2.2:8001"]),
    )
    .await;

    // One joins, one leaves.
    server.set_hosts("192.0.2.3 peers.test\n192.0.2.2 peers.test\n");
    wait_for_list(
        &mut lists,
        &urls(&["http://192.0.2.2:8001", "http://192.0.2.3:8001"]),
    )
    .await;

    // Back down to one.
    server.set_hosts("192.0.2.3 peers.test\n");
    wait_for_list(&mut lists, &urls(&["http://192.0.2.3:8001"])).await;
    assert_eq!(watcher.status().failed_in_a_row, 0);
    watcher.shutdown().await;
    assert!(
        lists.changed().await.is_err(),
        "shutdown closes the channel"
    );
}

#[tokio::test]
async fn an_outage_keeps_the_last_list_and_the_recovery_applies_the_new_one() {
    let Some(mut server) = Dnsmasq::start("192.0.2.1 peers.test\n192.0.2.2 peers.test\n", &[])
    else {
        return;
    };
    let watcher = Watcher::spawn(&config(&server, "peers.test:8001")).unwrap();
    let mut lists = watcher.subscribe();
    let before = urls(&["http://192.0.2.1:8001", "http://192.0.2.2:8001"]);
    wait_for_list(&mut lists, &before).await;

    server.stop();
    let mut status = watcher.subscribe_status();
    wait_for_status(&mut status, |s| s.failed_in_a_row >= 3).await;
    assert_eq!(
        watcher.current().as_deref(),
        Some(before.as_slice()),
        "failed lookups keep the last list"
    );
    assert!(
        !lists.has_changed().unwrap(),
        "no list is published during the outage"
    );

    // It comes back with other records.
    server.restart();
    server.set_hosts("192.0.2.1 peers.test\n");
    wait_for_list(&mut lists, &urls(&["http://192.0.2.1:8001"])).await;
    wait_for_status(&mut status, |s| s.failed_in_a_row == 0).await;
    watcher.shutdown().await;
}

#[tokio::test]
async fn an_empty_answer_is_a_failure_not_an_empty_member_list() {
    let Some(server) = Dnsmasq::start("192.0.2.1 peers.test\n", &[]) else {
        return;
    };
    let missing = lookup(&config(&server, "missing.test:8001")).await;
    assert!(
        matches!(missing, Err(Error::NoRecords { kind: "A/AAAA", .. })),
        "{missing:?}"
    );

    let watcher = Watcher::spawn(&config(&server, "peers.test:8001")).unwrap();
    let mut lists = watcher.subscribe();
    let before = urls(&["http://192.0.2.1:8001"]);
    wait_for_list(&mut lists, &before).await;
    server.set_hosts("");
    let mut status = watcher.subscribe_status();
    wait_for_status(&mut status, |s| s.failed_in_a_row >= 3).await;
    assert_eq!(watcher.current().as_deref(), Some(before.as_slice()));
    watcher.shutdown().await;
}

#[tokio::test]
async fn srv_records_give_each_member_its_own_host_and_port() {
    let srv = [
        "--srv-host=_peer._tcp.peers.test,node-b.test,8002",
        "--srv-host=_peer._tcp.peers.test,Node-A.test,8001",
        // The same member twice is one member.
        "--srv-host=_peer._tcp.peers.test,node-a.test,8001,1",
    ]
    .map(str::to_owned);
    let Some(server) = Dnsmasq::start("", &srv) else {
        return;
    };
    let peers = lookup(&config(&server, "_peer._tcp.peers.test"))
        .await
        .unwrap();
    assert_eq!(
        peers,
        urls(&["http://node-a.test:8001", "http://node-b.test:8002"])
    );
    let missing = lookup(&config(&server, "_other._tcp.peers.test")).await;
    assert!(
        matches!(missing, Err(Error::NoRecords { kind: "SRV", .. })),
        "{missing:?}"
    );
}
