//! The client routes' traffic as clients see it: requests to `/api/...` counted by route and
//! status class, and timed by route.
//!
//! The group counters say what the cache did; these say what the clients got, which is what
//! an error-rate or latency alert is about. They are measured around the whole router (a
//! middleware), so refusals that never reach a group (401, 400 for a malformed path, 414)
//! are counted too.
//!
//! Labels come from a fixed set (the method's route, the status class), never from the
//! request's path: a client choosing group names or keys must not be able to make series.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};

use super::{HistogramFamily, latency_histogram};

/// The client routes' prefix.
const API_PREFIX: &str = "/api/";

type RequestLabels = [(&'static str, &'static str); 2];
type RouteLabel = [(&'static str, &'static str); 1];

/// The client routes' counters.
#[derive(Clone, Debug)]
pub(crate) struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: HistogramFamily<RouteLabel>,
}

impl ApiMetrics {
    /// Registers the client-route metrics in `registry`.
    pub(crate) fn register(registry: &mut Registry) -> ApiMetrics {
        let requests = Family::<RequestLabels, Counter>::default();
        let durations: HistogramFamily<RouteLabel> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "geecache_api_requests",
            "Requests to the client routes (/api/...), by route and status class",
            requests.clone(),
        );
        registry.register_with_unit(
            "geecache_api_request_duration",
            "Time from a client-route request's arrival to its response, by route",
            Unit::Seconds,
            durations.clone(),
        );
        ApiMetrics {
            requests,
            durations,
        }
    }

    /// Counts one answered request.
    pub(crate) fn record(&self, route: &'static str, status: StatusCode, elapsed_secs: f64) {
        self.requests
            .get_or_create(&[("route", route), ("status", status_class(status))])
            .inc();
        self.durations
            .get_or_create(&[("route", route)])
            .observe(elapsed_secs);
    }
}

/// The middleware: times and counts requests under `/api/`, passes the rest through.
///
/// A request whose client hangs up before the answer is not counted: its handler is dropped
/// with it, and there is no status to count it under.
pub(crate) async fn observe(
    State(metrics): State<ApiMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let Some(route) = route_of(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.record(route, response.status(), start.elapsed().as_secs_f64());
    response
}

/// The `route` label of a request, or `None` when it is not for a client route.
pub(crate) fn route_of(method: &Method, path: &str) -> Option<&'static str> {
    if !path.starts_with(API_PREFIX) {
        return None;
    }
    Some(match *method {
        Method::GET | Method::HEAD => "get",
        Method::DELETE => "delete",
        _ => "other",
    })
}

/// `2xx`, `4xx`, ...: the class is what alerts are written against, and it keeps the label's
/// values few.
pub(crate) fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
