use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use foresight_core::Topology;
use foresight_core::key::{KeyExtractor, MissingKeyPolicy};
use foresight_core::rank::BoundedLoad;
use tower_layer::Layer;

use crate::metrics::ShardMetrics;
use crate::order::Ordering;
use crate::service::Shard;

/// Candidates per key unless set otherwise: a primary and a secondary.
pub const DEFAULT_REPLICAS: usize = 2;

/// Seed of the key hash unless set otherwise. Routers that must agree on
/// every key use the same seed.
pub const DEFAULT_SEED: u64 = 0;

/// Computes a [`Route`](foresight_core::Route) for each request.
///
/// See the [crate docs](crate) for the default and a customised setup.
/// Cloning the layer shares the topology and the extractor.
#[must_use]
pub struct ShardLayer<K> {
    pub(crate) topology: Topology,
    pub(crate) extractor: Arc<K>,
    pub(crate) replicas: usize,
    pub(crate) missing_key: MissingKeyPolicy,
    pub(crate) seed: u64,
    pub(crate) trusted_hop: bool,
    pub(crate) order: Ordering,
    pub(crate) metrics: ShardMetrics,
}

impl<K> Clone for ShardLayer<K> {
    fn clone(&self) -> Self {
        Self {
            topology: self.topology.clone(),
            extractor: self.extractor.clone(),
            replicas: self.replicas,
            missing_key: self.missing_key,
            seed: self.seed,
            trusted_hop: self.trusted_hop,
            order: self.order,
            metrics: self.metrics.clone(),
        }
    }
}

impl<K> fmt::Debug for ShardLayer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardLayer")
            .field("instances", &self.topology.load().len())
            .field("replicas", &self.replicas)
            .field("missing_key", &self.missing_key)
            .field("seed", &self.seed)
            .field("trusted_hop", &self.trusted_hop)
            .field("bounded", &self.order.bounded)
            .field("slow_start", &self.order.slow_start)
            .finish()
    }
}

impl<K: KeyExtractor> ShardLayer<K> {
    /// Routes by the key `extractor` reads, over `topology`, with
    /// [`DEFAULT_REPLICAS`] candidates, [`MissingKeyPolicy::Reject`],
    /// [`DEFAULT_SEED`], and every client-sent
    /// [`ROLE_HEADER`](foresight_core::ROLE_HEADER) stripped.
    pub fn new(topology: Topology, extractor: K) -> Self {
        Self {
            topology,
            extractor: Arc::new(extractor),
            replicas: DEFAULT_REPLICAS,
            missing_key: MissingKeyPolicy::Reject,
            seed: DEFAULT_SEED,
            trusted_hop: false,
            order: Ordering::default(),
            metrics: ShardMetrics::register(),
        }
    }

    /// Number of ranked candidates per key, 1 to
    /// [`MAX_CANDIDATES`](foresight_core::rank::MAX_CANDIDATES) (clamped).
    pub fn with_replicas(mut self, k: usize) -> Self {
        self.replicas = k.clamp(1, foresight_core::rank::MAX_CANDIDATES);
        self
    }

    /// What to do with requests without a usable key.
    pub fn with_missing_key(mut self, policy: MissingKeyPolicy) -> Self {
        self.missing_key = policy;
        self
    }

    /// Seed of the key hash.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether the hop in front is trusted to set
    /// [`ROLE_HEADER`](foresight_core::ROLE_HEADER) (default: no). The layer
    /// is the routing tier's entry, so by default it removes that header
    /// from every request before routing it: a client cannot pass its
    /// request off as a shadow copy, whichever layers follow. Set this only
    /// when the hop in front is another router of the fleet, together with
    /// `ShadowWriteLayer::with_trusted_hop` (foresight-shadow) below, so
    /// that its shadow copies pass through.
    pub fn with_trusted_hop(mut self, trusted: bool) -> Self {
        self.trusted_hop = trusted;
        self
    }

    /// Consistent hashing with bounded loads (off by default): a request
    /// whose primary holds `⌈c · mean⌉` requests in flight or more goes to
    /// the next candidate of its rendezvous order below that cap, which is
    /// its named secondary first; the candidates it skipped follow it in the
    /// route, so shadows and failover still reach its home. See
    /// [`BoundedLoad`]. In-flight counts are those the
    /// [`Pool`](foresight_core::Pool) keeps.
    pub fn with_bounded_load(mut self, bounded: BoundedLoad) -> Self {
        self.order.bounded = Some(bounded);
        self
    }

    /// Slow start (off by default): an instance that joins the topology
    /// after it was built, or is readmitted after an ejection, takes new
    /// sessions gradually over `ramp`. A key moves to it once its own
    /// fixed draw falls below the share of the ramp elapsed, so the
    /// instance's share grows linearly to its full weight, each key moves
    /// at most once, and until then the key keeps its next candidate.
    /// A zero `ramp` turns it off.
    pub fn with_slow_start(mut self, ramp: Duration) -> Self {
        self.order.slow_start = (!ramp.is_zero()).then_some(ramp);
        self
    }

    /// The topology routed over.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }
}

impl<S, K> Layer<S> for ShardLayer<K> {
    type Service = Shard<S, K>;

    fn layer(&self, inner: S) -> Self::Service {
        Shard {
            inner,
            members: self.topology.cache(),
            layer: self.clone(),
        }
    }
}
