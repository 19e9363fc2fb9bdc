//! Tests against a real dnsmasq started by each test on a loopback port; the resolver asks that
//! server only, never the system's. Skipped (with one note) where dnsmasq is not installed,
//! unless `GEECACHE_REQUIRE_DNSMASQ=1`.

// Shared with the server's black-box tests, which use the parts these do not.
#[allow(dead_code)]
#[path = "integration/dnsmasq.rs"]
mod dnsmasq;
#[path = "integration/watch.rs"]
mod watch;
