//! Errors in a shadow policy's settings.

/// A [`ShadowPolicy`](crate::ShadowPolicy) or
/// [`ShadowRule`](crate::ShadowRule) setting out of range, refused when it is
/// set.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ShadowPolicyError {
    /// A sample ratio outside 0 to 1 (or NaN).
    #[error("sample ratio must be within 0 and 1, not {0}")]
    SampleRatio(f64),
    /// A path prefix that does not start with `/`.
    #[error("path prefix must start with '/', not {0:?}")]
    PathPrefix(String),
    /// A coalescing map with no room.
    #[error("coalescing capacity must be at least 1")]
    ZeroCapacity,
}
