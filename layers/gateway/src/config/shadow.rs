//! `[shadow]`: which requests are copied to the secondary, validated into a
//! [`ShadowPolicy`].
//!
//! ```toml
//! [shadow]
//! enabled = true
//! sampling = 1.0
//! shadow_aware = ["alpha"]       # instances running SessionMirrorLayer
//! coalesce_interval = "30s"      # one warm-up per session per interval
//! coalesce_capacity = 65536      # sessions remembered for coalescing
//!
//! [[shadow.rule]]                # the first rule that matches decides
//! methods = ["GET", "HEAD"]      # default: every method
//! path_prefix = "/assets"        # whole segments; default "/"
//! action = "skip"                # shadow (default) | skip
//! sample = 0.5                   # share copied, 0 to 1
//! coalesce = "0s"                # this rule's interval; 0: every request
//! ```

use std::ops::Range;
use std::time::Duration;

use foresight::shadow::{
    DEFAULT_COALESCE_CAPACITY, DEFAULT_COALESCE_INTERVAL, ShadowPolicy, ShadowPolicyError,
    ShadowRule,
};
use serde::Deserialize;
use toml::Spanned;

/// `[shadow]`: copies of first attempts to the secondary.
///
/// A request that is not safe (`POST`, `PUT`, `DELETE`, …) is copied only
/// to an instance listed in `shadow_aware`; by default none is, so no write
/// runs twice. The list is read at start; a reload that drops one of its
/// instances is refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShadowConfig {
    /// Shadowing on (default true).
    pub enabled: bool,
    /// Share of eligible requests shadowed, 0 to 1 (default 1).
    pub sampling: Spanned<f64>,
    /// Instances that run SessionMirrorLayer, which may receive copies of
    /// writes (default none).
    pub shadow_aware: Vec<Spanned<String>>,
    /// A session's reads are copied once per interval (default 30 s; 0:
    /// every read).
    #[serde(with = "humantime_serde")]
    pub coalesce_interval: Duration,
    /// Sessions remembered for coalescing, at least 1 (default 65,536).
    pub coalesce_capacity: Spanned<usize>,
    /// Rules per method and path prefix (`[[shadow.rule]]`), first match
    /// first.
    #[serde(rename = "rule")]
    pub rules: Vec<Spanned<ShadowRuleConfig>>,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            sampling: Spanned::new(0..0, 1.0),
            shadow_aware: Vec::new(),
            coalesce_interval: DEFAULT_COALESCE_INTERVAL,
            coalesce_capacity: Spanned::new(0..0, DEFAULT_COALESCE_CAPACITY),
            rules: Vec::new(),
        }
    }
}

/// One `[[shadow.rule]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowRuleConfig {
    /// Methods matched (default: every method).
    #[serde(default)]
    pub methods: Vec<Spanned<String>>,
    /// Paths matched, by whole segments (default `/`).
    pub path_prefix: Option<Spanned<String>>,
    /// What a match does (default `shadow`).
    #[serde(default)]
    pub action: RuleAction,
    /// Share of matches copied, 0 to 1 (default 1).
    pub sample: Option<Spanned<f64>>,
    /// Coalescing interval of matches (default: the section's for reads,
    /// none for writes).
    #[serde(default, with = "humantime_serde")]
    pub coalesce: Option<Duration>,
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Copy, within the rule's sample and coalescing.
    #[default]
    Shadow,
    /// Never copy.
    Skip,
}

/// A setting and where it is.
type Located = (Range<usize>, String);

fn located<T>(at: &Spanned<T>, error: ShadowPolicyError) -> Located {
    (at.span(), error.to_string())
}

impl ShadowConfig {
    /// Checks the section against the instance ids and builds its policy.
    pub(crate) fn policy(&self, instances: &[&str]) -> Result<ShadowPolicy, Located> {
        let sampling = *self.sampling.get_ref();
        if !(0.0..=1.0).contains(&sampling) {
            return Err((
                self.sampling.span(),
                format!("sampling must be within 0 and 1, not {sampling}"),
            ));
        }
        for id in &self.shadow_aware {
            if !instances.contains(&id.get_ref().as_str()) {
                return Err((
                    id.span(),
                    format!(
                        "shadow_aware names {:?}, which is no [[instance]]",
                        id.get_ref()
                    ),
                ));
            }
        }
        let mut policy = ShadowPolicy::new()
            .with_shadow_aware(self.shadow_aware.iter().map(|id| id.get_ref().as_str()))
            .with_coalesce_interval(self.coalesce_interval)
            .with_coalesce_capacity(*self.coalesce_capacity.get_ref())
            .map_err(|e| located(&self.coalesce_capacity, e))?;
        for rule in &self.rules {
            policy = policy.with_rule(rule.get_ref().rule()?);
        }
        Ok(policy)
    }
}

impl ShadowRuleConfig {
    fn rule(&self) -> Result<ShadowRule, Located> {
        let mut rule = match self.action {
            RuleAction::Shadow => ShadowRule::shadow(),
            RuleAction::Skip => ShadowRule::skip(),
        };
        let mut methods = Vec::new();
        for method in &self.methods {
            let name = method.get_ref();
            // Methods are case-sensitive (RFC 9110 §9.1): `get` would match
            // no request, so it is refused rather than ignored.
            match http::Method::from_bytes(name.as_bytes()) {
                Ok(m) if name.bytes().all(|b| !b.is_ascii_lowercase()) => methods.push(m),
                _ => {
                    return Err((
                        method.span(),
                        format!("{name:?} is not a method like \"GET\" (in capitals)"),
                    ));
                }
            }
        }
        if !methods.is_empty() {
            rule = rule.with_methods(methods);
        }
        if let Some(prefix) = &self.path_prefix {
            rule = rule
                .with_path_prefix(prefix.get_ref().as_str())
                .map_err(|e| located(prefix, e))?;
        }
        if let Some(sample) = &self.sample {
            rule = rule
                .with_sample(*sample.get_ref())
                .map_err(|e| located(sample, e))?;
        }
        if let Some(interval) = self.coalesce {
            rule = rule.with_coalesce(interval);
        }
        Ok(rule)
    }
}
