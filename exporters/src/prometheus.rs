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

/// Readiness, set by the service: ready once every listener is bound, not ready while draining
/// or while a registered check (an exporter's health) fails.
#[derive(Default)]
pub struct Readiness {
    ready: AtomicBool,
    checks: std::sync::Mutex<Vec<(&'static str, Check)>>,
}

type Check = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("ready", &self.get())
            .finish_non_exhaustive()
    }
}

impl Readiness {
    /// Sets readiness.
    pub fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Reads readiness (the flag only, not the checks).
    pub fn get(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Adds a check: while it returns an error, `/readyz` answers 503 with `name: error`.
    pub fn add_check(&self, name: &'static str, check: impl Fn() -> Result<(), String> + Send + Sync + 'static) {
        if let Ok(mut c) = self.checks.lock() {
            c.push((name, Box::new(check)));
        }
    }

    /// Why the service is not ready, or `None` when it is.
    pub fn problem(&self) -> Option<String> {
        if !self.get() {
            return Some("starting or draining".to_owned());
        }
        let checks = match self.checks.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        let failing: Vec<String> = checks
            .iter()
            .filter_map(|(name, check)| check().err().map(|e| format!("{name}: {e}")))
            .collect();
        (!failing.is_empty()).then(|| failing.join("; "))
    }
}

/// What the endpoint serves.
pub struct PrometheusState {
    /// The registry to encode.
    pub registry: Arc<Registry>,
    /// Readiness for `/readyz`.
    pub ready: Arc<Readiness>,
    /// Keys `/metrics` requires (`/healthz` and `/readyz` stay open for orchestrators).
    pub auth: Option<Arc<llmhub_server::auth::Authenticator>>,
}

/// The routes: `/metrics`, `/healthz`, `/readyz`.
pub fn router(state: Arc<PrometheusState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(st): State<Arc<PrometheusState>>, headers: axum::http::HeaderMap) -> Response {
    if let Some(auth) = &st.auth {
        if let Err(denied) = auth.check_headers(&headers) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                format!("{}\n", denied.message()),
            )
                .into_response();
        }
    }
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
    match st.ready.problem() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response(),
    }
}
