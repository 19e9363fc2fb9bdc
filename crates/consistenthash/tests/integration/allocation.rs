//! `Ring::get` must not allocate: the HTTP transport calls it on every request.
//!
//! Counted with a global allocator that forwards to `System` and counts allocations made by
//! the current thread (so tests running in parallel do not disturb each other).

#![allow(unsafe_code)] // `GlobalAlloc` is an unsafe trait; this impl only forwards to `System`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use geecache_consistenthash::Ring;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: allocations during thread teardown, after the counter is gone, are not counted.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees are ours; the counter is a const-initialised thread-local `Cell` that never
// allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` and `layout` come from this allocator, i.e. from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` and `layout` come from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test below against a counter that never counts.
    let n = allocations_during(|| drop(std::hint::black_box(vec![1u8; 64])));
    assert!(n >= 1);
}

#[test]
fn get_does_not_allocate() {
    let keys: Vec<String> = (0..1_000).map(|i| format!("user:{i}")).collect();
    let mut compatible = Ring::default();
    compatible.add((1..=10).map(|i| format!("http://10.0.0.{i}:8000")));
    let mut balanced = Ring::balanced();
    balanced.add((1..=10).map(|i| format!("http://10.0.0.{i}:8000")));
    let empty = Ring::default();

    let n = allocations_during(|| {
        for key in &keys {
            std::hint::black_box(compatible.get(key));
            std::hint::black_box(balanced.get(key.as_bytes()));
            std::hint::black_box(empty.get(key));
        }
        std::hint::black_box(compatible.members().count());
        std::hint::black_box(compatible.contains("http://10.0.0.3:8000"));
    });
    assert_eq!(n, 0);
}

#[test]
fn walking_successors_does_not_allocate() {
    let keys: Vec<String> = (0..200).map(|i| format!("user:{i}")).collect();
    let mut balanced = Ring::balanced();
    balanced.add((1..=10).map(|i| format!("http://10.0.0.{i}:8000")));
    // Past the inline bitset: members beyond 256 are found by rescanning, still in place.
    let mut large = Ring::new(2);
    large.add((0..300).map(|i| format!("node-{i}")));
    let n = allocations_during(|| {
        for key in &keys {
            std::hint::black_box(balanced.successors(key).nth(2));
            std::hint::black_box(large.successors(key).take(300).count());
        }
    });
    assert_eq!(n, 0);
}
