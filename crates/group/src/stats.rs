//! A group's counters: [`Stats`] and [`CacheStats`], each declared once with its field list.
//!
//! Servers show the same figures several ways (a JSON route, Prometheus metrics). Each struct's
//! fields are written once, in the macro call below, which also makes the struct's
//! `FIELDS` table: name, one-line help, kind and a reader per field. The exporters walk that
//! table, so a counter added here shows up everywhere without a second list to keep in step.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// One figure of a stats struct: what exporters need to show it.
pub struct Field<S> {
    name: &'static str,
    help: &'static str,
    kind: FieldKind,
    read: fn(&S) -> u64,
}

impl<S> Field<S> {
    /// The field's name, e.g. `gets`: a JSON key, or a metric name's last part.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The first line of the field's docs, e.g. for a metric's help text.
    #[must_use]
    pub fn help(&self) -> &'static str {
        self.help.trim()
    }

    /// Whether it only goes up (a counter) or moves both ways (a gauge).
    #[must_use]
    pub fn kind(&self) -> FieldKind {
        self.kind
    }

    /// The field's value in `stats`.
    #[must_use]
    pub fn read(&self, stats: &S) -> u64 {
        (self.read)(stats)
    }
}

impl<S> Clone for Field<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Field<S> {}

impl<S> std::fmt::Debug for Field<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Field")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// How a figure moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FieldKind {
    /// A total since the group was built; never goes down.
    Counter,
    /// A level now (bytes held, items held).
    Gauge,
}

/// Declares a stats struct whose listed fields are all figures, and its `FIELDS` table.
///
/// Each field is `/// docs` then `name: type as Kind`; its help text is the first doc line.
/// Fields after `;` are declared as written and left out of the table.
macro_rules! stats_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                #[doc = $help:literal]
                $(#[doc = $more:literal])*
                $field:ident : $ty:ty as $kind:ident,
            )*
            ;
            $($rest:tt)*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(
                #[doc = $help]
                $(#[doc = $more])*
                pub $field: $ty,
            )*
            $($rest)*
        }

        impl $name {
            /// Every figure of this struct, in declaration order.
            pub const FIELDS: &'static [Field<$name>] = &[
                $(
                    Field {
                        name: stringify!($field),
                        help: $help,
                        kind: FieldKind::$kind,
                        // Widening (`usize` is at most 64 bits on every supported target).
                        read: |s| s.$field as u64,
                    },
                )*
            ];
        }
    };
}

stats_struct! {
    /// A snapshot of a group's counters, as groupcache counts them plus per-cache figures.
    ///
    /// Every field is a total since the group was built. The counters are read one by one
    /// without a common lock, so a snapshot taken under load may be off by the requests in
    /// flight. [`Stats::FIELDS`] lists the counters for exporters (`main` and `hot` are not in
    /// it: they are [`CacheStats`], with a table of their own).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct Stats {
        /// Gets, from clients and from peers.
        ///
        /// A key refused by the source's key check is not a get (it is counted in
        /// `keys_rejected`), so every get is a cache hit or a load.
        gets: u64 as Counter,
        /// Gets answered from the main or the hot cache, including hits found inside a flight.
        cache_hits: u64 as Counter,
        /// Values fetched from the owning peer.
        peer_loads: u64 as Counter,
        /// Peer fetches that failed and fell back to a local load.
        ///
        /// A failure is an error, a timeout or a malformed reply.
        peer_errors: u64 as Counter,
        /// Gets that missed the cache (`gets - cache hits` outside flights).
        loads: u64 as Counter,
        /// Loads that ran, one per flight: `loads` less those joined to a concurrent one.
        ///
        /// The name is groupcache's (`LoadsDeduped`, "after singleflight") and reads like the
        /// number of loads saved; it is the number that ran. Those saved are `loads -
        /// loads_deduped`. One per flight, remote or local (a remote flight that falls back
        /// also runs a local flight).
        loads_deduped: u64 as Counter,
        /// Successful calls of the local loader.
        local_loads: u64 as Counter,
        /// Failed calls of the local loader (not-found answers and rejected keys excluded).
        local_load_errors: u64 as Counter,
        /// Gets that ended in "not found", from the loader or from a peer.
        not_found: u64 as Counter,
        /// Gets refused because the source rejects the key.
        ///
        /// The refusal may come from the source's key check (before the cache, not counted in
        /// `gets`), its loader or the owning peer (after a miss, counted in `gets` and `loads`).
        keys_rejected: u64 as Counter,
        /// Gets that arrived from a peer.
        server_requests: u64 as Counter,
        /// Keys taken from their previous owner's cache after a change of membership.
        ///
        /// Each is a load that did not go to the source (counted in `loads_deduped`, not in
        /// `local_loads`).
        handoffs: u64 as Counter,
        /// Peeks this node answered from its cache for a new owner of a key.
        peeks_served: u64 as Counter,
        /// Values dropped from the main cache because a change of membership gave their keys
        /// to another node, once the hand-off period after it was over.
        unowned_dropped: u64 as Counter,
        /// Values this node sent to their keys' next owners: as it left, or after a change
        /// of membership gave their keys to another node.
        handed_out: u64 as Counter,
        /// Values another node sent to this one, their keys' next owner.
        handed_in: u64 as Counter,
        /// Gets answered "not found" from the negative cache, without a load.
        ///
        /// Only with a negative time to live ([`GroupBuilder::negative_ttl`]), at the key's
        /// owner. Each is a load that did not go to the source (counted in `loads_deduped`).
        ///
        /// [`GroupBuilder::negative_ttl`]: crate::GroupBuilder::negative_ttl
        negative_hits: u64 as Counter,
        /// Values this node stored as their key's owner because a client set them
        /// ([`Group::set`](crate::Group::set)), here or at another node.
        sets: u64 as Counter,
        /// Purges of the whole group this node carried out ([`Group::purge`](crate::Group::purge)).
        purges: u64 as Counter,
        ;
        /// The main cache: values this node loaded itself.
        pub main: CacheStats,
        /// The hot cache: copies of values owned by other nodes.
        pub hot: CacheStats,
    }
}

stats_struct! {
    /// Figures for one of a group's two caches. [`CacheStats::FIELDS`] lists them for exporters.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct CacheStats {
        /// Lookups that found a live value.
        hits: u64 as Counter,
        /// Entries dropped to keep the group within its byte budget.
        evictions: u64 as Counter,
        /// Entries dropped because their time to live ran out.
        expirations: u64 as Counter,
        /// Bytes held: key plus value bytes (and bookkeeping, under `Charge::Memory`).
        bytes: usize as Gauge,
        /// Entries held.
        items: usize as Gauge,
        ;
    }
}

impl CacheStats {
    pub(crate) fn from_lru(stats: geecache_lru::CacheStats) -> Self {
        CacheStats {
            hits: stats.hits,
            evictions: stats.evictions,
            expirations: stats.expirations,
            bytes: stats.bytes,
            items: stats.entries,
        }
    }
}

/// The live counters behind [`Stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) gets: Counter,
    pub(crate) flight_hits: Counter,
    pub(crate) peer_loads: Counter,
    pub(crate) peer_errors: Counter,
    pub(crate) loads: Counter,
    pub(crate) loads_deduped: Counter,
    pub(crate) local_loads: Counter,
    pub(crate) local_load_errors: Counter,
    pub(crate) not_found: Counter,
    pub(crate) keys_rejected: Counter,
    pub(crate) handoffs: Counter,
    pub(crate) peeks_served: Counter,
    pub(crate) unowned_dropped: Counter,
    pub(crate) handed_out: Counter,
    pub(crate) handed_in: Counter,
    pub(crate) negative_hits: Counter,
    pub(crate) sets: Counter,
    pub(crate) purges: Counter,
    pub(crate) server_requests: Counter,
}

const STRIPES: usize = 8;

/// A counter split over cache-line-sized stripes, one picked per thread.
///
/// Every get bumps `gets`. With one shared `AtomicU64`, two cores serving hits would pass that
/// cache line back and forth on every request, which costs more than the rest of the hit path;
/// striping keeps each thread on its own line and moves the summing to the rare reader.
#[derive(Default)]
pub(crate) struct Counter {
    stripes: [Stripe; STRIPES],
}

#[derive(Default)]
#[repr(align(128))] // 128, not 64: adjacent-line prefetch pairs lines on x86.
struct Stripe(AtomicU64);

impl Counter {
    pub(crate) fn incr(&self) {
        self.add(1);
    }

    pub(crate) fn add(&self, n: u64) {
        self.stripes[stripe()].0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}
