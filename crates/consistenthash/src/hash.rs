//! The hash functions that place keys and virtual nodes on the ring.

/// A 32-bit hash that places both keys and virtual nodes on the ring.
///
/// The ring is a circle of `u32` values. 32 bits rather than 64 because the Go groupcache ring
/// is built from CRC-32, and compatibility with it is the default; a `u32` point also keeps the
/// sorted point array dense, so a lookup touches fewer cache lines.
///
/// Every node of a cluster must use the same hash (and the same replica count), or nodes disagree
/// on who owns a key. A `RingHash` must therefore be a pure function of its input: no per-process
/// random seed, nothing that changes between versions or platforms.
///
/// Implemented by [`Crc32`] (the default, groupcache-compatible), [`Murmur3`] (better mixing,
/// for [`Ring::balanced`](crate::Ring::balanced)), and any `Fn(&[u8]) -> u32 + Send + Sync`,
/// including plain `fn` pointers:
///
/// ```
/// use geecache_consistenthash::Ring;
///
/// fn fnv1a(bytes: &[u8]) -> u32 {
///     bytes.iter().fold(0x811c_9dc5, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
/// }
/// let mut ring = Ring::with_hasher(50, fnv1a as fn(&[u8]) -> u32);
/// ring.add(["a", "b"]);
/// assert!(ring.get("key").is_some());
/// ```
pub trait RingHash: Send + Sync {
    /// The position of `bytes` on the ring.
    fn hash(&self, bytes: &[u8]) -> u32;
}

impl<F> RingHash for F
where
    F: Fn(&[u8]) -> u32 + Send + Sync,
{
    fn hash(&self, bytes: &[u8]) -> u32 {
        self(bytes)
    }
}

/// CRC-32 (IEEE 802.3, the polynomial of zlib and Go's `crc32.ChecksumIEEE`): groupcache's hash.
///
/// This is what makes the default ring agree with Go groupcache. CRC-32 is a checksum, not a
/// mixing hash: it is linear, so the points of `"0http://a"`, `"1http://a"`, ... and of
/// `"0http://b"`, ... are correlated, and balance stops improving with more replicas (see the
/// crate docs). Use [`Murmur3`] when compatibility does not matter.
// No `std::hash::Hash` derive: with both traits in scope, `Crc32.hash(..)` would be ambiguous.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Crc32;

impl RingHash for Crc32 {
    #[inline]
    fn hash(&self, bytes: &[u8]) -> u32 {
        crc32fast::hash(bytes)
    }
}

/// MurmurHash3, x86 32-bit variant, seed 0: a well-mixing hash with a public specification.
///
/// Chosen over a faster in-house mix because other languages ship it (Go
/// `github.com/spaolacci/murmur3.Sum32`, Guava `murmur3_32_fixed`, Python `mmh3.hash` read as
/// unsigned), so a non-Rust node can still join a ring built with it. It is written out here
/// (about twenty lines) rather than taken from a crate, keeping this crate's only dependency
/// `crc32fast`.
///
/// ```
/// use geecache_consistenthash::{Murmur3, RingHash};
///
/// assert_eq!(Murmur3.hash(b"hello"), 0x248b_fa47);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Murmur3;

impl RingHash for Murmur3 {
    #[inline]
    fn hash(&self, bytes: &[u8]) -> u32 {
        murmur3_32(bytes, 0)
    }
}

/// MurmurHash3_x86_32 as specified by its author (smhasher `MurmurHash3.cpp`).
#[inline]
pub(crate) fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;

    #[inline]
    fn scramble(k: u32) -> u32 {
        k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
    }

    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        h ^= scramble(k);
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let k = tail
            .iter()
            .rev()
            .fold(0u32, |k, &byte| (k << 8) | u32::from(byte));
        h ^= scramble(k);
    }
    // The specification mixes in the length modulo 2^32; the truncation is part of it.
    h ^= data.len() as u32;
    fmix32(h)
}

/// Murmur3's finaliser: every input bit affects every output bit.
#[inline]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}
