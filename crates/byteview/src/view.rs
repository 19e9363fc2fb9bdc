use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// An immutable view of bytes; cloning it never copies them.
///
/// `ByteView` derefs to `[u8]` for reading, compares equal to byte slices and strings, and prints
/// as (lossy) UTF-8 with `Display` or as an escaped byte string with `Debug`.
///
/// ```
/// use geecache_byteview::ByteView;
///
/// let v = ByteView::from(vec![0x67, 0x65, 0x65]);
/// assert_eq!(&v[..2], b"ge");
/// assert!(v.starts_with(b"gee"));
/// assert_eq!(format!("{v}"), "gee");
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteView {
    // `Bytes` rather than `Arc<[u8]>`: it is what the HTTP and protobuf crates hand over, so a
    // value made once can be viewed without a copy, and static values need no allocation at all.
    bytes: Bytes,
}

impl ByteView {
    /// An empty view.
    #[must_use]
    pub const fn new() -> Self {
        ByteView {
            bytes: Bytes::new(),
        }
    }

    /// A view of a static slice; no allocation.
    #[must_use]
    pub const fn from_static(bytes: &'static [u8]) -> Self {
        ByteView {
            bytes: Bytes::from_static(bytes),
        }
    }

    /// A view of a copy of `bytes`.
    #[must_use]
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        ByteView {
            bytes: Bytes::copy_from_slice(bytes),
        }
    }

    /// The number of bytes in the view.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the view holds no bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes, borrowed.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// An owned copy of the bytes, which the caller may change freely.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes.to_vec()
    }

    /// The bytes as a [`Bytes`] handle, sharing (not copying) the storage.
    ///
    /// `Bytes` is immutable too, so this keeps the view's promise; it is how the value goes out on
    /// the wire without a copy.
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        self.bytes.clone()
    }

    /// Whether two views share the same storage (the same allocation, offset and length).
    ///
    /// Clones always do; this is how tests prove that cloning copies nothing.
    #[must_use]
    pub fn shares_storage_with(&self, other: &ByteView) -> bool {
        self.bytes.as_ptr() == other.bytes.as_ptr() && self.len() == other.len()
    }
}

impl Deref for ByteView {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsRef<[u8]> for ByteView {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// No copy: the view shares the `Bytes`' storage.
///
/// A `Bytes` cut from a larger buffer (as an HTTP body or a protobuf field usually is) keeps
/// that whole buffer alive for as long as the view lives. For a value that will be cached,
/// [`ByteView::copy_from_slice`] keeps only its own bytes.
impl From<Bytes> for ByteView {
    fn from(bytes: Bytes) -> Self {
        ByteView { bytes }
    }
}

impl From<Vec<u8>> for ByteView {
    fn from(bytes: Vec<u8>) -> Self {
        ByteView {
            bytes: Bytes::from(bytes),
        }
    }
}

impl From<String> for ByteView {
    fn from(text: String) -> Self {
        ByteView {
            bytes: Bytes::from(text),
        }
    }
}

impl From<&'static str> for ByteView {
    fn from(text: &'static str) -> Self {
        ByteView::from_static(text.as_bytes())
    }
}

impl From<&'static [u8]> for ByteView {
    fn from(bytes: &'static [u8]) -> Self {
        ByteView::from_static(bytes)
    }
}

impl From<ByteView> for Bytes {
    fn from(view: ByteView) -> Bytes {
        view.bytes
    }
}

impl PartialEq<[u8]> for ByteView {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<&[u8]> for ByteView {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_slice() == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for ByteView {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for ByteView {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.as_slice() == *other
    }
}

impl PartialEq<str> for ByteView {
    fn eq(&self, other: &str) -> bool {
        self.as_slice() == other.as_bytes()
    }
}

impl PartialEq<&str> for ByteView {
    fn eq(&self, other: &&str) -> bool {
        self.as_slice() == other.as_bytes()
    }
}

impl PartialEq<String> for ByteView {
    fn eq(&self, other: &String) -> bool {
        self.as_slice() == other.as_bytes()
    }
}

impl PartialEq<Vec<u8>> for ByteView {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<ByteView> for String {
    fn eq(&self, other: &ByteView) -> bool {
        self.as_bytes() == other.as_slice()
    }
}

impl PartialEq<ByteView> for Vec<u8> {
    fn eq(&self, other: &ByteView) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<ByteView> for [u8] {
    fn eq(&self, other: &ByteView) -> bool {
        self == other.as_slice()
    }
}

impl PartialEq<ByteView> for &[u8] {
    fn eq(&self, other: &ByteView) -> bool {
        *self == other.as_slice()
    }
}

impl PartialEq<ByteView> for str {
    fn eq(&self, other: &ByteView) -> bool {
        self.as_bytes() == other.as_slice()
    }
}

impl PartialEq<ByteView> for &str {
    fn eq(&self, other: &ByteView) -> bool {
        self.as_bytes() == other.as_slice()
    }
}

/// Lossy UTF-8: invalid sequences print as U+FFFD, as `String::from_utf8_lossy` does.
impl fmt::Display for ByteView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&String::from_utf8_lossy(&self.bytes), f)
    }
}

/// An escaped byte string, e.g. `ByteView(b"ok\xff")`.
impl fmt::Debug for ByteView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ByteView({:?})", self.bytes)
    }
}
