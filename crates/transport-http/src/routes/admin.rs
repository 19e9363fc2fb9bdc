//! The operators' routes: `/healthz`, `/readyz`, `/stats` and `/metrics`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::App;
use crate::failure::Failure;
use crate::kind::ErrorKind;
use crate::stats::StatsBody;

pub(super) fn routes(with_metrics: bool) -> Router<App> {
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/stats", get(stats));
    match with_metrics {
        true => routes.route("/metrics", get(metrics)),
        false => routes,
    }
}

/// Alive: the process answers. Says nothing about whether it should get traffic.
async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<App>) -> Result<&'static str, Failure> {
    match app.0.readiness.as_deref().map_or(Ok(()), |check| check()) {
        Ok(()) => Ok("ready\n"),
        Err(reason) => Err(Failure::new(
            ErrorKind::NotReady,
            format!("not ready: {reason}"),
        )),
    }
}

async fn stats(State(app): State<App>) -> Result<Response, Failure> {
    let body = StatsBody::collect(&app.0.registry, app.0.cluster.as_deref());
    let json = serde_json::to_vec(&body).map_err(|error| {
        Failure::new(ErrorKind::Internal, format!("cannot encode stats: {error}"))
    })?;
    let content_type = HeaderValue::from_static("application/json");
    Ok(([(header::CONTENT_TYPE, content_type)], json).into_response())
}

async fn metrics(State(app): State<App>, headers: HeaderMap) -> Response {
    match &app.0.metrics {
        Some(render) => {
            let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
            let (content_type, body) = render(accept);
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        // The route is added only with a renderer, so this is never reached.
        None => Failure::new(ErrorKind::NoRoute, "no route for \"/metrics\"").into_response(),
    }
}
