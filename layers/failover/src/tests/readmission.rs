//! Readmission of an instance that comes back (restarted after a crash),
//! on a paused clock: it is probed and readmitted within
//! [`READMISSION_BOUND`](crate::READMISSION_BOUND) of answering again,
//! however long it was down, with replayable and with non-replayable
//! traffic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use foresight_core::HealthState;
use http::Method;
use tower::service_fn;

use super::*;

/// Requests to keys whose primary is `a`, one every 100 ms, for at most
/// 200 s, with `a` down (every attempt on it refused) until it has been
/// ejected `ejections` times: it comes back right after a failed probe, the
/// worst moment, with the longest backoff ahead. Returns how long after it
/// came back `a` was Healthy again, if it was.
async fn down_then_up(
    layer: HealthFailoverLayer,
    method: Method,
    ejections: u64,
) -> Option<Duration> {
    let up = Arc::new(AtomicBool::new(false));
    let inner = {
        let up = up.clone();
        service_fn(move |request: Request<Body>| {
            let route = request.extensions().get::<Route>().unwrap();
            let refused = route.target.as_str() == "a" && !up.load(Ordering::Relaxed);
            async move {
                if refused {
                    Err::<Response<&'static str>, BoxError>("connection refused".into())
                } else {
                    Ok(Response::new("ok"))
                }
            }
        })
    };
    let mut service = layer.layer(inner);
    let layer = layer.clone();
    let slot = layer.topology().health(&"a".into()).unwrap();
    let start = tokio::time::Instant::now();
    let every = Duration::from_millis(100);
    let mut back_at = None;
    while start.elapsed() < Duration::from_secs(200) {
        let mut request = request(method.clone(), "", &["a", "b", "c"]);
        if method == Method::POST {
            request.headers_mut().remove("idempotency-key");
        }
        let _ = super::ready(&mut service).await.call(request).await;
        if !up.load(Ordering::Relaxed) && layer.stats().ejections >= ejections {
            up.store(true, Ordering::Relaxed);
            back_at = Some(start.elapsed());
        }
        if let Some(back) = back_at
            && slot.state() == HealthState::Healthy
        {
            return Some(start.elapsed() - back);
        }
        tokio::time::sleep(every).await;
    }
    None
}

#[tokio::test(start_paused = true)]
async fn an_instance_back_after_a_long_outage_is_readmitted_within_the_bound_by_gets() {
    let layer = HealthFailoverLayer::new(topology());
    let readmitted = down_then_up(layer.clone(), Method::GET, 8)
        .await
        .expect("never readmitted");
    assert_eq!(layer.stats().ejections, 8, "{:?}", layer.stats());
    assert!(
        readmitted <= crate::READMISSION_BOUND,
        "readmitted {readmitted:?} after answering again"
    );
}

#[tokio::test(start_paused = true)]
async fn an_instance_back_after_a_long_outage_is_readmitted_within_the_bound_by_posts() {
    let layer = HealthFailoverLayer::new(topology());
    let readmitted = down_then_up(layer.clone(), Method::POST, 8)
        .await
        .expect("never readmitted");
    assert_eq!(layer.stats().ejections, 8, "{:?}", layer.stats());
    assert!(
        readmitted <= crate::READMISSION_BOUND,
        "readmitted {readmitted:?} after answering again"
    );
}

#[test]
fn the_default_backoff_fits_the_bound() {
    // The longest wait for a probe once the instance answers: the longest
    // backoff, one more base backoff when only non-replayable requests
    // come, and one degraded probe interval if that probe is slow.
    let worst = crate::DEFAULT_MAX_EJECTION
        + crate::DEFAULT_BASE_EJECTION
        + crate::DEFAULT_DEGRADED_PROBE_INTERVAL;
    assert!(worst <= crate::READMISSION_BOUND, "{worst:?}");
}
