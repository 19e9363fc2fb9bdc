//! The client routes: `GET` and `DELETE /api/{group}/{key}`, values as raw bytes,
//! `POST /api/{group}` for many keys at once (see `many.rs`), and the writes, `PUT
//! /api/{group}/{key}` and `DELETE /api/{group}` (see `write.rs`).

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use geecache_group::Origin;

use super::{API_BASE, App, removal_response, with_source};
use crate::failure::Failure;
use crate::path::Decoding;

pub(super) fn routes() -> Router<App> {
    Router::new().route(
        &format!("{API_BASE}{{*rest}}"),
        get(fetch)
            .delete(remove)
            .post(super::many::from_client)
            .put(super::write::set_from_client),
    )
}

async fn fetch(State(app): State<App>, request: Request) -> Result<Response, Failure> {
    let (group, key) = app.locate(request.uri(), API_BASE, Decoding::Percent)?;
    let fetched = group
        .fetch(&key, Origin::Client)
        .await
        .map_err(|e| Failure::of_get(group.name(), &key, &e))?;
    let body = Body::from(Bytes::from(fetched.value));
    let response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        body,
    );
    Ok(with_source(response.into_response(), fetched.source))
}

async fn remove(State(app): State<App>, request: Request) -> Result<Response, Failure> {
    if super::write::is_group_path(&request, API_BASE) {
        return super::write::purge_from_client(app, request).await;
    }
    let (group, key) = app.locate(request.uri(), API_BASE, Decoding::Percent)?;
    Ok(removal_response(&group.remove(&key).await))
}
