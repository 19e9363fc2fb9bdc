use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use proptest::prelude::*;

use crate::lookup::{address_url, normalise, srv_url};
use crate::watcher::Streak;
use crate::{Config, Error, Target};

#[test]
fn a_name_with_a_port_asks_for_addresses_and_a_bare_name_for_srv() {
    assert_eq!(
        "peers.default.svc:8001".parse::<Target>().unwrap(),
        Target::Addresses {
            name: "peers.default.svc".into(),
            port: 8001
        }
    );
    assert_eq!(
        "_peer._tcp.peers.default.svc.".parse::<Target>().unwrap(),
        Target::Srv {
            name: "_peer._tcp.peers.default.svc.".into()
        }
    );
    assert_eq!(
        "peers:8001".parse::<Target>().unwrap().to_string(),
        "peers:8001"
    );
}

#[test]
fn targets_that_cannot_be_asked_are_refused_with_a_reason() {
    for (text, reason) in [
        ("", "empty"),
        ("http://peers:8001", "not a URL"),
        ("peers:0", "port 0"),
        ("peers:http", "not a port"),
        ("peers:70000", "not a port"),
        ("a..b", "1 to 63"),
        ("pe ers", "only A-Z"),
        ("[::1]:80", "only A-Z"),
    ] {
        match text.parse::<Target>() {
            Err(Error::InvalidTarget { reason: r, .. }) => {
                assert!(r.contains(reason), "{text:?}: {r}");
            }
            other => panic!("{text:?} gave {other:?}"),
        }
    }
    let long = format!("{}.test", "a".repeat(64));
    assert!(long.parse::<Target>().is_err());
}

#[test]
fn the_builder_needs_a_target_and_a_sane_interval() {
    assert!(matches!(
        Config::builder().build(),
        Err(Error::InvalidConfig {
            field: "target",
            ..
        })
    ));
    assert!(matches!(
        Config::builder()
            .target("peers:80")
            .interval(Duration::from_millis(1))
            .build(),
        Err(Error::InvalidConfig {
            field: "interval",
            ..
        })
    ));
    assert!(matches!(
        Config::builder()
            .target("peers:80")
            .timeout(Duration::ZERO)
            .build(),
        Err(Error::InvalidConfig {
            field: "timeout",
            ..
        })
    ));
    let config = Config::builder().target("peers:80").build().unwrap();
    assert_eq!(config.interval(), crate::DEFAULT_INTERVAL);
    assert_eq!(config.name_server(), None);
}

#[test]
fn addresses_and_srv_records_become_urls_the_pool_accepts() {
    assert_eq!(
        address_url(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 8001),
        "http://192.0.2.7:8001"
    );
    assert_eq!(
        address_url(IpAddr::V6("2001:db8::7".parse::<Ipv6Addr>().unwrap()), 8001),
        "http://[2001:db8::7]:8001"
    );
    assert_eq!(
        srv_url("Node-0.Peers.default.svc.", 8001).as_deref(),
        Some("http://node-0.peers.default.svc:8001")
    );
    // RFC 2782: target "." says the service is not available there.
    assert_eq!(srv_url(".", 8001), None);
    assert_eq!(srv_url("node-0.", 0), None);
}

#[test]
fn a_streak_is_logged_once_and_its_length_reported_at_the_end() {
    let mut streak = Streak::default();
    assert_eq!(streak.succeeded(), None);
    assert!(streak.failed());
    assert!(!streak.failed());
    assert!(!streak.failed());
    assert_eq!(streak.length(), 3);
    assert_eq!(streak.succeeded(), Some(3));
    assert_eq!(streak.length(), 0);
    assert!(streak.failed(), "a new streak is logged again");
}

proptest! {
    /// Whatever order and repetition the server answers with, the list is the sorted set.
    #[test]
    fn the_list_depends_only_on_the_set_of_answers(
        answers in proptest::collection::vec(0u8..6, 0..20),
        seed in any::<u64>(),
    ) {
        let urls: Vec<String> = answers.iter().map(|a| format!("http://10.0.0.{a}:1")).collect();
        let mut shuffled = urls.clone();
        // A deterministic permutation from the seed.
        let len = shuffled.len().max(1);
        #[allow(clippy::cast_possible_truncation)]
        shuffled.rotate_left((seed as usize) % len);
        shuffled.reverse();
        let model: std::collections::BTreeSet<String> = urls.iter().cloned().collect();
        let got = normalise(shuffled);
        prop_assert_eq!(got.clone(), model.into_iter().collect::<Vec<_>>());
        prop_assert!(got.windows(2).all(|w| w[0] < w[1]));
    }
}
