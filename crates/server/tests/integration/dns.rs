//! `serve --peers-dns`: nodes find each other through a real DNS server (dnsmasq, started by
//! the test on a loopback port and named with `--dns-server`, never the system's resolver),
//! follow members added and removed in DNS, and keep serving with their last list while DNS
//! is down.
//!
//! SRV records, because they carry a port per member: every node here shares 127.0.0.1, so
//! the members differ only by port. The targets are `localhost`, which the nodes' HTTP client
//! resolves without DNS.

use std::time::{Duration, Instant};

use crate::dnsmasq::Dnsmasq;
use crate::support::{DEADLINE, Server, free_ports, geecache, stats, wait_for_members};

const SRV_NAME: &str = "_geecache._tcp.peers.test";

/// dnsmasq options publishing one SRV record per port.
fn records(ports: &[u16]) -> Vec<String> {
    ports
        .iter()
        .map(|port| format!("--srv-host={SRV_NAME},localhost,{port}"))
        .collect()
}

fn url(port: u16) -> String {
    format!("http://localhost:{port}")
}

fn start_node(port: u16, dns: &Dnsmasq) -> Server {
    Server::start_with(geecache().args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--self-url",
        &url(port),
        "--peers-dns",
        SRV_NAME,
        "--dns-interval",
        "100ms",
        "--dns-server",
        &dns.address().to_string(),
        "--group",
        "scores=demo",
    ]))
}

/// Polls a node's log until it holds `text`, failing after [`DEADLINE`].
fn wait_for_log(node: &Server, text: &str) {
    let end = Instant::now() + DEADLINE;
    while !node.process.stderr_text().contains(text) {
        assert!(
            Instant::now() < end,
            "no {text:?} in the log:\n{}",
            node.process.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20)); // polling interval, not a sync point
    }
}

#[test]
fn nodes_follow_members_added_and_removed_in_dns_and_ride_out_an_outage() {
    let p = free_ports(3);
    let Some(mut dns) = Dnsmasq::start("", &records(&p[..2])) else {
        return;
    };
    // `Server::start_with` returns once `/readyz` is 200, i.e. once DNS gave a member list.
    let mut nodes: Vec<Server> = p[..2].iter().map(|&port| start_node(port, &dns)).collect();
    let two = vec![url(p[0]), url(p[1])];
    let mut two_sorted = two.clone();
    two_sorted.sort();
    wait_for_members(&nodes.iter().collect::<Vec<_>>(), &two_sorted, DEADLINE);

    // One ring on both: every key is loaded once in the cluster, by its owner.
    let keys: Vec<String> = (0..30).map(|i| format!("player-{i:06}")).collect();
    for key in &keys {
        let r = nodes[0].get(&format!("/api/scores/{key}"));
        assert_eq!(r.status, 200, "{key}: {}", r.text());
    }
    let local = |nodes: &[Server]| -> u64 {
        nodes
            .iter()
            .map(|n| {
                stats(n.addr)["groups"]["scores"]["local_loads"]
                    .as_u64()
                    .unwrap()
            })
            .sum()
    };
    assert_eq!(local(&nodes), keys.len() as u64, "each key loaded once");

    // A third member appears in DNS (dnsmasq reads SRV records at start: restart it).
    dns.set_options(&records(&p));
    dns.restart();
    nodes.push(start_node(p[2], &dns));
    let mut three: Vec<String> = p.iter().map(|&port| url(port)).collect();
    three.sort();
    wait_for_members(&nodes.iter().collect::<Vec<_>>(), &three, DEADLINE);

    // DNS goes away: nothing changes, and the nodes keep serving.
    dns.stop();
    for node in &nodes {
        wait_for_log(node, "DNS lookup failed; keeping the last member list");
    }
    wait_for_members(&nodes.iter().collect::<Vec<_>>(), &three, DEADLINE);
    for key in &keys {
        let r = nodes[1].get(&format!("/api/scores/{key}"));
        assert_eq!(r.status, 200, "{key} during the outage: {}", r.text());
    }

    // DNS is back, without the third member: the others drop it.
    dns.set_options(&records(&p[..2]));
    dns.restart();
    wait_for_members(&[&nodes[0], &nodes[1]], &two_sorted, DEADLINE);
    wait_for_log(&nodes[0], "DNS answers again");
    let log = nodes[0].process.stderr_text();
    assert_eq!(
        log.matches("DNS lookup failed").count(),
        1,
        "one line per failure streak, however long:\n{log}"
    );
}

#[test]
fn a_node_is_not_ready_until_dns_answers() {
    let p = free_ports(1);
    let Some(mut dns) = Dnsmasq::start("", &records(&p)) else {
        return;
    };
    dns.stop();
    let mut process = crate::support::Running::spawn(geecache().args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{}", p[0]),
        "--self-url",
        &url(p[0]),
        "--peers-dns",
        SRV_NAME,
        "--dns-interval",
        "100ms",
        "--dns-server",
        &dns.address().to_string(),
        "--group",
        "scores=demo",
    ]));
    let addr: std::net::SocketAddr = process
        .wait_for_line("listening on http://")
        .parse()
        .expect("an address");
    let r = crate::support::request(addr, "GET", "/readyz", &[]);
    assert_eq!(r.status, 503, "{}", r.text());

    dns.restart();
    let node = Server { process, addr };
    node.wait_ready(&[]);
    wait_for_members(&[&node], &[url(p[0])], DEADLINE);
}
