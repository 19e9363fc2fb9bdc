//! Registration and membership against a real etcd server.
//!
//! Each test starts its own `etcd` (found on `PATH`) on free loopback ports with a temporary
//! data dir, and kills it when the test ends. Without `etcd`, each test prints why it is skipped
//! and passes, unless `GEECACHE_REQUIRE_ETCD=1` is set, as CI does; then it fails.
//!
//! Every wait is bounded: tests wait on the crate's watch channels under a deadline, never for
//! a fixed time. Leases use a 2-second TTL to keep the suite short.

#[path = "integration/etcd.rs"]
mod etcd;
#[path = "integration/proxy.rs"]
mod proxy;
#[path = "integration/support.rs"]
mod support;

#[path = "integration/cluster.rs"]
mod cluster;
#[path = "integration/outage.rs"]
mod outage;
