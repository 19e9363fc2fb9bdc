//! Which member a key goes to: the cluster as a [`PeerPicker`], the first member of the key's
//! successors on the ring whose circuit lets a request through, the stand-in after a failed
//! one, and the previous owner to peek at after a change.

use std::sync::{Arc, PoisonError};

use super::health::Admitted;
use super::{Cluster, Members};
use crate::PeerState;
use crate::cache::now;
use crate::peers::{PeerGetter, PeerPicker, Pick};

impl PeerPicker for Cluster {
    fn pick_peer(&self, key: &str) -> Option<Arc<dyn PeerGetter>> {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        let now = now();
        for name in members.ring.successors(key) {
            if name == self.self_name {
                // This node comes first among the members not skipped: it loads the key.
                return None;
            }
            let member = members.peers.get(name)?;
            if member.health.admit_as(now).is_some() {
                return Some(Arc::clone(member) as Arc<dyn PeerGetter>);
            }
        }
        None
    }

    fn pick(&self, key: &str) -> Pick {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        self.first_admitted(&members, members.ring.successors(key))
    }

    fn pick_after(&self, key: &str, failed: &str) -> Pick {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        let mut after = members.ring.successors(key);
        // The members after `failed` in the key's order, as every node walks it, so the same
        // stand-in whichever node was asking; then, round the ring, those before it, so a
        // node that would not have picked `failed` itself (its view of the members' health
        // differs) still ends at a member, at worst itself. A `failed` no longer on the ring
        // (membership changed meanwhile) has no place to go on from: this node loads the key.
        if failed == self.self_name || !after.any(|name| name == failed) {
            return Pick::default();
        }
        let before = members
            .ring
            .successors(key)
            .take_while(|name| *name != failed);
        self.first_admitted(&members, after.chain(before))
    }

    fn all_peers(&self) -> Vec<Arc<dyn PeerGetter>> {
        let members = self.current();
        let peers = members.peers.values().cloned();
        peers.map(|member| member as Arc<dyn PeerGetter>).collect()
    }

    fn previous_owner(&self, key: &str) -> Option<Arc<dyn PeerGetter>> {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        let now = now();
        let owner = members.ring.get(key);
        // Newest first: the last node other than this one and the owner that held the key.
        for (previous, changed_at) in &members.previous {
            if now.saturating_duration_since(*changed_at) >= self.handoff {
                return None;
            }
            let Some(before) = previous.get(key) else {
                continue;
            };
            if before == self.self_name || owner == Some(before) {
                continue;
            }
            // A member, or one that left and may still be draining; and answering: a peek to
            // a failing node would only add its timeout to a load that has to happen anyway.
            let member = (members.peers.get(before)).or_else(|| members.departed.get(before));
            if let Some(member) = member.filter(|m| m.health.state() == PeerState::Closed) {
                return Some(Arc::clone(member) as Arc<dyn PeerGetter>);
            }
        }
        None
    }

    fn owns(&self, key: &str) -> bool {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        members
            .ring
            .get(key)
            .is_none_or(|owner| owner == self.self_name)
    }

    fn heir(&self, key: &str) -> Option<Arc<dyn PeerGetter>> {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        let name = members
            .ring
            .successors(key)
            .find(|m| *m != self.self_name)?;
        // Whatever its circuit says: a circuit opened by reads that timed out on a busy peer, or
        // by its slowness, says little of whether it takes values now, and skipping it would
        // lose them all. The hand-over finds out by trying (`handover.rs`).
        let member = members.peers.get(name)?;
        Some(Arc::clone(member) as Arc<dyn PeerGetter>)
    }

    fn settled_changes(&self) -> u64 {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        match members.changed_at {
            Some(at) if now().saturating_duration_since(at) < self.handoff => members.changes - 1,
            _ => members.changes,
        }
    }

    fn is_self(&self, name: &str) -> bool {
        name == self.self_name
    }
}

impl Cluster {
    /// The first of `order` this node may send a request to now, or `None` (this node loads)
    /// once `order` reaches this node; with the members due a probe that it skipped.
    fn first_admitted<'r>(&self, members: &Members, order: impl Iterator<Item = &'r str>) -> Pick {
        let now = now();
        let mut pick = Pick::default();
        for name in order {
            if name == self.self_name {
                return pick;
            }
            let Some(member) = members.peers.get(name) else {
                return pick;
            };
            match member.health.admit_as(now) {
                Some(Admitted::Closed) => {
                    pick.peer = Some(Arc::clone(member) as Arc<dyn PeerGetter>);
                    return pick;
                }
                // Probed apart from this request, which goes on to the next member: a peer
                // that still hangs then costs no client its timeout.
                Some(Admitted::Probe) => pick.probes.push(Arc::clone(member) as _),
                None => {}
            }
        }
        pick
    }
}
