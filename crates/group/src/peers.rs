use std::sync::Arc;

use crate::error::PeerError;
use crate::getter::{BoxFuture, Loaded};

/// Chooses the node that owns a key.
///
/// The HTTP transport implements it over a consistent-hash ring of peer URLs; tests implement
/// it over in-memory fakes. It is registered once per group
/// ([`Group::register_peers`](crate::Group::register_peers)).
pub trait PeerPicker: Send + Sync + 'static {
    /// The peer that owns `key`, or `None` when this node owns it (or knows no peers).
    ///
    /// Called on every miss, so it should be cheap: no I/O, no allocation beyond an `Arc` clone.
    fn pick_peer(&self, key: &str) -> Option<Arc<dyn PeerGetter>>;
}

/// Fetches a key from one peer.
///
/// It returns a boxed future (rather than being an `async fn`) because the picker hands peers
/// out as trait objects, chosen per request.
pub trait PeerGetter: Send + Sync + 'static {
    /// Asks the peer for `key` in `group`. The peer loads it locally if it must; it never
    /// forwards the request again.
    fn get<'a>(&'a self, group: &'a str, key: &'a str) -> BoxFuture<'a, Result<Loaded, PeerError>>;

    /// A name for logs and errors, e.g. the peer's base URL.
    fn name(&self) -> &str;
}
