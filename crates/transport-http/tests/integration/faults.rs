//! A peer replaced by a fake that misbehaves: every failure falls back to a local load (after
//! the owner's stand-in, when there is one), is counted, and never reaches the client.

use std::time::Duration;

use axum::Router;
use geecache_transport_http::proto::GetResponse;
use geecache_transport_http::{ErrorKind, PeerOutcome, ServeConfig, serve, serve_with};
use http::StatusCode;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::support::{Cluster, Options, get, loopback, send, value_of};

/// How a fake peer answers.
#[derive(Clone, Copy, Debug)]
enum Fake {
    /// Bytes that are not HTTP at all.
    NotHttp,
    /// 200 with a protobuf content type and a body that is not a message.
    BadProtobuf,
    /// 200 with an HTML page.
    WrongContentType,
    /// 200 announcing a gigabyte.
    HugeAnnounced,
    /// 200, chunked, streaming more than the limit.
    HugeStreamed,
    /// Reads the request and never answers.
    Hang,
    /// Closes the connection right after reading the request.
    HangUp,
    /// A 404 without geecache's error kind (a proxy, or a node without the group).
    Foreign404,
    /// 200, chunked: 512 KiB in 16 KiB chunks, then nothing more, the body never ending.
    Trickle,
}

const HEAD_LIMIT: usize = 64 << 10;

async fn read_head(socket: &mut TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < HEAD_LIMIT {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
}

async fn answer(mut socket: TcpStream, fake: Fake) {
    read_head(&mut socket).await;
    let canned: &[u8] = match fake {
        Fake::NotHttp => b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        Fake::BadProtobuf => {
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 3\r\n\r\n\x0a\x09a"
        }
        Fake::WrongContentType => {
            b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 13\r\n\r\n<html></html>"
        }
        Fake::HugeAnnounced => {
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 1073741824\r\n\r\n\x0a"
        }
        Fake::Foreign404 => {
            b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\nnot here\n"
        }
        Fake::HugeStreamed => {
            let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ntransfer-encoding: chunked\r\n\r\n";
            if socket.write_all(head).await.is_err() {
                return;
            }
            let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
            // At most 4 MiB: the client gives up long before, and then writes fail.
            for _ in 0..256 {
                if socket.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
            }
            return;
        }
        Fake::Trickle => {
            let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ntransfer-encoding: chunked\r\n\r\n";
            if socket.write_all(head).await.is_err() {
                return;
            }
            let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
            for _ in 0..32 {
                if socket.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
            }
            std::future::pending::<()>().await;
            return;
        }
        Fake::Hang => {
            // Hold the connection open without a word until the test ends.
            std::future::pending::<()>().await;
            return;
        }
        Fake::HangUp => return,
    };
    let _ = socket.write_all(canned).await;
    let _ = socket.shutdown().await;
}

/// Starts a fake peer; returns its URL and the task to abort.
async fn fake_peer(fake: Fake) -> (String, JoinHandle<()>) {
    let listener = loopback().await;
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            connections.spawn(answer(socket, fake));
        }
    });
    (url, task)
}

/// A one-node cluster whose only peer is `peer_url`; returns it and a key the peer owns.
async fn beside(peer_url: &str, options: Options) -> (Cluster, String) {
    let cluster = Cluster::start(Options {
        nodes: 1,
        ..options
    })
    .await;
    let node = &cluster.nodes[0];
    node.pool
        .set_peers([node.url.as_str(), peer_url])
        .expect("valid peers");
    let key = (0..10_000)
        .map(|i| format!("k{i}"))
        .find(|k| node.pool.owner_of(k).as_deref() == Some(peer_url))
        .expect("the peer owns some key");
    (cluster, key)
}

async fn survives(peer_url: &str, options: Options, expected: PeerOutcome) {
    let (cluster, key) = beside(peer_url, options).await;
    let node = &cluster.nodes[0];
    let answer = get(&node.api(&key)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.text(), value_of(&key, 0));
    assert_eq!(answer.header("x-geecache-source"), Some("loader"));
    assert_eq!(cluster.world.loads_of(&key), vec![node.url.clone()]);
    let stats = node.group.stats();
    assert_eq!(stats.peer_errors, 1);
    assert_eq!(stats.peer_loads, 0);
    assert_eq!(node.outcomes.all(), vec![(peer_url.to_owned(), expected)]);

    // One timeout or refusal opens the peer's circuit at once; other failures must repeat.
    let unreachable = matches!(expected, PeerOutcome::Timeout | PeerOutcome::Unavailable);
    let state = if unreachable { "open" } else { "closed" };
    let stats = get(&format!("{}/stats", node.url)).await;
    let json: serde_json::Value = serde_json::from_slice(&stats.body).expect("JSON");
    assert_eq!(json["health"][peer_url]["state"], state, "{json}");
    assert_eq!(json["health"][peer_url]["openings"], u64::from(unreachable));
    if unreachable {
        // While it is open the peer is skipped: another of its keys is loaded here at once,
        // without a request to it.
        let other = (0..10_000)
            .map(|i| format!("other{i}"))
            .find(|k| node.pool.owner_of(k).as_deref() == Some(peer_url))
            .expect("the peer owns some key");
        assert_eq!(get(&node.api(&other)).await.text(), value_of(&other, 0));
        assert_eq!(
            node.outcomes.all().len(),
            1,
            "no second request to the peer"
        );
        assert_eq!(node.group.stats().peer_errors, 1);
    }
}

async fn survives_fake(fake: Fake, options: Options, expected: PeerOutcome) {
    let (url, task) = fake_peer(fake).await;
    survives(&url, options, expected).await;
    task.abort();
}

#[tokio::test]
async fn a_peer_that_is_not_http_is_survived() {
    survives_fake(Fake::NotHttp, Options::default(), PeerOutcome::Unavailable).await;
}

#[tokio::test]
async fn a_peer_that_hangs_up_is_survived() {
    survives_fake(Fake::HangUp, Options::default(), PeerOutcome::Unavailable).await;
}

#[tokio::test]
async fn a_body_that_is_not_protobuf_is_survived() {
    survives_fake(
        Fake::BadProtobuf,
        Options::default(),
        PeerOutcome::Malformed,
    )
    .await;
}

#[tokio::test]
async fn a_body_of_the_wrong_type_is_survived() {
    survives_fake(
        Fake::WrongContentType,
        Options::default(),
        PeerOutcome::Malformed,
    )
    .await;
}

#[tokio::test]
async fn an_announced_huge_body_is_refused() {
    survives_fake(
        Fake::HugeAnnounced,
        Options::default(),
        PeerOutcome::Malformed,
    )
    .await;
}

#[tokio::test]
async fn a_streamed_huge_body_is_cut_off() {
    let options = Options {
        max_response_bytes: 4096,
        ..Options::default()
    };
    survives_fake(Fake::HugeStreamed, options, PeerOutcome::Malformed).await;
}

#[tokio::test]
async fn a_peer_that_hangs_times_out() {
    // A real, short timeout: the assertion is about what happens after it, not when.
    let options = Options {
        timeout: Duration::from_millis(200),
        ..Options::default()
    };
    survives_fake(Fake::Hang, options, PeerOutcome::Timeout).await;
}

#[tokio::test]
async fn a_foreign_404_is_a_failure_not_an_answer() {
    survives_fake(Fake::Foreign404, Options::default(), PeerOutcome::Status).await;
}

#[tokio::test]
async fn a_peer_answering_500_is_survived() {
    let listener = loopback().await;
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    let app = Router::new().fallback(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") });
    let server = tokio::spawn(serve(listener, app, std::future::pending()));
    survives(&url, Options::default(), PeerOutcome::Status).await;
    server.abort();
}

#[tokio::test]
async fn a_peer_that_refuses_connections_is_survived() {
    let listener = loopback().await;
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    drop(listener); // nothing listens there any more
    survives(&url, Options::default(), PeerOutcome::Unavailable).await;
}

#[tokio::test]
async fn a_peer_with_the_wrong_token_is_survived_and_a_right_one_works() {
    let options = Options {
        server_token: Some("s3cret".into()),
        pool_token: Some("wrong".into()),
        ..Options::default()
    };
    let cluster = Cluster::start(options).await;
    let key = cluster.key_owned_by(1, "k");
    let node = &cluster.nodes[0];
    let answer = get(&node.api(&key)).await; // the client route is open
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), value_of(&key, 0));
    assert_eq!(node.group.stats().peer_errors, 1);
    assert_eq!(
        node.outcomes.all(),
        vec![(cluster.nodes[1].url.clone(), PeerOutcome::Status)]
    );
    assert_eq!(cluster.world.loads_of(&key), vec![node.url.clone()]);

    let good = Cluster::start(Options {
        server_token: Some("s3cret".into()),
        pool_token: Some("s3cret".into()),
        ..Options::default()
    })
    .await;
    let key = good.key_owned_by(1, "k");
    let answer = get(&good.nodes[0].api(&key)).await;
    assert_eq!(answer.header("x-geecache-source"), Some("peer"));
    assert_eq!(good.nodes[0].group.stats().peer_errors, 0);
    assert_eq!(good.world.loads_of(&key), vec![good.nodes[1].url.clone()]);
}

#[tokio::test]
async fn a_peers_not_found_is_an_answer() {
    let cluster = Cluster::start(Options::default()).await;
    let key = cluster.key_owned_by(1, "missing");
    let answer = get(&cluster.nodes[0].api(&key)).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer.header("x-geecache-error"),
        Some(ErrorKind::NotFound.as_str())
    );
    // Asked of the owner only; the asking node did not load it again.
    assert_eq!(
        cluster.world.loads_of(&key),
        vec![cluster.nodes[1].url.clone()]
    );
    assert_eq!(cluster.nodes[0].group.stats().peer_errors, 0);
    assert_eq!(
        cluster.nodes[0].outcomes.all(),
        vec![(cluster.nodes[1].url.clone(), PeerOutcome::NotFound)]
    );
}

// A 500 says nothing this node can tell from a failure of the owner alone (its source may be
// down for it only), so the owner's stand-in is asked once, then this node loads: three tries
// of the source, never more.
#[tokio::test]
async fn a_peers_load_failure_goes_to_its_stand_in_and_fails_here_too() {
    let cluster = Cluster::start(Options::default()).await;
    let key = cluster.key_standing_in(1, 2, 0, "fail");
    let answer = get(&cluster.nodes[0].api(&key)).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        answer.header("x-geecache-error"),
        Some(ErrorKind::LoadFailed.as_str())
    );
    assert!(
        answer.text().contains("the source is down for fail"),
        "{}",
        answer.text()
    );
    let urls = |nodes: &[usize]| -> Vec<String> {
        nodes
            .iter()
            .map(|&i| cluster.nodes[i].url.clone())
            .collect()
    };
    assert_eq!(cluster.world.loads_of(&key), urls(&[1, 2, 0]));
    assert_eq!(cluster.nodes[0].group.stats().peer_errors, 2);
    assert_eq!(
        cluster.nodes[0].outcomes.all(),
        urls(&[1, 2])
            .into_iter()
            .map(|url| (url, PeerOutcome::Status))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_value_that_expired_on_the_way_is_served_but_not_cached() {
    let listener = loopback().await;
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    let app = Router::new().fallback(|| async {
        let message = GetResponse {
            value: Some("stale-but-served".into()),
            minute_qps: None,
            expire: Some(1), // one nanosecond after the epoch: long past
        };
        (
            [(http::header::CONTENT_TYPE, "application/x-protobuf")],
            message.encode_to_vec(),
        )
    });
    let server = tokio::spawn(serve(listener, app, std::future::pending()));
    let (cluster, key) = beside(
        &url,
        Options {
            hot_admission: 1,
            ..Options::default()
        },
    )
    .await;
    let node = &cluster.nodes[0];
    for _ in 0..2 {
        let answer = get(&node.api(&key)).await;
        assert_eq!(answer.text(), "stale-but-served");
        assert_eq!(answer.header("x-geecache-source"), Some("peer"));
    }
    let stats = node.group.stats();
    assert_eq!(
        (stats.peer_loads, stats.hot.items, stats.main.items),
        (2, 0, 0)
    );
    server.abort();
}

#[tokio::test]
async fn removal_through_a_dead_owner_still_reaches_the_others() {
    let mut cluster = Cluster::start(Options {
        hot_admission: 1,
        ..Options::default()
    })
    .await;
    let key = cluster.key_owned_by(2, "k");
    for node in &cluster.nodes {
        get(&node.api(&key)).await;
    }
    let owner = cluster.nodes[2].url.clone();
    cluster.nodes[2].kill();

    let removed = send(http::Method::DELETE, &cluster.nodes[0].api(&key), &[]).await;
    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(
        removed.header("x-geecache-unconfirmed"),
        Some(owner.as_str())
    );
    for node in &cluster.nodes[..2] {
        let stats = node.group.stats();
        assert_eq!((stats.main.items, stats.hot.items), (0, 0), "{}", node.url);
    }
}

// A node that does not know the peek (Go groupcache, an older geecache) serves it as a full
// get, which may load the key. Its answer still counts, but it is never peeked again.
#[tokio::test]
async fn a_peer_that_answers_a_peek_as_a_get_is_not_peeked_again() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use geecache_group::PeerPicker;

    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    let app = Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        let body = GetResponse {
            value: Some(bytes::Bytes::from_static(b"from a full get")),
            ..GetResponse::default()
        }
        .encode_to_vec();
        async move {
            (
                [(http::header::CONTENT_TYPE, "application/x-protobuf")],
                body,
            )
        }
    });
    let listener = loopback().await;
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    let server = tokio::spawn(serve(listener, app, std::future::pending()));

    let pool = geecache_transport_http::HttpPool::builder("http://127.0.0.1:9")
        .build()
        .expect("valid pool");
    pool.set_peers([url.as_str()]).expect("valid peers");
    let peer = pool.all_peers().pop().expect("one peer");
    let first = peer.peek("scores", "k").await.expect("an answer");
    assert_eq!(first.expect("a value").value(), "from a full get");
    assert_eq!(peer.peek("scores", "k").await.expect("no request"), None);
    assert_eq!(requests.load(Ordering::SeqCst), 1, "asked once");
    server.abort();
}

// Go groupcache serves a DELETE as a GET and answers 200. That used to count as "the owner
// removed the key and told everyone", so hot copies elsewhere survived a removal the caller
// was told had succeeded. Only a geecache node's explicit confirmation counts now: the asking
// node tells every member itself and reports the Go node as unconfirmed.
#[tokio::test]
async fn a_removal_owned_by_a_node_that_does_not_confirm_is_fanned_out_and_reported() {
    let app = Router::new().fallback(|| async {
        let body = GetResponse::default().encode_to_vec();
        (
            [(http::header::CONTENT_TYPE, "application/x-protobuf")],
            body,
        )
    });
    let listener = loopback().await;
    let go_like = format!("http://{}", listener.local_addr().expect("bound"));
    let server = tokio::spawn(serve(listener, app, std::future::pending()));

    let cluster = Cluster::start(Options {
        hot_admission: 1,
        ..Options::default()
    })
    .await;
    let mut urls: Vec<String> = cluster.nodes.iter().map(|n| n.url.clone()).collect();
    urls.push(go_like.clone());
    for node in &cluster.nodes {
        node.pool.set_peers(&urls).expect("valid peers");
    }
    let asker = &cluster.nodes[0];
    let key = (0..10_000)
        .map(|i| format!("k{i}"))
        .find(|k| asker.pool.owner_of(k).as_deref() == Some(go_like.as_str()))
        .expect("the Go-like node owns some key");
    // A hot copy on another geecache node, which the removal must reach.
    let holder = &cluster.nodes[1];
    assert!(get(&holder.api(&key)).await.status.is_success());
    assert_eq!(holder.group.stats().hot.items, 1);
    let removal = asker.group.remove(&key).await;
    assert_eq!(removal.unconfirmed, vec![go_like.clone()], "{removal:?}");
    assert_eq!(
        holder.group.stats().hot.items,
        0,
        "the asker told the holder itself"
    );
    let removed = send(http::Method::DELETE, &asker.api(&key), &[]).await;
    assert_eq!(
        removed.status,
        StatusCode::OK,
        "not 204: one member did not confirm"
    );
    assert_eq!(
        removed.header("x-geecache-unconfirmed"),
        Some(go_like.as_str())
    );
    server.abort();
}

/// Sends `GET /x` on a kept-alive connection and reads the `ok` answer to its last byte.
async fn ask_ok(socket: &mut TcpStream) -> String {
    socket
        .write_all(b"GET /x HTTP/1.1\r\nHost: node\r\n\r\n")
        .await
        .expect("the request is written");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"\r\n\r\nok") {
        let n = tokio::time::timeout(Duration::from_secs(30), socket.read(&mut buf))
            .await
            .expect("an answer")
            .expect("a read");
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

// Regression: a node had no connection limit, so 1,100 silent connections under a 1,024
// descriptor limit left `accept` failing and real clients waiting up to 30 s. Beyond the limit a
// connection is answered 503 `too-many-connections` and closed at once, while the connections
// already open are served.
#[tokio::test]
async fn a_connection_flood_beyond_the_limit_is_refused_while_open_connections_are_served() {
    const LIMIT: usize = 4;
    let listener = loopback().await;
    let addr = listener.local_addr().expect("bound");
    let app = Router::new().route("/x", axum::routing::get(|| async { "ok" }));
    let config = ServeConfig::new().max_connections(LIMIT);
    let server = tokio::spawn(serve_with(listener, app, config, std::future::pending()));

    // A client whose connection is open (and served) before the flood.
    let mut client = TcpStream::connect(addr).await.expect("connects");
    assert!(ask_ok(&mut client).await.starts_with("HTTP/1.1 200"));
    // Silent connections up to the limit; the server accepts them in order.
    let mut silent = Vec::new();
    for _ in 1..LIMIT {
        silent.push(TcpStream::connect(addr).await.expect("connects"));
    }
    // The flood beyond the limit: each is told why, and closed.
    for _ in 0..20 {
        let mut extra = TcpStream::connect(addr).await.expect("connects");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), extra.read_to_end(&mut answer))
            .await
            .expect("closed by the server")
            .expect("read to the end");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{answer:?}"
        );
        let kind = ErrorKind::TooManyConnections.as_str();
        assert!(
            answer.contains(&format!("x-geecache-error: {kind}\r\n")),
            "{answer:?}"
        );
    }
    // The open connection is still served.
    assert!(ask_ok(&mut client).await.starts_with("HTTP/1.1 200"));
    // Once silent connections close, new ones get in again (as soon as the server has seen
    // the close: a bounded number of attempts).
    drop(silent);
    let mut served = false;
    for _ in 0..1_000 {
        let mut fresh = TcpStream::connect(addr).await.expect("connects");
        let request = b"GET /x HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n";
        // A refused connection may be reset before the request is written or read back.
        let mut answer = Vec::new();
        if fresh.write_all(request).await.is_ok() {
            let _ = fresh.read_to_end(&mut answer).await;
        }
        if answer.starts_with(b"HTTP/1.1 200") {
            served = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(served, "no room after the silent connections closed");
    server.abort();
}

// Regression: peer answers were limited one by one (64 MiB) but not in all: 50 fetches from a
// peer that trickles chunked bodies took a node to 476 MB. The bytes being received count
// against one budget per pool, and a fetch that would go over it stops at once and falls back
// to the local loader, without blaming the peer.
#[tokio::test]
async fn trickled_bodies_to_many_fetches_stay_within_the_budget_and_fall_back() {
    const BUDGET: usize = 1 << 20;
    const FETCHES: usize = 20;
    let (url, task) = fake_peer(Fake::Trickle).await;
    let options = Options {
        max_bytes_in_flight: BUDGET,
        // A real, short timeout for the two fetches that fill the budget and then wait: the
        // assertions are about what happens to the others, not when.
        timeout: Duration::from_millis(500),
        ..Options::default()
    };
    let (cluster, _) = beside(&url, options).await;
    let node = &cluster.nodes[0];
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("t{i}"))
        .filter(|k| node.pool.owner_of(k).as_deref() == Some(url.as_str()))
        .take(FETCHES)
        .collect();
    let mut fetches = tokio::task::JoinSet::new();
    for key in keys.clone() {
        let group = node.group.clone();
        fetches.spawn(async move { (group.get(&key).await, key) });
    }
    let mut most = 0;
    while let Some(done) = fetches.join_next().await {
        most = most.max(node.pool.bytes_in_flight());
        let (value, key) = done.expect("the fetch did not panic");
        let value = value.expect("a value, from the local loader");
        assert_eq!(value.to_string(), value_of(&key, 0));
    }
    assert!(most <= BUDGET, "{most} bytes in flight");
    assert_eq!(node.pool.bytes_in_flight(), 0, "every claim given back");
    let outcomes = node.outcomes.all();
    let over = (outcomes.iter())
        .filter(|(_, o)| *o == PeerOutcome::OverBudget)
        .count();
    // 512 KiB each: at most two answers fit in 1 MiB at once; every other fetch stopped.
    assert!(over >= FETCHES - 2, "{outcomes:?}");
    assert_eq!(cluster.world.loads().len(), FETCHES, "each key loaded here");
    task.abort();
}
