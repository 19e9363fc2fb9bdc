//! Nodes built by the node builder, over either transport: the wiring of pool, service, token,
//! key limit, metrics and drain, in one process on loopback ports.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use geecache_consistenthash::Preset;
use geecache_transport_grpc::GrpcPool;
use geecache_transport_grpc::proto::{GetRequest, PeerClient};
use http::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::Transport;
use crate::client::{self, Fetched, HttpClient};
use crate::node::{Drained, Node, NodeGroup, NodeOptions};
use crate::source::{DataSource, DemoTable, HttpOrigin};

/// Long enough never to pass on a loaded machine: the tests wait for answers, not for time.
const PATIENT: Duration = Duration::from_secs(20);
const TOKEN: &str = "peer-secret";
const GROUP: &str = "scores";

fn options(urls: &[String], i: usize, transport: Transport, source: DataSource) -> NodeOptions {
    NodeOptions {
        transport,
        ring: Preset::Balanced,
        peer_timeout: PATIENT,
        max_key_bytes: 64,
        peer_token: Some(TOKEN.to_owned()),
        ..NodeOptions::new(
            Some(urls[i].clone()),
            urls.to_vec(),
            vec![NodeGroup::new(GROUP, 1 << 20, source)],
        )
    }
}

/// `n` nodes that know each other, each with the source `source(i)`.
async fn cluster(
    n: usize,
    transport: Transport,
    source: impl Fn(usize) -> DataSource,
) -> Vec<Node> {
    let mut listeners = Vec::new();
    for _ in 0..n {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let urls: Vec<String> = (listeners.iter())
        .map(|l| format!("http://{}", l.local_addr().unwrap()))
        .collect();
    let mut nodes = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let options = options(&urls, i, transport, source(i));
        nodes.push(Node::start(listener, options).await.unwrap());
    }
    nodes
}

async fn get(http: &HttpClient, node: &Node, path: &str) -> Fetched {
    let url = format!("{}{path}", node.url());
    client::get(http, &url, Some(TOKEN), PATIENT, 1 << 20)
        .await
        .unwrap()
}

/// The count of peer fetches from `node` to `peer` that ended with `outcome`, from the
/// node's `/metrics`: the series dashboards read, whichever the transport.
async fn peer_requests(http: &HttpClient, node: &Node, peer: &str, outcome: &str) -> u64 {
    let scrape = get(http, node, "/metrics").await;
    let text = String::from_utf8(scrape.body.to_vec()).unwrap();
    let wanted = format!("peer=\"{peer}\"");
    let outcome = format!("outcome=\"{outcome}\"");
    (text.lines())
        .filter(|l| l.starts_with("geecache_peer_request_duration_seconds_count{"))
        .filter(|l| l.contains(&wanted) && l.contains(&outcome))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The ring of `urls`, to ask who owns a key (every node places keys alike, whatever its
/// transport).
fn ring_of(urls: &[String]) -> Arc<GrpcPool> {
    let ring = GrpcPool::builder(urls[0].as_str())
        .ring(Preset::Balanced)
        .build()
        .unwrap();
    ring.set_peers(urls).unwrap();
    ring
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_loads_each_key_once_over_either_transport() {
    for transport in [Transport::Http, Transport::Grpc] {
        let table = DemoTable::builder()
            .rows(1000)
            .delay(Duration::ZERO)
            .build();
        let nodes = cluster(3, transport, |_| DataSource::Demo(table.clone())).await;
        let http = client::new_client();
        for i in 0..60 {
            for node in &nodes {
                let answer = get(&http, node, &format!("/api/{GROUP}/{}", DemoTable::key(i))).await;
                assert_eq!(answer.status, StatusCode::OK, "{transport}");
                assert_eq!(answer.body, DemoTable::value(i).as_bytes(), "{transport}");
            }
        }
        let loads = table.load_summary();
        assert_eq!(
            (loads.distinct_keys, loads.total_loads),
            (60, 60),
            "{transport}: each key loaded once in the cluster, so every peer call (token \
             included) was answered"
        );
        // Every node asked the others for the keys they own, and said so in the same series.
        for (i, node) in nodes.iter().enumerate() {
            for (j, peer) in nodes.iter().enumerate() {
                if i != j {
                    let ok = peer_requests(&http, node, peer.url(), "ok").await;
                    assert!(
                        ok > 0,
                        "{transport}: node {i} counted no fetch from node {j}"
                    );
                }
            }
        }
        for node in nodes {
            assert_eq!(node.shutdown(PATIENT).await, Drained::Clean);
        }
    }
}

/// An origin whose keys starting with `hold-` answer only once `release` is sent; it tells
/// `arrived` of every such request.
async fn holding_origin() -> (String, mpsc::UnboundedReceiver<String>, watch::Sender<bool>) {
    let (arrived_tx, arrived) = mpsc::unbounded_channel();
    let (release, released) = watch::channel(false);
    let app = axum::Router::new().route(
        "/{key}",
        axum::routing::get(move |Path(key): Path<String>| {
            let (arrived, mut released) = (arrived_tx.clone(), released.clone());
            async move {
                if key.starts_with("hold-") {
                    let _ = arrived.send(key.clone());
                    let _ = released.wait_for(|r| *r).await;
                }
                format!("value-of-{key}")
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, arrived, release)
}

// A draining gRPC node refuses new calls (its HTTP/2 connections get GOAWAY, new ones are
// refused) while it finishes what it has: the asking node sees UNAVAILABLE, counts it, and
// loads the key itself, so no client gets an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_grpc_node_is_unavailable_and_the_asker_falls_back() {
    let (base, mut arrived, release) = holding_origin().await;
    let http = client::new_client();
    let origin = Arc::new(HttpOrigin::new(base, http.clone(), PATIENT, 1 << 20));
    let mut nodes = cluster(2, Transport::Grpc, |_| {
        DataSource::Http(Arc::clone(&origin))
    })
    .await;
    let urls: Vec<String> = nodes.iter().map(|n| n.url().to_owned()).collect();
    let ring = ring_of(&urls);
    let owned_by_b = |prefix: &str| {
        (0..10_000)
            .map(|i| format!("{prefix}{i}"))
            .filter(|k| ring.owner_of(k).as_deref() == Some(urls[1].as_str()))
            .take(200)
            .collect::<Vec<_>>()
    };
    let (held, probes) = (owned_by_b("hold-").remove(0), owned_by_b("key-"));
    let b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();

    // A's channel to B is open and used.
    let warm = get(&http, &a, &format!("/api/{GROUP}/{}", probes[0])).await;
    assert_eq!(warm.status, StatusCode::OK);
    assert_eq!(peer_requests(&http, &a, b.url(), "ok").await, 1);

    // B holds a request in flight, so its drain lasts until the origin is released.
    let in_flight = {
        let (http, url) = (http.clone(), format!("{}/api/{GROUP}/{held}", b.url()));
        tokio::spawn(async move { client::get(&http, &url, None, PATIENT, 1 << 20).await })
    };
    assert_eq!(arrived.recv().await.as_deref(), Some(held.as_str()));
    let b_url = b.url().to_owned();
    let draining = tokio::spawn(b.shutdown(PATIENT));

    // Until A has heard B's GOAWAY a call may still reach B and be served; after it, every
    // call is refused. Either way each answer is the value.
    let mut refused = 0;
    for key in &probes[1..] {
        let answer = get(&http, &a, &format!("/api/{GROUP}/{key}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{key}");
        assert_eq!(answer.body, format!("value-of-{key}").as_bytes());
        refused = peer_requests(&http, &a, &b_url, "unavailable").await;
        if refused > 0 {
            break;
        }
    }
    assert!(refused > 0, "A never saw B as unavailable while it drained");
    assert!(
        a.registry().get(GROUP).unwrap().stats().peer_errors >= 1,
        "the refused call counted as a peer error and fell back"
    );

    // B finishes what it had, then stops.
    release.send_replace(true);
    let held_answer = in_flight.await.unwrap().unwrap();
    assert_eq!(held_answer.status, StatusCode::OK);
    assert_eq!(held_answer.body, format!("value-of-{held}").as_bytes());
    assert_eq!(draining.await.unwrap(), Drained::Clean);
    a.shutdown(PATIENT).await;
}

// The node gives its gRPC service its own token and key limit (the service's answers to each
// are tested in the transport crate): a call without the token, with the wrong one, for an
// unknown group or with a key over the limit gets its status, and the node serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_grpc_calls_get_their_status_and_the_node_serves_on() {
    let table = DemoTable::builder().rows(10).delay(Duration::ZERO).build();
    let nodes = cluster(1, Transport::Grpc, |_| DataSource::Demo(table.clone())).await;
    let node = &nodes[0];
    let channel = tonic::transport::Endpoint::from_shared(node.url().to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut peer = PeerClient::new(channel);
    let call = |group: &str, key: &str, token: Option<&str>| {
        let mut request = tonic::Request::new(GetRequest {
            group: group.to_owned(),
            key: key.to_owned(),
        });
        if let Some(token) = token {
            let value = format!("Bearer {token}").parse().unwrap();
            request.metadata_mut().insert("authorization", value);
        }
        request
    };
    let key = DemoTable::key(3);
    let cases = [
        (call(GROUP, &key, None), tonic::Code::Unauthenticated),
        (
            call(GROUP, &key, Some("wrong")),
            tonic::Code::Unauthenticated,
        ),
        (call("nope", &key, Some(TOKEN)), tonic::Code::NotFound),
        (
            call(GROUP, &"k".repeat(65), Some(TOKEN)),
            tonic::Code::ResourceExhausted,
        ),
    ];
    for (request, code) in cases {
        let status = peer.get(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
    }
    let answer = peer.get(call(GROUP, &key, Some(TOKEN))).await.unwrap();
    assert_eq!(answer.into_inner().value, DemoTable::value(3).as_bytes());
    let http = client::new_client();
    let over_http = get(&http, node, &format!("/api/{GROUP}/{key}")).await;
    assert_eq!(over_http.status, StatusCode::OK);
    assert_eq!(
        table.load_summary().total_loads,
        1,
        "the bad calls loaded nothing"
    );
}

/// Members of the other scheme, as etcd may deliver them (a node started without TLS in a TLS
/// cluster), are left out; the rest of the list applies, over either transport.
#[test]
fn members_of_the_other_scheme_are_left_out_and_the_rest_applied() {
    use crate::membership::PeerSink;

    let dir = tempfile::tempdir().unwrap();
    let files = crate::tls::tests::write(
        dir.path(),
        &crate::tls::tests::pem(),
        crate::tls::ClientAuth::Required,
    );
    let tls = crate::tls::NodeTls::load(&files).unwrap();
    for transport in [Transport::Http, Transport::Grpc] {
        let me = "https://127.0.0.1:1".to_owned();
        let mut options = options(
            std::slice::from_ref(&me),
            0,
            transport,
            DataSource::Demo(DemoTable::builder().rows(10).build()),
        );
        options.tls = Some(Arc::clone(&tls));
        let observer =
            crate::metrics::Metrics::new(geecache_group::Registry::new()).peer_observer();
        let pool = super::Pool::build(&me, &options, observer).unwrap();
        pool.set_peers(&[
            me.clone(),
            "https://127.0.0.1:2".into(),
            "http://127.0.0.1:3".into(),
        ])
        .unwrap();
        assert_eq!(
            pool.peers(),
            ["https://127.0.0.1:1", "https://127.0.0.1:2"],
            "{transport}"
        );
    }
}
