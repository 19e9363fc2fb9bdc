//! Two `serve` processes as one cluster: keys are loaded once, at their owner, and the peer
//! route is guarded by the shared token.

use crate::support::{Server, free_ports, geecache, metric, parse_metrics, request};

#[test]
fn two_nodes_share_the_work_and_load_each_key_once() {
    let ports = free_ports(2);
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let peers = urls.join(",");
    let token = "cluster-secret";
    // Readiness is behind the token too.
    let auth = [("Authorization", "Bearer cluster-secret")];
    let nodes: Vec<Server> = ports
        .iter()
        .map(|port| {
            Server::start_authorized(
                geecache()
                    .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                    .args(["--peers", &peers, "--peer-token", token])
                    .args(["--base-path", "/_groupcache/", "--ring", "groupcache"])
                    .args(["--group", "scores=demo"]),
                &auth,
            )
        })
        .collect();

    let keys: Vec<String> = (0..40).map(|i| format!("player-{i:06}")).collect();
    for key in &keys {
        // Every key through both nodes: the second ask is a hit somewhere.
        for node in &nodes {
            let r = node.get(&format!("/api/scores/{key}"));
            assert_eq!(r.status, 200, "{key}: {}", r.text());
            assert!(r.text().starts_with(&format!("{{\"player\":\"{key}\"")));
        }
    }

    let scrapes: Vec<_> = nodes
        .iter()
        .map(|n| parse_metrics(&request(n.addr, "GET", "/metrics", &auth).text()))
        .collect();
    let g = [("group", "scores")];
    let sum = |name: &str| -> f64 { scrapes.iter().map(|s| metric(s, name, &g).unwrap()).sum() };
    assert_eq!(
        sum("geecache_group_local_loads_total"),
        keys.len() as f64,
        "each key loaded once"
    );
    assert_eq!(sum("geecache_group_peer_errors_total"), 0.0);
    assert!(
        sum("geecache_group_peer_loads_total") > 0.0,
        "some keys were fetched from the owner"
    );
    for s in &scrapes {
        assert_eq!(metric(s, "geecache_peers", &[]), Some(2.0));
        assert!(
            metric(s, "geecache_group_local_loads_total", &g).unwrap() > 0.0,
            "both own keys"
        );
    }

    // The peer route wants the token: without it, 401 (and the refusal is logged).
    let key_path = "/_groupcache/scores/player-000001";
    assert_eq!(nodes[0].get(key_path).status, 401);
    assert_eq!(request(nodes[0].addr, "GET", key_path, &auth).status, 200);
}
