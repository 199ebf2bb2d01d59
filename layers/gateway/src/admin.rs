//! The admin listener: Prometheus metrics, instance health, liveness and
//! readiness, apart from the public listener so that none of it is
//! reachable by clients or shadows an application path.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use foresight::core::{HealthState, Topology};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

/// What the admin endpoints read.
#[derive(Clone, Debug)]
pub struct AdminState {
    /// The live topology.
    pub topology: Topology,
    /// Renders the metrics.
    pub prometheus: PrometheusHandle,
    /// True once the gateway drains.
    pub draining: watch::Receiver<bool>,
}

/// `/metrics` (Prometheus text), `/instances` (one line per instance:
/// address, weight, key share, health state, latency, error ratio),
/// `/healthz` (the process answers) and `/readyz` (503 while draining or
/// with no instance in rotation).
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(s): State<AdminState>| async move { s.prometheus.render() }),
        )
        .route(
            "/instances",
            get(|State(s): State<AdminState>| async move { instances_report(&s.topology) }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if *state.draining.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n");
    }
    let in_rotation = state.topology.load().iter().any(|i| {
        matches!(
            i.health().state(),
            HealthState::Healthy | HealthState::Degraded
        )
    });
    if in_rotation {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no instance in rotation\n")
    }
}

/// The `/instances` table, tab-separated with a header line.
pub fn instances_report(topology: &Topology) -> String {
    let members = topology.load();
    let mut out =
        String::from("instance\taddress\tweight\tshare\tstate\tlatency_ms\terror_ratio\n");
    for instance in members.iter() {
        let health = instance.health();
        out.push_str(&format!(
            "{}\t{}\t{}\t{:.4}\t{:?}\t{:.2}\t{:.3}\n",
            instance.id(),
            instance
                .spec()
                .addr
                .map_or_else(|| "-".to_owned(), |a| a.to_string()),
            instance.spec().weight,
            members.share(instance.id()).unwrap_or(0.0),
            health.state(),
            health.latency_ewma() * 1e3,
            health.error_ratio(),
        ));
    }
    out
}
