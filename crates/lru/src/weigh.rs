//! What an entry costs against the byte budget.

use std::rc::Rc;
use std::sync::Arc;

/// The number of bytes a key or a value counts for in a [`Cache`](crate::Cache).
///
/// The weight is what the budget is about, not what the allocator sees: for a `String` it is the
/// length of the text, not the capacity of the buffer nor the 24 bytes of the `String` itself.
/// This matches groupcache, where an entry costs `len(key) + len(value)`, and keeps the number
/// a caller configures (`64 MiB of values`) close to the number it reasons about.
///
/// Integers weigh their in-memory size, so a `Cache<u64, u64>` with a 16 KiB budget holds 1024
/// entries.
///
/// ```
/// use geecache_lru::Weigh;
///
/// assert_eq!("gee".weight(), 3);
/// assert_eq!(String::from("cache").weight(), 5);
/// assert_eq!(vec![0u8; 64].weight(), 64);
/// assert_eq!(7u32.weight(), 4);
/// ```
pub trait Weigh {
    /// The weight in bytes.
    fn weight(&self) -> usize;
}

impl Weigh for str {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weigh for [u8] {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weigh for String {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weigh for Vec<u8> {
    fn weight(&self) -> usize {
        self.len()
    }
}

// Smart pointers weigh what they point at: a shared `Arc<str>` still costs its text once per
// entry that holds it, which is the conservative answer for a budget.
impl<T: Weigh + ?Sized> Weigh for Box<T> {
    fn weight(&self) -> usize {
        (**self).weight()
    }
}

impl<T: Weigh + ?Sized> Weigh for Arc<T> {
    fn weight(&self) -> usize {
        (**self).weight()
    }
}

impl<T: Weigh + ?Sized> Weigh for Rc<T> {
    fn weight(&self) -> usize {
        (**self).weight()
    }
}

impl<T: Weigh + ?Sized> Weigh for &T {
    fn weight(&self) -> usize {
        (**self).weight()
    }
}

#[cfg(feature = "bytes")]
impl Weigh for bytes::Bytes {
    fn weight(&self) -> usize {
        self.len()
    }
}

macro_rules! weigh_by_size {
    ($($t:ty)*) => {$(
        impl Weigh for $t {
            fn weight(&self) -> usize {
                std::mem::size_of::<$t>()
            }
        }
    )*};
}

weigh_by_size!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize);

/// Weighs a whole entry: what [`Cache`](crate::Cache) charges for `key` and `value` together.
///
/// Two kinds of weigher exist:
/// - [`ByWeight`], the default, adds the [`Weigh`] weights of key and value;
/// - any `Fn(&K, &V) -> usize`, for types that cannot implement [`Weigh`] here (a type from a
///   crate this one does not know) or for a different cost model (e.g. one unit per entry).
///
/// ```
/// use geecache_lru::Cache;
///
/// // One unit per entry turns the byte budget into an entry count.
/// let mut cache = Cache::with_weigher(2, |_: &u32, _: &&str| 1);
/// cache.add(1, "one");
/// cache.add(2, "two");
/// cache.add(3, "three");
/// assert_eq!(cache.len(), 2);
/// assert!(cache.peek(&1).is_none());
/// ```
pub trait Weigher<K, V> {
    /// The weight of the entry `key → value`, in bytes.
    fn weigh(&self, key: &K, value: &V) -> usize;
}

/// The default [`Weigher`]: `key.weight() + value.weight()`, through [`Weigh`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ByWeight;

impl<K: Weigh, V: Weigh> Weigher<K, V> for ByWeight {
    fn weigh(&self, key: &K, value: &V) -> usize {
        key.weight().saturating_add(value.weight())
    }
}

// `Fn` is a fundamental trait, so this blanket impl and the one for `ByWeight` cannot overlap:
// `ByWeight` is ours and does not implement `Fn`.
impl<K, V, F: Fn(&K, &V) -> usize> Weigher<K, V> for F {
    fn weigh(&self, key: &K, value: &V) -> usize {
        self(key, value)
    }
}
