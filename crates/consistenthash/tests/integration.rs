//! Integration tests for geecache-consistenthash: one binary, one module per concern.

mod integration {
    mod allocation;
    mod balance;
    mod groupcache_vectors;
    mod properties;
}
