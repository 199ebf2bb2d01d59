//! [`TokenPrefetchLayer`] and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use foresight_core::signal::LoadSignal;
use tower_layer::Layer;

use crate::handle::{HandleConfig, TokenHandle};
use crate::issuer::TokenIssuer;
use crate::policy::{PrefetchPolicy, RefreshMode, SessionBinding};
use crate::service::TokenPrefetch;
use crate::verify::Verifier;

/// Name of the response header that delivers a pre-fetched token.
pub const NEXT_TOKEN_HEADER: &str = "x-foresight-next-token";

/// Default name of the request header that binds a request to a session.
pub const SESSION_HEADER: &str = "x-foresight-session";

/// Authenticates requests and refreshes tokens ahead of predicted peaks; see
/// the [crate docs](crate) for examples.
///
/// Cloning the layer shares its state (session table, schedule, handle):
/// every service it makes tracks the same sessions.
#[derive(Clone)]
#[must_use]
pub struct TokenPrefetchLayer {
    handle: TokenHandle,
}

impl fmt::Debug for TokenPrefetchLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPrefetchLayer")
            .field("handle", &self.handle)
            .finish()
    }
}

impl TokenPrefetchLayer {
    /// A builder: `verifier` authenticates requests, `issuer` issues the
    /// refreshed tokens.
    pub fn builder(verifier: Verifier, issuer: impl TokenIssuer) -> TokenPrefetchLayerBuilder {
        TokenPrefetchLayerBuilder {
            verifier,
            issuer: Arc::new(issuer),
            signal: None,
            policy: PrefetchPolicy::default(),
            reactive_only: false,
            lifetime: Duration::from_secs(300),
            binding: SessionBinding::Header(http::HeaderName::from_static(SESSION_HEADER)),
            max_sessions: 100_000,
            idle_ttl: Duration::from_secs(3600),
            max_reactive_in_flight: 256,
        }
    }

    /// The shared handle: planning, driver, revocation, WebSocket endpoint.
    pub fn handle(&self) -> &TokenHandle {
        &self.handle
    }
}

impl<S> Layer<S> for TokenPrefetchLayer {
    type Service = TokenPrefetch<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TokenPrefetch::new(inner, self.handle.clone())
    }
}

/// Builder of a [`TokenPrefetchLayer`].
///
/// Defaults: reactive refresh 60 s before expiry unless a load signal is set
/// (then predictive, with [`PrefetchPolicy::default`]); 5-minute tokens;
/// requests bound to a session by the `x-foresight-session` header when
/// present; at most 100,000 sessions tracked, forgotten after 1 h idle; at
/// most 256 reactive refreshes in flight.
#[must_use]
pub struct TokenPrefetchLayerBuilder {
    verifier: Verifier,
    issuer: Arc<dyn TokenIssuer>,
    signal: Option<Arc<dyn LoadSignal>>,
    policy: PrefetchPolicy,
    reactive_only: bool,
    lifetime: Duration,
    binding: SessionBinding,
    max_sessions: usize,
    idle_ttl: Duration,
    max_reactive_in_flight: usize,
}

impl fmt::Debug for TokenPrefetchLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPrefetchLayerBuilder")
            .field("policy", &self.policy)
            .field("reactive_only", &self.reactive_only)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl TokenPrefetchLayerBuilder {
    /// The load forecast that decides prefetches; switches to predictive
    /// mode.
    pub fn with_load_signal(mut self, signal: impl LoadSignal) -> Self {
        self.signal = Some(Arc::new(signal));
        self
    }

    /// The whole prefetch policy.
    pub fn with_policy(mut self, policy: PrefetchPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Load threshold of a peak.
    pub fn with_threshold(mut self, threshold: f64) -> Self {
        self.policy.threshold = threshold;
        self
    }

    /// How far ahead to look for a peak.
    pub fn with_horizon(mut self, horizon: Duration) -> Self {
        self.policy.horizon = horizon;
        self
    }

    /// Longest window before a peak over which refreshes are spread.
    pub fn with_lead(mut self, lead: Duration) -> Self {
        self.policy.lead = lead;
        self
    }

    /// Longest lifetime extension of a prefetched token.
    pub fn with_max_extension(mut self, max: Duration) -> Self {
        self.policy.max_extension = max;
        self
    }

    /// Margin after the peak and jitter of the prefetched expiries.
    pub fn with_spread(mut self, after_peak: Duration, jitter: Duration) -> Self {
        self.policy.after_peak = after_peak;
        self.policy.jitter = jitter;
        self
    }

    /// Most prefetch refreshes per second.
    pub fn with_max_issue_rate(mut self, per_second: f64) -> Self {
        self.policy.max_issue_rate = per_second;
        self
    }

    /// Margin before expiry for reactive refreshes.
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.policy.margin = margin;
        self
    }

    /// Whether a due reactive refresh inside the spreading window issues the
    /// planned prefetch token at once (default true); see
    /// [`PrefetchPolicy::merge_due_refreshes`].
    pub fn with_merge_due_refreshes(mut self, merge: bool) -> Self {
        self.policy.merge_due_refreshes = merge;
        self
    }

    /// Whether to refresh reactively only, even with a load signal (the
    /// baseline; default false).
    pub fn with_reactive_only(mut self, reactive_only: bool) -> Self {
        self.reactive_only = reactive_only;
        self
    }

    /// Base lifetime of issued tokens (default 5 min).
    pub fn with_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// How a request names its session.
    pub fn with_session_binding(mut self, binding: SessionBinding) -> Self {
        self.binding = binding;
        self
    }

    /// Most sessions tracked.
    pub fn with_max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }

    /// How long an idle session without a connection stays tracked.
    pub fn with_session_idle_ttl(mut self, ttl: Duration) -> Self {
        self.idle_ttl = ttl;
        self
    }

    /// Most reactive refreshes in flight.
    pub fn with_max_reactive_in_flight(mut self, max: usize) -> Self {
        self.max_reactive_in_flight = max;
        self
    }

    /// Builds the layer. Spawn its driver with
    /// [`TokenHandle::spawn_driver`] in predictive mode.
    pub fn build(self) -> TokenPrefetchLayer {
        let mode = if self.reactive_only || self.signal.is_none() {
            RefreshMode::Reactive {
                margin: self.policy.margin,
            }
        } else {
            RefreshMode::Predictive(self.policy)
        };
        TokenPrefetchLayer {
            handle: TokenHandle::new(HandleConfig {
                verifier: self.verifier,
                issuer: self.issuer,
                signal: self.signal,
                mode,
                lifetime: self.lifetime,
                binding: self.binding,
                max_sessions: self.max_sessions,
                idle_ttl: self.idle_ttl,
                max_reactive_in_flight: self.max_reactive_in_flight,
            }),
        }
    }
}
