//! The peer path target: splitting and decoding `{base}{group}/{key}` in both encodings.

use geecache_transport_http::path::{self, Decoding};

/// The base path every seed uses; a path without it must be an error, not a panic.
const BASE: &str = "/_geecache/";

/// Splits `data` as a request path and decodes both components with each [`Decoding`].
///
/// # Panics
///
/// When a decoded name re-encodes and decodes to something else: [`path::encode`] and
/// [`path::decode`] must agree, or a peer asks for a key the owner reads differently.
pub fn peer_path(data: &[u8]) {
    for decoding in [Decoding::Form, Decoding::Percent] {
        // Decoding works on bytes: the path of a request that is not UTF-8 still reaches it.
        let _ = path::decode(data, decoding);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((group, key)) = path::split(text, BASE) else {
        return;
    };
    for raw in [group, key] {
        for decoding in [Decoding::Form, Decoding::Percent] {
            if let Ok(name) = path::decode(raw.as_bytes(), decoding) {
                let again = path::encode(&name).to_string();
                let back = path::decode(again.as_bytes(), decoding);
                assert_eq!(
                    back.as_deref(),
                    Ok(&*name),
                    "{name:?} encoded as {again:?} does not decode back ({decoding:?})"
                );
            }
        }
    }
}
