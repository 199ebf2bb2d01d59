//! [`ForesightBuilder`]: a default for every part, each replaceable or
//! turned off by one method.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use foresight_core::Topology;
use foresight_core::key::{
    CookieKey, JwtSubjectKey, KeyExtractor, KeyExtractorExt, MissingKeyPolicy, Or,
};
use foresight_core::rank::BoundedLoad;
use foresight_failover::{DEFAULT_SIGNAL_LEAD, HealthFailoverLayer};
use foresight_forecast::{Forecaster, Signal};
use foresight_mirror::SessionMirrorLayer;
use foresight_shadow::{ShadowPolicy, ShadowWriteLayer};
use foresight_shard::ShardLayer;
use foresight_store::{MemoryStore, SessionStore, SharedStore};
use foresight_token::{
    KeyRing, LocalIssuer, PrefetchPolicy, SigningKey, TokenIssuer, TokenPrefetchLayer, TokioClock,
    Verifier,
};

use super::{BuildError, Foresight, RecordLoadLayer, RoutingLayer, Tokens};

/// The default client key: the `sub` of the bearer token, or else the
/// instance tier's session cookie.
pub type DefaultKey = Or<JwtSubjectKey, CookieKey>;

/// Issuer and audience of the tokens of the default local issuer.
pub const DEFAULT_TOKEN_ISSUER: &str = "foresight";
/// The default prefetch threshold: a peak is a predicted request rate above
/// a quarter of the 99th percentile of the rate the forecaster has seen
/// (the relative threshold of [`Forecaster::relative_signal`]), the global
/// setting measured on recorded traces in `layers/token/README.md`.
pub const DEFAULT_PREFETCH_THRESHOLD: f64 = 0.25;
/// How often the token driver plans and runs prefetches.
pub const DEFAULT_TOKEN_DRIVER_PERIOD: Duration = Duration::from_secs(1);

enum TokenSetting {
    LocalWithGeneratedKey,
    Custom {
        verifier: Verifier,
        issuer: Arc<dyn TokenIssuer>,
    },
    Off,
}

/// What [`ForesightBuilder::with_shadow`] takes: a policy for the default
/// ShadowWriteLayer, or a whole customised layer.
#[derive(Debug)]
pub enum ShadowSetting {
    /// The default layer under this policy.
    Policy(ShadowPolicy),
    /// This layer, as it is.
    Layer(ShadowWriteLayer),
}

impl From<ShadowPolicy> for ShadowSetting {
    fn from(policy: ShadowPolicy) -> Self {
        Self::Policy(policy)
    }
}

impl From<ShadowWriteLayer> for ShadowSetting {
    fn from(layer: ShadowWriteLayer) -> Self {
        Self::Layer(layer)
    }
}

enum ForecastSetting {
    BuiltIn,
    Custom(Forecaster),
    Off,
}

/// Builder of [`Foresight`]; see the [module docs](super) for examples.
///
/// Defaults, each replaced by a `with_*` method or turned off by a
/// `without_*` method:
/// - client key: [`DefaultKey`] (JWT `sub`, else the session cookie); a
///   request with neither is spread by a fresh random key
///   ([`MissingKeyPolicy::SpreadRandomly`]);
/// - store: a [`MemoryStore`];
/// - tokens: a [`LocalIssuer`] signing with a freshly generated Ed25519 key,
///   verified by TokenPrefetchLayer, its driver running every second;
/// - prediction: a [`Forecaster`] on the built-in samplers (host CPU,
///   memory and network, plus the request rate, latency and errors the
///   routing tier records), shared by TokenPrefetchLayer (its request-rate
///   forecast, relative to the rate's own 99th percentile, decides
///   prefetches) and HealthFailoverLayer (it learns each instance's latency
///   from every attempt, and a predicted degradation moves the instance's
///   sessions ahead of time);
/// - HealthFailoverLayer with its own defaults;
/// - ShadowWriteLayer under the default [`ShadowPolicy`]: reads coalesced
///   per session, no write copied, since no instance is declared
///   shadow-aware.
#[must_use]
pub struct ForesightBuilder<K> {
    topology: Topology,
    key: K,
    missing_key: MissingKeyPolicy,
    store: Option<SharedStore>,
    tokens: TokenSetting,
    forecast: ForecastSetting,
    prefetch: Option<PrefetchPolicy>,
    failover: Option<HealthFailoverLayer>,
    shadow: Option<ShadowWriteLayer>,
    health_lead: Duration,
    bounded: Option<BoundedLoad>,
    slow_start: Duration,
}

impl<K> fmt::Debug for ForesightBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForesightBuilder")
            .field("topology", &self.topology)
            .field("missing_key", &self.missing_key)
            .field("tokens", &!matches!(self.tokens, TokenSetting::Off))
            .field(
                "prediction",
                &!matches!(self.forecast, ForecastSetting::Off),
            )
            .finish_non_exhaustive()
    }
}

impl ForesightBuilder<DefaultKey> {
    pub(super) fn new(topology: Topology) -> Self {
        Self {
            topology,
            key: JwtSubjectKey::new().or(CookieKey::new("__Host-session")),
            missing_key: MissingKeyPolicy::SpreadRandomly,
            store: None,
            tokens: TokenSetting::LocalWithGeneratedKey,
            forecast: ForecastSetting::BuiltIn,
            prefetch: None,
            failover: None,
            shadow: None,
            health_lead: DEFAULT_SIGNAL_LEAD,
            bounded: None,
            slow_start: Duration::ZERO,
        }
    }
}

impl<K: KeyExtractor + Clone> ForesightBuilder<K> {
    /// The client key the routing tier shards by.
    pub fn with_key<K2: KeyExtractor + Clone>(self, key: K2) -> ForesightBuilder<K2> {
        ForesightBuilder {
            topology: self.topology,
            key,
            missing_key: self.missing_key,
            store: self.store,
            tokens: self.tokens,
            forecast: self.forecast,
            prefetch: self.prefetch,
            failover: self.failover,
            shadow: self.shadow,
            health_lead: self.health_lead,
            bounded: self.bounded,
            slow_start: self.slow_start,
        }
    }

    /// What to do with a request that has no key (default: spread it by a
    /// fresh random key).
    pub fn with_missing_key(mut self, policy: MissingKeyPolicy) -> Self {
        self.missing_key = policy;
        self
    }

    /// The session store of the instance tier (default: a [`MemoryStore`],
    /// which only suits instances in one process).
    pub fn with_store(mut self, store: impl SessionStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Tokens verified by `verifier` and refreshed through `issuer` (a
    /// [`LocalIssuer`], or a `RemoteIssuer` of an authentication server).
    pub fn with_tokens(mut self, verifier: Verifier, issuer: impl TokenIssuer) -> Self {
        self.tokens = TokenSetting::Custom {
            verifier,
            issuer: Arc::new(issuer),
        };
        self
    }

    /// No TokenPrefetchLayer: requests are not authenticated by the routing
    /// tier.
    pub fn without_tokens(mut self) -> Self {
        self.tokens = TokenSetting::Off;
        self
    }

    /// The forecaster shared by the layers (default: one on the built-in
    /// samplers, spawned by [`build`](Self::build)).
    pub fn with_forecaster(mut self, forecaster: Forecaster) -> Self {
        self.forecast = ForecastSetting::Custom(forecaster);
        self
    }

    /// No prediction: token refreshes are reactive and failover acts on
    /// observed health only.
    pub fn without_prediction(mut self) -> Self {
        self.forecast = ForecastSetting::Off;
        self
    }

    /// The prefetch policy of TokenPrefetchLayer: lead, bounds, and the
    /// threshold as a fraction of the request rate's reference level (the
    /// 99th percentile of the kept history; default
    /// [`DEFAULT_PREFETCH_THRESHOLD`]).
    pub fn with_prefetch_policy(mut self, policy: PrefetchPolicy) -> Self {
        self.prefetch = Some(policy);
        self
    }

    /// How far ahead a predicted degradation moves an instance's sessions
    /// (default [`DEFAULT_SIGNAL_LEAD`]).
    pub fn with_health_lead(mut self, lead: Duration) -> Self {
        self.health_lead = lead;
        self
    }

    /// Slow start in the ShardLayer (off by default): an instance that
    /// joins or is readmitted takes new sessions gradually over `ramp`;
    /// see [`ShardLayer::with_slow_start`].
    pub fn with_slow_start(mut self, ramp: Duration) -> Self {
        self.slow_start = ramp;
        self
    }

    /// Consistent hashing with bounded loads in the ShardLayer (off by
    /// default); see [`ShardLayer::with_bounded_load`].
    pub fn with_bounded_load(mut self, bounded: BoundedLoad) -> Self {
        self.bounded = Some(bounded);
        self
    }

    /// A customised HealthFailoverLayer over the same topology; the
    /// builder still gives it the forecaster unless prediction is off.
    pub fn with_failover(mut self, layer: HealthFailoverLayer) -> Self {
        self.failover = Some(layer);
        self
    }

    /// The shadow copies: a [`ShadowPolicy`] for the default
    /// ShadowWriteLayer, or a customised layer over the same topology.
    ///
    /// By default no instance is shadow-aware, so no request that is not
    /// safe (`POST`, `PUT`, …) is ever copied; declare the instances that
    /// run the instance layer ([`SessionMirrorLayer`]) so that their
    /// sessions stay warm after writes too:
    ///
    /// ```
    /// use std::time::Duration;
    /// use foresight::prelude::*;
    /// use foresight::shadow::ShadowPolicy;
    /// use foresight::stack::Foresight;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let topology = Topology::from_instances(["a", "b"].map(InstanceSpec::new))?;
    /// let foresight = Foresight::builder(topology)
    ///     .without_tokens()
    ///     .without_prediction()
    ///     .with_shadow(
    ///         ShadowPolicy::new()
    ///             .with_shadow_aware(["a", "b"])
    ///             .with_coalesce_interval(Duration::from_secs(10)),
    ///     )
    ///     .build()?;
    /// # let _ = foresight;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_shadow(mut self, shadow: impl Into<ShadowSetting>) -> Self {
        self.shadow = Some(match shadow.into() {
            ShadowSetting::Policy(policy) => {
                ShadowWriteLayer::new(self.topology.clone()).with_policy(policy)
            }
            ShadowSetting::Layer(layer) => layer,
        });
        self
    }

    /// No shadow copies: the ShadowWriteLayer stays in the stack (so the
    /// stack's type does not change) but only strips role headers.
    pub fn without_shadow(mut self) -> Self {
        self.shadow = Some(ShadowWriteLayer::new(self.topology.clone()).with_sampling(0.0));
        self
    }

    /// Builds both tiers. Call it inside a Tokio runtime: the built-in
    /// forecaster and the token driver run as background tasks.
    pub fn build(self) -> Result<Foresight<K>, BuildError> {
        let forecaster = match &self.forecast {
            ForecastSetting::BuiltIn => Some(Forecaster::builder().spawn()?),
            ForecastSetting::Custom(forecaster) => Some(forecaster.clone()),
            ForecastSetting::Off => None,
        };
        let tokens = self.tokens_for(forecaster.as_ref())?;
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));

        let shard =
            ShardLayer::new(self.topology.clone(), self.key).with_missing_key(self.missing_key);
        let shard = shard.with_slow_start(self.slow_start);
        let shard = match self.bounded {
            Some(bounded) => shard.with_bounded_load(bounded),
            None => shard,
        };
        let failover = self
            .failover
            .unwrap_or_else(|| HealthFailoverLayer::new(self.topology.clone()));
        let failover = match &forecaster {
            Some(f) => failover.with_forecast(f.clone(), self.health_lead),
            None => failover,
        };
        let shadow = self
            .shadow
            .unwrap_or_else(|| ShadowWriteLayer::new(self.topology.clone()));
        let routing = RoutingLayer::new(
            forecaster.clone().map(RecordLoadLayer::new),
            tokens.as_ref().map(|t| t.layer.clone()),
            shard,
            failover,
            shadow,
        );
        Ok(Foresight {
            topology: self.topology,
            routing,
            instance: SessionMirrorLayer::new(store.clone()),
            store,
            forecaster,
            tokens,
        })
    }

    fn tokens_for(&self, forecaster: Option<&Forecaster>) -> Result<Option<Tokens>, BuildError> {
        let (verifier, issuer, local) = match &self.tokens {
            TokenSetting::Off => return Ok(None),
            TokenSetting::Custom { verifier, issuer } => (verifier.clone(), issuer.clone(), None),
            TokenSetting::LocalWithGeneratedKey => {
                let clock = TokioClock::shared();
                let ring =
                    KeyRing::new(SigningKey::generate_ed25519("foresight-1")?, clock.clone());
                let issuer = LocalIssuer::new(
                    ring.clone(),
                    DEFAULT_TOKEN_ISSUER,
                    DEFAULT_TOKEN_ISSUER,
                    clock.clone(),
                );
                let verifier = Verifier::builder(ring, DEFAULT_TOKEN_ISSUER, DEFAULT_TOKEN_ISSUER)
                    .with_clock(clock)
                    .build();
                let issuer = Arc::new(issuer);
                (
                    verifier,
                    issuer.clone() as Arc<dyn TokenIssuer>,
                    Some(issuer),
                )
            }
        };
        let policy = self.prefetch.clone().unwrap_or_else(|| PrefetchPolicy {
            threshold: DEFAULT_PREFETCH_THRESHOLD,
            ..PrefetchPolicy::default()
        });
        let mut builder =
            TokenPrefetchLayer::builder(verifier.clone(), issuer.clone()).with_policy(policy);
        if let Some(f) = forecaster {
            builder = builder.with_load_signal(f.relative_signal(Signal::RequestRate));
        }
        let layer = builder.build();
        if forecaster.is_some() {
            tokio::runtime::Handle::try_current().map_err(BuildError::NoRuntime)?;
            layer.handle().spawn_driver(DEFAULT_TOKEN_DRIVER_PERIOD);
        }
        Ok(Some(Tokens {
            layer,
            issuer,
            local,
            verifier,
        }))
    }
}
