//! No request that changes state runs twice on an instance that is not
//! shadow-aware.
//!
//! The whole routing stack (Shard → HealthFailover → ShadowWrite → Pool)
//! runs in front of three instances whose handlers count every request that
//! reaches them, by request number and role. An instance that is not
//! shadow-aware runs its handler for whatever reaches it, shadow or not; a
//! shadow-aware one (running SessionMirrorLayer) would warm its cache and
//! skip the handler.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use foresight_core::key::HeaderKey;
use foresight_core::{InstanceId, InstanceSpec, Pool, Role, Route, RouteBody, Topology};
use foresight_failover::HealthFailoverLayer;
use foresight_shadow::ShadowWriteLayer;
use foresight_shard::ShardLayer;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// One request that reached an instance.
#[derive(Clone, Debug)]
struct Run {
    instance: InstanceId,
    n: u64,
    method: Method,
    role: Role,
    /// The route's next candidate after its target.
    next: Option<InstanceId>,
}

type Runs = Arc<Mutex<Vec<Run>>>;

const REQUESTS: u64 = 200;

/// Sends `REQUESTS` requests through the stack, alternately a POST with a
/// body and a GET, over 50 sessions, and waits for every shadow to end.
async fn send_all(shadow: &ShadowWriteLayer, topology: &Topology) -> Vec<Run> {
    let runs = Runs::default();
    let pool = Pool::new(topology.clone(), {
        let runs = runs.clone();
        move |instance| {
            let (runs, instance) = (runs.clone(), instance.id().clone());
            service_fn(move |request: Request<RouteBody>| {
                let (runs, instance) = (runs.clone(), instance.clone());
                async move {
                    let route = request.extensions().get::<Route>().unwrap().clone();
                    let n = request.headers()["x-n"].to_str().unwrap().parse().unwrap();
                    let method = request.method().clone();
                    // The handler reads the whole body, as an application would.
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    if method == Method::POST {
                        assert_eq!(body, format!("write {n}"));
                    }
                    runs.lock().unwrap().push(Run {
                        instance,
                        n,
                        method,
                        role: route.role,
                        next: route.next_after(&route.target).cloned(),
                    });
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                }
            })
        }
    });
    let service = ServiceBuilder::new()
        .layer(ShardLayer::new(
            topology.clone(),
            HeaderKey::new("x-session"),
        ))
        .layer(HealthFailoverLayer::new(topology.clone()))
        .layer(shadow.clone())
        .service(pool);
    for n in 0..REQUESTS {
        let (method, body) = if n % 2 == 0 {
            (Method::POST, format!("write {n}"))
        } else {
            (Method::GET, String::new())
        };
        let request = Request::builder()
            .method(method)
            .uri("/cart")
            .header("x-session", format!("session-{}", n % 50))
            .header("x-n", n.to_string())
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        // Shadow copies run on tasks of their own: let them end, so that
        // none is dropped for want of room.
        for _ in 0..1000 {
            let stats = shadow.stats();
            if stats.completed + stats.failed + stats.timed_out + stats.dropped_body == stats.sent {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    let stats = shadow.stats();
    assert_eq!(stats.completed, stats.sent, "{stats:?}");
    assert_eq!(stats.dropped_full + stats.dropped_unhealthy, 0, "{stats:?}");
    runs.lock().unwrap().clone()
}

fn topology() -> Topology {
    Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new)).unwrap()
}

/// Handler runs of request `n` on instances that are not in `aware`.
fn handler_runs(runs: &[Run], n: u64, aware: &[&str]) -> usize {
    runs.iter()
        .filter(|r| r.n == n && !aware.contains(&r.instance.as_str()))
        .count()
}

#[tokio::test]
async fn by_default_every_post_runs_exactly_once() {
    let topology = topology();
    let shadow = ShadowWriteLayer::new(topology.clone());
    let runs = send_all(&shadow, &topology).await;
    for n in (0..REQUESTS).step_by(2) {
        assert_eq!(
            handler_runs(&runs, n, &[]),
            1,
            "POST {n} ran {:?}",
            runs_of(&runs, n)
        );
    }
    // Shadowing was on: reads were copied, once per session (the GETs,
    // odd numbers, fall on the 25 odd sessions).
    let copies: Vec<_> = runs.iter().filter(|r| r.role == Role::Shadow).collect();
    assert!(copies.iter().all(|r| r.method == Method::GET), "{copies:?}");
    assert_eq!(copies.len(), 25);
    let stats = shadow.stats();
    assert_eq!(stats.skipped_by_policy, REQUESTS / 2);
    assert_eq!(stats.coalesced, REQUESTS / 2 - 25);
}

#[tokio::test]
async fn the_shadow_of_a_post_reaches_a_shadow_aware_instance_and_no_other() {
    let topology = topology();
    let shadow = ShadowWriteLayer::new(topology.clone()).with_shadow_aware(["b"]);
    let runs = send_all(&shadow, &topology).await;
    let mut copied_to_b = 0;
    for n in (0..REQUESTS).step_by(2) {
        // Exactly once on the instances that are not shadow-aware, unless
        // b is the primary (then a, or c, never saw it).
        let primary: Vec<_> = runs
            .iter()
            .filter(|r| r.n == n && r.role != Role::Shadow)
            .collect();
        assert_eq!(primary.len(), 1, "POST {n}: {:?}", runs_of(&runs, n));
        let primary = primary[0];
        let copies: Vec<_> = runs
            .iter()
            .filter(|r| r.n == n && r.role == Role::Shadow)
            .map(|r| r.instance.as_str())
            .collect();
        if primary
            .next
            .as_ref()
            .is_some_and(|next| next.as_str() == "b")
        {
            assert_eq!(copies, ["b"], "POST {n}");
            copied_to_b += 1;
        } else {
            assert!(copies.is_empty(), "POST {n} copied to {copies:?}");
        }
        let expected = usize::from(primary.instance.as_str() != "b");
        assert_eq!(handler_runs(&runs, n, &["b"]), expected, "POST {n}");
    }
    assert!(copied_to_b > 0, "no session had b as its secondary");
    let stats = shadow.stats();
    assert_eq!(stats.skipped_by_policy, REQUESTS / 2 - copied_to_b);
}

fn runs_of(runs: &[Run], n: u64) -> Vec<&Run> {
    runs.iter().filter(|r| r.n == n).collect()
}
