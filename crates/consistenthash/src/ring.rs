//! The ring: members, their virtual nodes, and the lookup index over them.

use std::fmt;

use crate::builder::{Assignment, RingBuilder};
use crate::hash::{Crc32, Murmur3, RingHash};
use crate::successors::Successors;

/// Virtual nodes per member when none (or zero) are asked for: Go groupcache's `HTTPPool` default.
pub const DEFAULT_REPLICAS: usize = 50;

/// Virtual nodes per member used by [`Ring::balanced`].
///
/// With [`Murmur3`] placement a member's share of the keys deviates from the mean by about
/// `1/sqrt(2 * replicas)` under [`Assignment::Nearest`]; at 2048 the busiest of 3 to 10 members
/// stayed within 5% of the mean for every member naming we measured. The cost is memory (8 bytes
/// per point plus 4 to 8 per point for the index: about 300 KiB for 10 members, 2.6 MiB for 100)
/// and build time, not lookup work: see [`Ring::get`].
pub const BALANCED_REPLICAS: usize = 2048;

/// The largest replica count a ring accepts; larger requests are clamped to it.
///
/// Far beyond any useful value (balance gains flatten out long before). The clamp keeps a bad
/// configuration value from asking for an impossible allocation; with it, overflowing the ring's
/// `u32` point indices would take 65 536 members and 32 GiB of points.
pub const MAX_REPLICAS: usize = 1 << 16;

/// Upper bound on the number of index buckets (4 MiB of index). Rings with more points than this
/// get a few points per bucket and a short binary search inside it.
const MAX_INDEX_BUCKETS: usize = 1 << 20;

/// One virtual node: a position on the ring and the member (index into `members`) it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Point {
    pub(crate) hash: u32,
    pub(crate) member: u32,
}

/// A consistent-hash ring: maps keys to members through `replicas` virtual nodes per member.
///
/// By default (`Ring`, i.e. `Ring<Crc32>`) it picks exactly the owner Go groupcache picks:
/// virtual node `i` of member `m` sits at `crc32(decimal(i) ++ m)`, a key goes to the first
/// point whose hash is `>= crc32(key)`, wrapping to the first point, and when two points have the
/// same hash the member added last wins.
///
/// ```
/// use geecache_consistenthash::Ring;
///
/// let mut ring = Ring::default(); // 50 replicas, CRC-32: groupcache's HTTPPool
/// ring.add(["http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8003"]);
/// assert_eq!(ring.get("k0"), Some("http://127.0.0.1:8002")); // what Go groupcache answers
///
/// assert!(ring.remove("http://127.0.0.1:8002"));
/// assert_ne!(ring.get("k0"), Some("http://127.0.0.1:8002"));
/// ```
///
/// A ring is meant to be built, then shared read-only (for instance in an `Arc`) and replaced
/// whole when membership changes; [`get`](Ring::get) takes `&self` and never allocates.
#[derive(Clone)]
pub struct Ring<H = Crc32> {
    hasher: H,
    replicas: usize,
    assignment: Assignment,
    /// Members in insertion order. The position is also the tie-break precedence: on equal point
    /// hashes the higher index (added later) wins, as in groupcache, where the later `Add`
    /// overwrites the earlier entry of its `hashMap`.
    pub(crate) members: Vec<Box<str>>,
    /// Every virtual node, sorted by `(hash, Reverse(member))`. The reversed member makes the
    /// winner of a tie come first, so "first point with hash >= h" is the owner without a
    /// separate de-duplicated copy; and removing a member needs no re-hashing of the others.
    pub(crate) points: Vec<Point>,
    /// `index[b]` is the first point whose hash is `>= b << shift`; `index[buckets] ==
    /// points.len()`. With about one point per bucket a lookup reads two adjacent index entries
    /// and at most a couple of points, instead of a binary search over all of them (13 to 17
    /// dependent, cache-missing steps for rings of 10 000 to 100 000 points). Empty when the
    /// ring has no points.
    index: Vec<u32>,
    shift: u32,
}

impl Ring {
    /// A groupcache-compatible ring (CRC-32) with `replicas` virtual nodes per member.
    ///
    /// `0` means [`DEFAULT_REPLICAS`], as in groupcache's `HTTPPoolOptions`; values above
    /// [`MAX_REPLICAS`] are clamped to it.
    #[must_use]
    pub fn new(replicas: usize) -> Ring {
        Ring::with_hasher(replicas, Crc32)
    }
}

impl Default for Ring {
    /// `Ring::new(DEFAULT_REPLICAS)`: the ring groupcache's `HTTPPool` builds.
    fn default() -> Self {
        Ring::new(DEFAULT_REPLICAS)
    }
}

impl Ring {
    /// A builder for rings with other options; starts from the groupcache-compatible ones.
    pub fn builder() -> RingBuilder {
        RingBuilder::default()
    }
}

impl Ring<Murmur3> {
    /// The recommended ring when every node runs this crate: [`Murmur3`] placement,
    /// [`BALANCED_REPLICAS`] virtual nodes per member, and [`Assignment::Nearest`].
    ///
    /// **Not** groupcache-compatible: a Go groupcache node would pick different owners. In
    /// exchange, the busiest of 3 to 10 members stays within about 5% of the mean share of keys
    /// (with the CRC-32 default, 3 groupcache peers get 42/30/28%, and more replicas do not help
    /// it). Lookups cost no more; the ring takes more memory and longer to build.
    ///
    /// ```
    /// use geecache_consistenthash::Ring;
    ///
    /// let mut ring = Ring::balanced();
    /// ring.add(["cache-a", "cache-b", "cache-c"]);
    /// assert!(ring.get("user:42").is_some());
    /// ```
    #[must_use]
    pub fn balanced() -> Ring<Murmur3> {
        Ring::builder()
            .replicas(BALANCED_REPLICAS)
            .hasher(Murmur3)
            .assignment(Assignment::Nearest)
            .build()
    }
}

impl<H: RingHash> Ring<H> {
    /// An empty ring placing keys and virtual nodes with `hasher`, `replicas` points per member,
    /// and the groupcache rule ([`Assignment::Successor`]).
    ///
    /// `0` means [`DEFAULT_REPLICAS`]; values above [`MAX_REPLICAS`] are clamped to it.
    #[must_use]
    pub fn with_hasher(replicas: usize, hasher: H) -> Self {
        Ring::from_parts(replicas, hasher, Assignment::Successor)
    }

    pub(crate) fn from_parts(replicas: usize, hasher: H, assignment: Assignment) -> Self {
        let replicas = match replicas {
            0 => DEFAULT_REPLICAS,
            r => r.min(MAX_REPLICAS),
        };
        Ring {
            hasher,
            replicas,
            assignment,
            members: Vec::new(),
            points: Vec::new(),
            index: Vec::new(),
            shift: 0,
        }
    }

    /// Adds members, each with [`replicas`](Ring::replicas) virtual nodes.
    ///
    /// Adding a member that is already present (or listing one twice) is a no-op for that member:
    /// it keeps its place in the insertion order. (Go groupcache's `Map.Add` would add its
    /// points a second time and so move it to the top of the tie-break order; the two can only
    /// differ when points of different members collide.)
    pub fn add<I, S>(&mut self, members: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let first_new = self.members.len();
        for member in members {
            let member: String = member.into();
            if !self.contains(&member) {
                self.members.push(member.into_boxed_str());
            }
        }
        if self.members.len() == first_new {
            return;
        }

        self.points
            .reserve((self.members.len() - first_new) * self.replicas);
        // One scratch buffer for every virtual-node name, instead of a `format!` per point.
        let mut name = Vec::new();
        for (position, member) in self.members.iter().enumerate().skip(first_new) {
            // A ring with 2^32 members cannot be allocated (see `MAX_REPLICAS`).
            let position = position as u32;
            for replica in 0..self.replicas {
                name.clear();
                push_decimal(&mut name, replica);
                name.extend_from_slice(member.as_bytes());
                self.points.push(Point {
                    hash: self.hasher.hash(&name),
                    member: position,
                });
            }
        }
        // The order is `(hash, Reverse(member))`, packed into one `u64` (`!member` reverses a
        // `u32`) so each comparison is a single instruction. Unstable sort is enough: equal keys
        // are the same member at the same hash, and are interchangeable.
        self.points
            .sort_unstable_by_key(|p| (u64::from(p.hash) << 32) | u64::from(!p.member));
        self.rebuild_index();
    }

    /// Removes `member` and its virtual nodes; returns whether it was present.
    ///
    /// Only the keys `member` owned move, each to a neighbouring point of a remaining member (the
    /// next one clockwise under [`Assignment::Successor`]).
    pub fn remove(&mut self, member: &str) -> bool {
        let Some(position) = self.members.iter().position(|m| **m == *member) else {
            return false;
        };
        self.members.remove(position);
        let position = position as u32;
        // Shifting the later members down by one keeps their relative order, so the points
        // stay sorted by `(hash, Reverse(member))` and need no re-sort or re-hash.
        self.points.retain_mut(|p| {
            if p.member == position {
                return false;
            }
            if p.member > position {
                p.member -= 1;
            }
            true
        });
        self.rebuild_index();
        true
    }

    /// Replaces all members with `members`, in that order (like groupcache's `HTTPPool.Set`).
    /// A member listed twice keeps its first place.
    pub fn set<I, S>(&mut self, members: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.members.clear();
        self.points.clear();
        self.index.clear();
        self.add(members);
    }

    /// The member that owns `key`, or `None` if the ring is empty.
    ///
    /// One hash of the key, two adjacent reads of the bucket index, usually one to three point
    /// reads: constant time in the number of points, and no allocation.
    #[inline]
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<&str> {
        let member = self.owner_of_hash(self.hasher.hash(key.as_ref()))?;
        self.members.get(member as usize).map(|m| &**m)
    }

    /// The index in `members` of the owner of the ring position `hash`.
    #[inline]
    fn owner_of_hash(&self, hash: u32) -> Option<u32> {
        self.locate(hash).map(|(owner, _)| owner)
    }

    /// The owner of the ring position `hash`, and the index of the first point at or after it
    /// (wrapping): where a clockwise walk from the position starts.
    #[inline]
    pub(crate) fn locate(&self, hash: u32) -> Option<(u32, usize)> {
        // `get` rather than `[]` where a check can fail: an empty ring has an empty index. Past
        // that, the ring is non-empty and every index below is in bounds by construction.
        let bucket = (hash >> self.shift) as usize;
        let lo = *self.index.get(bucket)? as usize;
        let hi = *self.index.get(bucket + 1)? as usize;
        let last = self.points.len().checked_sub(1)?;
        let candidates = self.points.get(lo..hi)?;
        let first_at_or_after = lo + candidates.partition_point(|p| p.hash < hash);
        // Past the last point: wrap around to the first.
        let next_index = if first_at_or_after > last {
            0
        } else {
            first_at_or_after
        };
        let next = self.points[next_index];
        if self.assignment == Assignment::Successor {
            return Some((next.member, next_index));
        }
        // The predecessor is the point before, wrapping to the last; but the winner of a run of
        // equal hashes is its first point, so step back to the start of that run. Runs need a
        // hash collision, so this loop almost never iterates.
        let mut before = first_at_or_after.checked_sub(1).unwrap_or(last);
        while before > 0 && self.points[before - 1].hash == self.points[before].hash {
            before -= 1;
        }
        let previous = self.points[before];
        // Distances along the circle: wrapping subtraction is exactly modular arithmetic.
        let ahead = next.hash.wrapping_sub(hash);
        let behind = hash.wrapping_sub(previous.hash);
        let owner = if behind < ahead {
            previous.member
        } else {
            next.member
        };
        Some((owner, next_index))
    }

    /// The members `key` falls back to, in order: its owner ([`get`](Ring::get)) first, then
    /// every other member once, in the order of its first point clockwise from the key's
    /// position. See [`Successors`].
    ///
    /// ```
    /// use geecache_consistenthash::Ring;
    ///
    /// let mut ring = Ring::default();
    /// ring.add(["a", "b", "c"]);
    /// let order: Vec<&str> = ring.successors("k1").collect();
    /// assert_eq!(order.len(), 3);
    /// assert_eq!(Some(order[0]), ring.get("k1"));
    /// ```
    pub fn successors(&self, key: impl AsRef<[u8]>) -> Successors<'_, H> {
        Successors::new(self, self.locate(self.hasher.hash(key.as_ref())))
    }

    /// `owner_of_hash` by member name, for tests that probe exact ring positions.
    #[cfg(test)]
    pub(crate) fn owner_of_hash_for_tests(&self, hash: u32) -> Option<&str> {
        let member = self.owner_of_hash(hash)?;
        Some(&*self.members[member as usize])
    }

    /// The members, in insertion order (which is also the tie-break order: later wins).
    pub fn members(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.members.iter().map(|m| &**m)
    }

    /// Every virtual node as `(hash, member)`, in ring order.
    ///
    /// When several points share a hash, the one that wins lookups comes first. There are
    /// `len() * replicas()` points.
    pub fn points(&self) -> impl ExactSizeIterator<Item = (u32, &str)> + '_ {
        self.points
            .iter()
            .map(|p| (p.hash, &*self.members[p.member as usize]))
    }

    /// The number of members.
    #[must_use]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the ring has no members (then [`get`](Ring::get) returns `None`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Virtual nodes per member.
    #[must_use]
    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// Each member's exact share of the hash space, in insertion order; the shares sum to 1.
    ///
    /// This is the fraction of keys a member owns when key hashes are uniform, so it measures the
    /// ring's balance without sampling keys. Allocates; meant for diagnostics, not lookups.
    ///
    /// ```
    /// use geecache_consistenthash::Ring;
    ///
    /// let mut ring = Ring::default();
    /// ring.add(["http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8003"]);
    /// let percent: Vec<u32> =
    ///     ring.shares().iter().map(|(_, s)| (s * 100.0).round() as u32).collect();
    /// assert_eq!(percent, [42, 30, 28]); // 50 CRC-32 replicas are far from a third each
    /// ```
    #[must_use]
    pub fn shares(&self) -> Vec<(&str, f64)> {
        let mut owned = vec![0u64; self.members.len()];
        // The winners: the first point of each run of equal hashes.
        let mut winners = self
            .points
            .iter()
            .enumerate()
            .filter(|&(i, p)| i == 0 || self.points[i - 1].hash != p.hash)
            .map(|(_, p)| *p)
            .peekable();
        if let Some(&first) = winners.peek() {
            let last = winners.clone().last().unwrap_or(first);
            let mut previous = last;
            for point in winners {
                // The gap from the previous position to this one, exclusive..inclusive; a single
                // position is a gap of the whole ring.
                let gap = match point.hash.wrapping_sub(previous.hash) {
                    0 => 1u64 << 32,
                    g => u64::from(g),
                };
                // Under `Nearest`, the earlier position keeps the keys strictly closer to it
                // (those at distance 1 ..= (gap - 1) / 2); the rest go to the later one.
                let to_previous = match self.assignment {
                    Assignment::Successor => 0,
                    Assignment::Nearest => (gap - 1) / 2,
                };
                owned[previous.member as usize] += to_previous;
                owned[point.member as usize] += gap - to_previous;
                previous = point;
            }
        }
        let ring = (1u64 << 32) as f64;
        self.members
            .iter()
            .zip(owned)
            .map(|(m, n)| (&**m, n as f64 / ring))
            .collect()
    }

    /// Which point owns a key under this ring.
    #[must_use]
    pub fn assignment(&self) -> Assignment {
        self.assignment
    }

    /// Whether `member` is on the ring. Linear in the number of members.
    #[must_use]
    pub fn contains(&self, member: &str) -> bool {
        self.members.iter().any(|m| **m == *member)
    }

    /// The hasher placing keys and points.
    pub fn hasher(&self) -> &H {
        &self.hasher
    }

    fn rebuild_index(&mut self) {
        self.index.clear();
        if self.points.is_empty() {
            self.shift = 0;
            return;
        }
        // Between 1/2 and 1 point per bucket: fewer buckets mean a longer search in each, more
        // mean a bigger index for no fewer cache misses. At least 2 buckets keeps the shift
        // below 32.
        let buckets = self
            .points
            .len()
            .next_power_of_two()
            .clamp(2, MAX_INDEX_BUCKETS);
        self.shift = 32 - buckets.trailing_zeros();
        self.index.reserve_exact(buckets + 1);
        let mut next = 0;
        for bucket in 0..buckets as u64 {
            let start = bucket << self.shift;
            while next < self.points.len() && u64::from(self.points[next].hash) < start {
                next += 1;
            }
            self.index.push(next as u32);
        }
        self.index.push(self.points.len() as u32);
    }

    /// Checks every invariant of the representation; panics with a description if one fails.
    #[cfg(test)]
    pub(crate) fn validate(&self) {
        assert!((1..=MAX_REPLICAS).contains(&self.replicas));
        for (i, m) in self.members.iter().enumerate() {
            assert!(!self.members[..i].contains(m), "member {m:?} listed twice");
        }
        assert_eq!(self.points.len(), self.members.len() * self.replicas);
        assert!(
            self.points
                .windows(2)
                .all(|w| (w[0].hash, std::cmp::Reverse(w[0].member))
                    <= (w[1].hash, std::cmp::Reverse(w[1].member))),
            "points out of order"
        );
        let mut name = Vec::new();
        for (position, member) in self.members.iter().enumerate() {
            let mut hashes: Vec<u32> = self
                .points
                .iter()
                .filter(|p| p.member as usize == position)
                .map(|p| p.hash)
                .collect();
            let mut expected: Vec<u32> = (0..self.replicas)
                .map(|replica| {
                    name.clear();
                    push_decimal(&mut name, replica);
                    name.extend_from_slice(member.as_bytes());
                    self.hasher.hash(&name)
                })
                .collect();
            hashes.sort_unstable();
            expected.sort_unstable();
            assert_eq!(hashes, expected, "points of {member:?}");
        }
        if self.points.is_empty() {
            assert!(self.index.is_empty());
            return;
        }
        let buckets = self.index.len() - 1;
        assert!(buckets.is_power_of_two() && buckets >= 2);
        assert!(buckets >= self.points.len().min(MAX_INDEX_BUCKETS));
        assert_eq!(self.shift, 32 - buckets.trailing_zeros());
        for (bucket, &first) in self.index.iter().enumerate() {
            let start = (bucket as u64) << self.shift;
            let expected = self.points.partition_point(|p| u64::from(p.hash) < start);
            assert_eq!(first as usize, expected, "index bucket {bucket}");
        }
    }
}

impl<H> fmt::Debug for Ring<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No `H: Debug` bound: closures used as hashers are not `Debug`.
        f.debug_struct("Ring")
            .field("hasher", &std::any::type_name::<H>())
            .field("replicas", &self.replicas)
            .field("assignment", &self.assignment)
            .field("members", &self.members)
            .field("points", &self.points.len())
            .finish()
    }
}

/// Appends the decimal digits of `n` (Go's `strconv.Itoa`) without allocating a `String`.
pub(crate) fn push_decimal(buf: &mut Vec<u8>, mut n: usize) {
    let start = buf.len();
    loop {
        buf.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf[start..].reverse();
}
