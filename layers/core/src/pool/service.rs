use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::{ArcSwap, Cache};
use http::{Request, Response};
use rustc_hash::FxHashMap;
use tower_service::Service;

use super::error::PoolError;
use super::future::ResponseFuture;
use crate::error::BoxError;
use crate::health::HealthSlot;
use crate::instance::InstanceId;
use crate::route::Route;
use crate::topology::{Instance, Topology};

/// How long a response future waits for its instance's service to become
/// ready before failing with [`PoolError::NotReady`].
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(1);

type Factory<S> = dyn Fn(&Instance) -> S + Send + Sync;

struct Table<S> {
    epoch: u64,
    /// Each member's service, and its health slot, whose in-flight count
    /// the pool keeps.
    services: FxHashMap<InstanceId, (S, Arc<HealthSlot>)>,
}

struct Shared<S> {
    topology: Topology,
    factory: Box<Factory<S>>,
    table: Arc<ArcSwap<Table<S>>>,
    rebuild: Mutex<()>,
}

type TableCache<S> = Cache<Arc<ArcSwap<Table<S>>>, Arc<Table<S>>>;

/// Sends each request to the service of its route's target instance.
///
/// See the [module docs](super) for the readiness policy and an example.
/// Cloning a `Pool` shares its services (it is an `Arc`), so per-request
/// clones, as axum makes, cost one reference count.
pub struct Pool<S> {
    shared: Arc<Shared<S>>,
    /// This clone's view of the table: one atomic load per request while the
    /// membership is unchanged.
    table: TableCache<S>,
    ready_timeout: Duration,
    instance_header: bool,
}

impl<S> Clone for Pool<S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            table: self.table.clone(),
            ready_timeout: self.ready_timeout,
            instance_header: self.instance_header,
        }
    }
}

impl<S> fmt::Debug for Pool<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("instances", &self.shared.table.load().services.len())
            .field("ready_timeout", &self.ready_timeout)
            .field("instance_header", &self.instance_header)
            .finish()
    }
}

impl<S: Clone> Pool<S> {
    /// A pool over `topology` whose per-instance services `factory` builds.
    pub fn new<F>(topology: Topology, factory: F) -> Self
    where
        F: Fn(&Instance) -> S + Send + Sync + 'static,
    {
        let members = topology.snapshot();
        let services = members
            .iter()
            .map(|i| (i.id().clone(), (factory(i), i.health().clone())))
            .collect();
        let table = Arc::new(ArcSwap::from_pointee(Table {
            epoch: members.epoch(),
            services,
        }));
        Self {
            shared: Arc::new(Shared {
                topology,
                factory: Box::new(factory),
                table: table.clone(),
                rebuild: Mutex::new(()),
            }),
            table: Cache::new(table),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            instance_header: false,
        }
    }

    /// How long a request waits for its instance to be ready (default
    /// [`DEFAULT_READY_TIMEOUT`]).
    #[must_use]
    pub fn with_ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Whether responses carry an `x-foresight-instance` header naming the
    /// instance that served them (default: no; the [`ServedBy`] extension is
    /// always set).
    ///
    /// [`ServedBy`]: crate::ServedBy
    #[must_use]
    pub fn with_instance_header(mut self, enabled: bool) -> Self {
        self.instance_header = enabled;
        self
    }

    /// The topology the pool follows.
    pub fn topology(&self) -> &Topology {
        &self.shared.topology
    }

    /// The service of `instance`, if it is a member.
    #[inline]
    pub fn service(&mut self, instance: &InstanceId) -> Option<S> {
        self.entry(instance).map(|(service, _)| service)
    }

    #[inline]
    fn entry(&mut self, instance: &InstanceId) -> Option<(S, Arc<HealthSlot>)> {
        if self.table.load().epoch != self.shared.topology.epoch() {
            self.sync();
        }
        self.table.load().services.get(instance).cloned()
    }

    /// Rebuilds the service table when the topology moved on, keeping the
    /// services of instances that stayed.
    #[cold]
    fn sync(&self) {
        let _rebuilding = self
            .shared
            .rebuild
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.shared.table.load_full();
        let members = self.shared.topology.snapshot();
        if current.epoch == members.epoch() {
            return;
        }
        let services = members
            .iter()
            .map(|i| {
                let service = current
                    .services
                    .get(i.id())
                    .map(|(service, _)| service.clone())
                    .unwrap_or_else(|| (self.shared.factory)(i));
                (i.id().clone(), (service, i.health().clone()))
            })
            .collect();
        self.shared.table.store(Arc::new(Table {
            epoch: members.epoch(),
            services,
        }));
    }
}

impl<S, B, RB> Service<Request<B>> for Pool<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = ResponseFuture<S, Request<B>>;

    /// Always ready: each response future readies its own instance.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let Some(target) = request
            .extensions()
            .get::<Route>()
            .map(|r| r.target.clone())
        else {
            return ResponseFuture::failed(PoolError::NoRoute);
        };
        match self.entry(&target) {
            Some((service, slot)) => ResponseFuture::new(
                service,
                request,
                target,
                slot.track(),
                self.ready_timeout,
                self.instance_header,
            ),
            None => {
                metrics::counter!("foresight_pool_errors_total", "kind" => "unknown_target")
                    .increment(1);
                ResponseFuture::failed(PoolError::UnknownTarget(target))
            }
        }
    }
}
