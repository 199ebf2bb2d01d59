//! Counters of routing decisions.
//!
//! Handles are registered when the layer is built, so a `metrics` recorder
//! installed before that sees them; recording is then one atomic add.

use metrics::{Counter, counter};

/// Routed requests, requests refused per reason, role headers stripped from
/// clients, and requests sent past a full primary by the bounded-load rule.
#[derive(Clone, Debug)]
pub(crate) struct ShardMetrics {
    pub(crate) routed: Counter,
    pub(crate) no_key: Counter,
    pub(crate) bad_key: Counter,
    pub(crate) no_instances: Counter,
    pub(crate) role_stripped: Counter,
    pub(crate) bounded_moves: Counter,
}

impl ShardMetrics {
    pub(crate) fn register() -> Self {
        Self {
            routed: counter!("foresight_shard_routed_total"),
            no_key: counter!("foresight_shard_rejected_total", "reason" => "no_key"),
            bad_key: counter!("foresight_shard_rejected_total", "reason" => "malformed_key"),
            no_instances: counter!("foresight_shard_rejected_total", "reason" => "no_instances"),
            role_stripped: counter!("foresight_shard_role_stripped_total"),
            bounded_moves: counter!("foresight_shard_bounded_load_moves_total"),
        }
    }
}
