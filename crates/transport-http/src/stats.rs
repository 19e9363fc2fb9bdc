//! The JSON shape of `GET /stats`.
//!
//! These structs mirror `geecache_group::Stats` field by field instead of deriving `Serialize`
//! on the group's types: the group crate knows nothing of wire formats, and the JSON here can
//! stay stable while the group's structs grow.

use std::collections::BTreeMap;

use geecache_group::{CacheStats, Registry, Stats};
use serde::Serialize;

use crate::pool::HttpPool;

#[derive(Serialize)]
pub(crate) struct StatsBody {
    /// This node's URL, when it has a pool.
    #[serde(rename = "self", skip_serializing_if = "Option::is_none")]
    self_url: Option<String>,
    /// The ring's members, sorted, self included; empty without a pool.
    peers: Vec<String>,
    /// Every group by name.
    groups: BTreeMap<String, GroupStats>,
}

#[derive(Serialize)]
struct GroupStats {
    gets: u64,
    cache_hits: u64,
    peer_loads: u64,
    peer_errors: u64,
    loads: u64,
    loads_deduped: u64,
    local_loads: u64,
    local_load_errors: u64,
    not_found: u64,
    server_requests: u64,
    cache_bytes: usize,
    main: CacheFigures,
    hot: CacheFigures,
}

#[derive(Serialize)]
struct CacheFigures {
    hits: u64,
    evictions: u64,
    expirations: u64,
    bytes: usize,
    items: usize,
}

impl From<CacheStats> for CacheFigures {
    fn from(s: CacheStats) -> Self {
        CacheFigures {
            hits: s.hits,
            evictions: s.evictions,
            expirations: s.expirations,
            bytes: s.bytes,
            items: s.items,
        }
    }
}

impl GroupStats {
    fn new(s: Stats, cache_bytes: usize) -> Self {
        GroupStats {
            gets: s.gets,
            cache_hits: s.cache_hits,
            peer_loads: s.peer_loads,
            peer_errors: s.peer_errors,
            loads: s.loads,
            loads_deduped: s.loads_deduped,
            local_loads: s.local_loads,
            local_load_errors: s.local_load_errors,
            not_found: s.not_found,
            server_requests: s.server_requests,
            cache_bytes,
            main: s.main.into(),
            hot: s.hot.into(),
        }
    }
}

impl StatsBody {
    pub(crate) fn collect(registry: &Registry, pool: Option<&HttpPool>) -> Self {
        let groups = registry
            .all()
            .into_iter()
            .map(|g| {
                let stats = GroupStats::new(g.stats(), g.cache_bytes());
                (g.name().to_owned(), stats)
            })
            .collect();
        StatsBody {
            self_url: pool.map(|p| p.self_url().to_owned()),
            peers: pool.map(HttpPool::peers).unwrap_or_default(),
            groups,
        }
    }
}
