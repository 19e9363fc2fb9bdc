//! The gRPC transport's integration tests, one binary.

mod calls;
mod faults;
mod generated;
mod support;
