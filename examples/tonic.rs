//! Foresight as a client-side stack under a tonic gRPC client.
//!
//! Three tonic servers on loopback ports serve the standard
//! `grpc.health.v1.Health` service from `tonic-health`. The client routes by
//! tenant: `ShardLayer` reads the `x-tenant` metadata entry (an HTTP/2
//! header by the time the stack sees the request) and a `Pool` holds one
//! `tonic::transport::Channel` per instance. The generated `HealthClient`
//! runs directly over that stack: the pool takes and returns the channel's
//! own body types. Routing errors become gRPC statuses with a fitting code
//! (`INVALID_ARGUMENT` for a call without a tenant) rather than `UNKNOWN`.
//!
//! Each server also registers a health entry named after itself, which only
//! it knows: asking for that entry proves which server really answered.
//!
//! Run with `cargo run --example tonic`.

use std::net::SocketAddr;
use std::time::Duration;

use foresight::prelude::*;
use tokio::net::TcpListener;
use tonic::Code;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceBuilder;

const INSTANCES: [&str; 3] = ["alpha", "beta", "gamma"];
const TENANTS: [&str; 8] = [
    "acme", "globex", "initech", "wayne", "vandelay", "oscorp", "stark", "wonka",
];
const CALLS_PER_TENANT: usize = 3;

/// An instance: a tonic server with the standard health service.
async fn start_instance(name: &'static str) -> SocketAddr {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(name, ServingStatus::Serving)
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        Server::builder()
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .expect("instance server");
    });
    addr
}

#[tokio::main]
async fn main() {
    let mut specs = Vec::new();
    for name in INSTANCES {
        specs.push(InstanceSpec::new(name).with_addr(start_instance(name).await));
    }
    let topology = Topology::from_instances(specs).expect("valid topology");

    // `connect_lazy` builds the channel without I/O, which is what the
    // pool's factory needs: it runs again when the membership changes.
    let pool = Pool::new(topology.clone(), |instance| {
        let addr = instance.spec().addr.expect("every instance has an address");
        Endpoint::from_shared(format!("http://{addr}"))
            .expect("valid URI")
            .connect_timeout(Duration::from_secs(1))
            .connect_lazy()
    });
    let stack = ServiceBuilder::new()
        .map_err(foresight::grpc::status)
        .layer(ShardLayer::new(topology, HeaderKey::new("x-tenant")))
        .service(pool);
    let mut client = HealthClient::new(stack);

    println!("{:<10} {:<8} {:<8} calls", "tenant", "instance", "status");
    for tenant in TENANTS {
        let mut served = Vec::new();
        for _ in 0..CALLS_PER_TENANT {
            let mut request = tonic::Request::new(HealthCheckRequest::default());
            request
                .metadata_mut()
                .insert("x-tenant", tenant.parse().expect("ASCII tenant"));
            let response = client.check(request).await.expect("health check");
            let ServedBy(instance) = response
                .extensions()
                .get::<ServedBy>()
                .cloned()
                .expect("the pool records who served");
            served.push(instance);
        }
        assert!(
            served.windows(2).all(|w| w[0] == w[1]),
            "{tenant} moved between instances: {served:?}"
        );

        // Only the instance itself knows its own entry: this reply comes
        // from the server, not from the pool's bookkeeping.
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: served[0].to_string(),
        });
        request
            .metadata_mut()
            .insert("x-tenant", tenant.parse().expect("ASCII tenant"));
        let status = client
            .check(request)
            .await
            .expect("the owner knows itself")
            .into_inner()
            .status();
        println!(
            "{tenant:<10} {:<8} {:<8} {}",
            served[0].as_str(),
            status.as_str_name(),
            served.len()
        );
    }

    let error = client
        .check(HealthCheckRequest::default())
        .await
        .expect_err("no tenant, no route");
    println!("\nno x-tenant → {:?}: {}", error.code(), error.message());
    assert_eq!(error.code(), Code::InvalidArgument);
}
