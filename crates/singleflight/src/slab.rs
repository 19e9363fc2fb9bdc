//! A minimal slab: values in a `Vec`, addressed by stable indices, vacant slots reused.
//!
//! Flights and the waiters of a flight both live in one. An index stays valid for as long as its
//! value is in the slab, which is what lets a caller's future name its flight (and its own slot
//! in the flight) by a plain `usize` instead of holding an `Arc` to shared state: after warm-up,
//! starting and finishing a flight allocates nothing.

/// Values addressed by index; removing one frees its index for the next insert.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    /// Head of the free list threaded through the vacant entries; `entries.len()` when none is.
    next_free: usize,
    len: usize,
}

#[derive(Debug)]
enum Entry<T> {
    Occupied(T),
    Vacant { next_free: usize },
}

impl<T> Slab<T> {
    /// An empty slab; allocates nothing until the first insert.
    pub(crate) const fn new() -> Self {
        Slab {
            entries: Vec::new(),
            next_free: 0,
            len: 0,
        }
    }

    /// Number of occupied slots.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no slot is occupied.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The index the next [`insert`](Self::insert) will return.
    pub(crate) fn next_index(&self) -> usize {
        self.next_free
    }

    /// Stores `value` and returns its index: the most recently freed one, or a new one.
    pub(crate) fn insert(&mut self, value: T) -> usize {
        let index = self.next_free;
        match self.entries.get_mut(index) {
            Some(entry) => {
                let Entry::Vacant { next_free } = *entry else {
                    unreachable!("the free list points at an occupied slot");
                };
                self.next_free = next_free;
                *entry = Entry::Occupied(value);
            }
            None => {
                self.entries.push(Entry::Occupied(value));
                self.next_free = self.entries.len();
            }
        }
        self.len += 1;
        index
    }

    /// Takes the value out of slot `index`, or `None` if the slot is vacant or out of range.
    pub(crate) fn remove(&mut self, index: usize) -> Option<T> {
        let entry = self.entries.get_mut(index)?;
        if matches!(entry, Entry::Vacant { .. }) {
            return None;
        }
        let taken = std::mem::replace(
            entry,
            Entry::Vacant {
                next_free: self.next_free,
            },
        );
        self.next_free = index;
        self.len -= 1;
        match taken {
            Entry::Occupied(value) => Some(value),
            Entry::Vacant { .. } => unreachable!("checked above"),
        }
    }

    /// The value in slot `index`, if occupied.
    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        match self.entries.get(index)? {
            Entry::Occupied(value) => Some(value),
            Entry::Vacant { .. } => None,
        }
    }

    /// The value in slot `index`, mutably, if occupied.
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        match self.entries.get_mut(index)? {
            Entry::Occupied(value) => Some(value),
            Entry::Vacant { .. } => None,
        }
    }

    /// The lowest occupied index.
    pub(crate) fn first(&self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        self.entries
            .iter()
            .position(|entry| matches!(entry, Entry::Occupied(_)))
    }

    /// Every occupied slot with its index, mutably, lowest index first.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        self.entries
            .iter_mut()
            .enumerate()
            .filter_map(|(index, entry)| match entry {
                Entry::Occupied(value) => Some((index, value)),
                Entry::Vacant { .. } => None,
            })
    }

    /// Every occupied slot with its index, lowest index first.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(index, entry)| match entry {
                Entry::Occupied(value) => Some((index, value)),
                Entry::Vacant { .. } => None,
            })
    }

    /// Checks the free list and the count against the entries; panics on the first violation.
    #[cfg(test)]
    pub(crate) fn validate(&self) {
        let occupied = self
            .entries
            .iter()
            .filter(|entry| matches!(entry, Entry::Occupied(_)))
            .count();
        assert_eq!(occupied, self.len, "len disagrees with occupied slots");
        let mut vacant = 0;
        let mut cursor = self.next_free;
        while cursor != self.entries.len() {
            assert!(vacant < self.entries.len(), "free list has a cycle");
            match self.entries.get(cursor) {
                Some(Entry::Vacant { next_free }) => cursor = *next_free,
                other => panic!(
                    "free list reaches {cursor}: {:?}",
                    other.map(|_| "occupied")
                ),
            }
            vacant += 1;
        }
        assert_eq!(
            vacant + self.len,
            self.entries.len(),
            "free list misses vacant slots"
        );
    }
}
