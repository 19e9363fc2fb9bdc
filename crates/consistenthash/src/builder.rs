//! Ring options: replica count, hash, and how a key picks among nearby points.

use crate::hash::{Crc32, RingHash};
use crate::ring::{DEFAULT_REPLICAS, Ring};

/// Which point owns a key: the rule that turns positions on the ring into owners.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Assignment {
    /// The first point at or after the key, going clockwise and wrapping: the classic ring, and
    /// Go groupcache's rule. A point owns the arc that ends at it.
    #[default]
    Successor,
    /// The nearest point in either direction (on an exact tie, the successor). A point owns half
    /// of the gap before it and half of the gap after it, so a member's share is an average over
    /// twice as many random gaps: at equal replicas the spread of shares shrinks by about
    /// `sqrt(2)`, as if the ring had twice the points, for the cost of reading one more point
    /// (usually on the same cache line). Adding a member still moves keys only to it, and
    /// removing one moves only its keys. **Not** groupcache-compatible.
    Nearest,
}

/// Builds a [`Ring`] with non-default options.
///
/// ```
/// use geecache_consistenthash::{Assignment, Murmur3, Ring};
///
/// let mut ring = Ring::builder()
///     .replicas(1024)
///     .hasher(Murmur3)
///     .assignment(Assignment::Nearest)
///     .build();
/// ring.add(["a", "b", "c"]);
/// assert_eq!(ring.replicas(), 1024);
/// assert!(ring.get("key").is_some());
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct RingBuilder<H = Crc32> {
    replicas: usize,
    hasher: H,
    assignment: Assignment,
}

impl Default for RingBuilder {
    /// The groupcache-compatible options: 50 replicas, [`Crc32`], [`Assignment::Successor`].
    fn default() -> Self {
        RingBuilder {
            replicas: DEFAULT_REPLICAS,
            hasher: Crc32,
            assignment: Assignment::Successor,
        }
    }
}

impl<H> RingBuilder<H> {
    /// Virtual nodes per member. `0` means [`DEFAULT_REPLICAS`]; values above
    /// [`MAX_REPLICAS`](crate::MAX_REPLICAS) are clamped to it.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// The hash placing keys and virtual nodes.
    pub fn hasher<H2: RingHash>(self, hasher: H2) -> RingBuilder<H2> {
        RingBuilder {
            replicas: self.replicas,
            hasher,
            assignment: self.assignment,
        }
    }

    /// Which point owns a key; see [`Assignment`].
    pub fn assignment(mut self, assignment: Assignment) -> Self {
        self.assignment = assignment;
        self
    }

    /// An empty ring with these options.
    pub fn build(self) -> Ring<H>
    where
        H: RingHash,
    {
        Ring::from_parts(self.replicas, self.hasher, self.assignment)
    }
}
