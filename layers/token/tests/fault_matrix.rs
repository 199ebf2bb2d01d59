//! The token rows of the fault matrix (`RELIABILITY.md`, see
//! `foresight_testkit::reliability`): the real authentication server and a
//! gateway with TokenPrefetchLayer on loopback, a dual-token client in
//! front.
//!
//! **Clock skew.** The authentication server's clock runs 30 s ahead of the
//! gateway's, then 30 s behind. A client logs in and calls the API every
//! second of gateway time for 200 s, three token lifetimes, taking the
//! tokens the gateway pushes in `x-foresight-next-token`. The verifier's
//! leeway (30 s by default) covers the skew: no request may be refused.
//!
//! **The auth server down through a predicted peak** (`support::peak`, on
//! paused time and an in-process gateway): 40 clients; a 10-minute peak
//! forecast 20 minutes ahead; every issue fails while the peak lasts.
//! With predictive prefetch no request may fail; the reactive baseline,
//! run through the same outage, shows what the fault costs without it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use foresight_testkit::reliability::{Recovery, Row};
use foresight_token::client::{DualTokenLayer, TokenSlots};
use foresight_token::{Clock, ManualClock, SharedClock};
use http_body_util::Full;
use support::net::{http_client, login, shared, stack_with_clocks};
use support::peak;
use tower::{Layer, ServiceExt};

const LIFETIME: Duration = Duration::from_secs(60);
const CALLS: u64 = 200;
const SKEW_SECS: i64 = 30;

/// A clock `offset_secs` from `base` (ahead when positive).
#[derive(Debug)]
struct Skewed {
    base: ManualClock,
    offset_secs: i64,
}

impl Clock for Skewed {
    fn unix(&self) -> Duration {
        let base = self.base.unix();
        if self.offset_secs >= 0 {
            base + Duration::from_secs(self.offset_secs.unsigned_abs())
        } else {
            base - Duration::from_secs(self.offset_secs.unsigned_abs())
        }
    }
}

/// The statuses of [`CALLS`] API calls, one per second of gateway time,
/// with the issuer `offset_secs` from the gateway, and how many tokens the
/// client used.
async fn calls_with_skew(offset_secs: i64) -> (Vec<u16>, usize) {
    let clock = ManualClock::new(Duration::from_secs(support::T0));
    let issuer_clock: SharedClock = Arc::new(Skewed {
        base: clock.clone(),
        offset_secs,
    });
    let stack = stack_with_clocks(
        issuer_clock,
        shared(&clock),
        None,
        axum::Router::new(),
        LIFETIME,
    )
    .await;
    let first = login(stack.auth_addr, "alice").await;
    let slots = TokenSlots::new(shared(&clock));
    slots.deliver(&first.token);
    let client = DualTokenLayer::new(slots.clone()).layer(http_client());
    let uri = format!("http://{}/api", stack.gateway_addr);
    let mut statuses = Vec::new();
    let mut tokens = std::collections::HashSet::new();
    for _ in 0..CALLS {
        clock.advance(Duration::from_secs(1));
        let request = http::Request::get(&uri)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = client.clone().oneshot(request).await.unwrap();
        statuses.push(response.status().as_u16());
        tokens.insert(slots.active().and_then(|(jti, _)| jti));
    }
    (statuses, tokens.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_of_30_s_between_issuer_and_verifier() {
    let (ahead, ahead_tokens) = calls_with_skew(SKEW_SECS).await;
    let (behind, behind_tokens) = calls_with_skew(-SKEW_SECS).await;
    let refused = |statuses: &[u16]| statuses.iter().filter(|s| **s != 200).count();
    let row = Row {
        order: 6,
        fault: "±30 s clock skew between issuer and verifier",
        requests: ahead.len() + behind.len(),
        client_errors: refused(&ahead) + refused(&behind),
        acknowledged_lost: None,
        recovery: Recovery::NotApplicable,
        notes: format!(
            "issuer 30 s ahead: {} of {} refused, {ahead_tokens} tokens used; \
             30 s behind: {} of {} refused, {behind_tokens} tokens; \
             {CALLS} calls a second apart over three 60 s token lifetimes each, \
             verifier leeway 30 s (default)",
            refused(&ahead),
            ahead.len(),
            refused(&behind),
            behind.len()
        ),
    };
    row.emit();
    // The run crosses token lifetimes: the client moved to new tokens.
    assert!(ahead_tokens >= 3 && behind_tokens >= 3, "{row:?}");
    assert_eq!(refused(&ahead), 0, "issuer ahead: {ahead:?}");
    assert_eq!(refused(&behind), 0, "issuer behind: {behind:?}");
}

#[tokio::test(start_paused = true)]
async fn auth_server_down_through_a_predicted_peak() {
    let predictive = peak::run(true, true, true).await;
    let reactive = peak::run(false, true, true).await;
    let row = Row {
        order: 7,
        fault: "Auth server down through a predicted peak",
        requests: predictive.requests,
        client_errors: predictive.failures,
        acknowledged_lost: None,
        recovery: Recovery::NotApplicable,
        notes: format!(
            "40 clients, a 10-minute peak forecast 20 minutes ahead, every token issue \
             failing during it (an in-process issuer that refuses; paused time); with \
             reactive refreshes only, {} of {} requests failed",
            reactive.failures, reactive.requests
        ),
    };
    row.emit();
    assert_eq!(predictive.failures, 0, "{row:?}");
    // The outage bites without prefetch: the fault is real.
    assert!(reactive.failures > 0, "{row:?}");
}
