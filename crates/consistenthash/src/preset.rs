//! The two rings a cluster picks between at run time, e.g. from a command-line flag.

use std::fmt;
use std::str::FromStr;

use crate::builder::Assignment;
use crate::hash::{Crc32, Murmur3, RingHash};
use crate::ring::{BALANCED_REPLICAS, DEFAULT_REPLICAS, Ring};

/// A ring hash chosen at run time. A plain function pointer rather than a boxed trait object:
/// it is `Copy`, needs no allocation, and costs one indirect call per lookup either way.
pub type HashFn = fn(&[u8]) -> u32;

/// Which ring a cluster uses, when the choice is made at run time.
///
/// Every node of a cluster must use the same preset and replica count, or two nodes would pick
/// different owners for a key and both load it.
///
/// ```
/// use geecache_consistenthash::Preset;
///
/// let mut ring = "balanced".parse::<Preset>()?.ring(0); // 0: the preset's default replicas
/// ring.add(["a", "b", "c"]);
/// let shares = ring.shares();
/// assert!(shares.iter().all(|(_, s)| (s - 1.0 / 3.0).abs() < 0.05));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Preset {
    /// Go groupcache's ring ([`Ring::default`]): CRC-32, 50 replicas, the successor rule. The
    /// one to use beside Go groupcache nodes; unevenly balanced (see the crate docs).
    #[default]
    Groupcache,
    /// [`Ring::balanced`]: Murmur3, [`BALANCED_REPLICAS`] replicas, the nearest-point rule.
    /// Not groupcache-compatible.
    Balanced,
}

impl Preset {
    /// An empty ring of this preset with `replicas` virtual nodes per member (`0`: the preset's
    /// default, [`Preset::default_replicas`]).
    #[must_use]
    pub fn ring(self, replicas: usize) -> Ring<HashFn> {
        let replicas = match replicas {
            0 => self.default_replicas(),
            n => n,
        };
        let (hash, assignment): (HashFn, Assignment) = match self {
            Preset::Groupcache => (|bytes| Crc32.hash(bytes), Assignment::Successor),
            Preset::Balanced => (|bytes| Murmur3.hash(bytes), Assignment::Nearest),
        };
        Ring::builder()
            .replicas(replicas)
            .hasher(hash)
            .assignment(assignment)
            .build()
    }

    /// The replica count the preset uses unless told otherwise.
    #[must_use]
    pub fn default_replicas(self) -> usize {
        match self {
            Preset::Groupcache => DEFAULT_REPLICAS,
            Preset::Balanced => BALANCED_REPLICAS,
        }
    }

    /// The preset's name, as [`FromStr`] reads it: `groupcache` or `balanced`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Groupcache => "groupcache",
            Preset::Balanced => "balanced",
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`Preset`]'s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownPreset(pub String);

impl fmt::Display for UnknownPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown ring {:?}: expected groupcache or balanced",
            self.0
        )
    }
}

impl std::error::Error for UnknownPreset {}

impl FromStr for Preset {
    type Err = UnknownPreset;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "groupcache" => Ok(Preset::Groupcache),
            "balanced" => Ok(Preset::Balanced),
            other => Err(UnknownPreset(other.to_owned())),
        }
    }
}
