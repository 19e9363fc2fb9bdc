//! Black-box tests of the `geecache` binary: each test starts the built executable, talks to
//! it over loopback HTTP, and reads its exit status and output.

mod support;

mod cli;
mod cluster;
mod config;
mod demo;
mod dir_source;
mod dns;
// One dnsmasq fixture for both crates' tests; discovery-dns's use the parts this binary does not.
#[allow(dead_code)]
#[path = "../../../discovery-dns/tests/integration/dnsmasq.rs"]
mod dnsmasq;
#[cfg(feature = "etcd")]
mod etcd;
#[cfg(feature = "etcd")]
mod etcd_server;
mod get;
mod http_source;
mod metrics;
mod monitoring;
mod shutdown;
mod tls;
