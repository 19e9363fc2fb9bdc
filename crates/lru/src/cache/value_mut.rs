//! `ValueMut`: a value borrowed mutably from a `Cache`, weighed again when it is dropped.

use super::*;

/// A value in a [`Cache`], borrowed mutably; made by [`Cache::get_mut`]. If it was written
/// through, dropping it weighs the entry again and evicts down to the budget.
pub struct ValueMut<'a, K: Hash + Eq, V, W: Weigher<K, V>> {
    pub(super) cache: &'a mut Cache<K, V, W>,
    pub(super) index: Index,
    /// Set by `deref_mut`: a guard only read needs no re-weighing.
    pub(super) written: bool,
}

impl<K: Hash + Eq, V, W: Weigher<K, V>> Deref for ValueMut<'_, K, V, W> {
    type Target = V;

    fn deref(&self) -> &V {
        // The guard borrows the cache mutably, so its slot cannot be emptied while it lives.
        &self
            .cache
            .slots
            .get(self.index)
            .expect("a ValueMut's slot stays occupied while the guard lives")
            .value
    }
}

impl<K: Hash + Eq, V, W: Weigher<K, V>> DerefMut for ValueMut<'_, K, V, W> {
    fn deref_mut(&mut self) -> &mut V {
        self.written = true;
        &mut self
            .cache
            .slots
            .get_mut(self.index)
            .expect("a ValueMut's slot stays occupied while the guard lives")
            .value
    }
}

impl<K: Hash + Eq, V, W: Weigher<K, V>> Drop for ValueMut<'_, K, V, W> {
    fn drop(&mut self) {
        if self.written {
            self.cache.reweigh(self.index);
        }
    }
}

impl<K: Hash + Eq, V: fmt::Debug, W: Weigher<K, V>> fmt::Debug for ValueMut<'_, K, V, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ValueMut").field(&**self).finish()
    }
}
