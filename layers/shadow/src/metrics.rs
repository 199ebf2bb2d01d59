//! The names of the `metrics` counters the layer emits, in one place.
//!
//! Each counts the same event as the [`ShadowStats`](crate::ShadowStats)
//! field of the same name. Handles are registered when a layer is built, so
//! a `metrics` recorder installed before that sees them; recording is then
//! one atomic add.

/// Shadow copies started.
pub const SENT: &str = "foresight_shadow_sent_total";
/// Shadows that got a response from the secondary.
pub const COMPLETED: &str = "foresight_shadow_completed_total";
/// Shadows that failed at the secondary.
pub const FAILED: &str = "foresight_shadow_failed_total";
/// Shadows abandoned at their timeout.
pub const TIMED_OUT: &str = "foresight_shadow_timed_out_total";
/// Copies not sent: the secondary already had the maximum in flight.
pub const DROPPED_FULL: &str = "foresight_shadow_dropped_full_total";
/// Copies not sent: the next candidate is not Healthy.
pub const DROPPED_UNHEALTHY: &str = "foresight_shadow_dropped_unhealthy_total";
/// Copies not sent or abandoned because of the body.
pub const DROPPED_BODY: &str = "foresight_shadow_dropped_body_total";
/// Copies not sent: no Tokio runtime.
pub const DROPPED_NO_RUNTIME: &str = "foresight_shadow_dropped_no_runtime_total";
/// Shadow statuses that differed from the primary's.
pub const MISMATCHES: &str = "foresight_shadow_mismatches_total";
/// Client requests whose role header was stripped.
pub const STRIPPED: &str = "foresight_shadow_stripped_total";
/// Reads not copied: their session was warmed within the coalescing
/// interval.
pub const COALESCED: &str = "foresight_shadow_coalesced_total";
/// Requests not copied because the policy says so: a rule that skips them,
/// or a non-idempotent request whose secondary is not shadow-aware.
pub const SKIPPED_BY_POLICY: &str = "foresight_shadow_skipped_by_policy_total";
