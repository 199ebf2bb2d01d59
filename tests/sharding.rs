//! ShardLayer + Pool in front of three real hyper servers on loopback,
//! reached through `Forward` services.

mod support;

use std::collections::HashMap;

use bytes::Bytes;
use foresight::forward::{Forward, Upstream};
use foresight::prelude::*;
use http::Request;
use http_body_util::{BodyExt, Full};
use support::NamedServer;
use tower::{Service, ServiceBuilder, ServiceExt};

async fn serve(
    stack: &mut (
             impl Service<
        Request<Full<Bytes>>,
        Response = http::Response<
            foresight::core::edge::EdgeBody<foresight::forward::ResponseBody<Full<Bytes>>>,
        >,
        Error = std::convert::Infallible,
    > + Clone
         ),
    key: &str,
) -> (http::StatusCode, String, Option<ServedBy>) {
    let request = Request::builder()
        .uri("/whoami")
        .header("x-session", key)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = stack.ready().await.unwrap().call(request).await.unwrap();
    let status = response.status();
    let served = response.extensions().get::<ServedBy>().cloned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap(), served)
}

#[tokio::test]
async fn sessions_stick_and_move_only_when_their_instance_leaves() {
    let mut servers = HashMap::new();
    for name in ["alpha", "beta", "gamma"] {
        servers.insert(name, NamedServer::start(name).await);
    }
    let topology = Topology::from_instances(
        servers
            .values()
            .map(|s| InstanceSpec::new(s.name.as_str()).with_addr(s.addr)),
    )
    .unwrap();
    let upstream = Upstream::http();
    let pool = Pool::new(topology.clone(), move |instance| {
        Forward::<Full<Bytes>>::new(&upstream, instance)
    });
    let mut stack = ServiceBuilder::new()
        .layer(foresight::edge())
        .layer(ShardLayer::new(
            topology.clone(),
            HeaderKey::new("x-session"),
        ))
        .service(pool);

    let keys: Vec<String> = (0..200).map(|i| format!("session-{i}")).collect();
    let mut owner = HashMap::new();
    for key in &keys {
        let (status, body, served) = serve(&mut stack, key).await;
        assert_eq!(status, 200);
        assert_eq!(served.unwrap().0.as_str(), body);
        owner.insert(key.clone(), body);
    }
    let per_instance =
        |owner: &HashMap<String, String>, name: &str| owner.values().filter(|o| *o == name).count();
    for name in ["alpha", "beta", "gamma"] {
        assert!(per_instance(&owner, name) > 30, "{name} owns too few keys");
    }

    // Sticky: the same key always reaches the same instance.
    for key in keys.iter().step_by(7) {
        for _ in 0..3 {
            assert_eq!(serve(&mut stack, key).await.1, owner[key]);
        }
    }

    // beta leaves: only its keys move, each to its secondary.
    let secondaries: HashMap<_, _> = keys
        .iter()
        .map(|k| {
            (
                k.clone(),
                topology.rank(&ClientKey::from(k.as_str()), 0, 2)[1].to_string(),
            )
        })
        .collect();
    servers.get_mut("beta").unwrap().stop();
    topology.remove(&"beta".into());
    for key in &keys {
        let (status, body, _) = serve(&mut stack, key).await;
        assert_eq!(status, 200);
        if owner[key] == "beta" {
            assert_eq!(body, secondaries[key], "{key} moved to its secondary");
        } else {
            assert_eq!(body, owner[key], "{key} stayed");
        }
    }

    // beta comes back on a new port: exactly its keys return.
    let beta = NamedServer::start("beta").await;
    topology
        .insert(InstanceSpec::new("beta").with_addr(beta.addr))
        .unwrap();
    for key in &keys {
        assert_eq!(serve(&mut stack, key).await.1, owner[key]);
    }
}

#[tokio::test]
async fn keyless_requests_get_a_400_and_a_dead_instance_a_typed_error() {
    let server = NamedServer::start("solo").await;
    let topology =
        Topology::from_instances([InstanceSpec::new("solo").with_addr(server.addr)]).unwrap();
    let upstream = Upstream::http();
    let pool = Pool::new(topology.clone(), move |i| {
        Forward::<Full<Bytes>>::new(&upstream, i)
    });
    let stack = ServiceBuilder::new()
        .layer(foresight::edge())
        .layer(ShardLayer::new(topology, HeaderKey::new("x-session")))
        .service(pool);

    let response = stack
        .clone()
        .oneshot(Request::new(Full::new(Bytes::new())))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("x-session"));

    drop(server);
    let request = Request::builder()
        .header("x-session", "k")
        .body(Full::new(Bytes::new()))
        .unwrap();
    // A refused connection: 502 with retry-after, no hang.
    let response = stack.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["retry-after"], "1");
}
