//! The members a key falls back to, in ring order: [`Ring::successors`].
//!
//! Every node computes the same order from the same ring, so when a key's owner is skipped
//! (it is down, say) they all agree on the next one, and the key is still loaded once in the
//! cluster. Taking the first few costs a few point reads; the iterator never allocates. It
//! remembers the members it has yielded in an inline bitset for the first 256 members; past
//! those it rescans the points it walked, which only rings of hundreds of members pay.

use crate::hash::Crc32;
use crate::ring::Ring;

/// Words of the inline bitset in which [`Successors`] remembers the members it yielded.
const SEEN_WORDS: usize = 4;

/// The members a key falls back to; see [`Ring::successors`].
#[derive(Clone, Debug)]
pub struct Successors<'a, H = Crc32> {
    ring: &'a Ring<H>,
    /// The key's owner; `None` for an empty ring.
    owner: Option<u32>,
    /// Whether the owner was yielded.
    started: bool,
    /// The first point at or after the key's position: where the walk starts.
    start: usize,
    /// Points looked at so far, from `start` on.
    walked: usize,
    /// Members yielded so far.
    yielded: usize,
    /// Bit `m` set: member `m` was yielded (for `m` below `64 * SEEN_WORDS`).
    seen: [u64; SEEN_WORDS],
}

impl<'a, H> Successors<'a, H> {
    /// The walk for a key whose position [`Ring::locate`] found as `located`.
    pub(crate) fn new(ring: &'a Ring<H>, located: Option<(u32, usize)>) -> Self {
        Successors {
            ring,
            owner: located.map(|(owner, _)| owner),
            started: false,
            start: located.map_or(0, |(_, next)| next),
            walked: 0,
            yielded: 0,
            seen: [0; SEEN_WORDS],
        }
    }

    fn mark(&mut self, member: u32) {
        if let Some(word) = self.seen.get_mut(member as usize / 64) {
            *word |= 1 << (member % 64);
        }
    }

    /// Whether `member`, met at the point just walked, was yielded already. A member past the
    /// bitset was yielded if it is the owner or owns a point walked before this one (each
    /// member is yielded at its first point on the walk).
    fn was_yielded(&self, member: u32, owner: u32) -> bool {
        if let Some(word) = self.seen.get(member as usize / 64) {
            return word & (1 << (member % 64)) != 0;
        }
        let points = &self.ring.points;
        member == owner
            || (0..self.walked - 1)
                .any(|i| points[(self.start + i) % points.len()].member == member)
    }
}

impl<'a, H> Iterator for Successors<'a, H> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let ring = self.ring;
        let owner = self.owner?;
        if !self.started {
            self.started = true;
            self.mark(owner);
            self.yielded = 1;
            return Some(&ring.members[owner as usize]);
        }
        while self.yielded < ring.members.len() && self.walked < ring.points.len() {
            let point = ring.points[(self.start + self.walked) % ring.points.len()];
            self.walked += 1;
            if !self.was_yielded(point.member, owner) {
                self.mark(point.member);
                self.yielded += 1;
                return Some(&ring.members[point.member as usize]);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Every member has at least one point, so the walk meets every member.
        let left = match self.owner {
            None => 0,
            Some(_) => self.ring.members.len() - self.yielded,
        };
        (left, Some(left))
    }
}

impl<H> ExactSizeIterator for Successors<'_, H> {}

impl<H> std::iter::FusedIterator for Successors<'_, H> {}
