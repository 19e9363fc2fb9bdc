//! `Key`: a key as the caches store it, with short keys kept inside the cache's own slot.
//!
//! A hit is a chain of dependent memory reads: the table, the slot, then the stored key's bytes
//! to compare them with the asked-for key. With `String` keys those bytes sit in a heap block of
//! their own, one more cache miss on every hit once the cache outgrows the CPU's caches. Most
//! keys are short (`user:00012345`, `player-000123`), so a key of up to [`INLINE`] bytes is
//! stored inline, in the 24 bytes a `String` would take, and its comparison reads memory the
//! slot lookup has just brought in. Longer keys live on the heap as before.
//!
//! The caches look keys up by their bytes (`Borrow<[u8]>`), so a lookup needs no `Key` and no
//! UTF-8 check; hashing and equality are those of the byte slice, as `Borrow` requires.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The longest key stored inline: with the length byte and the enum's tag, 24 bytes.
pub(crate) const INLINE: usize = 22;

/// A cache key: the bytes of a `str`, inline when short.
#[derive(Clone)]
pub(crate) enum Key {
    /// A key of at most [`INLINE`] bytes: the first `len` bytes of `bytes`.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// A longer key.
    Heap(Box<[u8]>),
}

impl Key {
    /// The key's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(bytes) => bytes,
        }
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Key::Inline { len, .. } => usize::from(*len),
            Key::Heap(bytes) => bytes.len(),
        }
    }

    /// Copies a short key into its inline form; `None` if it is too long.
    fn inline(key: &str) -> Option<Key> {
        let len = u8::try_from(key.len())
            .ok()
            .filter(|&n| usize::from(n) <= INLINE)?;
        let mut bytes = [0; INLINE];
        bytes[..key.len()].copy_from_slice(key.as_bytes());
        Some(Key::Inline { len, bytes })
    }
}

impl From<&str> for Key {
    fn from(key: &str) -> Key {
        Key::inline(key).unwrap_or_else(|| Key::Heap(key.as_bytes().into()))
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Exactly as `[u8]` hashes, which `Borrow<[u8]>` requires.
        self.as_bytes().hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(self.as_bytes()), f)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_key_takes_no_more_room_than_a_string() {
        assert_eq!(size_of::<Key>(), size_of::<String>());
    }

    #[test]
    fn short_keys_are_inline_and_long_ones_on_the_heap() {
        let at_limit = "k".repeat(INLINE);
        let over = "k".repeat(INLINE + 1);
        assert!(matches!(Key::from(""), Key::Inline { len: 0, .. }));
        assert!(matches!(Key::from(at_limit.as_str()), Key::Inline { .. }));
        assert!(matches!(Key::from(over.as_str()), Key::Heap(_)));
        assert_eq!(Key::from(over.as_str()).as_bytes(), over.as_bytes());
    }

    proptest! {
        /// Whatever its length or characters, a key gives back its bytes, and hashes and
        /// compares exactly as those bytes do: the contract `Borrow<[u8]>` sets.
        #[test]
        fn a_key_behaves_as_its_bytes(a in "\\PC{0,40}", b in "\\PC{0,40}") {
            let hasher = RandomState::new();
            let key = Key::from(a.as_str());
            prop_assert_eq!(key.as_bytes(), a.as_bytes());
            prop_assert_eq!(key.len(), a.len());
            prop_assert_eq!(hasher.hash_one(&key), hasher.hash_one(a.as_bytes()));
            prop_assert_eq!(format!("{key:?}"), format!("{a:?}"));
            prop_assert_eq!(Key::from(a.as_str()) == Key::from(b.as_str()), a == b);
        }
    }
}
