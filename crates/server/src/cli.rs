//! The command line: `geecache demo`, `geecache serve`, `geecache get`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// A distributed read-through cache in the groupcache family.
#[derive(Debug, Parser)]
// Help wraps at the terminal's width, and at 100 columns at most (or when piped): a line of
// 285 columns is unreadable in any terminal.
#[command(name = "geecache", version, about, long_about = None, max_term_width = 100)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Start three nodes in this process, drive a Zipf workload through them, show what the
    /// cache did, stop one node and show that requests still succeed.
    Demo(DemoArgs),
    /// Run one cache node.
    Serve(Box<ServeArgs>),
    /// Fetch one value from a running node and print it (exit 0), or say it is not found
    /// (exit 1) or that something failed (exit 2).
    Get(GetArgs),
}

/// Whether this build lacks etcd membership. Its flags are still parsed, so that a config
/// naming etcd gets the message that this build cannot use it, but `--help` does not offer
/// what the build cannot do.
const WITHOUT_ETCD: bool = cfg!(not(feature = "etcd"));

/// Flags of `geecache serve`. Every flag can also come from a `GEECACHE_*` variable or the
/// config file; the flag wins over the variable, which wins over the file.
///
/// Values are kept as text here and checked by `config::load`, so that every mistake gets the
/// same kind of message (which setting, what is wrong, what is allowed) wherever it was made.
#[derive(Debug, Default, Args)]
pub(crate) struct ServeArgs {
    /// TOML config file (see docs/operations.md for every key).
    #[arg(long, short = 'c', env = "GEECACHE_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Address to listen on; port 0 picks a free port.
    #[arg(
        long,
        env = "GEECACHE_LISTEN",
        value_name = "IP:PORT",
        help = "Address to listen on; port 0 picks a free port [default: 127.0.0.1:8001]"
    )]
    pub(crate) listen: Option<String>,

    /// The URL peers reach this node at.
    #[arg(
        long,
        env = "GEECACHE_SELF_URL",
        value_name = "URL",
        help = "The URL peers reach this node at [default: http://<listen address>]"
    )]
    pub(crate) self_url: Option<String>,

    /// Every node of the cluster, by URL, comma-separated (this node may be included).
    #[arg(
        long,
        env = "GEECACHE_PEERS",
        value_name = "URL,...",
        value_delimiter = ','
    )]
    pub(crate) peers: Option<Vec<String>>,

    /// etcd client URL to find the cluster's members through, instead of --peers; repeat the flag or separate with commas for several etcd members.
    #[arg(
        long,
        env = "GEECACHE_ETCD",
        value_name = "URL,...",
        value_delimiter = ',',
        hide = WITHOUT_ETCD
    )]
    pub(crate) etcd: Option<Vec<String>>,

    /// The cluster's name in etcd (one path segment): nodes see only nodes of their own cluster.
    #[arg(long, env = "GEECACHE_CLUSTER", value_name = "NAME", hide = WITHOUT_ETCD)]
    pub(crate) cluster: Option<String>,

    /// How long a node that stopped without leaving (a crash) stays in its peers' lists.
    #[arg(
        long,
        env = "GEECACHE_ETCD_TTL",
        value_name = "DURATION",
        hide = WITHOUT_ETCD,
        help = "How long a node that stopped without leaving (a crash) stays in its peers' lists [default: 10s]"
    )]
    pub(crate) etcd_ttl: Option<String>,

    /// A DNS name to find the cluster's members through, instead of --peers or --etcd: NAME:PORT asks for A/AAAA records (every member on PORT), a bare NAME for SRV records (each with its own host and port).
    #[arg(
        long,
        env = "GEECACHE_PEERS_DNS",
        value_name = "NAME[:PORT]",
        help = "A DNS name to find the cluster's members through, instead of --peers or --etcd: NAME:PORT asks for A/AAAA records (every member on PORT), a bare NAME for SRV records (each with its own host and port), e.g. a Kubernetes headless Service"
    )]
    pub(crate) peers_dns: Option<String>,

    /// How often to look the --peers-dns name up again.
    #[arg(
        long,
        env = "GEECACHE_DNS_INTERVAL",
        value_name = "DURATION",
        help = "How often to look the --peers-dns name up again [default: 5s]"
    )]
    pub(crate) dns_interval: Option<String>,

    /// The DNS server to ask for --peers-dns, instead of the system's resolver configuration.
    #[arg(
        long,
        env = "GEECACHE_DNS_SERVER",
        value_name = "IP:PORT",
        help = "The DNS server to ask for --peers-dns, instead of the system's resolver configuration (/etc/resolv.conf)"
    )]
    pub(crate) dns_server: Option<String>,

    /// Path prefix of the peer routes: /_geecache/, or /_groupcache/ (with --ring groupcache) to talk to Go groupcache.
    #[arg(
        long,
        env = "GEECACHE_BASE_PATH",
        value_name = "PATH",
        help = "Path prefix of the peer routes: /_geecache/, or /_groupcache/ (with --ring groupcache) to talk to Go groupcache [default: /_geecache/]"
    )]
    pub(crate) base_path: Option<String>,

    /// The protocol between peers: http (HTTP/1.1, groupcache's protocol) or grpc (one multiplexed HTTP/2 connection per peer, served on the same port). Every node of a cluster must use the same.
    #[arg(
        long,
        env = "GEECACHE_TRANSPORT",
        value_name = "PROTOCOL",
        help = "The protocol between peers: http (HTTP/1.1, groupcache's protocol, needed beside Go nodes) or grpc (one multiplexed HTTP/2 connection per peer, on the same port); every node must use the same [default: http]"
    )]
    pub(crate) transport: Option<String>,

    /// Which ring places keys on nodes: balanced (even shares), or groupcache (Go groupcache's ring, needed beside Go nodes). Every node of a cluster must use the same.
    #[arg(
        long,
        env = "GEECACHE_RING",
        value_name = "RING",
        help = "Which ring places keys on nodes: balanced (even shares), or groupcache (Go groupcache's ring, needed beside Go nodes); every node must use the same [default: balanced]"
    )]
    pub(crate) ring: Option<String>,

    /// For how long after a change of membership a node asks a key's previous owner for it before loading it from the source.
    #[arg(
        long,
        env = "GEECACHE_HANDOFF",
        value_name = "DURATION",
        help = "For how long after a change of membership a node asks a key's previous owner for it (cache only) before loading it from the source; 0s turns it off [default: 60s]"
    )]
    pub(crate) handoff: Option<String>,

    /// Virtual nodes per node on the ring.
    #[arg(
        long,
        env = "GEECACHE_REPLICAS",
        value_name = "N",
        help = "Virtual nodes per node on the ring, 1 to 65536; every node must use the same [default: 2048 for balanced, 50 for groupcache]"
    )]
    pub(crate) replicas: Option<String>,

    /// A group to serve: NAME=SOURCE with options. SOURCE is `demo`, `dir:PATH` or `http:URL`. Repeat the flag for more groups; in the variable, separate groups with `;`.
    #[arg(
        long = "group",
        short = 'g',
        env = "GEECACHE_GROUPS",
        value_name = "NAME=SOURCE",
        value_delimiter = ';',
        help = "A group to serve: NAME=SOURCE[,OPTION=VALUE]..., where SOURCE is `demo`, `dir:PATH` or `http:URL` and OPTION is cache=SIZE, ttl=DURATION, origin_timeout=DURATION, max_value_bytes=SIZE, policy=s3fifo|lru (s3fifo, the default, resists scans), charge=payload|memory (what the cache budget counts), negative_ttl=DURATION, hot=rate|random, hot_qps=NUMBER or peer_batch_window=DURATION (up to 10ms: single fetches to one peer within it go as one batch request; 0, the default, is off). Repeat the flag for more groups; in the variable, separate groups with `;`."
    )]
    pub(crate) groups: Vec<String>,

    /// How long to wait for a peer before asking the key's next member or loading locally.
    #[arg(
        long,
        env = "GEECACHE_PEER_TIMEOUT",
        value_name = "DURATION",
        help = "How long to wait for a peer before asking the key's next member or loading locally [default: 1s]"
    )]
    pub(crate) peer_timeout: Option<String>,

    /// Longest key accepted, in bytes.
    #[arg(
        long,
        env = "GEECACHE_MAX_KEY_BYTES",
        value_name = "SIZE",
        help = "Longest key accepted, in bytes [default: 64KiB]"
    )]
    pub(crate) max_key_bytes: Option<String>,

    /// Log filter: error, warn, info, debug, trace, or a directive such as `info,geecache_group=debug`.
    #[arg(
        long,
        env = "GEECACHE_LOG_LEVEL",
        value_name = "FILTER",
        help = "Log filter: error, warn, info, debug, trace, or a directive such as `info,geecache_group=debug` [default: info]"
    )]
    pub(crate) log_level: Option<String>,

    /// Shared secret required on peer and admin routes, and sent to peers.
    #[arg(
        long,
        env = "GEECACHE_PEER_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub(crate) peer_token: Option<String>,

    /// Secret required on the client routes (/api/...); open when unset.
    #[arg(
        long,
        env = "GEECACHE_API_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub(crate) api_token: Option<String>,

    /// How long a shutdown waits for in-flight requests.
    #[arg(
        long,
        env = "GEECACHE_DRAIN_TIMEOUT",
        value_name = "DURATION",
        help = "How long a shutdown waits for in-flight requests [default: 10s]"
    )]
    pub(crate) drain_timeout: Option<String>,

    /// Worker threads of the async runtime.
    #[arg(
        long,
        env = "GEECACHE_THREADS",
        value_name = "N",
        help = "Worker threads of the async runtime, 1 to 1024 [default: one per CPU the process may use]"
    )]
    pub(crate) threads: Option<String>,

    /// Most connections open at once.
    #[arg(
        long,
        env = "GEECACHE_MAX_CONNECTIONS",
        value_name = "N",
        help = "Most connections open at once; beyond it a connection is answered 503 and closed [default: three quarters of the open-file limit]"
    )]
    pub(crate) max_connections: Option<String>,

    /// Most bytes of peer answers received at once, over all peers.
    #[arg(
        long,
        env = "GEECACHE_MAX_PEER_BYTES_IN_FLIGHT",
        value_name = "SIZE",
        help = "Most bytes of peer answers received at once, over all peers; a fetch beyond it stops and the key is loaded here [default: 256MiB]"
    )]
    pub(crate) max_peer_bytes_in_flight: Option<String>,

    /// Most keys one batch get may ask for, from a client or a peer.
    #[arg(
        long,
        env = "GEECACHE_MAX_BATCH_KEYS",
        value_name = "N",
        help = "Most keys one batch get may ask for, from a client or a peer; a larger batch is answered 413 [default: 1000]"
    )]
    pub(crate) max_batch_keys: Option<String>,

    /// Largest request body of a batch get, from a client or a peer.
    #[arg(
        long,
        env = "GEECACHE_MAX_BATCH_BYTES",
        value_name = "SIZE",
        help = "Largest request body of a batch get, from a client or a peer; a larger one is answered 413 [default: 4MiB]"
    )]
    pub(crate) max_batch_bytes: Option<String>,

    /// Largest value a client may set.
    #[arg(
        long,
        env = "GEECACHE_MAX_SET_BYTES",
        value_name = "SIZE",
        help = "Largest value a client may set (PUT /api/GROUP/KEY); a larger one is answered 413 [default: 8MiB]"
    )]
    pub(crate) max_set_bytes: Option<String>,

    /// How the peer route reads a `+` in a key: query or path.
    #[arg(
        long,
        env = "GEECACHE_PEER_KEY_ENCODING",
        value_name = "ENCODING",
        help = "How the peer route reads a `+` in a key: query (a space, as golang/groupcache clients mean it) or path (a plus, as mailgun/groupcache and groupcache-go v3 clients mean it) [default: query]"
    )]
    pub(crate) peer_key_encoding: Option<String>,

    /// The node's TLS certificate chain (PEM); with --tls-key, every route is served over TLS.
    #[arg(
        long,
        env = "GEECACHE_TLS_CERT",
        value_name = "FILE",
        help = "The node's certificate chain (PEM, leaf first); with --tls-key and --tls-ca, every route is served over TLS and peers are https:// URLs. Reloaded on SIGHUP and when the file changes"
    )]
    pub(crate) tls_cert: Option<String>,

    /// The private key of --tls-cert (PEM).
    #[arg(
        long,
        env = "GEECACHE_TLS_KEY",
        value_name = "FILE",
        help = "The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1)"
    )]
    pub(crate) tls_key: Option<String>,

    /// The CA certificates (PEM) peers' certificates must be signed by.
    #[arg(
        long,
        env = "GEECACHE_TLS_CA",
        value_name = "FILE",
        help = "CA certificates (PEM) that sign the peers' certificates (and, with --tls-client-auth, the callers'); required with --tls-cert"
    )]
    pub(crate) tls_ca: Option<String>,

    /// Whether callers must show a certificate signed by --tls-ca: required, optional or none.
    #[arg(
        long,
        env = "GEECACHE_TLS_CLIENT_AUTH",
        value_name = "MODE",
        help = "Whether callers must show a certificate signed by --tls-ca: required (mutual TLS; a caller without one is refused in the handshake), optional (asked for; /api clients may use the token instead) or none [default: none]"
    )]
    pub(crate) tls_client_auth: Option<String>,

    /// Which arguments came from an environment variable rather than a flag, by clap id.
    #[arg(skip)]
    pub(crate) from_env: BTreeSet<String>,
}

/// Flags of `geecache demo`.
#[derive(Clone, Debug, Args)]
pub(crate) struct DemoArgs {
    /// Rows in the built-in table (keys `player-000000` ...).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) keys: u32,

    /// Requests in the first phase (ignored with --duration).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) requests: u64,

    /// Run the first phase for this long instead of a request count, e.g. 10s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub(crate) duration: Option<std::time::Duration>,

    /// Requests in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub(crate) concurrency: u32,

    /// Exponent of the Zipf key distribution (larger: fewer keys get most requests).
    #[arg(long, default_value_t = 1.1, value_parser = parse_exponent)]
    pub(crate) zipf: f64,

    /// Simulated latency of each load from the built-in table, e.g. 2ms.
    #[arg(long, default_value = "2ms", value_name = "DURATION", value_parser = parse_duration_arg)]
    pub(crate) load_delay: std::time::Duration,

    /// Cache budget of each node, e.g. 64MiB.
    #[arg(long, default_value = "64MiB", value_name = "SIZE", value_parser = parse_size_arg)]
    pub(crate) cache_bytes: u64,

    /// Requests in the phase after one node is stopped.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) failover_requests: u64,

    /// The protocol between the nodes: http or grpc.
    #[arg(long, default_value = "http", value_name = "PROTOCOL", value_parser = parse_transport)]
    pub(crate) transport: crate::node::Transport,

    /// Seed of the workload's random numbers, for a repeatable run.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,

    /// After the first phase, print the nodes' URLs and serve until Ctrl-C (skips the
    /// node-failure phase so all three nodes stay up).
    #[arg(long)]
    pub(crate) keep_running: bool,

    /// Serve the three nodes over TLS with this certificate (PEM; it must name 127.0.0.1),
    /// also shown as the load's client certificate. Needs --tls-key and --tls-ca.
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_ca"])]
    pub(crate) tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,

    /// The CA (PEM) that signs --tls-cert: the nodes check each other, and the load checks
    /// the nodes, with it.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_ca: Option<PathBuf>,
}

/// Flags of `geecache get`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The node, e.g. `http://127.0.0.1:8001`.
    pub(crate) url: String,
    /// The group, e.g. scores.
    pub(crate) group: String,
    /// The key; several keys are fetched in one request.
    #[arg(value_name = "KEY", required = true, num_args = 1..)]
    pub(crate) keys: Vec<String>,
    /// Write the value to this file instead of standard output; with several keys, a
    /// directory that gets one file per key, named for the key (percent-encoded).
    #[arg(short, long, value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,
    /// Give up after this long.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration_arg)]
    pub(crate) timeout: std::time::Duration,
    /// Token for a node whose client routes require one.
    #[arg(
        long,
        env = "GEECACHE_API_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub(crate) api_token: Option<String>,
    /// CA certificates (PEM) that sign the node's certificate: needed for an https:// URL.
    #[arg(long, env = "GEECACHE_TLS_CA", value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) for a node that asks for one (--tls-client-auth).
    #[arg(
        long,
        env = "GEECACHE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(
        long,
        env = "GEECACHE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub(crate) tls_key: Option<PathBuf>,
}

fn parse_transport(text: &str) -> Result<crate::node::Transport, String> {
    text.parse()
        .map_err(|()| format!("unknown transport {text:?}; expected http or grpc"))
}

fn parse_duration_arg(text: &str) -> Result<std::time::Duration, String> {
    crate::config::units::parse_duration(text)
        .ok_or_else(|| format!("expected {}", crate::config::units::DURATION_FORMS))
}

fn parse_size_arg(text: &str) -> Result<u64, String> {
    crate::config::units::parse_size(text)
        .ok_or_else(|| format!("expected {}", crate::config::units::SIZE_FORMS))
}

fn parse_exponent(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 10.0 => Ok(s),
        _ => Err("expected a number greater than 0 and at most 10, e.g. 1.1".to_owned()),
    }
}

/// Parses the command line (exiting with status 2 and clap's message on a syntax error) and
/// records which `serve` settings came from environment variables.
pub(crate) fn parse() -> Cli {
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let (Command::Serve(args), Some(("serve", sub))) = (&mut cli.command, matches.subcommand()) {
        for id in sub.ids() {
            if sub.value_source(id.as_str()) == Some(ValueSource::EnvVariable) {
                args.from_env.insert(id.as_str().to_owned());
            }
        }
    }
    cli
}
