//! Integration tests for `geecache-group`: one binary, one module per concern.

mod support;

mod cluster;
mod expiry;
mod local;
mod model;
