//! `foresight-gateway`: a standalone gateway built on the Foresight layers.
//!
//! It reads a TOML file ([`config`]), listens on a public address (HTTP/1.1
//! and HTTP/2) and a separate admin address ([`admin`]), and routes every
//! request by its client key through the routing tier of
//! `Foresight::builder()`: sticky weighted rendezvous hashing, health-based
//! failover with one shared forecaster, shadow copies to the secondary
//! (reads coalesced per session, writes only to shadow-aware instances).
//! Around it: tower-http's edge hygiene ([`edge`]), the reverse-proxy rules
//! of RFC 9110 ([`proxy_headers`]), header-read and idle timeouts with a 408
//! and a connection limit ([`server`]), hot reload of the instances on
//! SIGHUP and file change ([`reload`]), a graceful drain on SIGTERM, and
//! plain HTTP or optional TLS to the instances ([`upstream_tls`]).
//!
//! ```text
//! cargo install --path layers/gateway
//! foresight-gateway --config gateway.toml --check   # validate only
//! foresight-gateway --config gateway.toml
//! ```
//!
//! A minimal configuration (every other setting has a default, see
//! [`config::Config`]):
//!
//! ```toml
//! [listen]
//! public = "0.0.0.0:8080"
//! admin = "127.0.0.1:9090"
//!
//! [key]
//! kind = "cookie"
//! name = "__Host-session"
//!
//! [[instance]]
//! id = "alpha"
//! addr = "10.0.0.1:8080"
//!
//! [[instance]]
//! id = "beta"
//! addr = "10.0.0.2:8080"
//! weight = 2.0
//! ```

#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
mod conn;
pub mod edge;
pub mod key;
pub mod proxy_headers;
pub mod reload;
pub mod server;
pub mod upstream_tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;

use axum::body::Body;
use foresight::ServiceBuilderExt as _;
use foresight::core::key::MissingKeyPolicy;
use foresight::core::rank::BoundedLoad;
use foresight::core::{Pool, Topology};
use foresight::forward::Forward;
use foresight::shadow::ShadowWriteLayer;
use foresight::stack::{BuildError, Foresight};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceBuilder;

use crate::config::{Config, MissingKey};
use crate::key::GatewayKey;
use crate::server::ListenerLimits;
use crate::upstream_tls::{TlsSetupError, UpstreamTls};

/// Why the gateway could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The topology of the configuration is invalid.
    #[error("invalid instances")]
    Topology(#[from] foresight::core::TopologyError),
    /// The routing tier could not be built.
    #[error("cannot build the routing tier")]
    Build(#[from] BuildError),
    /// The `[upstream_tls]` settings cannot be used.
    #[error("cannot set up TLS to the instances")]
    UpstreamTls(#[from] TlsSetupError),
}

/// The addresses the gateway listens on, once bound.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    /// The public listener.
    pub public: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
}

/// Runs the gateway of `config` (read from `path`, which is watched for
/// reloads) until `shutdown` resolves, then drains. `on_bound` is called
/// once both listeners are bound.
pub async fn run(
    path: PathBuf,
    config: Config,
    prometheus: PrometheusHandle,
    shutdown: impl std::future::Future<Output = ()>,
    on_bound: impl FnOnce(Bound),
) -> Result<(), RunError> {
    let topology = Topology::from_instances(config.instance_specs())?;
    let public = bind(*config.listen.public.get_ref()).await?;
    let admin = bind(*config.listen.admin.get_ref()).await?;
    let bound = Bound {
        public: public.local_addr().map_err(|source| RunError::Bind {
            addr: *config.listen.public.get_ref(),
            source,
        })?,
        admin: admin.local_addr().map_err(|source| RunError::Bind {
            addr: *config.listen.admin.get_ref(),
            source,
        })?,
    };

    let service = routed(&config, &topology, GatewayKey::from_config(&config))?;

    let (drain, draining) = watch::channel(false);
    let admin_router = admin::router(admin::AdminState {
        topology: topology.clone(),
        prometheus,
        draining: draining.clone(),
    });
    let mut admin_stop = draining.clone();
    let admin_task = tokio::spawn(async move {
        let stop = async move { server::stopped(&mut admin_stop).await };
        if let Err(error) = axum::serve(admin, admin_router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(%error, "admin listener failed");
        }
    });
    tokio::spawn(reload::watch_config(
        path,
        topology.clone(),
        draining.clone(),
    ));

    let limits = ListenerLimits {
        max_connections: config.limits.max_connections,
        header_read_timeout: config.limits.header_read_timeout,
        idle_timeout: config.limits.idle_timeout,
        drain_timeout: config.limits.drain_timeout,
    };
    on_bound(bound);
    tracing::info!(public = %bound.public, admin = %bound.admin, instances = topology.load().len(), "gateway listening");
    let serving = server::serve(public, service, limits, draining);
    let mut serving = std::pin::pin!(serving);
    tokio::select! {
        () = &mut serving => {}
        () = shutdown => {
            tracing::info!("draining");
            let _ = drain.send(true);
            serving.await;
        }
    }
    let _ = drain.send(true);
    let _ = admin_task.await;
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { addr, source })
}

/// The public service for the key extractor of `config`: one concrete
/// type, so that no request goes through a boxed service.
fn routed(
    config: &Config,
    topology: &Topology,
    key: GatewayKey,
) -> Result<
    impl tower::Service<
        http::Request<hyper::body::Incoming>,
        Response = http::Response<Body>,
        Error = Infallible,
        Future: Send,
    > + Clone
    + Send
    + 'static,
    RunError,
> {
    let missing = match config.key.missing {
        MissingKey::Spread => MissingKeyPolicy::SpreadRandomly,
        MissingKey::Reject => MissingKeyPolicy::Reject,
    };
    let policy = config
        .shadow_policy()
        .expect("a validated config has a valid [shadow] section");
    let shadow = ShadowWriteLayer::new(topology.clone())
        .with_policy(policy)
        .with_sampling(if config.shadow.enabled {
            *config.shadow.sampling.get_ref()
        } else {
            0.0
        });
    let builder = Foresight::builder(topology.clone())
        .with_key(key)
        .with_missing_key(missing)
        .without_tokens()
        .with_shadow(shadow)
        .with_health_lead(config.forecast.health_lead);
    let builder = builder.with_slow_start(config.routing.slow_start);
    let builder = match &config.routing.balance_factor {
        Some(factor) => builder.with_bounded_load(BoundedLoad::new(*factor.get_ref())),
        None => builder,
    };
    let builder = if config.forecast.enabled {
        builder
    } else {
        builder.without_prediction()
    };
    let foresight = builder.build()?;

    let upstream = UpstreamTls::from_config(&config.upstream_tls)?
        .upstream(config.limits.upstream_connect_timeout)
        .with_max_connections(config.limits.upstream_max_connections)
        .with_idle_timeout(config.limits.upstream_idle_timeout);
    let pool =
        Pool::new(topology.clone(), move |i| Forward::new(&upstream, i)).with_instance_header(true);
    let routing = ServiceBuilder::new().foresight(&foresight).service(pool);
    Ok(edge::public_service(routing, config))
}
