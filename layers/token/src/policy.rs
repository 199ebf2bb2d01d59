//! The settings of a [`TokenPrefetchLayer`](crate::TokenPrefetchLayer): when
//! tokens are refreshed ([`RefreshMode`], [`PrefetchPolicy`]) and how a
//! request names its session ([`SessionBinding`]).

use std::time::Duration;

/// When tokens are refreshed.
#[derive(Clone, Debug)]
pub enum RefreshMode {
    /// The baseline: a token is refreshed when a request arrives with less
    /// than `margin` left, as every token library does.
    Reactive {
        /// Margin before expiry.
        margin: Duration,
    },
    /// Reactive refreshes, plus prefetching ahead of predicted peaks.
    Predictive(PrefetchPolicy),
}

/// How refreshes ahead of a predicted peak are planned.
///
/// Every `plan_interval`, the layer asks the load signal whether `threshold`
/// will be exceeded within `horizon`. A peak already under way is not
/// planned again: the planner looks past it (scanning the forecast in
/// `scan_step`s) for the next onset within `horizon`, so that a forecast
/// that moves the end of the current peak later never turns into a burst of
/// refreshes inside it. If the next peak is predicted at `T`, it
/// scans the forecast forward (in `scan_step`s, at most `max_extension` past
/// `T`) for the end of the peak `E`, and selects the tracked sessions whose
/// tokens all expire before `E`. Their refreshes are spread evenly over
/// `[max(now, T − lead), T − tick)` with jitter inside each slot, where
/// `tick` is the period of the driver started by
/// [`TokenHandle::spawn_driver`](crate::TokenHandle::spawn_driver) (a refresh runs at the first tick after it
/// is due, so the last one still runs before `T`) (earliest expiry
/// first, at most `max_issue_rate` per second; a token that expires before
/// its slot is kept alive by reactive refreshes until then), and the new
/// tokens expire at `E +
/// after_peak + U(0, jitter)`: they outlast the peak, and their own
/// refreshes do not all fall due at once. A lifetime is never more than
/// `max_extension` above the base token lifetime.
#[derive(Clone, Debug)]
pub struct PrefetchPolicy {
    /// Reactive margin, kept as the fallback outside predicted peaks.
    pub margin: Duration,
    /// Load threshold that defines a peak.
    pub threshold: f64,
    /// How far ahead to look for a peak.
    pub horizon: Duration,
    /// Longest spreading window before a peak.
    pub lead: Duration,
    /// Longest lifetime extension above the base lifetime.
    pub max_extension: Duration,
    /// Margin after the predicted end of the peak.
    pub after_peak: Duration,
    /// Spread of the expiries of prefetched tokens.
    pub jitter: Duration,
    /// Most prefetch refreshes per second.
    pub max_issue_rate: f64,
    /// How often the forecast is consulted.
    pub plan_interval: Duration,
    /// Resolution of the scan for the end of a peak.
    pub scan_step: Duration,
    /// Whether a reactive refresh of a session that has a prefetch planned
    /// and falls inside the spreading window issues the planned, longer
    /// token at once (the scheduled prefetch is then skipped). It saves one
    /// request per session whose token expires inside the window; without
    /// it the scheduled refreshes are spread evenly whatever the expiries.
    ///
    /// With it, a request inside the window from a session whose token ends
    /// before its scheduled slot also gets the planned token at once, even
    /// outside the margin: the session needs a refresh before its slot
    /// anyway, and one issued at a request reaches the client in the
    /// response, where a token that lapses between requests leaves the
    /// client to refresh it itself. These refreshes count against
    /// `max_issue_rate` with the scheduled ones, and none is issued while
    /// the layer's request rate over the last 10 s runs above 1.5 times its
    /// mean over the last 2 minutes: they follow the clients' requests, so
    /// a burst the forecast missed would multiply them.
    pub merge_due_refreshes: bool,
    /// Bound on a wave's cost against the reactive refreshes it replaces
    /// (`None`: every candidate is prefetched). A session whose token was
    /// issued or expired within the last lifetime, or whose request was
    /// seen within the last lifetime, is active and always prefetched; the
    /// others (a token lapsed longer ago, or an earlier wave's long token on
    /// a session not seen lately) are idle. An active session refreshes at
    /// most once per lifetime over the part of the span its own token does
    /// not cover, so a wave whose tokens cover `c` (from the middle of the
    /// spreading window to the peak's end plus `after_peak`) replaces at
    /// most `active × c / lifetime` refreshes; idle sessions (most recently
    /// lapsed first, then the holders of the longest tokens) are prefetched
    /// until the wave issues this factor times that. The rest stay
    /// candidates for the next plan. A forecast peak that does not come
    /// then costs a bounded share of what reactive refreshes would have; a
    /// long one still covers every session.
    pub cost_bound: Option<f64>,
}

impl Default for PrefetchPolicy {
    /// Margin 60 s, threshold 0.8, horizon 30 min, lead 30 min, extension
    /// up to 2 h, 5 min after the peak plus up to 10 min jitter, 200
    /// refreshes/s, planning every 10 s, peak-end scan in 1 min steps,
    /// merging due refreshes, a wave at most half the refreshes it replaces
    /// (lazy clients refresh on their first request after expiry, often
    /// nearer two lifetimes apart than one).
    fn default() -> Self {
        Self {
            margin: Duration::from_secs(60),
            threshold: 0.8,
            horizon: Duration::from_secs(30 * 60),
            lead: Duration::from_secs(30 * 60),
            max_extension: Duration::from_secs(2 * 3600),
            after_peak: Duration::from_secs(5 * 60),
            jitter: Duration::from_secs(10 * 60),
            max_issue_rate: 200.0,
            plan_interval: Duration::from_secs(10),
            scan_step: Duration::from_secs(60),
            merge_due_refreshes: true,
            cost_bound: Some(0.5),
        }
    }
}

impl RefreshMode {
    pub(crate) fn margin(&self) -> Duration {
        match self {
            Self::Reactive { margin } => *margin,
            Self::Predictive(p) => p.margin,
        }
    }
}

/// How a request names its session, so that a token of another session is
/// refused.
#[derive(Clone, Debug)]
pub enum SessionBinding {
    /// No binding.
    None,
    /// The session id is in this header, when present.
    Header(http::HeaderName),
    /// The session id is in this cookie, when present.
    Cookie(String),
}
