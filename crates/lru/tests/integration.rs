//! Integration tests: the public API as another crate sees it, and a multi-threaded stress test.

mod integration {
    mod api;
    mod stress;
}
