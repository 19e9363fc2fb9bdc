//! The recency list: a doubly linked list threaded through a `Vec` by index.
//!
//! A pointer-based list (`Box` per node, as the `lru` crate does) pays an allocation per insert
//! and a free per eviction, needs `unsafe` for its raw links, and scatters nodes over the heap.
//! Here a node is a position in two parallel vectors:
//!
//! - `links[i]` holds the `prev`/`next` indices (8 bytes per entry). Moving an entry to the front
//!   rewrites the links of the entry, its two neighbours and the head, and because links are kept
//!   apart from the (much larger) entries, those four writes land in a dense array that stays in
//!   cache far longer than the entries themselves.
//! - `items[i]` holds the entry, or `None` while the slot is free.
//!
//! Index 0 is a sentinel: `links[0].next` is the most recently used slot and `links[0].prev` the
//! least recently used one, so linking and unlinking never branch on "is this the head?".
//!
//! S3-FIFO needs two queues. Rather than a second arena, index 1 is a second sentinel, linked
//! into the same ring only when two queues are asked for: the ring then runs
//! `0 → main queue (head to tail) → 1 → small queue (head to tail) → 0`, so each queue is the
//! stretch after its sentinel, and linking after a sentinel or unlinking works as before. An LRU
//! cache leaves index 1 out of the ring and never sees it. The list keeps no per-slot state for
//! the policy: S3-FIFO's counter and queue bits live in the item (see `cache::Meta`), in the
//! slot a hit has just read, rather than in an array of their own that a hit would also touch.
//!
//! Freed slots form a free list threaded through `links[i].next` (their `prev` is unused), so a
//! cache in steady state (insert one, evict one) reuses the slot it just freed: no allocation, no
//! growth, and the `Vec` never has to shift anything. Indices are `u32`, which halves the links
//! and the hash table's buckets against `usize` and still allows four billion entries.

/// A slot index. 0 and 1 are sentinels and never hold an item.
pub(crate) type Index = u32;

const SENTINEL: Index = 0;
/// The head of the main queue (and of the only list, for LRU).
pub(crate) const MAIN: Index = SENTINEL;
/// The head of the small queue, when there are two.
pub(crate) const SMALL: Index = 1;
/// The first index that can hold an item.
pub(crate) const FIRST: Index = 2;

/// What one slot's links take, beside its item.
pub(crate) const LINK_BYTES: usize = std::mem::size_of::<Link>();

#[derive(Clone, Copy, Debug)]
struct Link {
    prev: Index,
    next: Index,
}

/// The arena of slots and the recency order over the occupied ones.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    links: Vec<Link>,
    items: Vec<Option<T>>,
    /// Whether the `SMALL` sentinel is in the ring (two queues) or not (one list).
    two_queues: bool,
    /// Head of the free list, or `SENTINEL` when no slot is free.
    free: Index,
    len: usize,
}

impl<T> Slots<T> {
    /// An empty arena with one list, or with two queues (`main` after `MAIN`, `small` after
    /// `SMALL`).
    pub(crate) fn new(two_queues: bool) -> Self {
        let (main, small) = if two_queues {
            (
                Link {
                    prev: SMALL,
                    next: SMALL,
                },
                Link {
                    prev: MAIN,
                    next: MAIN,
                },
            )
        } else {
            (
                Link {
                    prev: MAIN,
                    next: MAIN,
                },
                Link {
                    prev: SMALL,
                    next: SMALL,
                },
            )
        };
        Slots {
            links: vec![main, small],
            items: vec![None, None],
            two_queues,
            free: SENTINEL,
            len: 0,
        }
    }

    /// Occupied slots.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// One past the highest slot index in use; `FIRST..end()` covers every slot that can be
    /// occupied.
    pub(crate) fn end(&self) -> Index {
        // `push_front` never grows `items` past `Index::MAX` entries.
        Index::try_from(self.items.len()).unwrap_or(Index::MAX)
    }

    /// The item in slot `i`, if it is occupied.
    #[inline]
    pub(crate) fn get(&self, i: Index) -> Option<&T> {
        self.items.get(i as usize)?.as_ref()
    }

    /// The item in slot `i`, mutably, if it is occupied.
    #[inline]
    pub(crate) fn get_mut(&mut self, i: Index) -> Option<&mut T> {
        self.items.get_mut(i as usize)?.as_mut()
    }

    /// The least recently used slot (one list); the small queue's tail (two queues).
    pub(crate) fn back(&self) -> Option<Index> {
        let back = self.links[SENTINEL as usize].prev;
        (back != SENTINEL && back != SMALL).then_some(back)
    }

    /// The main queue's tail (two queues only).
    pub(crate) fn main_tail(&self) -> Option<Index> {
        let tail = self.links[SMALL as usize].prev;
        (self.two_queues && tail != MAIN).then_some(tail)
    }

    /// Moves slot `i` to the head of the queue that starts after `anchor` (`MAIN` or `SMALL`).
    pub(crate) fn move_after(&mut self, anchor: Index, i: Index) {
        self.unlink(i);
        self.link_after(anchor, i);
    }

    /// Whether every index is taken, so that `push_front` would fail.
    pub(crate) fn is_full(&self) -> bool {
        self.free == SENTINEL && self.items.len() >= Index::MAX as usize
    }

    /// Stores `item` in a free slot at the front of the recency order and returns the slot.
    ///
    /// Gives the item back when every index is taken (four billion entries; the caller evicts
    /// and retries) rather than panicking.
    #[inline]
    pub(crate) fn push_front(&mut self, item: T) -> Result<Index, T> {
        let i = self.alloc(item)?;
        self.link_front(i);
        Ok(i)
    }

    /// Stores `item` at the head of the queue after `anchor` (`MAIN` or `SMALL`); see
    /// [`push_front`](Slots::push_front).
    pub(crate) fn push_after(&mut self, anchor: Index, item: T) -> Result<Index, T> {
        let i = self.alloc(item)?;
        self.link_after(anchor, i);
        Ok(i)
    }

    /// Puts `item` in a free slot, or a new one, not yet linked.
    #[inline]
    fn alloc(&mut self, item: T) -> Result<Index, T> {
        let i = if self.free != SENTINEL {
            let i = self.free;
            self.free = self.links[i as usize].next;
            self.items[i as usize] = Some(item);
            i
        } else {
            let Ok(i) = Index::try_from(self.items.len()) else {
                return Err(item);
            };
            if i == Index::MAX {
                return Err(item);
            }
            self.items.push(Some(item));
            self.links.push(Link {
                prev: SENTINEL,
                next: SENTINEL,
            });
            i
        };
        self.len += 1;
        Ok(i)
    }

    /// Makes slot `i` the most recently used.
    #[inline]
    pub(crate) fn move_to_front(&mut self, i: Index) {
        // A hit on the entry that is already first (common under skewed load) writes nothing.
        if self.links[SENTINEL as usize].next != i {
            self.unlink(i);
            self.link_front(i);
        }
    }

    /// Empties slot `i`, returning its item, and puts the slot on the free list.
    pub(crate) fn remove(&mut self, i: Index) -> Option<T> {
        let item = self.items.get_mut(i as usize)?.take()?;
        self.unlink(i);
        self.links[i as usize].next = self.free;
        self.free = i;
        self.len -= 1;
        Some(item)
    }

    /// Drops every item and gives the memory back.
    pub(crate) fn clear(&mut self) {
        *self = Slots::new(self.two_queues);
    }

    /// Slot indices and items from the most to the least recently used (one list), or the main
    /// queue then the small queue, each from head to tail (two queues).
    pub(crate) fn iter(&self) -> Iter<'_, T> {
        Iter {
            slots: self,
            front: self.links[SENTINEL as usize].next,
            back: self.links[SENTINEL as usize].prev,
            remaining: self.len,
        }
    }

    /// The small queue's slots from head to tail (empty with one list).
    #[cfg(test)]
    pub(crate) fn small_queue(&self) -> Vec<Index> {
        let mut queue = Vec::new();
        if self.two_queues {
            let mut i = self.links[SMALL as usize].next;
            while i != SENTINEL && queue.len() <= self.len {
                queue.push(i);
                i = self.links[i as usize].next;
            }
        }
        queue
    }

    /// Every occupied slot, in storage order (not recency order).
    #[cfg(test)]
    pub(crate) fn occupied(&self) -> impl Iterator<Item = (Index, &T)> + '_ {
        (FIRST..self.end()).filter_map(|i| self.get(i).map(|item| (i, item)))
    }

    #[inline]
    fn unlink(&mut self, i: Index) {
        let Link { prev, next } = self.links[i as usize];
        self.links[prev as usize].next = next;
        self.links[next as usize].prev = prev;
    }

    #[inline]
    fn link_front(&mut self, i: Index) {
        let first = self.links[SENTINEL as usize].next;
        self.links[i as usize] = Link {
            prev: SENTINEL,
            next: first,
        };
        self.links[first as usize].prev = i;
        self.links[SENTINEL as usize].next = i;
    }

    /// `link_front` after any sentinel; kept apart so the LRU hit path stays as it was.
    #[inline]
    fn link_after(&mut self, anchor: Index, i: Index) {
        let first = self.links[anchor as usize].next;
        self.links[i as usize] = Link {
            prev: anchor,
            next: first,
        };
        self.links[first as usize].prev = i;
        self.links[anchor as usize].next = i;
    }

    /// Checks the list's invariants; the first broken one is the error.
    #[cfg(test)]
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.links.len() != self.items.len() {
            return Err("links and items differ in length".into());
        }
        if self.items[SENTINEL as usize].is_some() || self.items[SMALL as usize].is_some() {
            return Err("a sentinel holds an item".into());
        }
        // Walk forwards, checking that each step's back link points where we came from.
        let mut seen = vec![false; self.items.len()];
        seen[SMALL as usize] = true;
        let mut met_small = false;
        let (mut prev, mut i, mut count) = (SENTINEL, self.links[SENTINEL as usize].next, 0);
        while i != SENTINEL {
            if i == SMALL {
                if met_small || !self.two_queues {
                    return Err("the small sentinel is linked where it should not be".into());
                }
                met_small = true;
                if self.links[i as usize].prev != prev {
                    return Err("the small sentinel has a wrong prev link".into());
                }
                (prev, i) = (i, self.links[i as usize].next);
                continue;
            }
            if seen[i as usize] {
                return Err(format!("slot {i} is linked twice"));
            }
            seen[i as usize] = true;
            if self.items[i as usize].is_none() {
                return Err(format!("slot {i} is linked but empty"));
            }
            if self.links[i as usize].prev != prev {
                return Err(format!("slot {i} has a wrong prev link"));
            }
            count += 1;
            (prev, i) = (i, self.links[i as usize].next);
        }
        if self.links[SENTINEL as usize].prev != prev {
            return Err("the sentinel's prev is not the last slot".into());
        }
        if self.two_queues != met_small {
            return Err("the small sentinel is missing from the ring".into());
        }
        if count != self.len {
            return Err(format!("{count} slots linked, len says {}", self.len));
        }
        // Every other slot is on the free list exactly once.
        let mut free = self.free;
        while free != SENTINEL {
            if seen[free as usize] {
                return Err(format!("slot {free} is free and linked, or free twice"));
            }
            seen[free as usize] = true;
            if self.items[free as usize].is_some() {
                return Err(format!("free slot {free} holds an item"));
            }
            free = self.links[free as usize].next;
        }
        match seen.iter().skip(1).position(|s| !s) {
            Some(lost) => Err(format!("slot {} is neither linked nor free", lost + 1)),
            None => Ok(()),
        }
    }
}

/// Iterates slots from most to least recently used.
pub(crate) struct Iter<'a, T> {
    slots: &'a Slots<T>,
    front: Index,
    back: Index,
    remaining: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = (Index, &'a T);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let mut i = self.front;
        if i == SMALL {
            i = self.slots.links[i as usize].next;
        }
        self.front = self.slots.links[i as usize].next;
        self.remaining -= 1;
        Some((i, self.slots.get(i)?))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> DoubleEndedIterator for Iter<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let mut i = self.back;
        if i == SMALL {
            i = self.slots.links[i as usize].prev;
        }
        self.back = self.slots.links[i as usize].prev;
        self.remaining -= 1;
        Some((i, self.slots.get(i)?))
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}
