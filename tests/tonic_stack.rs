//! The Foresight stack under a tonic gRPC client, over real loopback
//! sockets: `ShardLayer` keyed by the `x-tenant` metadata entry, a `Pool`
//! of one `tonic::transport::Channel` per instance, three tonic servers with
//! the standard health service, and the generated `HealthClient` on top.

mod support;

use std::time::Duration;

use foresight::core::BoxError;
use foresight::prelude::*;
use foresight::shard::Shard;
use support::{NamedServer, closed_port, grpc_status, owner_of, topology_of};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceBuilder;
use tower::util::MapErr;

type Stack = MapErr<Shard<Pool<Channel>, HeaderKey>, fn(BoxError) -> tonic::Status>;

fn client_over(topology: Topology) -> HealthClient<Stack> {
    let pool = Pool::new(topology.clone(), |instance| {
        let addr = instance.spec().addr.unwrap();
        Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(1))
            .connect_lazy()
    });
    let stack = ServiceBuilder::new()
        .map_err(grpc_status as fn(BoxError) -> tonic::Status)
        .layer(ShardLayer::new(topology, HeaderKey::new("x-tenant")))
        .service(pool);
    HealthClient::new(stack)
}

fn check(service: &str, tenant: Option<&str>) -> tonic::Request<HealthCheckRequest> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: service.to_owned(),
    });
    if let Some(tenant) = tenant {
        request
            .metadata_mut()
            .insert("x-tenant", tenant.parse().unwrap());
    }
    request
}

#[tokio::test]
async fn a_tenant_always_reaches_its_owner() {
    let mut servers = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        servers.push(NamedServer::start_grpc(name).await);
    }
    let topology = topology_of(&servers);
    let mut client = client_over(topology.clone());

    let mut owners = std::collections::HashSet::new();
    for i in 0..40 {
        let tenant = format!("tenant-{i}");
        let owner = owner_of(&topology, &ClientKey::from(tenant.as_str()));
        owners.insert(owner.clone());
        for _ in 0..3 {
            let response = client.check(check("", Some(&tenant))).await.unwrap();
            assert_eq!(
                response
                    .extensions()
                    .get::<ServedBy>()
                    .map(|s| s.0.as_str()),
                Some(owner.as_str()),
                "{tenant}"
            );
            assert_eq!(
                response.into_inner().status(),
                ServingStatus::Serving.into()
            );
        }
        // Every server knows only its own entry: the owner answers SERVING,
        // the others would answer NOT_FOUND. So the call really went to the
        // owner, and never to another instance.
        let own = client.check(check(&owner, Some(&tenant))).await.unwrap();
        assert_eq!(own.into_inner().status(), ServingStatus::Serving.into());
        for other in servers.iter().filter(|s| s.name != owner) {
            let error = client
                .check(check(&other.name, Some(&tenant)))
                .await
                .unwrap_err();
            assert_eq!(
                error.code(),
                Code::NotFound,
                "{tenant} asked {}",
                other.name
            );
        }
    }
    assert_eq!(owners.len(), 3, "tenants spread over every instance");
}

#[tokio::test]
async fn a_call_without_a_tenant_fails_with_invalid_argument() {
    let server = NamedServer::start_grpc("solo").await;
    let mut client = client_over(topology_of([&server]));

    let error = client.check(check("", None)).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(error.message().contains("x-tenant"), "{}", error.message());

    let error = client.check(check("", Some(""))).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);

    // The client is still usable afterwards.
    let response = client.check(check("solo", Some("t"))).await.unwrap();
    assert_eq!(
        response.into_inner().status(),
        ServingStatus::Serving.into()
    );
}

#[tokio::test]
async fn an_unreachable_instance_is_unavailable() {
    let topology =
        Topology::from_instances([InstanceSpec::new("gone").with_addr(closed_port().await)])
            .unwrap();
    let mut client = client_over(topology);

    let error = client.check(check("", Some("t"))).await.unwrap_err();
    assert_eq!(error.code(), Code::Unavailable, "{error:?}");
}
