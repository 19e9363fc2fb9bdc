//! The protobuf messages of the peer protocol, byte-compatible with Go groupcache's
//! `groupcachepb`.
//!
//! They are written with `prost` derives instead of being generated from a `.proto` file: two
//! small messages do not justify `protoc` and a build script in every build. The schema they
//! implement, field numbers included, is:
//!
//! ```proto
//! syntax = "proto2";
//! message GetRequest  { required string group = 1; required string key = 2; }
//! message GetResponse { optional bytes value = 1; optional double minute_qps = 2; optional int64 expire = 3; }
//! message HandedValue { required string key = 1; optional bytes value = 2; optional int64 expire = 3; }
//! message HandOver    { repeated HandedValue values = 1; }
//! ```
//!
//! Fields 1 and 2 of `GetResponse` are groupcache's. Field 3 is geecache's: the value's expiry
//! in unix nanoseconds. A Go node skips it as an unknown field, and a Go node never sends it, so
//! values from Go peers simply have no time to live. `HandOver` is geecache's alone: a node
//! gives its values to their keys' next owners in it, many per request (Go nodes are never
//! sent one).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// A request for one key of one group.
///
/// The HTTP transport carries group and key in the URL path, as groupcache's does, so it never
/// sends this message; it is here for transports that put requests in a body.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct GetRequest {
    /// The group's name.
    #[prost(string, required, tag = "1")]
    pub group: String,
    /// The key.
    #[prost(string, required, tag = "2")]
    pub key: String,
}

/// The answer to a get: the value, and when it expires.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetResponse {
    /// The value. Absent means empty, as for groupcache.
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub value: Option<Bytes>,
    /// Groupcache's per-minute request rate of the key; geecache neither sends nor reads it.
    #[prost(double, optional, tag = "2")]
    pub minute_qps: Option<f64>,
    /// When the value expires, in nanoseconds since the unix epoch; absent or 0 when it does
    /// not expire.
    #[prost(int64, optional, tag = "3")]
    pub expire: Option<i64>,
}

impl GetResponse {
    /// A response carrying `value`, with `expire` set to `now + ttl` when there is a time to
    /// live.
    #[must_use]
    pub fn with_ttl(value: impl Into<Bytes>, ttl: Option<Duration>, now: SystemTime) -> Self {
        GetResponse {
            value: Some(value.into()),
            minute_qps: None,
            expire: ttl.map(|ttl| expire_at(now, ttl)),
        }
    }

    /// The time the value has left to live as seen at `now`: `None` when it does not expire,
    /// [`Duration::ZERO`] when the deadline has passed (the caller may serve the value but
    /// should not cache it).
    ///
    /// A negative `expire` is taken as a deadline in the past rather than as "no expiry": when a
    /// sender is confused about time, caching its value for ever is the worse mistake.
    #[must_use]
    pub fn ttl_at(&self, now: SystemTime) -> Option<Duration> {
        match self.expire {
            None | Some(0) => None,
            Some(nanos) if nanos < 0 => Some(Duration::ZERO),
            Some(nanos) => {
                let deadline = UNIX_EPOCH + Duration::from_nanos(nanos.unsigned_abs());
                Some(deadline.duration_since(now).unwrap_or(Duration::ZERO))
            }
        }
    }
}

/// `now + ttl` in unix nanoseconds, saturating instead of overflowing: `i64` nanoseconds end in
/// the year 2262, and a value cached "for ever" must not wrap into the past.
fn expire_at(now: SystemTime, ttl: Duration) -> i64 {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let nanos = since_epoch.saturating_add(ttl).as_nanos();
    // 0 would mean "no expiry"; a deadline at the epoch itself is long past, so say 1.
    i64::try_from(nanos).unwrap_or(i64::MAX).max(1)
}

/// One value a node gives to its key's next owner: the key, the value and its expiry, as in
/// [`GetResponse`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct HandedValue {
    /// The key.
    #[prost(string, required, tag = "1")]
    pub key: String,
    /// The value. Absent means empty.
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub value: Option<Bytes>,
    /// When the value expires, in nanoseconds since the unix epoch; absent or 0 when it does
    /// not expire.
    #[prost(int64, optional, tag = "3")]
    pub expire: Option<i64>,
}

impl HandedValue {
    /// `value` for `key`, with `expire` set to `now + ttl` when there is a time to live.
    #[must_use]
    pub fn with_ttl(
        key: impl Into<String>,
        value: impl Into<Bytes>,
        ttl: Option<Duration>,
        now: SystemTime,
    ) -> Self {
        HandedValue {
            key: key.into(),
            value: Some(value.into()),
            expire: ttl.map(|ttl| expire_at(now, ttl)),
        }
    }

    /// The time the value has left to live at `now`, read as [`GetResponse::ttl_at`] reads it.
    #[must_use]
    pub fn ttl_at(&self, now: SystemTime) -> Option<Duration> {
        GetResponse {
            value: None,
            minute_qps: None,
            expire: self.expire,
        }
        .ttl_at(now)
    }
}

/// The body of a hand-over: values for keys the receiving node owns.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HandOver {
    /// The values, in no particular order.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<HandedValue>,
}
