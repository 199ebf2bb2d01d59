//! `Foresight::builder()`: the default routing tier authenticates, routes and
//! records into one forecaster, and that forecaster's predictions reach
//! HealthFailoverLayer.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use foresight::core::HealthState;
use foresight::forecast::{Forecaster, Signal};
use foresight::prelude::*;
use foresight::stack::Foresight;
use foresight::token::{KeyRing, LocalIssuer, SigningKey, TokenIssuer, TokenRequest, TokioClock};
use http::StatusCode;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

const INSTANCES: [&str; 3] = ["alpha", "beta", "gamma"];

fn topology() -> Topology {
    Topology::from_instances(INSTANCES.map(InstanceSpec::new)).expect("valid topology")
}

/// What the leaf of the routing tier receives.
type LeafRequest = http::Request<foresight::core::RouteBody>;

/// Each instance answers with its own name.
fn pool(
    topology: Topology,
) -> Pool<
    impl Service<
        LeafRequest,
        Response = http::Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
    + Send,
> {
    Pool::new(topology, |instance| {
        let name = instance.id().to_string();
        service_fn(move |_req| {
            let name = name.clone();
            async move { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(name)))) }
        })
    })
}

fn forecaster() -> Forecaster {
    Forecaster::builder()
        .with_step(Duration::from_secs(1))
        .with_system_sampler(false)
        .with_health(Signal::Latency, 0.05)
        .build()
        .expect("valid settings")
}

async fn body(
    response: http::Response<impl hyper::body::Body<Error = impl std::fmt::Debug>>,
) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn bearer(token: &str) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .expect("request")
}

#[tokio::test]
async fn the_default_stack_authenticates_routes_and_records_every_request() {
    let topology = topology();
    let forecaster = forecaster();
    let foresight = Foresight::builder(topology.clone())
        .with_forecaster(forecaster.clone())
        .build()
        .expect("builds");
    let gateway = ServiceBuilder::new()
        .layer(foresight.routing_layer())
        .service(pool(topology));

    // No token: a bare Bearer challenge.
    let anonymous = gateway
        .clone()
        .oneshot(http::Request::new(Full::new(Bytes::new())))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers()[WWW_AUTHENTICATE], "Bearer");

    // A token signed by another key with the same kid is rejected.
    let clock = TokioClock::shared();
    let forged_ring = KeyRing::new(
        SigningKey::generate_ed25519("foresight-1").unwrap(),
        clock.clone(),
    );
    let forger = LocalIssuer::new(forged_ring, "foresight", "foresight", clock);
    let forged = forger
        .issue(TokenRequest::new(
            "mallory",
            "s-m",
            Duration::from_secs(300),
        ))
        .await
        .unwrap();
    let rejected = gateway
        .clone()
        .oneshot(bearer(&forged.token))
        .await
        .unwrap();
    assert_eq!(rejected.status(), StatusCode::UNAUTHORIZED);
    let challenge = rejected.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    assert!(challenge.contains("signature"), "{challenge}");

    // A token of the stack's own issuer is served, always by the same
    // instance for the same subject.
    let token = foresight
        .issuer()
        .expect("tokens on by default")
        .issue(TokenRequest::new("alice", "s-a", Duration::from_secs(300)))
        .await
        .unwrap();
    let mut served = Vec::new();
    for _ in 0..5 {
        let response = gateway.clone().oneshot(bearer(&token.token)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        served.push(body(response).await);
    }
    assert!(INSTANCES.contains(&served[0].as_str()), "{served:?}");
    assert!(served.windows(2).all(|w| w[0] == w[1]), "{served:?}");

    // Every request, refused or served, is one sample of the request rate;
    // none was a server error.
    forecaster.tick();
    let rate = forecaster
        .forecast(Signal::RequestRate, Duration::ZERO)
        .unwrap();
    assert_eq!(rate.mean, 7.0);
    assert_eq!(
        forecaster
            .forecast(Signal::Errors, Duration::ZERO)
            .unwrap()
            .mean,
        0.0
    );
}

/// Feeds `instance` a latency that climbs 0.3 ms per step (second) from
/// 4 ms to 48.7 ms, with a little deterministic noise, and trains: the
/// 50 ms threshold is crossed about 4 s after the last sample.
fn feed_a_climbing_latency(forecaster: &Forecaster, instance: &InstanceId) {
    for step in 0..150u32 {
        let noise = f64::from((step * 7919) % 13) * 1e-5;
        forecaster.record_instance(instance, 0.004 + f64::from(step) * 0.0003 + noise);
        forecaster.tick();
    }
    forecaster.retrain_blocking();
}

async fn served_by(
    gateway: &mut impl Service<
        http::Request<Full<Bytes>>,
        Response = http::Response<impl hyper::body::Body<Error = impl std::fmt::Debug>>,
        Error = Infallible,
    >,
    key: &str,
) -> String {
    let request = http::Request::builder()
        .header("x-account-id", key)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = gateway.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    body(response).await
}

async fn victim_state_after_a_predicted_climb(prediction: bool) -> HealthState {
    let topology = topology();
    let forecaster = forecaster();
    let builder = Foresight::builder(topology.clone())
        .with_key(HeaderKey::new("x-account-id"))
        .without_tokens()
        .with_health_lead(Duration::from_secs(10));
    let builder = if prediction {
        builder.with_forecaster(forecaster.clone())
    } else {
        builder.without_prediction()
    };
    let foresight = builder.build().expect("builds");
    let mut gateway = ServiceBuilder::new()
        .layer(foresight.routing_layer())
        .service(pool(topology.clone()));

    let victim = InstanceId::from(served_by(&mut gateway, "k1").await);
    feed_a_climbing_latency(&forecaster, &victim);
    assert!(
        forecaster
            .instance_forecast(&victim, Duration::ZERO)
            .is_some_and(|f| f.mean < 0.05),
        "the victim is below the threshold now"
    );
    assert!(
        forecaster
            .instance_will_degrade(&victim, Duration::from_secs(10))
            .is_some(),
        "and predicted above it within the lead"
    );
    // The next requests let the layer ask the signal.
    for _ in 0..3 {
        served_by(&mut gateway, "k1").await;
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    topology.health(&victim).expect("known instance").state()
}

#[tokio::test]
async fn the_shared_forecaster_moves_an_instance_out_before_it_degrades() {
    assert_eq!(
        victim_state_after_a_predicted_climb(true).await,
        HealthState::Degraded
    );
}

#[tokio::test]
async fn without_prediction_the_same_climb_changes_nothing() {
    assert_eq!(
        victim_state_after_a_predicted_climb(false).await,
        HealthState::Healthy
    );
}

/// Sends one POST through the default routing tier with `shadow` (if any)
/// and returns the roles of what reached the instances.
async fn roles_of_a_post(shadow: Option<foresight::shadow::ShadowPolicy>) -> Vec<Role> {
    let topology = topology();
    let builder = Foresight::builder(topology.clone())
        .with_key(HeaderKey::new("x-account-id"))
        .without_tokens()
        .without_prediction();
    let builder = match shadow {
        Some(policy) => builder.with_shadow(policy),
        None => builder,
    };
    let foresight = builder.build().expect("builds");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let leaf = Pool::new(topology, {
        let seen = seen.clone();
        move |_instance| {
            let seen = seen.clone();
            service_fn(move |request: LeafRequest| {
                let role = request.extensions().get::<Route>().expect("routed").role;
                seen.lock().unwrap().push(role);
                // The handler reads the body, as an instance forwarding it
                // would: the copy takes it from there.
                async move {
                    let _ = request.into_body().collect().await;
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::new())))
                }
            })
        }
    });
    let gateway = ServiceBuilder::new()
        .layer(foresight.routing_layer())
        .service(leaf);
    let request = http::Request::post("/orders")
        .header("x-account-id", "k1")
        .body(Full::new(Bytes::from_static(b"order")))
        .unwrap();
    let response = gateway.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A copy runs on a task of its own.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    seen.lock().unwrap().clone()
}

#[tokio::test]
async fn the_default_stack_never_copies_a_post_and_a_policy_can_allow_it() {
    assert_eq!(roles_of_a_post(None).await, [Role::Primary]);
    let aware = foresight::shadow::ShadowPolicy::new().with_shadow_aware(INSTANCES);
    let mut roles = roles_of_a_post(Some(aware)).await;
    roles.sort_by_key(|r| *r == Role::Shadow);
    assert_eq!(roles, [Role::Primary, Role::Shadow]);
}
