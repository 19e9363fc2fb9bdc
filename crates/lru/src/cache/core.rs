//! The hashed core of `Cache`: lookups, inserts, replacements and evictions on a hash the
//! caller computed, shared with the segmented cache (which hashes once to pick a segment).

use super::*;

impl<K: Hash + Eq, V, W: Weigher<K, V>> Cache<K, V, W> {
    #[inline]
    pub(crate) fn hits(&self) -> u64 {
        self.counters.hits
    }

    #[cfg(test)]
    pub(crate) fn hasher(&self) -> &HashState {
        &self.hasher
    }

    #[inline]
    pub(crate) fn get_hashed<Q>(&mut self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let i = self.access(hash, key)?;
        self.slots.get(i).map(|e| &e.value)
    }

    /// A lookup that counts: the live slot under `key`, used (moved to the front, or its
    /// counter raised), or `None` after counting a miss (and dropping an expired entry).
    #[inline]
    pub(crate) fn access<Q>(&mut self, hash: u64, key: &Q) -> Option<Index>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let Some(i) = self.find(hash, key) else {
            self.counters.misses += 1;
            return None;
        };
        if self.slot_has_expired(i) {
            self.remove_slot(i);
            self.counters.expirations += 1;
            self.counters.misses += 1;
            return None;
        }
        // The one test the LRU hit path pays for the policy choice (see `Policy`). S3-FIFO's
        // side is marked cold so that LRU runs straight through, the way it did before there
        // was a choice, and S3-FIFO takes the jump: its hit reads (and until the counter
        // saturates, writes) the slot it has just read and no links, so it has the cycle to
        // spare (`benches/hit_path.rs` measured a taken branch on the LRU side). At 100,000
        // entries S3-FIFO's hit takes 0.98x LRU's time (`examples/hit_ab.rs`).
        if self.policy == Policy::Lru {
            self.slots.move_to_front(i);
        } else {
            off_the_lru_path();
            self.bump(i);
        }
        self.counters.hits += 1;
        Some(i)
    }

    /// Runs `f` on the live value under `key`, as a use of the entry, and re-weighs it after;
    /// `None` (and a miss) when there is none.
    pub(crate) fn update_hashed<Q, R>(
        &mut self,
        hash: u64,
        key: &Q,
        f: impl FnOnce(&mut V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let index = self.access(hash, key)?;
        let mut guard = ValueMut {
            cache: self,
            index,
            written: false,
        };
        Some(f(&mut *guard))
    }

    /// `get_or_insert_with` on a hash computed by the caller, cloning the value out.
    pub(crate) fn get_or_insert_hashed(
        &mut self,
        hash: u64,
        key: K,
        f: impl FnOnce() -> V,
    ) -> Option<V>
    where
        V: Clone,
    {
        let index = match self.access(hash, &key) {
            Some(i) => i,
            None => {
                let value = f();
                self.insert_slot(hash, key, value, None).1?
            }
        };
        self.slots.get(index).map(|e| e.value.clone())
    }

    /// The value in slot `i` (one `access` has just returned) with its deadline read back.
    ///
    /// The segmented cache calls `access` and then this, rather than one function returning
    /// `Option<(&V, Option<Instant>)>`: that does not fit in two registers, and writing it out,
    /// then testing it again after the caller's closure, made the group's hit 26 instructions
    /// longer than with `get_hashed` (cachegrind); this way it is 7 longer for an entry
    /// without a deadline, whose read costs a compare.
    #[inline]
    pub(crate) fn read_with_expiry(&self, i: Index) -> Option<(&V, Option<Instant>)> {
        let e = self.slots.get(i)?;
        Some((&e.value, self.epoch.instant(e.deadline)))
    }

    #[inline]
    pub(crate) fn peek_hashed<Q>(&self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let i = self.find(hash, key)?;
        if self.slot_has_expired(i) {
            return None;
        }
        self.slots.get(i).map(|e| &e.value)
    }

    /// `peek_hashed` that also reads the entry's deadline back.
    #[inline]
    pub(crate) fn peek_with_expiry_hashed<Q>(
        &self,
        hash: u64,
        key: &Q,
    ) -> Option<(&V, Option<Instant>)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let i = self.find(hash, key)?;
        let entry = self.slots.get(i)?;
        if self.has_expired(entry) {
            return None;
        }
        Some((&entry.value, self.epoch.instant(entry.deadline)))
    }

    pub(crate) fn remove_hashed<Q>(&mut self, hash: u64, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let slots = &self.slots;
        let found = self.table.find_entry(hash, |&i| {
            slots.get(i).is_some_and(|e| e.key.borrow() == key)
        });
        // One probe finds and removes the bucket; the slot is then freed by index.
        let (i, _) = found.ok()?.remove();
        let in_small = self.in_small(i);
        let entry = self.slots.remove(i)?;
        self.bytes = self.bytes.saturating_sub(entry.weight());
        if in_small {
            self.small_bytes = self.small_bytes.saturating_sub(entry.weight());
        }
        if self.has_expired(&entry) {
            self.counters.expirations += 1;
            return None;
        }
        Some(entry.value)
    }

    pub(crate) fn insert_hashed(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        deadline: Option<Instant>,
    ) -> Option<V> {
        self.insert_slot(hash, key, value, deadline).0
    }

    /// `insert_hashed`, also returning the slot of a new entry (`None` when the key was
    /// already stored or the entry was rejected).
    pub(super) fn insert_slot(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        deadline: Option<Instant>,
    ) -> (Option<V>, Option<Index>) {
        // Weigh before touching anything: if a user weigher panics, the cache is still whole.
        let weight = self.weigher.weigh(&key, &value);
        let fits = self.fits(weight);
        if fits && self.slots.is_full() {
            // Every index is taken (four billion entries): make room the way the budget would.
            self.evict_oldest();
        }

        // One probe both finds an existing key and leaves the bucket to fill if there is none.
        let slots = &self.slots;
        let bucket = self.table.entry(
            hash,
            |&i| slots.get(i).is_some_and(|e| e.key == key),
            |&i| slots.get(i).map_or(0, |e| e.hash),
        );
        let vacant = match bucket {
            hash_table::Entry::Occupied(occupied) => {
                let i = *occupied.get();
                return (self.replace(i, key, value, weight, deadline), None);
            }
            hash_table::Entry::Vacant(vacant) => vacant,
        };
        if !fits {
            self.reject(key, value);
            return (None, None);
        }
        let entry = Entry {
            key,
            value,
            hash,
            meta: Meta::new(weight, 0),
            deadline: self.epoch.deadline(deadline),
        };
        if self.policy == Policy::S3Fifo {
            // S3-FIFO makes room before linking the entry, so that the newcomer is never its
            // own victim; the vacant bucket cannot outlive the evictions, so it is found again.
            return (None, self.insert_s3(hash, entry));
        }
        let i = match self.slots.push_front(entry) {
            Ok(i) => {
                vacant.insert(i);
                i
            }
            // Not reached: room was made above.
            Err(entry) => {
                self.reject(entry.key, entry.value);
                return (None, None);
            }
        };
        self.bytes = self.bytes.saturating_add(weight);
        // The new entry is at the front and within budget, so this never evicts it.
        self.evict_to_budget();
        (None, Some(i))
    }

    /// `insert_hashed` for a key already in slot `i`: returns the live value it replaces.
    pub(super) fn replace(
        &mut self,
        i: Index,
        key: K,
        value: V,
        weight: usize,
        deadline: Option<Instant>,
    ) -> Option<V> {
        let expired = self.slot_has_expired(i);
        let old = if self.fits(weight) {
            // Replace in place: the key stays where it is in the table, so nothing is rehashed,
            // and the slot moves to the front like any fresh insert (S3-FIFO: is used).
            let entry = self.slots.get_mut(i)?;
            let old_weight = entry.weight();
            entry.meta.set_weight(weight);
            entry.deadline = self.epoch.deadline(deadline);
            let old = mem::replace(&mut entry.value, value);
            self.reweighed(i, old_weight, weight);
            match self.policy {
                Policy::Lru => self.slots.move_to_front(i),
                Policy::S3Fifo => self.bump(i),
            }
            self.evict_to_budget();
            old
        } else {
            let old = self.remove_slot(i)?.value;
            self.reject(key, value);
            old
        };
        if expired {
            self.counters.expirations += 1;
            return None;
        }
        Some(old)
    }

    /// Removes the entry the policy evicts next, expired or not, counting an eviction; no
    /// callback.
    pub(crate) fn evict_next(&mut self) -> Option<(K, V)> {
        let victim = self.victim()?;
        let entry = self.remove_slot(victim)?;
        self.counters.evictions += 1;
        Some((entry.key, entry.value))
    }

    // ----- the policies -----

    /// The slot the policy evicts next. For S3-FIFO, finding it is part of evicting: tails
    /// that were used move on (to the main queue, or back to its head), and a victim from the
    /// small queue becomes a ghost.
    pub(super) fn victim(&mut self) -> Option<Index> {
        match self.policy {
            Policy::Lru => self.slots.back(),
            Policy::S3Fifo => self.s3_victim(),
        }
    }

    /// Books slot `i`'s change of weight from `old` to `new` (the entry already says `new`).
    pub(super) fn reweighed(&mut self, i: Index, old: usize, new: usize) {
        self.bytes = self.bytes.saturating_sub(old).saturating_add(new);
        if self.in_small(i) {
            self.small_bytes = self.small_bytes.saturating_sub(old).saturating_add(new);
        }
    }

    /// Called when a written `ValueMut` is dropped: weighs slot `i` again and restores the
    /// budget.
    pub(super) fn reweigh(&mut self, i: Index) {
        if std::thread::panicking() {
            // The value may be half-updated and the weigher may panic on it: drop the entry
            // instead, which keeps the books right without calling user code.
            self.remove_slot(i);
            return;
        }
        let Some(entry) = self.slots.get(i) else {
            return;
        };
        let weight = self.weigher.weigh(&entry.key, &entry.value);
        if !self.fits(weight) {
            // Checked before the weight is stored: one over `MAX_WEIGHT` has no room in `Meta`.
            if let Some(entry) = self.remove_slot(i) {
                self.reject(entry.key, entry.value);
            }
            return;
        }
        let Some(entry) = self.slots.get_mut(i) else {
            return;
        };
        let old = entry.weight();
        entry.meta.set_weight(weight);
        self.reweighed(i, old, weight);
        self.evict_to_budget();
    }

    // ----- internals -----

    #[inline]
    pub(super) fn find<Q>(&self, hash: u64, key: &Q) -> Option<Index>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let slots = &self.slots;
        self.table
            .find(hash, |&i| {
                slots.get(i).is_some_and(|e| e.key.borrow() == key)
            })
            .copied()
    }

    pub(super) fn now(&self) -> Instant {
        match &self.clock {
            Some(clock) => clock.now(),
            None => Instant::now(),
        }
    }

    #[inline]
    pub(super) fn has_expired(&self, entry: &Entry<K, V>) -> bool {
        // The clock is read only when there is a deadline to compare with.
        entry.deadline.is_some() && entry.deadline.passed_at(self.epoch.offset(self.now()))
    }

    #[inline]
    pub(super) fn slot_has_expired(&self, i: Index) -> bool {
        self.slots.get(i).is_some_and(|e| self.has_expired(e))
    }

    /// Frees slot `i` and its table bucket and takes its bytes off the total.
    pub(super) fn remove_slot(&mut self, i: Index) -> Option<Entry<K, V>> {
        let in_small = self.in_small(i);
        let entry = self.slots.remove(i)?;
        if let Ok(bucket) = self.table.find_entry(entry.hash, |&j| j == i) {
            bucket.remove();
        }
        self.bytes = self.bytes.saturating_sub(entry.weight());
        if in_small {
            self.small_bytes = self.small_bytes.saturating_sub(entry.weight());
        }
        Some(entry)
    }

    pub(super) fn evict_to_budget(&mut self) {
        while self.max_bytes != 0 && self.bytes > self.max_bytes {
            if !self.evict_oldest() {
                break;
            }
        }
    }

    pub(super) fn evict_oldest(&mut self) -> bool {
        match self.evict_next() {
            Some((key, value)) => {
                if let Some(on_evicted) = &mut self.on_evicted {
                    on_evicted(key, value);
                }
                true
            }
            None => false,
        }
    }

    /// Whether an entry of `weight` may be stored at all: within the budget (when there is
    /// one) and `MAX_WEIGHT`.
    #[inline]
    pub(super) fn fits(&self, weight: usize) -> bool {
        weight <= MAX_WEIGHT && (self.max_bytes == 0 || weight <= self.max_bytes)
    }

    /// S3-FIFO's tag for slot `i` (0 for an empty slot, and always 0 under LRU).
    #[inline]
    pub(super) fn tag(&self, i: Index) -> u8 {
        self.slots.get(i).map_or(0, |e| e.meta.tag())
    }

    /// Sets S3-FIFO's tag for slot `i`, if it is occupied.
    #[inline]
    pub(super) fn set_tag(&mut self, i: Index, tag: u8) {
        if let Some(e) = self.slots.get_mut(i) {
            e.meta.set_tag(tag);
        }
    }

    /// An entry that cannot be stored at all is evicted on arrival.
    pub(super) fn reject(&mut self, key: K, value: V) {
        self.counters.evictions += 1;
        if let Some(on_evicted) = &mut self.on_evicted {
            on_evicted(key, value);
        }
    }

    /// Slots allocated so far, occupied or free; lets tests see whether the arena grows.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn slots_allocated(&self) -> u32 {
        self.slots.end() - slots::FIRST
    }

    /// Per entry in `iter` order: its deadline, S3-FIFO counter, and whether it is in the
    /// small queue; lets tests compare with a model.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn entry_meta(&self) -> Vec<(Option<Instant>, u8, bool)> {
        self.slots
            .iter()
            .map(|(_, e)| {
                let tag = e.meta.tag();
                (
                    self.epoch.instant(e.deadline),
                    tag & FREQ,
                    tag & IN_SMALL != 0,
                )
            })
            .collect()
    }

    /// The S3-FIFO ghosts, oldest first; lets tests compare with a model.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn ghost_hashes(&self) -> Vec<u64> {
        self.ghost.hashes()
    }
}
