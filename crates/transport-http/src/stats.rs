//! The JSON shape of `GET /stats`.
//!
//! The group's stats types do not derive `Serialize`: the group crate knows nothing of wire
//! formats. The JSON walks their field tables ([`Stats::FIELDS`], [`CacheStats::FIELDS`])
//! instead, so every counter the group declares appears here under its own name, in the
//! order it is declared, with nothing to keep in step by hand.

use std::collections::BTreeMap;

use geecache_group::{CacheStats, Cluster, Field, Registry, Stats};
use serde::ser::{Serialize, SerializeMap, Serializer};

#[derive(serde::Serialize)]
pub(crate) struct StatsBody {
    /// This node's URL, when it has a pool.
    #[serde(rename = "self", skip_serializing_if = "Option::is_none")]
    self_url: Option<String>,
    /// The ring's members, sorted, self included; empty without a pool.
    peers: Vec<String>,
    /// Every other member's circuit, by URL; absent without a pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<BTreeMap<String, PeerHealthBody>>,
    /// Every group by name.
    groups: BTreeMap<String, GroupStats>,
}

/// One peer's circuit.
#[derive(serde::Serialize)]
struct PeerHealthBody {
    /// `closed`, `open` or `half-open`.
    state: &'static str,
    /// Times the circuit opened since the peer joined.
    openings: u64,
}

/// One group: every counter, the budget, then the two caches.
struct GroupStats {
    stats: Stats,
    cache_bytes: usize,
}

impl Serialize for GroupStats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        put_fields(&mut map, Stats::FIELDS, &self.stats)?;
        map.serialize_entry("cache_bytes", &self.cache_bytes)?;
        map.serialize_entry("main", &Figures(&self.stats.main))?;
        map.serialize_entry("hot", &Figures(&self.stats.hot))?;
        map.end()
    }
}

/// One cache's figures.
struct Figures<'a>(&'a CacheStats);

impl Serialize for Figures<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(CacheStats::FIELDS.len()))?;
        put_fields(&mut map, CacheStats::FIELDS, self.0)?;
        map.end()
    }
}

fn put_fields<M: SerializeMap, S>(
    map: &mut M,
    fields: &[Field<S>],
    stats: &S,
) -> Result<(), M::Error> {
    for field in fields {
        map.serialize_entry(field.name(), &field.read(stats))?;
    }
    Ok(())
}

impl StatsBody {
    pub(crate) fn collect(registry: &Registry, cluster: Option<&Cluster>) -> Self {
        let groups = registry
            .all()
            .into_iter()
            .map(|g| {
                let stats = GroupStats {
                    stats: g.stats(),
                    cache_bytes: g.cache_bytes(),
                };
                (g.name().to_owned(), stats)
            })
            .collect();
        StatsBody {
            self_url: cluster.map(|c| c.self_name().to_owned()),
            peers: cluster.map(Cluster::members).unwrap_or_default(),
            health: cluster.map(|cluster| {
                (cluster.health().into_iter())
                    .map(|peer| {
                        let body = PeerHealthBody {
                            state: peer.state.as_str(),
                            openings: peer.openings,
                        };
                        (peer.name, body)
                    })
                    .collect()
            }),
            groups,
        }
    }
}
