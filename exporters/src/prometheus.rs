//! The Prometheus pull endpoint: `/metrics` in the OpenMetrics text format, plus `/healthz` and
//! `/readyz` for orchestrators.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// OpenMetrics content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Readiness, set by the service: ready once every listener is bound, not ready while draining.
#[derive(Debug, Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    /// Sets readiness.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// Reads readiness.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What the endpoint serves.
pub struct PrometheusState {
    /// The registry to encode.
    pub registry: Arc<Registry>,
    /// Readiness for `/readyz`.
    pub ready: Arc<Readiness>,
}

/// The routes: `/metrics`, `/healthz`, `/readyz`.
pub fn router(state: Arc<PrometheusState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(st): State<Arc<PrometheusState>>) -> Response {
    let mut out = String::with_capacity(64 * 1024);
    match prometheus_client::encoding::text::encode(&mut out, &st.registry) {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], out).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics failed: {e}\n"),
        )
            .into_response(),
    }
}

async fn readyz(State(st): State<Arc<PrometheusState>>) -> Response {
    if st.ready.get() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}
