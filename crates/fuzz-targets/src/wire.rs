//! The wire target: every protobuf message a peer may send, decoded from the same bytes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use geecache_transport_http::proto::{
    GetMany, GetManyAnswer, GetRequest, GetResponse, HandOver, HandedValue, KeyAnswer,
};
use prost::Message;

/// A fixed "now", so that a crash reproduces: the time-to-live arithmetic is part of decoding.
const NOW: Duration = Duration::from_secs(1_800_000_000);

/// Decodes `data` as each message of the peer protocol.
///
/// # Panics
///
/// When a decoded message does not encode to the same bytes twice: re-encoding is what a node
/// does with a value it hands over, so a message that changes on the way would corrupt it.
pub fn wire(data: &[u8]) {
    let now = UNIX_EPOCH + NOW;
    if let Some(m) = stable::<GetResponse>(data) {
        let _ = m.ttl_at(now);
    }
    if let Some(m) = stable::<HandOver>(data) {
        for v in &m.values {
            let _ = v.ttl_at(now);
        }
    }
    if let Some(m) = stable::<HandedValue>(data) {
        let _ = m.ttl_at(now);
    }
    if let Some(m) = stable::<GetManyAnswer>(data) {
        for a in &m.answers {
            let _ = a.ttl_at(now);
        }
    }
    if let Some(m) = stable::<KeyAnswer>(data) {
        let _ = m.ttl_at(now);
    }
    stable::<GetMany>(data);
    stable::<GetRequest>(data);
    // The time arithmetic must saturate for any `now` too, not only the fixed one.
    if let (Some(m), Some(secs)) = (GetResponse::decode(data).ok(), data.first()) {
        let _ = m.ttl_at(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(*secs) << 32));
    }
}

/// Decodes `data` as `M` and checks that encoding is a fixed point from there on.
///
/// Bytes are compared rather than messages: `minute_qps` may be NaN, which is not equal to
/// itself, and the bytes are what travels anyway.
fn stable<M: Message + Default>(data: &[u8]) -> Option<M> {
    let message = M::decode(data).ok()?;
    let once = message.encode_to_vec();
    let again = M::decode(once.as_slice())
        .unwrap_or_else(|e| panic!("a re-encoded message no longer decodes: {e}"))
        .encode_to_vec();
    assert_eq!(once, again, "re-encoding changed the message");
    Some(message)
}
