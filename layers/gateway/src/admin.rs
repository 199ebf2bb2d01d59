//! The admin listener: Prometheus metrics, instance health, liveness and
//! readiness, apart from the public listener so that none of it is
//! reachable by clients or shadows an application path.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use foresight::core::{HealthState, InstanceId, Topology};
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
/// address, weight, key share, health state, draining, requests in flight, latency,
/// error ratio), `/healthz` (the process answers), `/readyz` (503 while draining
/// or with no instance in rotation), and `POST /instances/{id}/drain` and
/// `/undrain`: the instance takes no new sessions (or takes them again)
/// until the next reload, which applies the file's `draining` (404 for an
/// unknown instance).
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
        .route("/instances/{id}/drain", post(drain))
        .route("/instances/{id}/undrain", post(undrain))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn drain(state: State<AdminState>, id: Path<String>) -> (StatusCode, &'static str) {
    set_draining(state, id, true)
}

async fn undrain(state: State<AdminState>, id: Path<String>) -> (StatusCode, &'static str) {
    set_draining(state, id, false)
}

fn set_draining(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    draining: bool,
) -> (StatusCode, &'static str) {
    if state.topology.set_draining(&InstanceId::from(id), draining) {
        (
            StatusCode::OK,
            if draining {
                "draining\n"
            } else {
                "undrained\n"
            },
        )
    } else {
        (StatusCode::NOT_FOUND, "no such instance\n")
    }
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
    let mut out = String::from(
        "instance\taddress\tweight\tshare\tstate\tdraining\tin_flight\tlatency_ms\terror_ratio\n",
    );
    for instance in members.iter() {
        let health = instance.health();
        out.push_str(&format!(
            "{}\t{}\t{}\t{:.4}\t{:?}\t{}\t{}\t{:.2}\t{:.3}\n",
            instance.id(),
            instance
                .spec()
                .addr
                .map_or_else(|| "-".to_owned(), |a| a.to_string()),
            instance.spec().weight,
            members.share(instance.id()).unwrap_or(0.0),
            health.state(),
            instance.spec().draining,
            health.in_flight(),
            health.latency_ewma() * 1e3,
            health.error_ratio(),
        ));
    }
    out
}
