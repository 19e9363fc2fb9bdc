use std::time::{Duration, SystemTime, UNIX_EPOCH};

use geecache_group::PeerError;
use proptest::prelude::*;
use tonic::{Code, Status};

use crate::kind::{ErrorKind, peer_error};
use crate::proto::GetResponse;

#[test]
fn every_kind_round_trips_through_a_status() {
    for kind in ErrorKind::ALL {
        let status = kind.status("why");
        assert_eq!(status.code(), kind.code());
        assert_eq!(ErrorKind::of(&status), Some(kind));
        assert_eq!(ErrorKind::parse(kind.as_str()), Some(kind));
    }
}

#[test]
fn only_the_nodes_own_answers_about_the_key_are_answers() {
    assert!(matches!(
        peer_error(&ErrorKind::NotFound.status("x")),
        PeerError::NotFound
    ));
    match peer_error(&ErrorKind::InvalidKey.status("invalid key: has ..")) {
        PeerError::Rejected(r) => assert_eq!(r.reason(), "has .."),
        other => panic!("{other:?}"),
    }
    // An unknown group is NOT_FOUND too, but says nothing about the key.
    assert!(matches!(
        peer_error(&ErrorKind::UnknownGroup.status("x")),
        PeerError::Status { status: 404, .. }
    ));
    // A bare NOT_FOUND (no kind: a proxy, another service) is no answer either.
    assert!(matches!(
        peer_error(&Status::not_found("x")),
        PeerError::Status { status: 404, .. }
    ));
    // A kind whose code does not match is not believed.
    let mut forged = Status::internal("x");
    forged
        .metadata_mut()
        .insert(crate::ERROR_METADATA, "not-found".parse().unwrap());
    assert!(matches!(
        peer_error(&forged),
        PeerError::Status { status: 500, .. }
    ));
    assert!(matches!(
        peer_error(&ErrorKind::ShuttingDown.status("draining")),
        PeerError::Unavailable(_)
    ));
    assert!(matches!(
        peer_error(&Status::new(Code::OutOfRange, "too large")),
        PeerError::Malformed(_)
    ));
    // A connection that broke under the call: made here (it has a source), not received.
    let broken = Status::from_error(Box::new(std::io::Error::from(
        std::io::ErrorKind::BrokenPipe,
    )));
    assert_eq!(broken.code(), Code::Unknown);
    assert!(matches!(peer_error(&broken), PeerError::Unavailable(_)));
    assert!(matches!(
        peer_error(&Status::unknown("from the wire")),
        PeerError::Status { status: 500, .. }
    ));
    assert!(matches!(
        peer_error(&ErrorKind::Unauthorized.status("x")),
        PeerError::Status { status: 401, .. }
    ));
}

#[test]
fn expiry_survives_the_message() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let message = GetResponse::of("v".into(), Some(Duration::from_secs(30)), now);
    assert_eq!(message.ttl_at(now), Some(Duration::from_secs(30)));
    assert_eq!(GetResponse::of("v".into(), None, now).ttl_at(now), None);
    let past = GetResponse {
        expire: -5,
        ..GetResponse::default()
    };
    assert_eq!(past.ttl_at(now), Some(Duration::ZERO));
}

proptest! {
    /// Whatever the ttl and clock, an expiry never reads as "no expiry" and never grows.
    #[test]
    fn a_ttl_never_comes_back_longer(secs in 0u64..1 << 40, nanos in 0u32..1_000_000_000, ttl_ms in 0u64..1 << 50) {
        let now = UNIX_EPOCH + Duration::new(secs, nanos);
        let ttl = Duration::from_millis(ttl_ms);
        let message = GetResponse::of("v".into(), Some(ttl), now);
        let back = message.ttl_at(now);
        prop_assert!(back.is_some());
        prop_assert!(back.unwrap() <= ttl);
        let _ = SystemTime::now();
    }
}
