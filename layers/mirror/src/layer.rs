//! [`SessionMirrorLayer`] and its settings.

use std::sync::Arc;
use std::time::Duration;

use foresight_store::{Expiry, SessionStore, SharedStore};
use http::HeaderName;
use tower_layer::Layer;

use crate::blind::{BlindWritePolicy, BlindWrites};
use crate::carrier::{Carrier, CookieConfig, SameSite};
use crate::config::Config;
use crate::merge::MergePolicy;
use crate::service::SessionMirror;

/// Layer that gives each request a lazily loaded [`Session`](crate::Session)
/// and saves it with compare-and-set: see the [crate docs](crate) for the
/// behaviour and examples.
///
/// Defaults, each with a setter:
/// - the id travels in the cookie `__Host-session`, `Secure; HttpOnly;
///   SameSite=Strict; Path=/`, no `Max-Age` (a browser session cookie; the
///   server enforces expiry);
/// - 30 minutes idle, 12 hours absolute;
/// - a shadow request (`x-foresight-role: shadow`) does not reach the
///   handler;
/// - no merge policy: a lost compare-and-set is a 409, except for a blind
///   write, reapplied over the newer version ([`BlindWritePolicy::Reapply`]);
/// - a session that is only read has its idle timeout restarted at most
///   once a minute per instance.
///
/// Cloning the layer shares its store.
#[derive(Clone, Debug)]
#[must_use]
pub struct SessionMirrorLayer {
    config: Arc<Config>,
}

impl SessionMirrorLayer {
    /// A layer over `store` with the defaults above.
    pub fn new(store: impl SessionStore) -> Self {
        Self::from_shared(Arc::new(store))
    }

    /// A layer over a store already shared with other components.
    pub fn from_shared(store: SharedStore) -> Self {
        Self {
            config: Arc::new(Config {
                store,
                carrier: Carrier::cookie(CookieConfig::default()),
                expiry: Expiry::default(),
                shadow_runs_handler: false,
                merge: None,
                merge_attempts: 3,
                read_touch: Some(Duration::from_secs(60)),
                touched: Arc::default(),
                blind_writes: BlindWrites::default(),
                idempotency: true,
            }),
        }
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    fn cookie(&mut self, f: impl FnOnce(&mut CookieConfig)) {
        let config = self.config();
        let mut cookie = match &config.carrier {
            Carrier::Cookie { config, .. } => config.clone(),
            Carrier::Header(_) => CookieConfig::default(),
        };
        f(&mut cookie);
        config.carrier = Carrier::cookie(cookie);
    }

    /// Name of the session cookie, before the `__Host-` prefix (default
    /// `session`).
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.cookie(|c| c.name = name);
        self
    }

    /// Whether the cookie name gets the `__Host-` prefix (default true),
    /// which makes browsers require `Secure`, `Path=/` and no `Domain`.
    pub fn with_host_prefix(mut self, on: bool) -> Self {
        self.cookie(|c| c.host_prefix = on);
        self
    }

    /// The cookie's `Secure` flag (default true; always set with the
    /// `__Host-` prefix).
    pub fn with_secure(mut self, on: bool) -> Self {
        self.cookie(|c| c.secure = on);
        self
    }

    /// The cookie's `HttpOnly` flag (default true).
    pub fn with_http_only(mut self, on: bool) -> Self {
        self.cookie(|c| c.http_only = on);
        self
    }

    /// The cookie's `SameSite` (default `Strict`).
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.cookie(|c| c.same_site = same_site);
        self
    }

    /// The cookie's `Path` when the `__Host-` prefix is off (default `/`).
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.cookie(|c| c.path = path);
        self
    }

    /// The cookie's `Max-Age` (default none).
    pub fn with_max_age(mut self, max_age: Option<Duration>) -> Self {
        self.cookie(|c| c.max_age = max_age.map(|d| d.as_secs()));
        self
    }

    /// Carries the id in a request / response header instead of a cookie
    /// (for API clients and gateways).
    pub fn with_header(mut self, name: HeaderName) -> Self {
        self.config().carrier = Carrier::Header(name);
        self
    }

    /// Idle timeout of new sessions (default 30 minutes).
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.config().expiry.idle = idle;
        self
    }

    /// Absolute lifetime of new sessions (default 12 hours).
    pub fn with_absolute_timeout(mut self, absolute: Duration) -> Self {
        self.config().expiry.absolute = absolute;
        self
    }

    /// Whether shadow requests reach the handler (default false). When they
    /// do, the handler's session changes are not saved: the primary
    /// instance already applied them.
    pub fn with_shadow_handler(mut self, run: bool) -> Self {
        self.config().shadow_runs_handler = run;
        self
    }

    /// Reconciles a lost compare-and-set instead of answering 409, retried
    /// at most `attempts` times (default 3). See [`DisjointKeys`](crate::DisjointKeys).
    pub fn with_merge_policy(mut self, policy: impl MergePolicy) -> Self {
        self.config().merge = Some(Arc::new(policy));
        self
    }

    /// How often a session that is read but not changed gets its idle
    /// timeout restarted (a `touch`), at most, per instance (default 60 s;
    /// `None`: never, so only writes restart it). Keep it well below the
    /// idle timeout.
    pub fn with_read_touch(mut self, interval: Option<Duration>) -> Self {
        self.config().read_touch = interval;
        self
    }

    /// What a blind write does when its compare-and-set loses, for every
    /// key not given its own policy (default [`BlindWritePolicy::Reapply`]).
    pub fn with_blind_write_policy(mut self, policy: BlindWritePolicy) -> Self {
        self.config().blind_writes.default = policy;
        self
    }

    /// Whether requests with an `Idempotency-Key` header run at most once
    /// per session, later ones answered from the stored answer (default
    /// on). See [`idempotency`](crate::idempotency).
    pub fn with_idempotency_keys(mut self, on: bool) -> Self {
        self.config().idempotency = on;
        self
    }

    /// The [`BlindWritePolicy`] of one session key, over the default.
    pub fn with_blind_write_policy_for(
        mut self,
        key: impl Into<String>,
        policy: BlindWritePolicy,
    ) -> Self {
        self.config().blind_writes.set(key.into(), policy);
        self
    }

    /// Most merge attempts per request (default 3).
    pub fn with_merge_attempts(mut self, attempts: usize) -> Self {
        self.config().merge_attempts = attempts;
        self
    }
}

impl<S> Layer<S> for SessionMirrorLayer {
    type Service = SessionMirror<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionMirror::new(inner, self.config.clone())
    }
}
