//! Which requests are copied, to which instances, and how often.

use std::collections::HashSet;
use std::time::Duration;

use foresight_core::InstanceId;
use http::Method;

use crate::error::ShadowPolicyError;

/// Default interval within which a session's reads are copied once.
pub const DEFAULT_COALESCE_INTERVAL: Duration = Duration::from_secs(30);
/// Default number of sessions the coalescing map remembers.
pub const DEFAULT_COALESCE_CAPACITY: usize = 65_536;

/// What a matching [`ShadowRule`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShadowAction {
    /// Copy the request, within the rule's sample and coalescing, and to a
    /// shadow-aware instance only if it is a write.
    Shadow,
    /// Never copy the request.
    Skip,
}

/// One rule of a [`ShadowPolicy`]: the requests it matches (a method set
/// and a path prefix) and what it does with them. See the
/// [`ShadowPolicy`].
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct ShadowRule {
    methods: Vec<Method>,
    path_prefix: String,
    action: ShadowAction,
    sample: f64,
    coalesce: Option<Duration>,
}

impl ShadowRule {
    fn new(action: ShadowAction) -> Self {
        Self {
            methods: Vec::new(),
            path_prefix: "/".to_owned(),
            action,
            sample: 1.0,
            coalesce: None,
        }
    }

    /// A rule that copies what it matches (every method and path until
    /// narrowed), with sample 1 and the policy's coalescing.
    pub fn shadow() -> Self {
        Self::new(ShadowAction::Shadow)
    }

    /// A rule that copies nothing it matches.
    pub fn skip() -> Self {
        Self::new(ShadowAction::Skip)
    }

    /// Matches only these methods (default: every method).
    pub fn with_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = methods.into_iter().collect();
        self
    }

    /// Matches only paths under `prefix`, by whole segments: `/api`
    /// matches `/api` and `/api/x`, not `/apix` (default `/`, every path).
    pub fn with_path_prefix(
        mut self,
        prefix: impl Into<String>,
    ) -> Result<Self, ShadowPolicyError> {
        let prefix = prefix.into();
        if !prefix.starts_with('/') {
            return Err(ShadowPolicyError::PathPrefix(prefix));
        }
        self.path_prefix = prefix;
        Ok(self)
    }

    /// Copies this share of the matching requests, 0 to 1 (default 1).
    pub fn with_sample(mut self, ratio: f64) -> Result<Self, ShadowPolicyError> {
        if !(0.0..=1.0).contains(&ratio) {
            return Err(ShadowPolicyError::SampleRatio(ratio));
        }
        self.sample = ratio;
        Ok(self)
    }

    /// Copies a session's matching requests at most once per `interval` per
    /// secondary; zero copies every one (default: the policy's interval for
    /// reads, none for writes).
    pub fn with_coalesce(mut self, interval: Duration) -> Self {
        self.coalesce = Some(interval);
        self
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.contains(method))
            && path.starts_with(&self.path_prefix)
            && (self.path_prefix.ends_with('/')
                || path.len() == self.path_prefix.len()
                || path.as_bytes()[self.path_prefix.len()] == b'/')
    }
}

/// Which requests [`ShadowWriteLayer`](crate::ShadowWriteLayer) copies, to
/// which instances, and how often.
///
/// A copy of a request that changes state runs that change a second time
/// on an instance that does not know it is a shadow. So the policy sorts
/// requests by method:
///
/// - **Reads** are the safe methods of RFC 9110 §9.2.1 (`GET`, `HEAD`,
///   `OPTIONS`, `TRACE`). They may go to any secondary, and are
///   **coalesced** per session: at most one copy per client key and
///   secondary per interval (default [`DEFAULT_COALESCE_INTERVAL`]). One
///   warm-up loads the session into the secondary's cache; more would only
///   double the upstream work.
/// - **Writes** are every other method. `POST`, `PATCH` and any extension
///   method are not idempotent (RFC 9110 §9.2.2). `PUT` and `DELETE` are
///   idempotent but not safe: a copy still runs its side effect, once more,
///   on an application that does not expect it. A write is copied only to an
///   instance declared **shadow-aware** with
///   [`with_shadow_aware`](ShadowPolicy::with_shadow_aware): one that runs
///   `SessionMirrorLayer`, which warms and writes through on a shadow and
///   skips the handler. By default no instance is shadow-aware, so no write
///   is ever copied. No rule overrides this.
///
/// [`ShadowRule`]s refine this per method and path prefix: skip a path
/// (static assets), sample a share of it, or coalesce it over another
/// interval. The first rule that matches a request decides; without a match
/// the defaults above apply.
///
/// ```
/// use std::time::Duration;
/// use foresight_shadow::{ShadowPolicy, ShadowRule};
/// use http::Method;
///
/// # fn main() -> Result<(), foresight_shadow::ShadowPolicyError> {
/// let policy = ShadowPolicy::new()
///     .with_shadow_aware(["alpha", "beta"])
///     .with_coalesce_interval(Duration::from_secs(10))
///     .with_rule(ShadowRule::skip().with_path_prefix("/assets")?)
///     .with_rule(
///         ShadowRule::shadow()
///             .with_methods([Method::POST])
///             .with_path_prefix("/cart")?
///             .with_sample(0.25)?,
///     );
/// assert!(policy.is_shadow_aware(&"alpha".into()));
/// # Ok(())
/// # }
/// ```
///
/// The default copies reads, coalesced per session over
/// [`DEFAULT_COALESCE_INTERVAL`] in a map of up to
/// [`DEFAULT_COALESCE_CAPACITY`] sessions, and no write.
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct ShadowPolicy {
    shadow_aware: HashSet<InstanceId>,
    rules: Vec<ShadowRule>,
    coalesce: Duration,
    capacity: usize,
}

impl Default for ShadowPolicy {
    fn default() -> Self {
        Self {
            shadow_aware: HashSet::new(),
            rules: Vec::new(),
            coalesce: DEFAULT_COALESCE_INTERVAL,
            capacity: DEFAULT_COALESCE_CAPACITY,
        }
    }
}

/// What the policy says about one request, before the instance is known.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Decision {
    Skip,
    Shadow {
        /// Not safe: only to a shadow-aware instance.
        write: bool,
        sample: f64,
        /// Zero: not coalesced.
        coalesce: Duration,
    },
}

impl ShadowPolicy {
    /// The default policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares these instances shadow-aware (running `SessionMirrorLayer`),
    /// in addition to those already declared: writes may be copied to them.
    pub fn with_shadow_aware<I>(mut self, ids: impl IntoIterator<Item = I>) -> Self
    where
        I: Into<InstanceId>,
    {
        self.shadow_aware.extend(ids.into_iter().map(Into::into));
        self
    }

    /// Adds a rule after those already added; the first match decides.
    pub fn with_rule(mut self, rule: ShadowRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// A session's reads are copied at most once per interval per secondary
    /// (default [`DEFAULT_COALESCE_INTERVAL`]); zero copies every read.
    pub fn with_coalesce_interval(mut self, interval: Duration) -> Self {
        self.coalesce = interval;
        self
    }

    /// How many sessions the coalescing map remembers (default
    /// [`DEFAULT_COALESCE_CAPACITY`]). When it is full, the older half is
    /// forgotten at once, so a forgotten session may be warmed again
    /// within its interval: the bound errs on one more copy, never on
    /// memory.
    pub fn with_coalesce_capacity(mut self, sessions: usize) -> Result<Self, ShadowPolicyError> {
        if sessions == 0 {
            return Err(ShadowPolicyError::ZeroCapacity);
        }
        self.capacity = sessions;
        Ok(self)
    }

    /// Whether `instance` was declared shadow-aware.
    pub fn is_shadow_aware(&self, instance: &InstanceId) -> bool {
        self.shadow_aware.contains(instance)
    }

    /// Whether any instance was declared shadow-aware.
    pub(crate) fn any_shadow_aware(&self) -> bool {
        !self.shadow_aware.is_empty()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The longest coalescing interval of the policy and its rules.
    pub(crate) fn horizon(&self) -> Duration {
        self.rules
            .iter()
            .filter_map(|r| r.coalesce)
            .fold(self.coalesce, Duration::max)
    }

    pub(crate) fn decide(&self, method: &Method, path: &str) -> Decision {
        let write = !method.is_safe();
        let rule = self.rules.iter().find(|r| r.matches(method, path));
        match rule {
            Some(rule) if rule.action == ShadowAction::Skip => Decision::Skip,
            _ => Decision::Shadow {
                write,
                sample: rule.map_or(1.0, |r| r.sample),
                coalesce: rule.and_then(|r| r.coalesce).unwrap_or(if write {
                    Duration::ZERO
                } else {
                    self.coalesce
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shadow(write: bool, sample: f64, coalesce: Duration) -> Decision {
        Decision::Shadow {
            write,
            sample,
            coalesce,
        }
    }

    #[test]
    fn methods_split_into_reads_and_writes() {
        let policy = ShadowPolicy::new();
        for method in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            assert_eq!(
                policy.decide(&method, "/"),
                shadow(false, 1.0, DEFAULT_COALESCE_INTERVAL),
                "{method}"
            );
        }
        let custom = Method::from_bytes(b"PURGE").unwrap();
        for method in [
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
            custom,
        ] {
            assert_eq!(
                policy.decide(&method, "/"),
                shadow(true, 1.0, Duration::ZERO),
                "{method}"
            );
        }
    }

    #[test]
    fn the_first_matching_rule_decides_by_method_and_whole_segments() {
        let policy = ShadowPolicy::new()
            .with_rule(ShadowRule::skip().with_path_prefix("/assets").unwrap())
            .with_rule(
                ShadowRule::shadow()
                    .with_methods([Method::GET])
                    .with_path_prefix("/api/")
                    .unwrap()
                    .with_sample(0.5)
                    .unwrap()
                    .with_coalesce(Duration::from_secs(5)),
            )
            .with_rule(ShadowRule::skip().with_path_prefix("/api").unwrap());
        let get = |path| policy.decide(&Method::GET, path);
        assert_eq!(get("/assets"), Decision::Skip);
        assert_eq!(get("/assets/app.js"), Decision::Skip);
        assert_eq!(
            get("/assetsx"),
            shadow(false, 1.0, DEFAULT_COALESCE_INTERVAL)
        );
        assert_eq!(get("/api/x"), shadow(false, 0.5, Duration::from_secs(5)));
        assert_eq!(policy.decide(&Method::POST, "/api/x"), Decision::Skip);
        assert_eq!(get("/api"), Decision::Skip);
        assert_eq!(policy.horizon(), DEFAULT_COALESCE_INTERVAL);
    }

    #[test]
    fn bad_settings_are_refused_with_their_value() {
        assert_eq!(
            ShadowRule::shadow().with_sample(1.5),
            Err(ShadowPolicyError::SampleRatio(1.5))
        );
        assert!(matches!(
            ShadowRule::shadow().with_sample(f64::NAN),
            Err(ShadowPolicyError::SampleRatio(r)) if r.is_nan()
        ));
        assert_eq!(
            ShadowRule::shadow().with_path_prefix("api"),
            Err(ShadowPolicyError::PathPrefix("api".into()))
        );
        assert_eq!(
            ShadowPolicy::new().with_coalesce_capacity(0),
            Err(ShadowPolicyError::ZeroCapacity)
        );
    }
}
