use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use foresight_core::{InstanceId, Topology};
use tokio::sync::Semaphore;
use tower_layer::Layer;

use crate::coalesce::Coalescer;
use crate::policy::ShadowPolicy;
use crate::service::ShadowWrite;
use crate::stats::{Counters, ShadowStats};

/// Shadows in flight per secondary instance, beyond which copies are
/// dropped.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;
/// A shadow (waiting for the body, the secondary's readiness and its
/// response) is abandoned after this long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest body copied to a shadow: the default cap of the request's body
/// capture, 64 KiB.
pub const DEFAULT_BODY_CAP: usize = foresight_core::body::DEFAULT_CAPTURE_CAP;

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) max_in_flight: usize,
    pub(crate) timeout: Duration,
    pub(crate) sampling: f64,
    pub(crate) trusted: bool,
    pub(crate) compare: bool,
    pub(crate) body_cap: usize,
    pub(crate) policy: ShadowPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            timeout: DEFAULT_TIMEOUT,
            sampling: 1.0,
            trusted: false,
            compare: false,
            body_cap: DEFAULT_BODY_CAP,
            policy: ShadowPolicy::default(),
        }
    }
}

struct Permits {
    epoch: u64,
    map: HashMap<InstanceId, Arc<Semaphore>>,
}

/// State shared by a layer, its clones and their services.
pub(crate) struct Shared {
    pub(crate) topology: Topology,
    pub(crate) config: Config,
    pub(crate) counters: Counters,
    pub(crate) coalescer: Coalescer,
    permits: ArcSwap<Permits>,
    rebuild: Mutex<()>,
}

impl Shared {
    fn new(topology: Topology, config: Config) -> Self {
        Self {
            topology,
            coalescer: Coalescer::new(config.policy.capacity(), config.policy.horizon()),
            config,
            counters: Counters::register(),
            permits: ArcSwap::from_pointee(Permits {
                epoch: u64::MAX,
                map: HashMap::new(),
            }),
            rebuild: Mutex::new(()),
        }
    }

    /// The in-flight limiter of `id`, kept across membership changes while
    /// `id` stays a member.
    pub(crate) fn semaphore(&self, id: &InstanceId) -> Option<Arc<Semaphore>> {
        let epoch = self.topology.epoch();
        let permits = self.permits.load();
        if permits.epoch == epoch {
            return permits.map.get(id).cloned();
        }
        drop(permits);
        let _rebuilding = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.permits.load_full();
        let members = self.topology.snapshot();
        if current.epoch != members.epoch() {
            let map = members
                .iter()
                .map(|i| {
                    let semaphore = current
                        .map
                        .get(i.id())
                        .cloned()
                        .unwrap_or_else(|| Arc::new(Semaphore::new(self.config.max_in_flight)));
                    (i.id().clone(), semaphore)
                })
                .collect();
            self.permits.store(Arc::new(Permits {
                epoch: members.epoch(),
                map,
            }));
        }
        self.permits.load().map.get(id).cloned()
    }
}

/// Copies each first attempt to the next Healthy candidate of its route,
/// marked `x-foresight-role: shadow`, without making the primary wait.
///
/// See the [crate docs](crate) for the rules, a default and a customised
/// setup. Cloning the layer shares its in-flight limits and counters; a
/// setter called on a configured layer starts fresh ones.
#[derive(Clone)]
#[must_use]
pub struct ShadowWriteLayer {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for ShadowWriteLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShadowWriteLayer")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl ShadowWriteLayer {
    /// Shadows to the instances of `topology` under the default
    /// [`ShadowPolicy`] (reads coalesced per session, no write copied),
    /// sampling 1, at most [`DEFAULT_MAX_IN_FLIGHT`] per instance, each
    /// abandoned after [`DEFAULT_TIMEOUT`], bodies up to
    /// [`DEFAULT_BODY_CAP`], role headers from clients stripped, statuses
    /// not compared.
    pub fn new(topology: Topology) -> Self {
        Self {
            shared: Arc::new(Shared::new(topology, Config::default())),
        }
    }

    fn with(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.shared.config.clone();
        change(&mut config);
        Self {
            shared: Arc::new(Shared::new(self.shared.topology.clone(), config)),
        }
    }

    /// Shadows in flight per instance (default [`DEFAULT_MAX_IN_FLIGHT`]).
    pub fn with_max_in_flight(self, max: usize) -> Self {
        self.with(|c| c.max_in_flight = max)
    }

    /// Timeout of a whole shadow (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.with(|c| c.timeout = timeout)
    }

    /// Fraction of eligible requests shadowed, 0 to 1 (default 1), times
    /// the sample of the policy's matching rule. At 0 the layer only strips
    /// role headers.
    pub fn with_sampling(self, fraction: f64) -> Self {
        self.with(|c| {
            c.sampling = if fraction.is_nan() {
                0.0
            } else {
                fraction.clamp(0.0, 1.0)
            }
        })
    }

    /// Whether the hop in front is trusted to set `x-foresight-role`
    /// (default: no, the header is stripped from every incoming request).
    /// On a trusted hop, a request already marked as a shadow passes
    /// through and is not shadowed again.
    pub fn with_trusted_hop(self, trusted: bool) -> Self {
        self.with(|c| c.trusted = trusted)
    }

    /// Whether to compare each shadow's status with the primary's and count
    /// mismatches (default: no).
    pub fn with_comparison(self, compare: bool) -> Self {
        self.with(|c| c.compare = compare)
    }

    /// Largest body copied (default [`DEFAULT_BODY_CAP`]). The copy comes
    /// from the request's body capture, which a failover layer above may
    /// share; its cap rises to this one while nothing has been dropped.
    pub fn with_body_cap(self, bytes: usize) -> Self {
        self.with(|c| c.body_cap = bytes)
    }

    /// Which requests are copied, to which instances, how often (default
    /// [`ShadowPolicy::new`]).
    pub fn with_policy(self, policy: ShadowPolicy) -> Self {
        self.with(|c| c.policy = policy)
    }

    /// Declares these instances shadow-aware in the layer's policy (see
    /// [`ShadowPolicy::with_shadow_aware`]): writes may be copied to them.
    pub fn with_shadow_aware<I>(self, ids: impl IntoIterator<Item = I>) -> Self
    where
        I: Into<InstanceId>,
    {
        self.with(|c| c.policy = c.policy.clone().with_shadow_aware(ids))
    }

    /// The layer's policy.
    pub fn policy(&self) -> &ShadowPolicy {
        &self.shared.config.policy
    }

    /// Counters since the layer was built, shared by its clones.
    pub fn stats(&self) -> ShadowStats {
        self.shared.counters.snapshot()
    }

    /// Shadows in flight to `instance`, or `None` for a non-member.
    pub fn in_flight(&self, instance: &InstanceId) -> Option<usize> {
        let semaphore = self.shared.semaphore(instance)?;
        Some(
            self.shared
                .config
                .max_in_flight
                .saturating_sub(semaphore.available_permits()),
        )
    }
}

impl<S> Layer<S> for ShadowWriteLayer {
    type Service = ShadowWrite<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ShadowWrite {
            inner,
            shared: self.shared.clone(),
        }
    }
}
