//! Keys on the wire: awkward keys survive our client and server, raw paths are not normalised,
//! and a value's expiry travels with it.

use std::time::Duration;

use geecache_group::PeerPicker;
use geecache_transport_http::HttpPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Cluster, GROUP, Options, PATIENT, value_of};

/// A pool that sees only `node` as a peer (its own URL is never contacted).
fn client_pool(node: &str) -> std::sync::Arc<HttpPool> {
    let pool = HttpPool::builder("http://127.0.0.1:9")
        .build()
        .expect("valid pool");
    pool.set_peers([node]).expect("valid peers");
    pool
}

/// `key` with a numeric suffix chosen so that `node` owns it on `pool`'s ring.
fn owned_variant(pool: &HttpPool, key: &str, node: &str) -> String {
    (0..1000)
        .map(|i| format!("{key}{i}"))
        .find(|k| pool.owner_of(k).as_deref() == Some(node))
        .expect("a variant owned by the node")
}

#[tokio::test]
async fn awkward_keys_round_trip_through_the_peer_route() {
    let cluster = Cluster::start(Options {
        nodes: 1,
        ..Options::default()
    })
    .await;
    let node = &cluster.nodes[0];
    let pool = client_pool(&node.url);
    let awkward = [
        "a//b",
        "//",
        "/../x",
        "..",
        "./.",
        "a/./b/../c",
        "a%2Fb",
        "%",
        "%%41",
        "a+b",
        "+",
        "a b",
        " lead",
        "ключ/🙂",
        "?q=1#frag",
        "tab\there",
        "nul\0byte",
        "semi;colon=x&y",
        "k\u{202e}rtl",
        "back\\slash",
    ];
    for raw in awkward {
        let key = owned_variant(&pool, raw, &node.url);
        let peer = pool.pick_peer(&key).expect("the node owns the key");
        let loaded = peer.get(GROUP, &key).await.expect("the node answers");
        assert_eq!(
            loaded.value().as_slice(),
            value_of(&key, 0).as_bytes(),
            "{key:?}"
        );
        assert_eq!(
            cluster.world.loads_of(&key),
            vec![node.url.clone()],
            "{key:?}"
        );
    }
}

async fn raw_exchange(url: &str, request: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let work = async {
        let mut socket = TcpStream::connect(addr).await.expect("connect");
        socket.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).await.expect("read");
        String::from_utf8_lossy(&answer).into_owned()
    };
    tokio::time::timeout(PATIENT, work)
        .await
        .expect("answered in time")
}

#[tokio::test]
async fn raw_paths_reach_the_handler_unnormalised() {
    let cluster = Cluster::start(Options {
        nodes: 1,
        ..Options::default()
    })
    .await;
    let node = &cluster.nodes[0];
    for (target, key) in [
        ("/_geecache/g/a/../b", "a/../b"),
        ("/_geecache/g/x//y", "x//y"),
        ("/_geecache/g/./k", "./k"),
        ("/_geecache/g/a+b%2Fc", "a b/c"), // what a Go client sends for "a b/c"
        ("/api/g/p/../q", "p/../q"),
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n");
        let answer = raw_exchange(&node.url, &request).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{target}: {answer}");
        assert_eq!(
            cluster
                .world
                .loads()
                .last()
                .map(|l| l.key.clone())
                .as_deref(),
            Some(key),
            "{target}"
        );
    }
}

#[tokio::test]
async fn expiry_travels_with_the_value() {
    let cluster = Cluster::start(Options {
        nodes: 1,
        ..Options::default()
    })
    .await;
    let node = &cluster.nodes[0];
    let pool = client_pool(&node.url);

    let key = owned_variant(&pool, "ttl", &node.url);
    let peer = pool.pick_peer(&key).expect("owned by the node");
    let loaded = peer.get(GROUP, &key).await.expect("answers");
    let ttl = loaded.ttl().expect("the loader gave a ttl");
    assert!(
        ttl > Duration::from_secs(50) && ttl <= Duration::from_secs(60),
        "{ttl:?}"
    );

    let key = owned_variant(&pool, "k", &node.url);
    let peer = pool.pick_peer(&key).expect("owned by the node");
    let loaded = peer.get(GROUP, &key).await.expect("answers");
    assert_eq!(loaded.ttl(), None);
}

#[tokio::test]
async fn a_uri_longer_than_http_allows_is_answered_414() {
    let cluster = Cluster::start(Options {
        nodes: 1,
        ..Options::default()
    })
    .await;
    let node = &cluster.nodes[0];
    let target = format!("/_geecache/g/k{}", "x".repeat(70_000));
    let request = format!("GET {target} HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n");
    let answer = raw_exchange(&node.url, &request).await;
    assert!(
        answer.starts_with("HTTP/1.1 414"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    assert!(cluster.world.loads().is_empty());

    // Our own client never sends such a request: it loads the key itself instead.
    let other = crate::support::Cluster::start(Options {
        nodes: 1,
        ..Options::default()
    })
    .await;
    let asking = &other.nodes[0];
    asking
        .pool
        .set_peers([asking.url.as_str(), node.url.as_str()])
        .expect("valid peers");
    let key = owned_variant(&asking.pool, &"y".repeat(70_000), &node.url);
    let value = asking.group.get(&key).await.expect("loaded locally");
    assert_eq!(value.as_slice(), value_of(&key, 0).as_bytes());
    assert_eq!(asking.group.stats().peer_errors, 1);
    assert!(cluster.world.loads().is_empty());
}
