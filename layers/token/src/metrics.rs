//! The names of every metric this crate records, in one place.
//!
//! Every metric is recorded the same way, through the `metrics` facade's
//! macros with one of these names (`metrics::counter!(REFRESHES, "kind" =>
//! "reactive")`), so a name found in a dashboard is found here by grep.

/// Counter of refreshes started; label `kind`: `reactive` or `prefetch`.
pub(crate) const REFRESHES: &str = "foresight_token_refreshes_total";
/// Counter of reactive refreshes skipped because too many were in flight.
pub(crate) const REFRESH_SKIPPED: &str = "foresight_token_refresh_skipped_total";
/// Counter of refreshes whose issuer failed.
pub(crate) const REFRESH_ERRORS: &str = "foresight_token_refresh_errors_total";
/// Counter of prefetch refreshes planned ahead of a peak.
pub(crate) const PREFETCH_PLANNED: &str = "foresight_token_prefetch_planned_total";
/// Counter of revocations; label `what`: `session` or `token`.
pub(crate) const REVOCATIONS: &str = "foresight_token_revocations_total";
/// Counter of sessions not tracked because the table was full.
pub(crate) const SESSIONS_UNTRACKED: &str = "foresight_token_sessions_untracked_total";
/// Counter of requests refused by the layer (missing or invalid token).
pub(crate) const REJECTED: &str = "foresight_token_rejected_total";
/// Counter of tokens issued; label `issuer`: `local` or `remote`.
pub(crate) const ISSUED: &str = "foresight_token_issued_total";
/// Counter of refreshes of a session that joined one already in flight.
#[cfg(feature = "remote")]
pub(crate) const REFRESH_COALESCED: &str = "foresight_token_refresh_coalesced_total";
/// Counter of tokens not pushed because a connection's queue was full.
pub(crate) const WS_DROPPED: &str = "foresight_token_ws_dropped_total";
/// Counter of WebSocket connections refused; label `why`: `origin` or
/// `token`.
#[cfg(feature = "server")]
pub(crate) const WS_REJECTED: &str = "foresight_token_ws_rejected_total";
/// Gauge of open WebSocket connections.
#[cfg(feature = "server")]
pub(crate) const WS_CONNECTIONS: &str = "foresight_token_ws_connections";
/// Counter of client requests retried with the next token after a 401.
#[cfg(feature = "client")]
pub(crate) const CLIENT_RETRIES: &str = "foresight_token_client_retries_total";
