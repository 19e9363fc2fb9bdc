//! Black-box tests of the `geecache` binary: each test starts the built executable, talks to
//! it over loopback HTTP, and reads its exit status and output.

mod support;

mod cluster;
mod config;
mod demo;
mod dir_source;
#[cfg(feature = "etcd")]
mod etcd;
#[cfg(feature = "etcd")]
mod etcd_server;
mod get;
mod http_source;
mod metrics;
mod shutdown;
