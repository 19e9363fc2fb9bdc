//! Where a setting's value comes from: the flag or its variable, else the config file.
//!
//! Each setting is known by one id, its field name: clap's argument id in `ServeArgs` and the
//! key in the config file. The flag and the variable are read off clap's own definition of the
//! argument, so an error names exactly what `--help` shows, and nothing here repeats clap's
//! attributes.

use std::sync::OnceLock;

use clap::{Args, Command};

use super::error::Field;
use super::file::FileConfig;
use crate::cli::ServeArgs;

/// The ids of the settings that are more than one value (the rest are picked by [`Layers::pick`]).
pub(super) mod ids {
    pub(crate) const LISTEN: &str = "listen";
    pub(crate) const SELF_URL: &str = "self_url";
    pub(crate) const PEERS: &str = "peers";
    pub(crate) const ETCD: &str = "etcd";
    pub(crate) const CLUSTER: &str = "cluster";
    pub(crate) const ETCD_TTL: &str = "etcd_ttl";
    pub(crate) const PEERS_DNS: &str = "peers_dns";
    pub(crate) const DNS_INTERVAL: &str = "dns_interval";
    pub(crate) const DNS_SERVER: &str = "dns_server";
    pub(crate) const BASE_PATH: &str = "base_path";
    pub(crate) const TRANSPORT: &str = "transport";
    pub(crate) const RING: &str = "ring";
    pub(crate) const REPLICAS: &str = "replicas";
    pub(crate) const HANDOFF: &str = "handoff";
    pub(crate) const GROUPS: &str = "groups";
    pub(crate) const PEER_TIMEOUT: &str = "peer_timeout";
    pub(crate) const MAX_KEY_BYTES: &str = "max_key_bytes";
    pub(crate) const LOG_LEVEL: &str = "log_level";
    pub(crate) const PEER_TOKEN: &str = "peer_token";
    pub(crate) const API_TOKEN: &str = "api_token";
    pub(crate) const DRAIN_TIMEOUT: &str = "drain_timeout";
    pub(crate) const THREADS: &str = "threads";
    pub(crate) const MAX_CONNECTIONS: &str = "max_connections";
    pub(crate) const MAX_PEER_BYTES_IN_FLIGHT: &str = "max_peer_bytes_in_flight";
    pub(crate) const PEER_KEY_ENCODING: &str = "peer_key_encoding";
    pub(crate) const MAX_BATCH_KEYS: &str = "max_batch_keys";
    pub(crate) const MAX_BATCH_BYTES: &str = "max_batch_bytes";
    pub(crate) const MAX_SET_BYTES: &str = "max_set_bytes";
    pub(crate) const TLS_CERT: &str = "tls_cert";
    pub(crate) const TLS_KEY: &str = "tls_key";
    pub(crate) const TLS_CA: &str = "tls_ca";
    pub(crate) const TLS_CLIENT_AUTH: &str = "tls_client_auth";

    /// Every id, for the test that holds them against clap's definition.
    #[cfg(test)]
    pub(crate) const ALL: [&str; 32] = [
        LISTEN,
        SELF_URL,
        PEERS,
        ETCD,
        CLUSTER,
        ETCD_TTL,
        PEERS_DNS,
        DNS_INTERVAL,
        DNS_SERVER,
        BASE_PATH,
        TRANSPORT,
        RING,
        REPLICAS,
        HANDOFF,
        GROUPS,
        PEER_TIMEOUT,
        MAX_KEY_BYTES,
        LOG_LEVEL,
        PEER_TOKEN,
        API_TOKEN,
        DRAIN_TIMEOUT,
        THREADS,
        MAX_CONNECTIONS,
        MAX_PEER_BYTES_IN_FLIGHT,
        PEER_KEY_ENCODING,
        MAX_BATCH_KEYS,
        MAX_BATCH_BYTES,
        MAX_SET_BYTES,
        TLS_CERT,
        TLS_KEY,
        TLS_CA,
        TLS_CLIENT_AUTH,
    ];
}

/// `serve`'s arguments as clap defines them, built once.
fn serve_command() -> &'static Command {
    static COMMAND: OnceLock<Command> = OnceLock::new();
    COMMAND.get_or_init(|| ServeArgs::augment_args(Command::new("serve")))
}

/// The flag (`--peer-timeout`) and variable (`GEECACHE_PEER_TIMEOUT`) of setting `id`, as
/// clap defines them; `None` for an id clap does not know (a test keeps that from happening).
pub(super) fn names(id: &str) -> Option<(&'static str, &'static str)> {
    let arg = serve_command()
        .get_arguments()
        .find(|arg| arg.get_id() == id)?;
    let flag = arg.get_long()?;
    let env = arg.get_env()?.to_str()?;
    Some((flag, env))
}

/// The layers a value can come from, highest precedence first.
pub(super) struct Layers<'a> {
    pub(super) args: &'a ServeArgs,
    pub(super) file: &'a FileConfig,
    pub(super) file_path: String,
}

impl Layers<'_> {
    /// Where the command-line layer's value came from: the flag, or its variable.
    pub(super) fn cli_field(&self, id: &'static str) -> Field {
        // An id clap does not know is a bug the `ids` test catches; the id still names it.
        let Some((flag, env)) = names(id) else {
            return Field::Flag(id);
        };
        if self.args.from_env.contains(id) {
            Field::Env(env)
        } else {
            Field::Flag(flag)
        }
    }

    pub(super) fn file_field(&self, key: impl Into<String>) -> Field {
        Field::File {
            key: key.into(),
            path: self.file_path.clone(),
        }
    }

    /// The value of a scalar setting and where it came from, or `None` when unset everywhere.
    pub(super) fn pick(
        &self,
        id: &'static str,
        cli: Option<&String>,
        file: Option<&String>,
    ) -> Option<(String, Field)> {
        if let Some(v) = cli {
            return Some((v.clone(), self.cli_field(id)));
        }
        file.map(|v| (v.clone(), self.file_field(id)))
    }
}
