//! Integration tests for `geecache-transport-http`: one binary, one module per concern.
//!
//! Every server binds `127.0.0.1:0` in this process. No test sleeps to wait for something:
//! loaders signal when they start and wait at gates the test opens.

mod support;

mod batch;
mod cluster;
mod faults;
mod routes;
mod shutdown;
mod tls;
mod wire;
mod writes;

mod interop;
