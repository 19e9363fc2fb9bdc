//! Writes to a peer: `PUT` a value at its key's owner, `DELETE` a whole group.

use bytes::Bytes;
use geecache_group::{Loaded, PeerError};
use http::{HeaderValue, Method};

use super::{ERROR_BODY_LIMIT, HttpPeer, Mark, Reply, kind_of, status_error, unconfirmed_of};
use crate::{REMOVED_HEADER, names, path};

impl HttpPeer {
    /// `PUT`s `value` to the peer, the key's owner: it stores it and has the others drop their
    /// copies. Returns the members it could not confirm that with.
    pub(super) async fn store(
        &self,
        group: &str,
        key: &str,
        value: Loaded,
    ) -> Result<Vec<String>, PeerError> {
        let ttl = value.ttl();
        let body = Bytes::from(value.into_value().to_vec());
        let url = path::peer_url(&self.base_path, group, key);
        let mut request = self.request_with(Method::PUT, url, Mark::Get, body)?;
        if let Some(ttl) = ttl {
            // A value whose time ran out on the way is stored with a moment to live rather
            // than for ever: an absent header would mean the group's own time to live.
            let seconds = ttl.as_secs_f64().max(0.001);
            let value = HeaderValue::from_str(&format!("{seconds:.3}"))
                .map_err(|e| PeerError::Malformed(format!("time to live: {e}")))?;
            request.headers_mut().insert(names::TTL, value);
        }
        let (parts, _) = self.exchange(request, ERROR_BODY_LIMIT).await?;
        // A Go groupcache node serves the PUT as a GET and answers 200: not stored.
        if parts
            .headers
            .get(names::STORED)
            .is_none_or(|v| v.as_bytes() != b"1")
        {
            return Err(PeerError::Unsupported("set"));
        }
        Ok(unconfirmed_of(&parts))
    }

    /// `DELETE`s the group on the peer: it drops every value of it.
    pub(super) async fn purge_group(&self, group: &str) -> Result<(), PeerError> {
        let url = path::group_url(&self.base_path, group);
        let request = self.request_with(Method::DELETE, url, Mark::Get, Bytes::new())?;
        let parts = match self.exchange_any(request, ERROR_BODY_LIMIT).await? {
            Reply::Answered(parts, _) => parts,
            // A Go node answers a path without a key 400, with none of our kinds.
            Reply::Refused(parts, _) if kind_of(&parts).is_none() && parts.status == 400 => {
                return Err(PeerError::Unsupported("purge"));
            }
            Reply::Refused(parts, message) => return Err(status_error(&parts, message)),
        };
        match parts.headers.get(REMOVED_HEADER) {
            Some(v) if v.as_bytes() == b"1" => Ok(()),
            _ => Err(PeerError::Unsupported("purge")),
        }
    }
}
