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
//! message GetMany     { repeated string keys = 1; }
//! message KeyAnswer   { optional bytes value = 1; optional double minute_qps = 2;
//!                       optional int64 expire = 3; optional string error = 4;
//!                       optional string message = 5; }
//! message GetManyAnswer { repeated KeyAnswer answers = 1; }
//! ```
//!
//! Fields 1 and 2 of `GetResponse` are groupcache's, though groupcache never fills in
//! `minute_qps`; geecache's owner does (the key's request rate, which the asking node
//! admits a hot copy by), and a Go node ignores it. Field 3 is geecache's: the value's expiry
//! in unix nanoseconds. A Go node skips it as an unknown field, and a Go node never sends it, so
//! values from Go peers simply have no time to live. `HandOver` is geecache's alone: a node
//! gives its values to their keys' next owners in it, many per request (Go nodes are never
//! sent one). So are the batch messages: `GetMany` asks a peer for many keys in one request,
//! and `GetManyAnswer` holds one `KeyAnswer` per key, in the same order: a value as in
//! `GetResponse`, or an error named as the `x-geecache-error` header names it (`not-found`,
//! `invalid-key`, ...) with a message for people.

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
    /// The key's request rate at its owner, in requests per second (a decaying average over
    /// about a minute). Groupcache defines it and never sends it; a geecache owner sends it,
    /// and the asking node keeps a hot copy of the value when it is high enough. Absent from a
    /// Go peer, and from a node answering for a key it does not own.
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

    /// The same response carrying the key's request rate, `qps` (none when `None`).
    #[must_use]
    pub fn with_minute_qps(mut self, qps: Option<f64>) -> Self {
        self.minute_qps = qps;
        self
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

/// The body of a batch get: keys of one group, each at most once.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct GetMany {
    /// The keys.
    #[prost(string, repeated, tag = "1")]
    pub keys: Vec<String>,
}

/// One key's answer in a [`GetManyAnswer`]: a value, or an error.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyAnswer {
    /// The value when there is no `error`. Absent means empty.
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub value: Option<Bytes>,
    /// The key's request rate at its owner, as in [`GetResponse::minute_qps`].
    #[prost(double, optional, tag = "2")]
    pub minute_qps: Option<f64>,
    /// When the value expires, as in [`GetResponse::expire`].
    #[prost(int64, optional, tag = "3")]
    pub expire: Option<i64>,
    /// Why there is no value, as the `x-geecache-error` header would name it on a single get
    /// ([`ErrorKind::as_str`](crate::ErrorKind::as_str)): `not-found`, `invalid-key`, ...
    #[prost(string, optional, tag = "4")]
    pub error: Option<String>,
    /// The error's message, for people.
    #[prost(string, optional, tag = "5")]
    pub message: Option<String>,
}

impl KeyAnswer {
    /// An answer carrying `value`, expiring as [`GetResponse::with_ttl`] says.
    #[must_use]
    pub fn found(value: impl Into<Bytes>, ttl: Option<Duration>, now: SystemTime) -> Self {
        KeyAnswer {
            value: Some(value.into()),
            minute_qps: None,
            expire: ttl.map(|ttl| expire_at(now, ttl)),
            error: None,
            message: None,
        }
    }

    /// An answer saying why there is no value.
    #[must_use]
    pub fn failed(kind: crate::ErrorKind, message: impl Into<String>) -> Self {
        KeyAnswer {
            value: None,
            minute_qps: None,
            expire: None,
            error: Some(kind.as_str().to_owned()),
            message: Some(message.into()),
        }
    }

    /// The same answer carrying the key's request rate, `qps` (none when `None`).
    #[must_use]
    pub fn with_minute_qps(mut self, qps: Option<f64>) -> Self {
        self.minute_qps = qps;
        self
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

/// The answer to a [`GetMany`]: one [`KeyAnswer`] per key, in the order of the keys.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetManyAnswer {
    /// The answers.
    #[prost(message, repeated, tag = "1")]
    pub answers: Vec<KeyAnswer>,
}
