//! One leaf, whatever the routing layers: the same `Pool` (one leaf service
//! type, serving `Request<RouteBody>`) runs behind no routing layer, Shard,
//! Shard + HealthFailover, Shard + ShadowWrite and Shard + HealthFailover +
//! ShadowWrite, and behind one stack whose layers are switched on and off
//! at run time with `option_layer`, all of one type.
//!
//! Through each, a `PUT` whose primary is `a` reaches `a` with its body
//! (and, with shadowing, the secondary gets a copy of it); with `a` down,
//! the stacks with failover replay it, body and all, on the secondary
//! (never shadowed), and the others fail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use foresight_core::key::HeaderKey;
use foresight_core::{
    BoxError, ClientKey, InstanceId, InstanceSpec, Pool, Role, Route, RouteBody, Topology,
};
use foresight_failover::HealthFailoverLayer;
use foresight_shadow::ShadowWriteLayer;
use foresight_shard::{DEFAULT_SEED, ShardLayer};
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// What reached an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    instance: String,
    role: Role,
    attempt: u16,
    body: Bytes,
}

/// What the instances saw, and the switch that takes `a` down.
#[derive(Clone, Default)]
struct Instances {
    seen: Arc<Mutex<Vec<Seen>>>,
    a_down: Arc<AtomicBool>,
}

impl Instances {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

fn three_instances() -> Topology {
    Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new)).unwrap()
}

/// The one leaf of every stack below: each instance reads the whole body
/// and records it; `a` refuses every request while it is down, without
/// reading the body.
fn pool(
    topology: &Topology,
    instances: &Instances,
) -> Pool<
    impl Service<Request<RouteBody>, Response = Response<Full<Bytes>>, Error = BoxError, Future: Send>
    + Clone
    + Send
    + Sync
    + 'static,
> {
    let instances = instances.clone();
    Pool::new(topology.clone(), move |instance| {
        let (instances, id) = (instances.clone(), instance.id().to_string());
        service_fn(move |request: Request<RouteBody>| {
            let (instances, id) = (instances.clone(), id.clone());
            async move {
                let route = request.extensions().get::<Route>().cloned().unwrap();
                if id == "a" && instances.a_down.load(Ordering::Relaxed) {
                    return Err::<Response<Full<Bytes>>, BoxError>("connection refused".into());
                }
                let body = request.into_body().collect().await?.to_bytes();
                instances.seen.lock().unwrap().push(Seen {
                    instance: id.clone(),
                    role: route.role,
                    attempt: route.attempt,
                    body,
                });
                Ok(Response::new(Full::new(Bytes::from(id))))
            }
        })
    })
}

/// Three candidates per key, so that a replay on the second would have a
/// third to be shadowed to.
const CANDIDATES: usize = 3;

fn shard(topology: &Topology) -> ShardLayer<HeaderKey> {
    ShardLayer::new(topology.clone(), HeaderKey::new("x-session")).with_replicas(CANDIDATES)
}

fn shadow(topology: &Topology) -> ShadowWriteLayer {
    ShadowWriteLayer::new(topology.clone()).with_shadow_aware(["a", "b", "c"])
}

/// A key whose primary is `a`, and its secondary.
fn key_on_a(topology: &Topology) -> (String, InstanceId) {
    (0..)
        .map(|i| format!("session-{i}"))
        .find_map(|key| {
            let ranked = topology.rank(&ClientKey::from(key.as_str()), DEFAULT_SEED, CANDIDATES);
            (ranked[0].as_str() == "a").then(|| (key, ranked[1].clone()))
        })
        .unwrap()
}

/// Which routing layers a stack has.
#[derive(Clone, Copy, Debug)]
struct Layers {
    failover: bool,
    shadow: bool,
}

/// Lets spawned tasks (shadow copies) run until `done` holds.
async fn settle(mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("did not settle");
}

/// Sends a `PUT` with a body through `service`, first with `a` up, then
/// with `a` down, and checks what reached the instances.
async fn exercise<S, B>(
    mut service: S,
    body: fn(&'static str) -> B,
    layers: Layers,
    shadow: Option<&ShadowWriteLayer>,
    topology: &Topology,
    instances: &Instances,
) where
    S: Service<Request<B>, Response = Response<Full<Bytes>>, Error = BoxError>,
{
    assert_eq!(layers.shadow, shadow.is_some());
    let (key, secondary) = key_on_a(topology);
    let ranked = topology.rank(&ClientKey::from(key.as_str()), DEFAULT_SEED, CANDIDATES);
    let request = |payload| {
        let mut request = Request::builder()
            .method(Method::PUT)
            .uri("/cart")
            .header("x-session", key.as_str())
            .body(body(payload))
            .unwrap();
        // For the stack without a shard layer; ShardLayer routes it again.
        let route = Route::primary(ClientKey::from(key.as_str()), ranked.clone()).unwrap();
        request.extensions_mut().insert(route);
        request
    };
    let seen = |instance: &str, role, attempt, body: &'static str| Seen {
        instance: instance.into(),
        role,
        attempt,
        body: Bytes::from_static(body.as_bytes()),
    };
    let shadow_stats = || shadow.map(|s| s.stats());

    // `a` up: served by `a`, with a copy on the secondary when shadowing.
    let ready = ServiceExt::<Request<B>>::ready(&mut service);
    let response = ready.await.unwrap().call(request("first")).await.unwrap();
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "a"
    );
    let mut expected = vec![seen("a", Role::Primary, 0, "first")];
    if let Some(shadow) = shadow {
        settle(|| shadow.stats().completed == 1).await;
        expected.push(seen(secondary.as_str(), Role::Shadow, 0, "first"));
    }
    assert_eq!(instances.take(), expected, "{layers:?}");

    // `a` down: replayed on the secondary with its body, or failed.
    instances.a_down.store(true, Ordering::Relaxed);
    let ready = ServiceExt::<Request<B>>::ready(&mut service);
    let result = ready.await.unwrap().call(request("second")).await;
    if let Some(shadow) = shadow {
        // The first attempt's copy is abandoned with its body, unread.
        settle(|| shadow.stats().dropped_body == 1).await;
        assert_eq!(shadow.stats().sent, 2, "{:?}", shadow_stats());
    }
    if layers.failover {
        let response = result.unwrap();
        let served = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(served, secondary.as_str());
        // The replay is attempt 1, and never shadowed.
        let replay = seen(secondary.as_str(), Role::Secondary, 1, "second");
        assert_eq!(instances.take(), vec![replay], "{layers:?}");
    } else {
        assert_eq!(result.unwrap_err().to_string(), "connection refused");
        assert_eq!(instances.take(), vec![], "{layers:?}");
    }
    instances.a_down.store(false, Ordering::Relaxed);
}

fn route_body(payload: &'static str) -> RouteBody {
    RouteBody::new(Full::new(Bytes::from_static(payload.as_bytes())))
}

fn full(payload: &'static str) -> Full<Bytes> {
    Full::new(Bytes::from_static(payload.as_bytes()))
}

#[tokio::test(start_paused = true)]
async fn the_same_pool_serves_every_subset_of_the_routing_layers() {
    let no_shadow = Layers {
        failover: false,
        shadow: false,
    };

    // No routing layer: the pool alone.
    let (topology, instances) = (three_instances(), Instances::default());
    let service = pool(&topology, &instances);
    exercise(service, route_body, no_shadow, None, &topology, &instances).await;

    // Shard: the body passes as it is.
    let (topology, instances) = (three_instances(), Instances::default());
    let service = shard(&topology).layer(pool(&topology, &instances));
    exercise(service, route_body, no_shadow, None, &topology, &instances).await;

    // Shard + failover, from the client's own body type.
    let (topology, instances) = (three_instances(), Instances::default());
    let service = ServiceBuilder::new()
        .layer(shard(&topology))
        .layer(HealthFailoverLayer::new(topology.clone()))
        .service(pool(&topology, &instances));
    let layers = Layers {
        failover: true,
        shadow: false,
    };
    exercise(service, full, layers, None, &topology, &instances).await;

    // Shard + shadow.
    let (topology, instances) = (three_instances(), Instances::default());
    let copies = shadow(&topology);
    let service = ServiceBuilder::new()
        .layer(shard(&topology))
        .layer(copies.clone())
        .service(pool(&topology, &instances));
    let layers = Layers {
        failover: false,
        shadow: true,
    };
    exercise(service, full, layers, Some(&copies), &topology, &instances).await;

    // Shard + failover + shadow: one capture serves the replay and the copy.
    let (topology, instances) = (three_instances(), Instances::default());
    let copies = shadow(&topology);
    let service = ServiceBuilder::new()
        .layer(shard(&topology))
        .layer(HealthFailoverLayer::new(topology.clone()))
        .layer(copies.clone())
        .service(pool(&topology, &instances));
    let layers = Layers {
        failover: true,
        shadow: true,
    };
    exercise(service, full, layers, Some(&copies), &topology, &instances).await;
}

#[tokio::test(start_paused = true)]
async fn layers_switched_at_run_time_keep_one_stack_type() {
    let mut stacks = Vec::new();
    for (failover, shadowing) in [(false, false), (true, false), (false, true), (true, true)] {
        let (topology, instances) = (three_instances(), Instances::default());
        let copies = shadowing.then(|| shadow(&topology));
        let service = ServiceBuilder::new()
            .layer(shard(&topology))
            .option_layer(failover.then(|| HealthFailoverLayer::new(topology.clone())))
            .option_layer(copies.clone())
            .service(pool(&topology, &instances));
        let layers = Layers {
            failover,
            shadow: shadowing,
        };
        // One vector: every combination is the same type.
        stacks.push((service, layers, copies, topology, instances));
    }
    for (service, layers, copies, topology, instances) in stacks {
        exercise(
            service,
            route_body,
            layers,
            copies.as_ref(),
            &topology,
            &instances,
        )
        .await;
    }
}
