//! [`RoutingLayer`]: the whole routing tier as one layer.

use foresight_core::KeyExtractor;
use foresight_core::edge::ErrorResponseLayer;
use foresight_failover::HealthFailoverLayer;
use foresight_shadow::ShadowWriteLayer;
use foresight_shard::ShardLayer;
use foresight_token::TokenPrefetchLayer;
use tower::layer::util::{Identity, Stack};
use tower::util::Either;
use tower::{Layer, ServiceBuilder};

use super::RecordLoadLayer;

/// The layers of the routing tier, outermost first: load recording (when a
/// forecaster is on; outside the edge, so it sees the final status), edge,
/// TokenPrefetch (when tokens are on), Shard, HealthFailover, ShadowWrite.
type Layers<K> = Stack<
    ShadowWriteLayer,
    Stack<
        HealthFailoverLayer,
        Stack<
            ShardLayer<K>,
            Stack<
                Either<TokenPrefetchLayer, Identity>,
                Stack<ErrorResponseLayer, Stack<Either<RecordLoadLayer, Identity>, Identity>>,
            >,
        >,
    >,
>;

/// The routing tier built by [`Foresight::builder`](super::Foresight::builder):
/// `record load → edge → TokenPrefetch → Shard → HealthFailover →
/// ShadowWrite`, in front of a [`Pool`](foresight_core::Pool).
///
/// Parts turned off in the builder (tokens, prediction) are left out at run
/// time without changing the layer's type. Cloning shares the state of
/// every part (topology, health, sessions, forecaster).
///
/// See the [module docs](super) for an example.
#[derive(Clone, Debug)]
#[must_use]
pub struct RoutingLayer<K> {
    layers: Layers<K>,
}

impl<K: KeyExtractor + Clone> RoutingLayer<K> {
    pub(super) fn new(
        record: Option<RecordLoadLayer>,
        tokens: Option<TokenPrefetchLayer>,
        shard: ShardLayer<K>,
        failover: HealthFailoverLayer,
        shadow: ShadowWriteLayer,
    ) -> Self {
        let layers = ServiceBuilder::new()
            .option_layer(record)
            .layer(crate::edge())
            .option_layer(tokens)
            .layer(shard)
            .layer(failover)
            .layer(shadow)
            .into_inner();
        Self { layers }
    }
}

impl<K, S> Layer<S> for RoutingLayer<K>
where
    Layers<K>: Layer<S>,
{
    type Service = <Layers<K> as Layer<S>>::Service;

    fn layer(&self, inner: S) -> Self::Service {
        self.layers.layer(inner)
    }
}
