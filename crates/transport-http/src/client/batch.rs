//! Batch gets from a peer: many keys of a group in one `POST {base}{group}`.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use bytes::Bytes;
use geecache_byteview::ByteView;
use geecache_group::{Loaded, ObservedFetch, PeerError, PeerOutcome, Rejected};
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method};
use prost::Message;

use super::{ERROR_MESSAGE_CHARS, HttpPeer, Mark, Reply, kind_of, status_error};
use crate::kind::ErrorKind;
use crate::proto::{GetMany, GetManyAnswer, KeyAnswer};
use crate::{BATCH_HEADER, PROTOBUF, path};

impl HttpPeer {
    /// Asks for `keys` in one `POST {base}{group}` ([`GetMany`]). A peer that shows it does
    /// not know the request is asked key by key, side by side, now and from then on.
    pub(super) async fn fetch_many(
        &self,
        group: &str,
        keys: &[String],
    ) -> Result<Vec<Result<Loaded, PeerError>>, PeerError> {
        if !self.batches.load(Ordering::Relaxed) {
            return Ok(self.fetch_each(group, keys).await);
        }
        let result = match &self.transport.observer {
            None => self.fetch_batch(group, keys).await,
            Some(observer) => {
                let watch = ObservedFetch::start(observer.as_ref(), &self.url);
                let result = self.fetch_batch(group, keys).await;
                watch.finish(match &result {
                    Ok(None) => PeerOutcome::Status,
                    result => PeerOutcome::of(result),
                });
                result
            }
        };
        match result? {
            Some(answers) => Ok(answers),
            None => Ok(self.fetch_each(group, keys).await),
        }
    }

    async fn fetch_each(&self, group: &str, keys: &[String]) -> Vec<Result<Loaded, PeerError>> {
        futures_util::future::join_all(keys.iter().map(|key| self.fetch(group, key))).await
    }

    /// The batch's answers, or `None` when the peer does not take batch gets.
    async fn fetch_batch(
        &self,
        group: &str,
        keys: &[String],
    ) -> Result<Option<Vec<Result<Loaded, PeerError>>>, PeerError> {
        let body = Bytes::from(
            GetMany {
                keys: keys.to_vec(),
            }
            .encode_to_vec(),
        );
        let url = path::group_url(&self.base_path, group);
        let mut request = self.request_with(Method::POST, url, Mark::Get, body)?;
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
        let limit = self.transport.max_response_bytes;
        let body = match self.exchange_any(request, limit).await? {
            Reply::Answered(parts, body) if parts.headers.contains_key(BATCH_HEADER) => body,
            Reply::Answered(parts, _) => return Ok(self.no_batch(parts.status)),
            Reply::Refused(parts, message) => {
                return match kind_of(&parts) {
                    // Refusals of a node that knows the route: about the request, not the route.
                    Some(
                        ErrorKind::UnknownGroup | ErrorKind::Unauthorized | ErrorKind::TooLarge,
                    )
                    | Some(ErrorKind::BadBody | ErrorKind::Internal) => {
                        Err(status_error(&parts, message))
                    }
                    _ if parts.status.is_server_error() => Err(status_error(&parts, message)),
                    // 400 from a Go node or an older geecache (the path has no key), 404 or
                    // 405 from a proxy or a node without the route.
                    _ => Ok(self.no_batch(parts.status)),
                };
            }
        };
        let answer =
            GetManyAnswer::decode(body).map_err(|e| PeerError::Malformed(e.to_string()))?;
        if answer.answers.len() != keys.len() {
            return Err(PeerError::Malformed(format!(
                "{} answers to a batch of {} keys",
                answer.answers.len(),
                keys.len()
            )));
        }
        let now = SystemTime::now();
        let answers = answer.answers.into_iter().map(|a| key_answer(a, now));
        Ok(Some(answers.collect()))
    }

    /// Remembers that the peer does not take batch gets.
    fn no_batch<T>(&self, status: http::StatusCode) -> Option<T> {
        if self.batches.swap(false, Ordering::Relaxed) {
            tracing::info!(peer = %self.url, %status,
                "peer does not answer batch gets; asking it key by key");
        }
        None
    }
}

/// One key's answer in a batch, read as the same answer to a single get would be.
fn key_answer(answer: KeyAnswer, now: SystemTime) -> Result<Loaded, PeerError> {
    let Some(kind) = answer.error.as_deref() else {
        let ttl = answer.ttl_at(now);
        let value = ByteView::copy_from_slice(answer.value.as_deref().unwrap_or_default());
        let loaded = Loaded::new(value).with_optional_ttl(ttl);
        return Ok(loaded.with_minute_qps(answer.minute_qps));
    };
    let message = answer.message.unwrap_or_default();
    match ErrorKind::parse(kind) {
        Some(ErrorKind::NotFound) => Err(PeerError::NotFound),
        Some(ErrorKind::InvalidKey) => {
            let reason = message.strip_prefix("invalid key: ").unwrap_or(&message);
            Err(PeerError::Rejected(Rejected::new(reason)))
        }
        known => Err(PeerError::Status {
            status: known.map_or(500, |k| k.status().as_u16()),
            message: message.chars().take(ERROR_MESSAGE_CHARS).collect(),
        }),
    }
}
