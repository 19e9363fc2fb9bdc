//! `serve --etcd`: nodes find each other through a real etcd, leave at once on SIGTERM, drop
//! out after their lease's TTL when killed, and are not ready before the first member list.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::etcd_server::Etcd;
use crate::support::{
    DEADLINE, Running, Server, geecache, request, stats, try_request, wait_for_members,
};

/// The lease TTL the nodes use: short, so the crash test is quick.
const TTL: &str = "2s";

/// `serve` flags joining cluster `c1` on `etcd`.
fn cluster_args(etcd: &Etcd) -> Vec<String> {
    [
        "--group",
        "scores=demo",
        "--etcd",
        &etcd.client_url(),
        "--cluster",
        "c1",
        "--etcd-ttl",
        TTL,
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn nodes_join_through_etcd_share_keys_and_leave_on_sigterm_or_after_the_ttl() {
    let Some(etcd) = Etcd::start() else { return };
    let args = cluster_args(&etcd);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // `Server::start` returns once `/readyz` is 200, i.e. once the node has a member list.
    let mut nodes: Vec<Server> = (0..3).map(|_| Server::start(&args)).collect();
    let mut urls: Vec<String> = nodes.iter().map(Server::url).collect();
    urls.sort();
    wait_for_members(&nodes.iter().collect::<Vec<_>>(), &urls, DEADLINE);

    // Every key through node A: with one ring everywhere, each key is loaded exactly once in
    // the cluster, and the keys the others own reach A as peer loads.
    let keys: Vec<String> = (0..30).map(|i| format!("player-{i:06}")).collect();
    for key in &keys {
        let r = nodes[0].get(&format!("/api/scores/{key}"));
        assert_eq!(r.status, 200, "{key}: {}", r.text());
    }
    let all: Vec<serde_json::Value> = nodes.iter().map(|n| stats(n.addr)).collect();
    let field = |s: &serde_json::Value, name: &str| s["groups"]["scores"][name].as_u64().unwrap();
    let local: u64 = all.iter().map(|s| field(s, "local_loads")).sum();
    assert_eq!(
        local,
        keys.len() as u64,
        "each key loaded once, by its owner"
    );
    assert!(
        field(&all[0], "peer_loads") > 0,
        "keys owned by the other nodes were fetched from them: {}",
        all[0]
    );
    assert_eq!(
        field(&all[0], "peer_loads") + field(&all[0], "local_loads"),
        keys.len() as u64
    );

    // SIGTERM: the node revokes its lease before draining, so the others drop it at once.
    let leaving = nodes.pop().expect("three nodes");
    let leaving_url = leaving.url();
    leaving.process.terminate();
    let mut process = leaving.process;
    assert!(
        process.wait(DEADLINE).success(),
        "{}",
        process.stderr_text()
    );
    assert!(
        process
            .stderr_text()
            .contains("left the cluster: etcd registration revoked"),
        "{}",
        process.stderr_text()
    );
    urls.retain(|u| *u != leaving_url);
    wait_for_members(
        &nodes.iter().collect::<Vec<_>>(),
        &urls,
        Duration::from_secs(3),
    );

    // SIGKILL (dropping a `Running` kills it): no revoke, so the lease runs out after the TTL.
    let crashed = nodes.pop().expect("two nodes");
    let crashed_url = crashed.url();
    drop(crashed);
    urls.retain(|u| *u != crashed_url);
    wait_for_members(&[&nodes[0]], &urls, Duration::from_secs(2 + 4));
}

#[test]
fn a_node_is_not_ready_until_etcd_delivers_the_member_list() {
    let Some(mut etcd) = Etcd::prepare() else {
        return;
    };
    // Nothing listens on etcd's port yet.
    let args = cluster_args(&etcd);
    let mut process = Running::spawn(
        geecache()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(&args),
    );
    let addr: SocketAddr = process
        .wait_for_line("listening on http://")
        .parse()
        .expect("an address");
    let r = request(addr, "GET", "/readyz", &[]);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.text(), "not ready: peer list not known yet\n");

    etcd.launch();
    let end = Instant::now() + DEADLINE;
    loop {
        let ready = try_request(addr, "GET", "/readyz", &[]).is_ok_and(|r| r.status == 200);
        // Ready, and registered too once etcd answers (the registration retries in the
        // background; a node that gave up would never be seen by its peers).
        if ready && process.stderr_text().contains("registered with etcd") {
            break;
        }
        assert!(
            Instant::now() < end,
            "not ready with etcd up after {DEADLINE:?}; stderr:\n{}",
            process.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20)); // polling interval, not a sync point
    }
    assert!(process.try_exit().is_none(), "the node keeps running");
}

// A node that leaves on SIGTERM gives its values to its keys' new owners (and answers their
// peeks while they come): they do not load them from the source again.
#[test]
fn a_leaving_node_hands_its_keys_to_their_new_owners() {
    let Some(etcd) = Etcd::start() else { return };
    let args = cluster_args(&etcd);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut nodes: Vec<Server> = (0..2).map(|_| Server::start(&args)).collect();
    let mut urls: Vec<String> = nodes.iter().map(Server::url).collect();
    urls.sort();
    wait_for_members(&nodes.iter().collect::<Vec<_>>(), &urls, DEADLINE);

    let keys: Vec<String> = (0..40).map(|i| format!("player-{i:06}")).collect();
    for key in &keys {
        let r = nodes[0].get(&format!("/api/scores/{key}"));
        assert_eq!(r.status, 200, "{key}: {}", r.text());
    }
    let field = |s: &serde_json::Value, name: &str| s["groups"]["scores"][name].as_u64().unwrap();
    let held = field(&stats(nodes[1].addr), "local_loads");
    assert!(held > 0, "the second node owns some of the keys");
    let before = stats(nodes[0].addr);
    let loads_before = field(&before, "local_loads");

    let leaving = nodes.pop().expect("two nodes");
    leaving.process.terminate();
    wait_for_members(&[&nodes[0]], &[nodes[0].url()], DEADLINE);
    // Every key through the node that stays: it owns them all now, and takes the leaver's
    // from its cache while the leaver still answers.
    for key in &keys {
        let r = nodes[0].get(&format!("/api/scores/{key}"));
        assert_eq!(r.status, 200, "{key}: {}", r.text());
    }
    let stayed = stats(nodes[0].addr);
    let mut process = leaving.process;
    assert!(
        process.wait(DEADLINE).success(),
        "{}",
        process.stderr_text()
    );
    // A key asked for before the leaver's hand-over reached it is peeked, and then handed in
    // as well (the leaver sends all it held): the two may overlap, so they cover the keys
    // rather than add up to them.
    let (handed_in, peeked) = (field(&stayed, "handed_in"), field(&stayed, "handoffs"));
    assert!(
        handed_in + peeked >= held && handed_in <= held && peeked <= held,
        "every key of the leaver was handed over or peeked: {stayed}"
    );
    assert!(field(&stayed, "handed_in") > 0, "{stayed}");
    assert_eq!(field(&stayed, "local_loads"), loads_before, "none reloaded");
    assert!(
        process.stderr_text().contains("hand-off done"),
        "{}",
        process.stderr_text()
    );
}

// A node that joins through etcd is pushed the values of the keys it now owns by their old
// owners, so none of them is loaded from the source again.
#[test]
fn a_joining_node_is_pushed_its_keys() {
    let Some(etcd) = Etcd::start() else { return };
    let args = cluster_args(&etcd);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut nodes: Vec<Server> = (0..2).map(|_| Server::start(&args)).collect();
    let mut urls: Vec<String> = nodes.iter().map(Server::url).collect();
    urls.sort();
    wait_for_members(&nodes.iter().collect::<Vec<_>>(), &urls, DEADLINE);
    let keys: Vec<String> = (0..60).map(|i| format!("player-{i:06}")).collect();
    for key in &keys {
        let r = nodes[0].get(&format!("/api/scores/{key}"));
        assert_eq!(r.status, 200, "{key}: {}", r.text());
    }
    let field = |s: &serde_json::Value, name: &str| s["groups"]["scores"][name].as_u64().unwrap();
    let loads = |nodes: &[Server]| -> u64 {
        nodes
            .iter()
            .map(|n| field(&stats(n.addr), "local_loads"))
            .sum()
    };
    assert_eq!(loads(&nodes), keys.len() as u64);

    nodes.push(Server::start(&args));
    urls.push(nodes[2].url());
    urls.sort();
    wait_for_members(&nodes.iter().collect::<Vec<_>>(), &urls, DEADLINE);
    // The pushes run in the background after the change: wait (bounded) until the old
    // owners report them all done.
    let end = Instant::now() + DEADLINE;
    loop {
        let out: u64 = nodes[..2]
            .iter()
            .map(|n| field(&stats(n.addr), "handed_out"))
            .sum();
        let into = field(&stats(nodes[2].addr), "handed_in");
        if out > 0 && out == into {
            break;
        }
        assert!(Instant::now() < end, "pushed {out}, taken {into}");
        std::thread::sleep(Duration::from_millis(20)); // polling interval, not a sync point
    }
    for key in &keys {
        let r = nodes[2].get(&format!("/api/scores/{key}"));
        assert_eq!(r.status, 200, "{key}: {}", r.text());
    }
    assert_eq!(loads(&nodes), keys.len() as u64, "no key loaded again");
}
