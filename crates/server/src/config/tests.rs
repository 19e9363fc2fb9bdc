use std::time::Duration;

use proptest::prelude::*;

use super::error::Field;
use super::groups::parse_group_spec;
use super::values::node_url;
use super::*;
use crate::cli::ServeArgs;

fn args(groups: &[&str]) -> ServeArgs {
    ServeArgs {
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        ..ServeArgs::default()
    }
}

fn load_args(args: &ServeArgs) -> Result<Config, ConfigError> {
    from_toml("", args)
}

fn message(result: Result<Config, ConfigError>) -> String {
    result
        .expect_err("the configuration should be refused")
        .to_string()
}

#[test]
fn one_group_flag_is_a_complete_config_with_documented_defaults() {
    let config = load_args(&args(&["scores=demo"])).unwrap();
    assert_eq!(config.listen, "127.0.0.1:8001".parse().unwrap());
    assert_eq!(config.self_url, None);
    assert!(config.peers.is_empty());
    assert_eq!(config.base_path, "/_geecache/");
    assert_eq!(config.ring, geecache_consistenthash::Preset::Balanced);
    assert_eq!(config.replicas, 0, "the ring's own default");
    assert_eq!(config.handoff, Duration::from_secs(60));
    assert_eq!(config.peer_timeout, Duration::from_secs(1));
    assert_eq!(config.max_key_bytes, 64 << 10);
    assert_eq!(config.log_level, "info");
    assert_eq!(config.drain_timeout, Duration::from_secs(10));
    assert_eq!(
        config.threads, None,
        "one worker per CPU unless told otherwise"
    );
    assert_eq!(config.peer_token, None);
    assert_eq!(
        config.groups,
        vec![GroupConfig {
            name: "scores".into(),
            source: SourceSpec::Demo,
            cache_bytes: 64 << 20,
            ttl: None,
            origin_timeout: Duration::from_secs(5),
            max_value_bytes: 64 << 20,
            policy: geecache_group::Policy::S3Fifo,
            charge: geecache_group::Charge::Payload,
            negative_ttl: None,
            hot: super::HotConfig::default(),
            peer_batch_window: Duration::ZERO,
        }]
    );
}

#[test]
fn a_full_config_file_is_read_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
listen = "0.0.0.0:9000"
self_url = "http://10.0.0.1:9000/"
peers = ["http://10.0.0.1:9000", "http://10.0.0.2:9000"]
base_path = "/_groupcache/"
ring = "groupcache"
replicas = 50
peer_timeout = "250ms"
max_key_bytes = "1KiB"
log_level = "info,geecache_group=debug"
peer_token = "s3cret"
api_token = "open-sesame"
drain_timeout = "3s"
threads = 2

[groups.scores]
source = "demo"
cache_bytes = 1048576
ttl = "5m"

[groups.files]
source = "dir:{}"
max_value_bytes = "2MiB"

[groups.objects]
source = "http:http://127.0.0.1:9001"
origin_timeout = "2s"
"#,
        dir.path().display()
    );
    let config = from_toml(&text, &ServeArgs::default()).unwrap();
    assert_eq!(config.listen, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(config.self_url.as_deref(), Some("http://10.0.0.1:9000"));
    assert_eq!(
        config.peers,
        ["http://10.0.0.1:9000", "http://10.0.0.2:9000"]
    );
    assert_eq!(config.base_path, "/_groupcache/");
    assert_eq!(config.peer_timeout, Duration::from_millis(250));
    assert_eq!(config.max_key_bytes, 1024);
    assert_eq!(config.log_level, "info,geecache_group=debug");
    assert_eq!(config.peer_token.as_deref(), Some("s3cret"));
    assert_eq!(config.api_token.as_deref(), Some("open-sesame"));
    assert_eq!(config.drain_timeout, Duration::from_secs(3));
    assert_eq!(config.threads, Some(2));
    let names: Vec<&str> = config.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["files", "objects", "scores"]);
    assert_eq!(
        config.groups[0].source,
        SourceSpec::Dir(dir.path().to_path_buf())
    );
    assert_eq!(config.groups[0].max_value_bytes, 2 << 20);
    // A URL without a path gets one, so keys are not glued to the port.
    assert_eq!(
        config.groups[1].source,
        SourceSpec::Http("http://127.0.0.1:9001/".into())
    );
    assert_eq!(config.groups[1].origin_timeout, Duration::from_secs(2));
    assert_eq!(config.groups[2].cache_bytes, 1 << 20);
    assert_eq!(config.groups[2].ttl, Some(Duration::from_secs(300)));
}

#[test]
fn flags_win_over_the_file_and_a_flag_group_replaces_the_file_group_whole() {
    let text = r#"
listen = "127.0.0.1:7000"
peer_timeout = "2s"
[groups.scores]
source = "demo"
ttl = "1h"
cache_bytes = "1MiB"
[groups.other]
source = "demo"
"#;
    let mut a = args(&["scores=demo,cache=2MiB"]);
    a.listen = Some("127.0.0.1:7001".into());
    let config = from_toml(text, &a).unwrap();
    assert_eq!(config.listen.port(), 7001);
    assert_eq!(
        config.peer_timeout,
        Duration::from_secs(2),
        "unset flags keep the file's value"
    );
    let scores = config.groups.iter().find(|g| g.name == "scores").unwrap();
    assert_eq!(scores.cache_bytes, 2 << 20);
    assert_eq!(
        scores.ttl, None,
        "the file's ttl must not leak into the flag's group"
    );
    assert!(config.groups.iter().any(|g| g.name == "other"));
}

#[test]
fn errors_name_the_flag_the_variable_or_the_file_key() {
    let mut a = args(&["scores=demo"]);
    a.listen = Some("localhost:80".into());
    assert_eq!(
        message(load_args(&a)),
        "invalid --listen \"localhost:80\": not an IP:PORT socket address (host names are not \
         resolved); expected e.g. 127.0.0.1:8001, 0.0.0.0:8001 or [::1]:8001; port 0 picks a \
         free port"
    );
    a.from_env.insert("listen".into());
    assert!(message(load_args(&a)).starts_with("invalid $GEECACHE_LISTEN \"localhost:80\":"));

    let from_file = from_toml("listen = \"nope\"", &args(&["scores=demo"]));
    assert!(message(from_file).starts_with("invalid listen (in test.toml) \"nope\":"));

    let group = from_toml(
        "[groups.scores]\nsource = \"demo\"\nttl = \"soon\"",
        &ServeArgs::default(),
    );
    assert_eq!(
        message(group),
        "invalid groups.scores.ttl (in test.toml) \"soon\": ttl \"soon\" is not a duration; \
         expected a whole number with a unit: ms, s, m or h, e.g. \"500ms\", \"2s\", \"5m\""
    );
}

#[test]
fn a_config_without_groups_says_how_to_add_one() {
    assert_eq!(
        message(load_args(&ServeArgs::default())),
        "no groups configured: add --group NAME=SOURCE (e.g. --group scores=demo) or a \
         [groups.NAME] table with a source to the config file"
    );
}

#[test]
fn unknown_file_fields_are_refused_by_name() {
    let err = message(from_toml(
        "lisen = \"127.0.0.1:1\"",
        &args(&["scores=demo"]),
    ));
    assert!(err.starts_with("config file test.toml: "), "{err}");
    assert!(err.contains("unknown field `lisen`"), "{err}");
    let err = message(from_toml(
        "[groups.a]\nsorce = \"demo\"",
        &ServeArgs::default(),
    ));
    assert!(err.contains("unknown field `sorce`"), "{err}");
}

#[test]
fn group_specs_peel_known_options_off_the_end_only() {
    let field = Field::Flag("group");
    let g = parse_group_spec("objects=http:http://o/a,b?x=1,ttl=5s,cache=1MiB", &field).unwrap();
    assert_eq!(g.name, "objects");
    assert_eq!(g.source.as_deref(), Some("http:http://o/a,b?x=1"));
    assert_eq!(g.ttl.as_deref(), Some("5s"));
    assert_eq!(g.cache_bytes.as_deref(), Some("1MiB"));

    let err = parse_group_spec("scores=demo,ttl=1s,ttl=2s", &field)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("option ttl is given twice"),
        "{err}"
    );
    let err = parse_group_spec("scores", &field).err().unwrap();
    assert!(
        err.to_string()
            .starts_with("invalid --group \"scores\": there is no '='"),
        "{err}"
    );
}

#[test]
fn bad_values_are_refused_with_what_is_allowed() {
    /// Groups to give, a change to the other flags, and a piece of the expected message.
    type Case = (&'static [&'static str], fn(&mut ServeArgs), &'static str);
    let cases: &[Case] = &[
        (
            &["a/b=demo"],
            |_| {},
            "group name \"a/b\" is empty, too long or has a character",
        ),
        (
            &["scores=mysql:x"],
            |_| {},
            ": unknown source; expected demo, dir:PATH",
        ),
        // Regression: a misspelt option was reported as an unknown source.
        (
            &["scores=demo,cach=64MiB"],
            |_| {},
            ": unknown option \"cach\"; expected one of cache, ttl, origin_timeout",
        ),
        (
            &["scores=dir:/definitely/not/here,tll=5s"],
            |_| {},
            ": unknown option \"tll\"",
        ),
        (
            &["scores=dir:/definitely/not/here"],
            |_| {},
            "cannot use directory /definitely/not/here",
        ),
        (
            &["scores=http:https://x/"],
            |_| {},
            "https origins are not supported",
        ),
        (
            &["scores=demo,ttl=0s"],
            |_| {},
            "ttl must be greater than zero",
        ),
        (
            &["scores=demo,origin_timeout=1s"],
            |_| {},
            "origin_timeout applies to dir: and http: sources only",
        ),
        (
            &["scores=demo,max_value_bytes=1KiB"],
            |_| {},
            "max_value_bytes applies to dir: and http: sources only",
        ),
        (
            &["scores=demo,cache=lots"],
            |_| {},
            "cache size \"lots\" is not a size",
        ),
        (&["a=demo", "a=demo"], |_| {}, "group \"a\" is given twice"),
        (
            &["s=demo"],
            |a| a.self_url = Some("https://n:1".into()),
            "https://n:1 is https://, but this node has no TLS",
        ),
        (
            &["s=demo"],
            |a| a.peers = Some(vec!["https://n:1".into(), "http://n:2".into()]),
            "a cluster mixing http and https peers is refused",
        ),
        (
            &["s=demo"],
            |a| {
                a.tls_cert = Some("c.pem".into());
                a.tls_key = Some("k.pem".into());
                a.tls_ca = Some("ca.pem".into());
                a.peers = Some(vec!["https://n:1".into(), "http://n:2".into()]);
            },
            "every node's URL must be https://, but http://n:2 is http://",
        ),
        (
            &["s=demo"],
            |a| {
                a.tls_cert = Some("c.pem".into());
                a.tls_key = Some("k.pem".into());
            },
            "missing: --tls-ca",
        ),
        (
            &["s=demo"],
            |a| a.tls_client_auth = Some("required".into()),
            "--tls-client-auth needs TLS",
        ),
        (
            &["s=demo"],
            |a| {
                a.tls_cert = Some("c.pem".into());
                a.tls_key = Some("k.pem".into());
                a.tls_ca = Some("ca.pem".into());
                a.tls_client_auth = Some("always".into());
            },
            "unknown client authentication mode",
        ),
        (
            &["s=demo"],
            |a| a.self_url = Some("http://n:1/x".into()),
            "with no path, query or fragment",
        ),
        (
            &["s=demo"],
            |a| a.peers = Some(vec!["http://a:1".into(), "http://a:1/".into()]),
            "this peer is listed twice",
        ),
        (
            &["s=demo"],
            |a| a.base_path = Some("_geecache".into()),
            "must start and end with '/'",
        ),
        (
            &["s=demo"],
            |a| a.base_path = Some("/api/".into()),
            "starts with the segment of another route",
        ),
        (
            &["s=demo"],
            |a| a.base_path = Some("/a b/".into()),
            "may hold only A-Za-z0-9-_.~ and '/'",
        ),
        (
            &["s=demo"],
            |a| a.peer_timeout = Some("0ms".into()),
            "must be greater than zero",
        ),
        (
            &["s=demo"],
            |a| a.peer_timeout = Some("30".into()),
            "invalid --peer-timeout \"30\": not a duration",
        ),
        (
            &["s=demo"],
            |a| a.max_key_bytes = Some("2MiB".into()),
            "out of range",
        ),
        (
            &["s=demo"],
            |a| a.threads = Some("0".into()),
            "invalid --threads \"0\": out of range; expected between 1 and 1024",
        ),
        (
            &["s=demo"],
            |a| a.threads = Some("two".into()),
            "invalid --threads \"two\": not a whole number",
        ),
        (
            &["s=demo"],
            |a| a.threads = Some("80000".into()),
            "out of range",
        ),
        (
            &["s=demo"],
            |a| a.log_level = Some("loud".into()),
            "unknown log level; expected one of off, error",
        ),
        (
            &["s=demo"],
            |a| a.listen = Some("0.0.0.0:8001".into()),
            "--self-url (or self_url) is required when --listen is 0.0.0.0:8001",
        ),
    ];
    for (groups, tweak, expected) in cases {
        let mut a = args(groups);
        tweak(&mut a);
        let err = message(load_args(&a));
        assert!(
            err.contains(expected),
            "for {groups:?}: {err:?} should contain {expected:?}"
        );
    }
}

#[test]
fn tokens_are_checked_but_never_echoed() {
    let mut a = args(&["s=demo"]);
    a.peer_token = Some("has space".into());
    let err = message(load_args(&a));
    assert!(
        err.starts_with("invalid --peer-token \"<redacted>\": has a space"),
        "{err}"
    );
    assert!(!err.contains("has space\""));
    a.peer_token = Some("ok-token".into());
    let config = load_args(&a).unwrap();
    assert!(!config.summary().contains("ok-token"));
    assert!(config.summary().contains("peer_token=set"));
}

#[test]
fn node_urls_are_normalised_to_one_spelling() {
    let f = Field::Flag("peers");
    assert_eq!(node_url("http://a:1/", &f).unwrap(), "http://a:1");
    assert_eq!(node_url(" http://a:1 ", &f).unwrap(), "http://a:1");
    assert!(node_url("a:1", &f).is_err());
    assert!(node_url("http://u@a:1", &f).is_err());
    assert!(node_url("http://a:1?x", &f).is_err());
    // The transport's rule, so the library's pool takes what the binary passes it.
    for text in ["http://a:1/", "http://[::1]:80", "http://node-3"] {
        let url = node_url(text, &f).unwrap();
        assert_eq!(geecache_transport_http::validate::peer_url(&url), Ok(url));
    }
}

// Flags and variables are read off clap's definition of `serve`'s arguments, so every id the
// config uses must be one clap knows, with a long flag and a variable.
#[test]
fn every_setting_names_its_flag_and_variable() {
    for id in super::layers::ids::ALL {
        let (flag, env) =
            super::layers::names(id).unwrap_or_else(|| panic!("{id} is not an argument"));
        // `--group` is repeated once per group, so its field is plural and its flag is not.
        let expected = match id {
            "groups" => "group".to_owned(),
            _ => id.replace('_', "-"),
        };
        assert_eq!(flag, expected);
        assert_eq!(env, format!("GEECACHE_{}", id.to_ascii_uppercase()));
    }
}

#[test]
fn sizes_and_durations_parse_their_documented_forms_only() {
    assert_eq!(units::parse_size("123"), Some(123));
    assert_eq!(units::parse_size("64MiB"), Some(64 << 20));
    assert_eq!(units::parse_size("64 MiB"), Some(64 << 20));
    assert_eq!(units::parse_size("1GB"), Some(1_000_000_000));
    assert_eq!(units::parse_size("2KB"), Some(2_000));
    assert_eq!(units::parse_size("-1"), None);
    assert_eq!(units::parse_size("1.5MiB"), None);
    assert_eq!(units::parse_size("1mib"), None);
    assert_eq!(units::parse_size("MiB"), None);
    assert_eq!(
        units::parse_size("99999999999999GiB"),
        None,
        "overflow is refused"
    );
    assert_eq!(
        units::parse_duration("500ms"),
        Some(Duration::from_millis(500))
    );
    assert_eq!(units::parse_duration("2s"), Some(Duration::from_secs(2)));
    assert_eq!(units::parse_duration("5m"), Some(Duration::from_secs(300)));
    assert_eq!(units::parse_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(
        units::parse_duration("30"),
        None,
        "a bare number is ambiguous"
    );
    assert_eq!(units::parse_duration("1.5s"), None);
    assert_eq!(units::parse_duration("s"), None);
}

proptest! {
    #[test]
    fn formatted_sizes_and_durations_parse_back(bytes in 0u64..(1 << 40), ms in 0u64..(1 << 40)) {
        let text = units::format_size(bytes);
        // Exact multiples print exactly; others are rounded for people and only checked to parse
        // to a nearby figure when written with a decimal point (which the parser refuses).
        if !text.contains('.') {
            prop_assert_eq!(units::parse_size(&text), Some(bytes));
        }
        let d = Duration::from_millis(ms);
        prop_assert_eq!(units::parse_duration(&units::format_duration(d)), Some(d));
    }
}

/// docs/operations.md shows a complete config file; it must stay one the node accepts.
#[test]
fn the_config_file_in_the_operations_manual_is_valid() {
    let manual = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md");
    let text = std::fs::read_to_string(&manual).expect("docs/operations.md exists");
    let start = text.find("```toml\n").expect("the manual has a toml block") + "```toml\n".len();
    let end = start + text[start..].find("```").expect("the toml block ends");
    let dir = tempfile::tempdir().unwrap();
    // The example serves /srv/files, which this machine need not have.
    let example = text[start..end].replace("/srv/files", &dir.path().display().to_string());
    let config = from_toml(&example, &ServeArgs::default()).expect("the example is valid");
    let names: Vec<&str> = config.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["files", "objects", "scores"]);
    assert_eq!(config.peers.len(), 3);
}

fn etcd_args(etcd: &[&str], cluster: Option<&str>) -> ServeArgs {
    ServeArgs {
        etcd: Some(etcd.iter().map(|e| (*e).to_owned()).collect()),
        cluster: cluster.map(str::to_owned),
        ..args(&["scores=demo"])
    }
}

#[cfg(feature = "etcd")]
#[test]
fn etcd_settings_come_from_flags_or_the_file() {
    let mut a = etcd_args(
        &["http://10.0.0.9:2379", " http://10.0.0.8:2379"],
        Some("c1"),
    );
    a.etcd_ttl = Some("2s".into());
    let config = load_args(&a).unwrap();
    assert_eq!(
        config.etcd,
        Some(EtcdConfig {
            endpoints: vec!["http://10.0.0.9:2379".into(), "http://10.0.0.8:2379".into()],
            cluster: "c1".into(),
            ttl: Some(Duration::from_secs(2)),
        })
    );
    assert!(
        config
            .summary()
            .contains("etcd=[http://10.0.0.9:2379,http://10.0.0.8:2379] cluster=c1 etcd_ttl=2s")
    );

    let config = from_toml(
        "etcd = [\"http://127.0.0.1:2379\"]\ncluster = \"scores\"\n",
        &args(&["scores=demo"]),
    )
    .unwrap();
    let etcd = config.etcd.unwrap();
    assert_eq!(etcd.endpoints, vec!["http://127.0.0.1:2379".to_owned()]);
    assert_eq!(etcd.cluster, "scores");
    assert_eq!(etcd.ttl, None);
}

#[cfg(feature = "etcd")]
#[test]
fn etcd_settings_must_come_together_and_not_with_peers() {
    assert_eq!(
        message(load_args(&etcd_args(&["http://127.0.0.1:2379"], None))),
        "--etcd needs --cluster NAME (or cluster = \"NAME\" in the config file): nodes see only \
         the nodes of their own cluster"
    );
    assert_eq!(
        message(load_args(&ServeArgs {
            cluster: Some("c1".into()),
            ..args(&["scores=demo"])
        })),
        "--cluster needs --etcd URL (or etcd = [\"URL\"] in the config file): the etcd that \
         holds the cluster's members"
    );
    let both = ServeArgs {
        peers: Some(vec!["http://127.0.0.1:8001".into()]),
        ..etcd_args(&["http://127.0.0.1:2379"], Some("c1"))
    };
    assert!(message(load_args(&both)).starts_with("--etcd and --peers"));
    assert!(
        message(load_args(&etcd_args(
            &["https://127.0.0.1:2379"],
            Some("c1")
        )))
        .contains("https is not supported for etcd")
    );
    assert!(
        message(load_args(&etcd_args(
            &["http://127.0.0.1:2379"],
            Some("a/b")
        )))
        .starts_with("invalid --cluster \"a/b\": a cluster name is one path segment")
    );
    let mut short = etcd_args(&["http://127.0.0.1:2379"], Some("c1"));
    short.etcd_ttl = Some("500ms".into());
    assert!(message(load_args(&short)).contains("at least one"));
}

#[cfg(not(feature = "etcd"))]
#[test]
fn etcd_settings_in_a_build_without_etcd_say_how_to_rebuild() {
    let m = message(load_args(&etcd_args(
        &["http://127.0.0.1:2379"],
        Some("c1"),
    )));
    assert!(
        m.starts_with("--etcd is set, but this geecache was built without etcd support")
            && m.contains("--features etcd"),
        "{m}"
    );
}

#[test]
fn the_ring_is_balanced_unless_go_nodes_need_groupcaches() {
    use geecache_consistenthash::Preset;
    let mut a = args(&["s=demo"]);
    a.ring = Some("groupcache".into());
    a.replicas = Some("160".into());
    a.handoff = Some("0s".into());
    let config = load_args(&a).unwrap();
    assert_eq!(config.handoff, Duration::ZERO, "0 turns the hand-off off");
    assert_eq!((config.ring, config.replicas), (Preset::Groupcache, 160));
    assert!(config.summary().contains("ring=groupcache replicas=160"));

    // Go groupcache's protocol with a ring Go nodes do not use is refused, and says why.
    let mut a = args(&["s=demo"]);
    a.base_path = Some("/_groupcache/".into());
    let refused = message(load_args(&a));
    assert!(
        refused.contains("Go compatibility needs --ring groupcache"),
        "{refused}"
    );
    a.ring = Some("groupcache".into());
    assert_eq!(load_args(&a).unwrap().ring, Preset::Groupcache);

    for (ring, replicas, problem) in [
        (Some("ketama"), None, "unknown ring"),
        (None, Some("0"), "out of range"),
        (None, Some("65537"), "out of range"),
        (None, Some("many"), "not a whole number"),
    ] {
        let mut a = args(&["s=demo"]);
        a.ring = ring.map(str::to_owned);
        a.replicas = replicas.map(str::to_owned);
        let refused = message(load_args(&a));
        assert!(refused.contains(problem), "{refused}");
    }
}

#[test]
fn the_transport_is_http_unless_asked_and_grpc_is_refused_beside_go_nodes() {
    assert_eq!(
        load_args(&args(&["s=demo"])).unwrap().transport,
        Transport::Http
    );
    let mut a = args(&["s=demo"]);
    a.transport = Some("GRPC".into());
    let config = load_args(&a).unwrap();
    assert_eq!(config.transport, Transport::Grpc);
    assert!(config.summary().contains("transport=grpc"));
    let from_file = from_toml("transport = \"grpc\"", &args(&["s=demo"])).unwrap();
    assert_eq!(from_file.transport, Transport::Grpc);

    a.transport = Some("quic".into());
    let refused = message(load_args(&a));
    assert!(
        refused.contains("unknown transport") && refused.contains("--transport"),
        "{refused}"
    );

    // Go nodes speak HTTP only: a gRPC node among them would fail every call to them.
    let mut a = args(&["s=demo"]);
    a.base_path = Some("/_groupcache/".into());
    a.ring = Some("groupcache".into());
    a.transport = Some("grpc".into());
    let refused = message(load_args(&a));
    assert!(refused.contains("Go nodes speak HTTP only"), "{refused}");
}

#[test]
fn a_group_may_charge_its_budget_for_memory() {
    use geecache_group::Charge;
    let config = load_args(&args(&["s=demo,charge=memory", "t=demo,charge=Payload"])).unwrap();
    let charges: Vec<_> = config.groups.iter().map(|g| g.charge).collect();
    assert_eq!(charges, [Charge::Memory, Charge::Payload]);
    assert!(
        config
            .summary()
            .contains("s=demo cache=64MiB charge=memory"),
        "{}",
        config.summary()
    );
    let plain = load_args(&args(&["s=demo"])).unwrap();
    assert_eq!(
        plain.groups[0].charge,
        Charge::Payload,
        "groupcache's count by default"
    );
    let file = from_toml(
        "[groups.f]\nsource = \"demo\"\ncharge = \"memory\"\n",
        &args(&[]),
    );
    assert_eq!(file.unwrap().groups[0].charge, Charge::Memory);
    let refused = message(load_args(&args(&["s=demo,charge=everything"])));
    assert!(
        refused.contains("charge \"everything\" is not what a cache budget can count"),
        "{refused}"
    );
}

#[test]
fn a_group_may_choose_its_eviction_policy() {
    let config = load_args(&args(&["s=demo,policy=lru", "t=demo"])).unwrap();
    let policies: Vec<_> = config.groups.iter().map(|g| g.policy).collect();
    assert_eq!(
        policies,
        [geecache_group::Policy::Lru, geecache_group::Policy::S3Fifo]
    );
    // The summary names what differs from the default.
    let summary = config.summary();
    assert!(
        summary.contains("s=demo cache=64MiB policy=lru"),
        "{summary}"
    );
    assert!(!summary.contains("policy=s3fifo"), "{summary}");
    let file = from_toml(
        "[groups.f]\nsource = \"demo\"\npolicy = \"lru\"\n",
        &args(&[]),
    );
    assert_eq!(file.unwrap().groups[0].policy, geecache_group::Policy::Lru);
    let upper = load_args(&args(&["s=demo,policy=S3FIFO", "t=demo,policy=LRU"])).unwrap();
    let policies: Vec<_> = upper.groups.iter().map(|g| g.policy).collect();
    assert_eq!(
        policies,
        [geecache_group::Policy::S3Fifo, geecache_group::Policy::Lru]
    );
    let refused = message(load_args(&args(&["s=demo,policy=arc"])));
    assert!(
        refused.contains("policy \"arc\" is not an eviction policy"),
        "{refused}"
    );
}

#[test]
fn a_group_may_cache_not_found() {
    let config = load_args(&args(&["s=demo,negative_ttl=30s", "t=demo"])).unwrap();
    let ttls: Vec<_> = config.groups.iter().map(|g| g.negative_ttl).collect();
    assert_eq!(ttls, [Some(Duration::from_secs(30)), None]);
    assert!(
        config.summary().contains("negative_ttl=30s"),
        "{}",
        config.summary()
    );
    let file = from_toml(
        "[groups.f]\nsource = \"demo\"\nnegative_ttl = \"2m\"\n",
        &args(&[]),
    );
    assert_eq!(
        file.unwrap().groups[0].negative_ttl,
        Some(Duration::from_secs(120))
    );
    for bad in ["s=demo,negative_ttl=0s", "s=demo,negative_ttl=soon"] {
        let refused = message(load_args(&args(&[bad])));
        assert!(refused.contains("negative_ttl"), "{bad}: {refused}");
    }
}

#[test]
fn a_group_may_gather_peer_fetches_in_a_window_of_up_to_10ms() {
    let config = load_args(&args(&["s=demo,peer_batch_window=2ms", "t=demo"])).unwrap();
    let windows: Vec<_> = config.groups.iter().map(|g| g.peer_batch_window).collect();
    assert_eq!(windows, [Duration::from_millis(2), Duration::ZERO]);
    let summary = config.summary();
    assert!(
        summary.contains("s=demo cache=64MiB peer_batch_window=2ms"),
        "{summary}"
    );
    assert!(
        !summary.contains("t=demo cache=64MiB peer_batch_window"),
        "{summary}"
    );
    let file = from_toml(
        "[groups.f]\nsource = \"demo\"\npeer_batch_window = \"10ms\"\n",
        &args(&[]),
    );
    assert_eq!(
        file.unwrap().groups[0].peer_batch_window,
        Duration::from_millis(10)
    );
    let off = load_args(&args(&["s=demo,peer_batch_window=0ms"])).unwrap();
    assert_eq!(off.groups[0].peer_batch_window, Duration::ZERO, "0 is off");
    for bad in [
        "s=demo,peer_batch_window=11ms",
        "s=demo,peer_batch_window=1s",
        "s=demo,peer_batch_window=soon",
    ] {
        let refused = message(load_args(&args(&[bad])));
        assert!(
            refused.contains("is not a duration of 0 to 10ms"),
            "{bad}: {refused}"
        );
    }
}

fn dns_args(name: &str) -> ServeArgs {
    ServeArgs {
        peers_dns: Some(name.to_owned()),
        ..args(&["scores=demo"])
    }
}

#[test]
fn dns_settings_come_from_flags_or_the_file_with_a_5s_default() {
    let config = load_args(&dns_args("peers.default.svc:8001")).unwrap();
    assert_eq!(
        config.dns,
        Some(DnsConfig {
            https: false,
            target: "peers.default.svc:8001".into(),
            interval: Duration::from_secs(5),
            server: None,
        })
    );
    assert!(
        config
            .summary()
            .contains("peers_dns=peers.default.svc:8001 dns_interval=5s dns_server=system")
    );

    let config = from_toml(
        "peers_dns = \"_peer._tcp.peers.default.svc\"\ndns_interval = \"2s\"\n\
         dns_server = \"10.96.0.10:53\"\n[groups.scores]\nsource = \"demo\"\n",
        &ServeArgs::default(),
    )
    .unwrap();
    let dns = config.dns.unwrap();
    assert_eq!(dns.target, "_peer._tcp.peers.default.svc");
    assert_eq!(dns.interval, Duration::from_secs(2));
    assert_eq!(dns.server, Some("10.96.0.10:53".parse().unwrap()));

    // The flag wins over the file.
    let mut a = dns_args("other.test:9000");
    a.dns_interval = Some("250ms".into());
    let config = from_toml("peers_dns = \"peers.test:8001\"\n", &a).unwrap();
    let dns = config.dns.unwrap();
    assert_eq!(dns.target, "other.test:9000");
    assert_eq!(dns.interval, Duration::from_millis(250));
}

#[test]
fn dns_membership_is_exclusive_and_its_values_are_checked() {
    let both = ServeArgs {
        peers: Some(vec!["http://10.0.0.1:8001".into()]),
        ..dns_args("peers.test:8001")
    };
    assert!(message(load_args(&both)).starts_with("--peers-dns and --peers"));

    let alone = ServeArgs {
        dns_interval: Some("5s".into()),
        ..args(&["scores=demo"])
    };
    assert!(message(load_args(&alone)).starts_with("--dns-interval needs --peers-dns"));
    let alone = ServeArgs {
        dns_server: Some("127.0.0.1:53".into()),
        ..args(&["scores=demo"])
    };
    assert!(message(load_args(&alone)).starts_with("--dns-server needs --peers-dns"));

    for (name, problem) in [
        ("http://peers.test:8001", "not a URL"),
        ("peers.test:0", "port 0"),
        ("peers test", "only A-Z"),
    ] {
        let m = message(load_args(&dns_args(name)));
        assert!(
            m.starts_with(&format!("invalid --peers-dns {name:?}")) && m.contains(problem),
            "{m}"
        );
    }
    let mut fast = dns_args("peers.test:8001");
    fast.dns_interval = Some("1ms".into());
    assert!(message(load_args(&fast)).contains("too short"));
    let mut bad_server = dns_args("peers.test:8001");
    bad_server.dns_server = Some("dns.example".into());
    assert!(message(load_args(&bad_server)).contains("not an IP:PORT"));
}

#[cfg(feature = "etcd")]
#[test]
fn dns_and_etcd_membership_are_refused_together() {
    let both = ServeArgs {
        peers_dns: Some("peers.test:8001".into()),
        ..etcd_args(&["http://127.0.0.1:2379"], Some("c1"))
    };
    assert!(message(load_args(&both)).starts_with("--peers-dns and --etcd"));
}

mod deploy;
// Regression: a node had no connection limit; by default it now keeps a quarter of its
// open-file limit (at least 64 descriptors) for its own work.
#[test]
fn the_default_connection_limit_leaves_descriptors_for_the_node_itself() {
    use super::descriptors::{default_max_connections, soft_limit_in};
    let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                  Max processes             96367                96367                processes \n\
                  Max open files            1024                 524288               files     \n";
    assert_eq!(soft_limit_in(limits), Some(1024));
    assert_eq!(
        soft_limit_in("Max open files unlimited unlimited files"),
        None
    );
    assert_eq!(soft_limit_in(""), None);
    assert_eq!(default_max_connections(Some(1024)), 768);
    assert_eq!(default_max_connections(Some(100)), 36, "64 kept back");
    assert_eq!(default_max_connections(Some(10)), 16, "never fewer than 16");
    assert_eq!(default_max_connections(None), 768, "1,024 assumed");
    let config = load_args(&args(&["scores=demo"])).unwrap();
    assert!(config.max_connections >= 16);
    let set = |text: &str| {
        let mut a = args(&["scores=demo"]);
        a.max_connections = Some(text.into());
        load_args(&a).map(|c| c.max_connections)
    };
    assert_eq!(set("500").unwrap(), 500);
    assert!(set("0").unwrap_err().to_string().contains("out of range"));
    assert!(
        set("many")
            .unwrap_err()
            .to_string()
            .contains("not a whole number")
    );
}

// Regression: keys from mailgun/groupcache and groupcache-go v3 clients (`url.PathEscape`, `+`
// literal) were read with form semantics, so `p+q` loaded `p q`. `--peer-key-encoding path`
// reads a `+` as a plus; the default stays golang/groupcache's `query`.
#[test]
fn the_peer_key_encoding_is_query_by_default_and_path_on_request() {
    use geecache_transport_http::path::Decoding;
    let config = load_args(&args(&["scores=demo"])).unwrap();
    assert_eq!(config.peer_key_encoding, Decoding::Form);
    let set = |text: &str| {
        let mut a = args(&["scores=demo"]);
        a.peer_key_encoding = Some(text.into());
        load_args(&a).map(|c| c.peer_key_encoding)
    };
    assert_eq!(set("path").unwrap(), Decoding::Percent);
    assert_eq!(set("Query").unwrap(), Decoding::Form);
    let error = set("form").unwrap_err().to_string();
    assert!(error.contains("unknown key encoding"), "{error}");
    let file = from_toml(
        "peer_key_encoding = \"path\"\n[groups.s]\nsource = \"demo\"\n",
        &ServeArgs::default(),
    )
    .unwrap();
    assert_eq!(file.peer_key_encoding, Decoding::Percent);
}

#[test]
fn batch_and_set_limits_come_from_flags_or_the_file_with_the_transports_defaults() {
    let config = load_args(&args(&["s=demo"])).unwrap();
    assert_eq!(
        (
            config.max_batch_keys,
            config.max_batch_bytes,
            config.max_set_bytes
        ),
        (1000, 4 << 20, 8 << 20)
    );
    let file = "max_batch_keys = 500\nmax_batch_bytes = \"1MiB\"\nmax_set_bytes = 1024\n";
    let config = from_toml(file, &args(&["s=demo"])).unwrap();
    assert_eq!(
        (
            config.max_batch_keys,
            config.max_batch_bytes,
            config.max_set_bytes
        ),
        (500, 1 << 20, 1024)
    );
    assert!(
        config
            .summary()
            .contains("max_batch_keys=500 max_batch_bytes=1MiB max_set_bytes=1KiB")
    );
    let flag = ServeArgs {
        max_set_bytes: Some("2KiB".into()),
        ..args(&["s=demo"])
    };
    assert_eq!(from_toml(file, &flag).unwrap().max_set_bytes, 2048);
    let err = message(from_toml("max_batch_keys = 10\n", &args(&["s=demo"])));
    assert!(
        err.starts_with("invalid max_batch_keys (in test.toml) \"10\": out of range"),
        "{err}"
    );
}

#[test]
fn tls_settings_come_from_flags_or_the_file_and_make_the_peers_https() {
    let text = r#"
tls_cert = "/etc/geecache/tls.crt"
tls_key = "/etc/geecache/tls.key"
tls_ca = "/etc/geecache/ca.crt"
tls_client_auth = "optional"
peers = ["https://10.0.0.1:8001", "https://10.0.0.2:8001"]
self_url = "https://10.0.0.1:8001"

[groups.scores]
source = "demo"
"#;
    let config = super::from_toml(text, &ServeArgs::default()).unwrap();
    let tls = config.tls.clone().unwrap();
    assert_eq!(tls.cert, std::path::PathBuf::from("/etc/geecache/tls.crt"));
    assert_eq!(tls.client_auth, crate::tls::ClientAuth::Optional);
    assert!(config.summary().contains("client_auth=optional"));
    // The flag wins over the file, as for every setting.
    let flags = ServeArgs {
        tls_client_auth: Some("required".into()),
        ..ServeArgs::default()
    };
    let config = super::from_toml(text, &flags).unwrap();
    assert_eq!(
        config.tls.unwrap().client_auth,
        crate::tls::ClientAuth::Required
    );
}

#[test]
fn a_group_chooses_how_it_keeps_hot_copies() {
    let config = load_args(&args(&[
        "a=demo",
        "b=demo,hot=random",
        "c=demo,hot_qps=0.5",
        "d=demo,hot=RATE,hot_qps=2",
    ]))
    .unwrap();
    let hot: Vec<_> = config.groups.iter().map(|g| g.hot).collect();
    assert_eq!(
        hot,
        [
            HotConfig::Rate(None),
            HotConfig::Random,
            HotConfig::Rate(Some(Qps(0.5))),
            HotConfig::Rate(Some(Qps(2.0))),
        ]
    );
    let admissions: Vec<_> = hot.iter().map(|h| h.admission()).collect();
    use geecache_group::HotAdmission;
    assert_eq!(
        admissions,
        [
            HotAdmission::default(),
            HotAdmission::Random(10),
            HotAdmission::Rate(0.5),
            HotAdmission::Rate(2.0),
        ]
    );
    let summary = config.summary();
    assert!(
        summary.contains("b=demo cache=64MiB hot=random"),
        "{summary}"
    );
    assert!(
        summary.contains("c=demo cache=64MiB hot_qps=0.5"),
        "{summary}"
    );
    // In the file, a threshold is a TOML number (or a string).
    for text in ["hot_qps = 0.25", "hot_qps = \"0.25\""] {
        let file = from_toml(
            &format!("[groups.f]\nsource = \"demo\"\n{text}\n"),
            &args(&[]),
        );
        assert_eq!(
            file.unwrap().groups[0].hot,
            HotConfig::Rate(Some(Qps(0.25))),
            "{text}"
        );
    }
    let file = from_toml(
        "[groups.f]\nsource = \"demo\"\nhot = \"random\"\n",
        &args(&[]),
    );
    assert_eq!(file.unwrap().groups[0].hot, HotConfig::Random);
    for (bad, says) in [
        ("s=demo,hot=lfu", "is not a hot-cache admission rule"),
        (
            "s=demo,hot_qps=-1",
            "is not a number of requests per second",
        ),
        (
            "s=demo,hot_qps=NaN",
            "is not a number of requests per second",
        ),
        (
            "s=demo,hot_qps=often",
            "is not a number of requests per second",
        ),
        ("s=demo,hot=random,hot_qps=1", "means nothing with it"),
    ] {
        let refused = message(load_args(&args(&[bad])));
        assert!(refused.contains(says), "{bad}: {refused}");
    }
}
