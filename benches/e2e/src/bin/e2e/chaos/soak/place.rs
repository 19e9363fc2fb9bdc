//! Where the soak's nodes and etcd run: on loopback ports, or on the hosts of a
//! network-namespace lab.

use super::super::hosts::{self, NODES, members};
use super::*;

/// Where the soak's nodes and etcd run.
pub(super) enum Place<'h> {
    /// Loopback ports of this machine: the nodes' (known once they started) and etcd's.
    Loopback {
        ports: Vec<u16>,
        etcd_ports: Vec<u16>,
    },
    /// Hosts 0 to 2 of a network-namespace lab, etcd on host 3.
    Hosts(&'h HostLab),
}

impl Place<'_> {
    /// The three nodes, found through etcd at `etcd` or else named to each other, with their
    /// URLs and the members a restarted node is told.
    pub(super) fn start(
        &mut self,
        lab: &Lab<'_>,
        etcd: Option<String>,
    ) -> anyhow::Result<(Vec<Server>, Vec<String>, Members)> {
        match self {
            Place::Loopback { ports, .. } => {
                let (nodes, started_on, urls) = match &etcd {
                    Some(client) => lab.etcd_nodes(NODES, client)?,
                    None => lab.static_nodes(NODES)?,
                };
                *ports = started_on;
                let members = etcd.map_or_else(|| Members::Static(urls.clone()), Members::Etcd);
                Ok((nodes, urls, members))
            }
            Place::Hosts(h) => {
                let urls = hosts::node_urls(h);
                let members = etcd.map_or_else(|| Members::Static(urls.clone()), Members::Etcd);
                let nodes = (0..NODES)
                    .map(|i| lab.host_node(h, i, &urls[i], &members))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                wait_for_members(&nodes.iter().collect::<Vec<_>>(), NODES)?;
                Ok((nodes, urls, members))
            }
        }
    }

    /// Node `i` started again on its address.
    pub(super) fn node(
        &self,
        lab: &Lab<'_>,
        i: usize,
        url: &str,
        members: &Members,
    ) -> anyhow::Result<Server> {
        match self {
            Place::Loopback { ports, .. } => lab.node(i, ports[i], url, members),
            Place::Hosts(h) => lab.host_node(h, i, url, members),
        }
    }

    /// etcd on its ports, with an empty data directory when `fresh`, else with its data.
    pub(super) fn etcd(&self, lab: &Lab<'_>, fresh: bool) -> anyhow::Result<(Server, String)> {
        match self {
            Place::Loopback { etcd_ports, .. } => lab.etcd_on(etcd_ports, fresh),
            Place::Hosts(h) => members::etcd_on(lab, h, fresh),
        }
    }

    /// How the report names it.
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Place::Loopback { .. } => "on loopback",
            Place::Hosts(_) => "on three hosts of a network-namespace lab",
        }
    }
}
