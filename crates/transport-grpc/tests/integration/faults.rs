//! Bad input over gRPC: each gets a clear status, and the node keeps serving.

use std::time::Duration;

use geecache_group::PeerError;
use geecache_transport_grpc::ErrorKind;
use geecache_transport_grpc::proto::{GetRequest, GetResponse};
use tonic::Code;
use tonic::transport::Endpoint;

use crate::support::{GROUP, Node, TOKEN, peer_at};

/// A raw client for `node`, to send what a pool never would.
async fn raw(node: &Node) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel = Endpoint::from_shared(node.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic::client::Grpc::new(channel)
}

/// Sends `message` to `method` with `token`, decoding the answer as a `GetResponse`.
async fn call<M: prost::Message + Send + Sync + 'static>(
    node: &Node,
    method: &'static str,
    message: M,
    token: Option<&str>,
) -> Result<GetResponse, tonic::Status> {
    let mut client = raw(node).await;
    client.ready().await.unwrap();
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    let codec = tonic_prost::ProstCodec::<M, GetResponse>::default();
    let path = http::uri::PathAndQuery::from_static(method);
    client
        .unary(request, path, codec)
        .await
        .map(tonic::Response::into_inner)
}

fn get(group: &str, key: &str) -> GetRequest {
    GetRequest {
        group: group.into(),
        key: key.into(),
    }
}

/// The node still answers a good call.
async fn still_serving(node: &Node, token: Option<&str>) {
    let answer = node.peer(token).get(GROUP, "alive").await.unwrap();
    assert_eq!(answer.value(), &"value-of-alive");
}

#[tokio::test]
async fn an_unknown_group_is_not_found_but_not_an_answer() {
    let node = Node::start(None).await;
    let status = call(&node, "/geecache.v1.Peer/Get", get("nope", "k"), None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(ErrorKind::of(&status), Some(ErrorKind::UnknownGroup));
    assert!(
        status.message().contains("no such group"),
        "{}",
        status.message()
    );
    // Through a pool: a failure, so the caller loads the key itself.
    assert!(matches!(
        node.peer(None).get("nope", "k").await,
        Err(PeerError::Status { status: 404, .. })
    ));
    still_serving(&node, None).await;
}

#[tokio::test]
async fn an_oversized_or_empty_key_is_refused_before_any_group_sees_it() {
    let node = Node::start(None).await;
    let long = "k".repeat(65);
    let status = call(&node, "/geecache.v1.Peer/Get", get(GROUP, &long), None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(ErrorKind::of(&status), Some(ErrorKind::KeyTooLong));
    let status = call(&node, "/geecache.v1.Peer/Get", get(GROUP, ""), None)
        .await
        .unwrap_err();
    assert_eq!(ErrorKind::of(&status), Some(ErrorKind::BadRequest));
    assert_eq!(node.loads.load(std::sync::atomic::Ordering::SeqCst), 0);
    still_serving(&node, None).await;
}

/// Field 1 as a number where a string belongs.
#[derive(Clone, PartialEq, prost::Message)]
struct WrongType {
    #[prost(uint64, tag = "1")]
    group: u64,
}

/// Field 2 as bytes that are not UTF-8, where a string belongs.
#[derive(Clone, PartialEq, prost::Message)]
struct NotUtf8 {
    #[prost(bytes = "vec", tag = "2")]
    key: Vec<u8>,
}

#[tokio::test]
async fn a_malformed_message_is_refused() {
    let node = Node::start(None).await;
    let status = call(&node, "/geecache.v1.Peer/Get", WrongType { group: 7 }, None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    let bytes = NotUtf8 {
        key: vec![0xff, 0xfe],
    };
    let status = call(&node, "/geecache.v1.Peer/Get", bytes, None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    still_serving(&node, None).await;
}

#[tokio::test]
async fn a_message_over_the_limit_is_refused() {
    let node = Node::start(None).await;
    // The node takes messages up to 1 MiB.
    let huge = get(GROUP, &"k".repeat(2 << 20));
    let status = call(&node, "/geecache.v1.Peer/Get", huge, None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    still_serving(&node, None).await;
}

#[tokio::test]
async fn unknown_methods_are_unimplemented() {
    let node = Node::start(None).await;
    for method in ["/geecache.v1.Peer/Nope", "/geecache.v1.Peer/getMany"] {
        let status = call(&node, method, get(GROUP, "k"), None)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented, "{method}");
    }
    still_serving(&node, None).await;
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_unauthenticated() {
    let node = Node::start(Some(TOKEN)).await;
    for token in [None, Some("wrong"), Some("s3cre"), Some("s3cret2")] {
        let status = call(&node, "/geecache.v1.Peer/Get", get(GROUP, "k"), token)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{token:?}");
        assert_eq!(ErrorKind::of(&status), Some(ErrorKind::Unauthorized));
        assert!(matches!(
            node.peer(token).get(GROUP, "k").await,
            Err(PeerError::Status { status: 401, .. })
        ));
    }
    assert_eq!(node.loads.load(std::sync::atomic::Ordering::SeqCst), 0);
    still_serving(&node, Some(TOKEN)).await;
}

/// A peer that accepts connections and never says a word: the call ends at the deadline.
/// Time is paused, so the deadline passes as soon as nothing else can happen.
#[tokio::test(start_paused = true)]
async fn a_peer_that_hangs_times_out_and_the_others_are_still_served() {
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());
    // Accepts and holds every connection, reading nothing.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            held.push(socket);
        }
    });
    let node = Node::start(None).await;
    let peer = peer_at(&hung_url, None, Duration::from_secs(3));
    let good_peer = node.peer(None);
    let (hung_answer, good) = tokio::join!(peer.get(GROUP, "k"), good_peer.get(GROUP, "k"));
    assert!(
        matches!(hung_answer, Err(PeerError::Timeout(t)) if t == Duration::from_secs(3)),
        "{hung_answer:?}"
    );
    assert_eq!(good.unwrap().value(), &"value-of-k");
    holder.abort();
}
