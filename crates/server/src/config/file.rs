//! The TOML config file, as written: every field optional, unknown fields refused.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// The whole file. Field names are the flag names with `_` for `-`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub(crate) listen: Option<String>,
    pub(crate) self_url: Option<String>,
    pub(crate) peers: Option<Vec<String>>,
    pub(crate) etcd: Option<Vec<String>>,
    pub(crate) cluster: Option<String>,
    pub(crate) etcd_ttl: Option<String>,
    pub(crate) peers_dns: Option<String>,
    pub(crate) dns_interval: Option<String>,
    pub(crate) dns_server: Option<String>,
    pub(crate) base_path: Option<String>,
    pub(crate) transport: Option<String>,
    pub(crate) ring: Option<String>,
    pub(crate) replicas: Option<Scalar>,
    pub(crate) handoff: Option<String>,
    pub(crate) peer_timeout: Option<String>,
    pub(crate) max_key_bytes: Option<Scalar>,
    pub(crate) log_level: Option<String>,
    pub(crate) peer_token: Option<String>,
    pub(crate) api_token: Option<String>,
    pub(crate) drain_timeout: Option<String>,
    pub(crate) threads: Option<Scalar>,
    pub(crate) max_connections: Option<Scalar>,
    pub(crate) max_peer_bytes_in_flight: Option<Scalar>,
    pub(crate) peer_key_encoding: Option<String>,
    pub(crate) max_batch_keys: Option<Scalar>,
    pub(crate) max_batch_bytes: Option<Scalar>,
    pub(crate) max_set_bytes: Option<Scalar>,
    pub(crate) tls_cert: Option<String>,
    pub(crate) tls_key: Option<String>,
    pub(crate) tls_ca: Option<String>,
    pub(crate) tls_client_auth: Option<String>,
    /// `[groups.NAME]` tables. A map, not an array, so TOML itself refuses a name given twice.
    #[serde(default)]
    pub(crate) groups: BTreeMap<String, FileGroup>,
}

/// One `[groups.NAME]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileGroup {
    pub(crate) source: Option<String>,
    pub(crate) cache_bytes: Option<Scalar>,
    pub(crate) ttl: Option<String>,
    pub(crate) origin_timeout: Option<String>,
    pub(crate) max_value_bytes: Option<Scalar>,
    pub(crate) policy: Option<String>,
    pub(crate) charge: Option<String>,
    pub(crate) negative_ttl: Option<String>,
    pub(crate) hot: Option<String>,
    /// A number, as TOML writes it (`0.05`) or as a string.
    pub(crate) hot_qps: Option<Scalar>,
    pub(crate) peer_batch_window: Option<String>,
}

/// A size may be written as a TOML integer (`67108864`) or a string (`"64MiB"`).
///
/// Kept as text and parsed by the validator, so that `-1` and `"64 potatoes"` get the same
/// precise message as a bad flag, instead of serde's "data did not match any variant".
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Scalar(pub(crate) String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string such as \"64MiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Parses the file's text. The error is TOML's own, which names the line, the column and, for
/// an unknown field, the fields that exist.
pub(crate) fn parse(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
}
