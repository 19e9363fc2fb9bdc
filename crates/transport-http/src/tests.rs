//! Unit tests of the codecs and validators; the routes and the pool are tested end to end in
//! `tests/integration`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::AUTHORIZATION;
use proptest::prelude::*;
use prost::Message;

use crate::auth::{Token, constant_time_eq};
use crate::error::Error;
use crate::kind::ErrorKind;
use crate::path::{self, Decoding, PathError};
use crate::pool::HttpPool;
use crate::proto::{GetRequest, GetResponse};
use crate::validate;

/// Go's `url.QueryEscape`, as a model of what a Go groupcache client sends.
fn go_query_escape(s: &str) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn decode_form(raw: &str) -> Result<String, PathError> {
    path::decode(raw.as_bytes(), Decoding::Form).map(|c| c.into_owned())
}

#[test]
fn encode_escapes_everything_but_unreserved() {
    assert_eq!(path::encode("Tom").to_string(), "Tom");
    assert_eq!(path::encode("a-b_c.d~e").to_string(), "a-b_c.d~e");
    assert_eq!(path::encode("a b").to_string(), "a%20b");
    assert_eq!(path::encode("a/b+c%d").to_string(), "a%2Fb%2Bc%25d");
    assert_eq!(path::encode("ключ").to_string(), "%D0%BA%D0%BB%D1%8E%D1%87");
}

#[test]
fn form_decoding_reads_plus_as_space_and_percent_as_a_byte() {
    assert_eq!(decode_form("a+b").unwrap(), "a b");
    assert_eq!(decode_form("a%2Bb").unwrap(), "a+b");
    assert_eq!(decode_form("a%2fb%2F").unwrap(), "a/b/");
    assert_eq!(decode_form("%F0%9F%99%82").unwrap(), "🙂");
    assert_eq!(
        path::decode(b"a+b", Decoding::Percent).unwrap(),
        "a+b",
        "plain percent decoding keeps the plus"
    );
}

#[test]
fn decoding_borrows_when_there_is_nothing_to_decode() {
    assert!(matches!(
        path::decode(b"plain-key", Decoding::Form).unwrap(),
        std::borrow::Cow::Borrowed("plain-key")
    ));
}

#[test]
fn malformed_escapes_and_invalid_utf8_are_errors() {
    assert_eq!(decode_form("%"), Err(PathError::BadEscape { at: 0 }));
    assert_eq!(decode_form("ab%4"), Err(PathError::BadEscape { at: 2 }));
    assert_eq!(decode_form("a%zzb"), Err(PathError::BadEscape { at: 1 }));
    assert_eq!(decode_form("%FF"), Err(PathError::InvalidUtf8));
    assert_eq!(
        path::decode(&[b'a', 0xC3], Decoding::Form),
        Err(PathError::InvalidUtf8)
    );
}

#[test]
fn split_takes_the_first_slash_and_keeps_the_rest_raw() {
    let base = "/_geecache/";
    assert_eq!(path::split("/_geecache/g/k", base), Ok(("g", "k")));
    assert_eq!(path::split("/_geecache/g/a//b", base), Ok(("g", "a//b")));
    assert_eq!(path::split("/_geecache/g//k", base), Ok(("g", "/k")));
    assert_eq!(
        path::split("/_geecache/g/../../x", base),
        Ok(("g", "../../x"))
    );
    assert_eq!(path::split("/_geecache/g/./k/.", base), Ok(("g", "./k/.")));
    assert_eq!(path::split("/_geecache/g/", base), Ok(("g", "")));
    assert_eq!(
        path::split("/_geecache/g", base),
        Err(PathError::MissingKey)
    );
    assert_eq!(
        path::split("/_geecache//k", base),
        Err(PathError::EmptyGroup)
    );
    assert!(matches!(
        path::split("/other/g/k", base),
        Err(PathError::MissingBase { .. })
    ));
}

#[test]
fn peer_url_joins_prefix_group_and_key() {
    assert_eq!(
        path::peer_url("http://h:1/_geecache/", "scores", "a b/c"),
        "http://h:1/_geecache/scores/a%20b%2Fc"
    );
}

proptest! {
    #[test]
    fn any_key_survives_our_encoding(group in "[^/]{1,12}", key in any::<String>()) {
        let encoded = path::peer_url("/_geecache/", &group, &key);
        let (raw_group, raw_key) = path::split(&encoded, "/_geecache/").unwrap();
        prop_assert_eq!(decode_form(raw_group).unwrap(), group.clone());
        prop_assert_eq!(decode_form(raw_key).unwrap(), key.clone());
        prop_assert_eq!(path::decode(raw_key.as_bytes(), Decoding::Percent).unwrap(), key);
    }

    #[test]
    fn keys_with_the_awkward_characters_survive(
        key in proptest::collection::vec(prop_oneof![
            Just("/".to_owned()), Just("+".to_owned()), Just("%".to_owned()),
            Just(" ".to_owned()), Just("..".to_owned()), Just(".".to_owned()),
            Just("%2F".to_owned()), Just("ü".to_owned()), Just("🙂".to_owned()),
            "[a-z]{1,3}",
        ], 1..12).prop_map(|parts| parts.concat())
    ) {
        let encoded = path::peer_url("/_groupcache/", "g", &key);
        let (_, raw_key) = path::split(&encoded, "/_groupcache/").unwrap();
        prop_assert_eq!(decode_form(raw_key).unwrap(), key);
    }

    #[test]
    fn what_a_go_client_sends_decodes_to_the_key(key in any::<String>()) {
        prop_assert_eq!(decode_form(&go_query_escape(&key)).unwrap(), key);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
        for decoding in [Decoding::Form, Decoding::Percent] {
            if let Ok(decoded) = path::decode(&raw, decoding) {
                // Whatever decodes re-encodes to something that decodes to the same string.
                let again = path::encode(&decoded).to_string();
                prop_assert_eq!(decode_form(&again).unwrap(), decoded.into_owned());
            }
        }
    }

    #[test]
    fn splitting_arbitrary_paths_never_panics(p in any::<String>()) {
        if let Ok((group, key)) = path::split(&p, "/_geecache/") {
            prop_assert!(!group.is_empty());
            prop_assert!(!group.contains('/'));
            prop_assert_eq!(format!("/_geecache/{group}/{key}"), p);
        }
    }
}

#[test]
fn get_response_bytes_match_the_proto2_schema() {
    // The bytes protoc-generated code (Go's included) writes for these fields:
    // field 1, length-delimited: 0x0a len bytes; field 2, fixed64: 0x11 8 bytes;
    // field 3, varint: 0x18 varint.
    let message = GetResponse {
        value: Some("630".into()),
        minute_qps: Some(1.5),
        expire: Some(300),
    };
    let mut expected = vec![0x0a, 3, b'6', b'3', b'0', 0x11];
    expected.extend_from_slice(&1.5f64.to_le_bytes());
    expected.extend_from_slice(&[0x18, 0xac, 0x02]);
    assert_eq!(message.encode_to_vec(), expected);
    assert_eq!(GetResponse::decode(&expected[..]).unwrap(), message);
}

#[test]
fn a_go_response_has_only_a_value_and_decodes_without_expiry() {
    let go_bytes = [0x0a, 2, b'o', b'k'];
    let decoded = GetResponse::decode(&go_bytes[..]).unwrap();
    assert_eq!(decoded.value.as_deref(), Some(&b"ok"[..]));
    assert_eq!(decoded.ttl_at(SystemTime::now()), None);
}

#[test]
fn unknown_fields_are_skipped() {
    // A future field 9 (varint 7) after the value: older readers must ignore it.
    let bytes = [0x0a, 1, b'v', 0x48, 7];
    let decoded = GetResponse::decode(&bytes[..]).unwrap();
    assert_eq!(decoded.value.as_deref(), Some(&b"v"[..]));
}

#[test]
fn truncated_messages_are_errors() {
    assert!(GetResponse::decode(&[0x0a, 5, b'a'][..]).is_err());
    assert!(GetResponse::decode(&[0x18][..]).is_err());
}

#[test]
fn get_request_round_trips() {
    let request = GetRequest {
        group: "scores".into(),
        key: "Tom".into(),
    };
    let bytes = request.encode_to_vec();
    assert_eq!(bytes, b"\x0a\x06scores\x12\x03Tom");
    assert_eq!(GetRequest::decode(&bytes[..]).unwrap(), request);
}

#[test]
fn expiry_travels_as_unix_nanos_and_comes_back_as_remaining_ttl() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let message = GetResponse::with_ttl("v", Some(Duration::from_secs(30)), now);
    assert_eq!(message.expire, Some(1_700_000_030 * 1_000_000_000));
    // Read 10 s later, 20 s are left.
    let later = now + Duration::from_secs(10);
    assert_eq!(message.ttl_at(later), Some(Duration::from_secs(20)));
    // Read after the deadline: zero, served but not cached.
    assert_eq!(
        message.ttl_at(now + Duration::from_secs(31)),
        Some(Duration::ZERO)
    );
    // No ttl: no expire field at all, so Go nodes see exactly groupcache's message.
    let forever = GetResponse::with_ttl("v", None, now);
    assert_eq!(forever.expire, None);
    assert_eq!(forever.encode_to_vec(), b"\x0a\x01v");
}

#[test]
fn odd_expiry_values_are_handled() {
    let now = SystemTime::now();
    let at = |expire| GetResponse {
        value: None,
        minute_qps: None,
        expire: Some(expire),
    };
    assert_eq!(at(0).ttl_at(now), None, "0 means no expiry");
    assert_eq!(at(-5).ttl_at(now), Some(Duration::ZERO));
    assert_eq!(at(1).ttl_at(now), Some(Duration::ZERO));
    assert!(
        at(i64::MAX)
            .ttl_at(now)
            .is_some_and(|ttl| ttl > Duration::from_secs(1 << 30))
    );
    // A huge ttl saturates instead of wrapping into the past.
    let huge = GetResponse::with_ttl("v", Some(Duration::MAX), now);
    assert_eq!(huge.expire, Some(i64::MAX));
    // A zero ttl is a deadline of now: already expired when read.
    let zero = GetResponse::with_ttl("v", Some(Duration::ZERO), now);
    assert_eq!(zero.ttl_at(now), Some(Duration::ZERO));
}

#[test]
fn constant_time_eq_compares_bytes() {
    assert!(constant_time_eq(b"secret", b"secret"));
    assert!(!constant_time_eq(b"secret", b"secreT"));
    assert!(!constant_time_eq(b"secret", b"secret1"));
    assert!(constant_time_eq(b"", b""));
}

#[test]
fn tokens_admit_only_the_exact_bearer_header() {
    let token = Token::new("s3cr3t").unwrap();
    let with = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    };
    assert!(token.admits(&with("Bearer s3cr3t")));
    // The scheme is case-insensitive (RFC 9110, section 11.1); the token is not.
    assert!(token.admits(&with("bearer s3cr3t")));
    assert!(token.admits(&with("BEARER s3cr3t")));
    assert!(!token.admits(&with("Bearer S3CR3T")));
    assert!(!token.admits(&with("Bearer")));
    assert!(!token.admits(&with("Bearers3cr3t")));
    assert!(!token.admits(&with("Bearer s3cr3")));
    assert!(!token.admits(&with("Bearer s3cr3t ")));
    assert!(!token.admits(&with("Basic s3cr3t")));
    assert!(!token.admits(&with("s3cr3t")));
    assert!(!token.admits(&HeaderMap::new()));
    assert!(token.header().is_sensitive());
    assert_eq!(format!("{token:?}"), "Token(<redacted>)");

    assert_eq!(Token::new("").unwrap_err(), Error::InvalidToken("empty"));
    assert!(Token::new("has space").is_err());
    assert!(Token::new("new\nline").is_err());
}

#[test]
fn peer_urls_have_one_spelling() {
    for ok in [
        "http://127.0.0.1:8001",
        "http://node-a:80",
        "http://[::1]:9000",
        "http://cache",
        "https://node-a:8443",
        "https://[::1]",
    ] {
        assert_eq!(validate::peer_url(ok).as_deref(), Ok(ok), "{ok}");
        // The one rewrite: a trailing slash goes, so both spellings are one ring member.
        assert_eq!(
            validate::peer_url(&format!("{ok}/")).as_deref(),
            Ok(ok),
            "{ok}/"
        );
    }
    for bad in [
        "127.0.0.1:8001",
        "https://",
        "https://a:1/x",
        "http://",
        "http:///",
        "http://a:1//",
        "http://a:1/x",
        "http://a:1/x/",
        "http://a:1?q",
        "http://u:p@a:1",
        "http://a,b:1",
        "http://a b",
        "http://a:notaport",
        "ftp://a",
    ] {
        assert!(
            matches!(validate::peer_url(bad), Err(Error::InvalidUrl { .. })),
            "{bad} should be rejected"
        );
    }
}

#[test]
fn a_cluster_is_all_https_with_tls_and_all_http_without() {
    assert_eq!(validate::peer_scheme("https://a:1", true), Ok(()));
    assert_eq!(validate::peer_scheme("http://a:1", false), Ok(()));
    assert!(validate::peer_scheme("http://a:1", true).is_err());
    assert!(validate::peer_scheme("https://a:1", false).is_err());
    let pool = HttpPool::builder("http://a:1").build().unwrap();
    let refused = pool.set_peers(["http://a:1", "https://b:1"]).unwrap_err();
    assert!(refused.to_string().contains("https://b:1"), "{refused}");
    assert_eq!(pool.peers(), ["http://a:1"], "nothing changed");
}

#[test]
fn base_paths_are_validated() {
    for ok in ["/_geecache/", "/_groupcache/", "/a/b/"] {
        assert_eq!(validate::base_path(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        "/",
        "_geecache/",
        "/_geecache",
        "/a//b/",
        "/api/",
        "/metrics/",
        "/healthz/x/",
        "/readyz/",
        "/stats/",
        "/{x}/",
        "/a b/",
        "/../",
        "/a/./",
    ] {
        assert!(
            matches!(validate::base_path(bad), Err(Error::InvalidBasePath { .. })),
            "{bad:?} should be rejected"
        );
    }
}

#[test]
fn a_peer_is_dialled_at_its_port_or_at_80() {
    use crate::client::dial_address;
    assert_eq!(dial_address("10.0.0.1:8001", 80), "10.0.0.1:8001");
    assert_eq!(dial_address("cache-0.cache:9000", 80), "cache-0.cache:9000");
    assert_eq!(dial_address("cache-0.cache", 80), "cache-0.cache:80");
    assert_eq!(dial_address("cache-0.cache", 443), "cache-0.cache:443");
    assert_eq!(dial_address("[::1]:8001", 80), "[::1]:8001");
    assert_eq!(dial_address("[::1]", 80), "[::1]:80");
}

/// Whether `inner` lies within `outer`'s bytes, i.e. is a slice of the same memory.
fn lies_within(inner: &[u8], outer: &[u8]) -> bool {
    let outer = outer.as_ptr_range();
    let inner = inner.as_ptr_range();
    outer.start <= inner.start && inner.end <= outer.end
}

#[test]
fn a_value_from_a_peer_does_not_keep_the_answer_buffer_alive() {
    use crate::client::decode_answer;
    let ttl = Duration::from_secs(60);
    let message = GetResponse::with_ttl(&b"a value"[..], Some(ttl), SystemTime::now());
    // Bytes around the answer, as in a connection's read buffer.
    let head = b"HTTP/1.1 200 OK\r\n\r\n";
    let mut buffer = head.to_vec();
    buffer.extend(message.encode_to_vec());
    buffer.extend([0; 4096]);
    let buffer = bytes::Bytes::from(buffer);
    let body = buffer.slice(head.len()..head.len() + message.encoded_len());

    // prost decodes `Bytes` without copying: its value is a slice of the buffer.
    let decoded = GetResponse::decode(body.clone()).unwrap();
    assert!(lies_within(decoded.value.as_deref().unwrap(), &buffer));

    let loaded = decode_answer(body).unwrap();
    assert_eq!(loaded.value().as_slice(), b"a value");
    assert!(!lies_within(loaded.value().as_slice(), &buffer));
    let left = loaded.ttl().unwrap();
    assert!(left <= ttl && !left.is_zero(), "{left:?}");
}

// The kinds are the wire: scripts and peers read these names and statuses, so a rename here
// would break them all. This is the one place the names are written out besides `kind.rs`.
#[test]
fn error_kinds_keep_their_wire_names_and_statuses() {
    let wire: Vec<(&str, u16)> = ErrorKind::ALL
        .iter()
        .map(|kind| (kind.as_str(), kind.status().as_u16()))
        .collect();
    assert_eq!(
        wire,
        [
            ("not-found", 404),
            ("invalid-key", 400),
            ("not-cached", 404),
            ("unknown-group", 404),
            ("bad-path", 400),
            ("key-too-long", 414),
            ("unauthorized", 401),
            ("load-failed", 500),
            ("shutting-down", 503),
            ("not-ready", 503),
            ("no-route", 404),
            ("too-large", 413),
            ("bad-body", 400),
            ("owner-unavailable", 502),
            ("internal", 500),
            ("too-many-connections", 503),
            ("tls-required", 400),
        ]
    );
    for kind in ErrorKind::ALL {
        assert_eq!(ErrorKind::parse(kind.as_str()), Some(kind));
        assert_eq!(kind.to_string(), kind.as_str());
    }
    assert_eq!(ErrorKind::parse("Not-Found"), None, "names are exact");
    assert_eq!(ErrorKind::parse(""), None);
}

// The pool is the group's picker: every answer of its `Cluster` must reach the group, not the
// trait's defaults (which would, say, never drop the values of keys given away).
#[tokio::test(start_paused = true)]
async fn the_pool_passes_on_what_its_cluster_knows() {
    use geecache_group::PeerPicker;

    let pool = crate::HttpPool::builder("http://127.0.0.1:8001")
        .handoff(std::time::Duration::from_secs(1))
        .build()
        .unwrap();
    pool.set_peers(["http://127.0.0.1:8001", "http://127.0.0.1:8002"])
        .unwrap();
    let theirs = (0..100)
        .map(|i| format!("k{i}"))
        .find(|k| pool.pick_peer(k).is_some())
        .unwrap();
    assert!(!pool.owns(&theirs));
    assert!(pool.is_self("http://127.0.0.1:8001"));
    assert_eq!(pool.all_peers().len(), 1);
    assert_eq!(pool.settled_changes(), 0, "the first list's hand-off is on");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(pool.settled_changes(), 1);
}

#[test]
fn claims_on_the_budget_never_exceed_it_and_are_given_back() {
    let budget = crate::budget::Budget::new(100);
    let mut a = budget.claim();
    assert!(a.cover(60));
    assert!(a.cover(40), "covering less than claimed changes nothing");
    let mut b = budget.claim();
    assert!(!b.cover(41), "60 + 41 is over 100");
    assert!(b.cover(40));
    assert_eq!(budget.used(), 100);
    assert!(!a.cover(61));
    assert_eq!(budget.used(), 100, "a refused claim takes nothing");
    drop(a);
    assert_eq!(budget.used(), 40);
    drop(b);
    assert_eq!(budget.used(), 0);
    let unlimited = crate::budget::Budget::new(usize::MAX);
    let mut c = unlimited.claim();
    assert!(c.cover(usize::MAX));
    assert!(!unlimited.claim().cover(1), "no overflow past the limit");
}
