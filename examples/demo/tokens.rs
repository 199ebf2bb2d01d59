//! Stage 3: tokens refreshed ahead of the morning rush, seen coming by the
//! forecaster.
//!
//! The load is a real seasonal series: New York taxi passengers per half
//! hour (NAB `nyc_taxi.csv`, MIT licence, in `layers/token/benches/data/`).
//! Its first 28 days are fast-forwarded into the `Forecaster` (ridge per
//! horizon with time-of-day and day-of-week features, one day of reach);
//! then one day is played, from the quiet hours before the morning rush, at
//! 30 trace seconds per simulated second, once per refresh policy, each
//! against its own instance of the real authentication server on a
//! loopback port (`foresight_token::sim`, the same simulation as the
//! `prefetch_sim` bench). During the day the forecaster is fed only the
//! half hours that have ended and retrained after each; nothing reads the
//! future. The stage prints when the forecaster first predicted the rush
//! and how far ahead, then the table: reactive refresh (what token
//! libraries do), jittered early refresh (each client refreshes at a random
//! point near the end of its token's life), and the predictive prefetch of
//! `TokenPrefetchLayer` driven by the learned forecast. It writes an SVG of
//! the load, the forecast with its interval and the authentication
//! server's requests per second, and prints its path.
//!
//! Last, one client behind `DualTokenLayer` holds its active and its
//! pre-fetched token and switches over at expiry with no 401.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use foresight::forward::http_client;
use foresight::token::client::{DualTokenLayer, TokenSlots};
use foresight::token::{ManualClock, NEXT_TOKEN_HEADER, SharedClock, TokenPrefetchLayer};
use foresight_token::sim::{
    Mode, Replay, Scenario, Trace, TraceReport, refresher, start_auth, svg,
};
use http_body_util::Full;
use hyper::body::Incoming;
use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};

use foresight_testkit::http::serve_gateway;

/// The load: New York taxi passengers per half hour, July 2014 – January
/// 2015.
const TRACE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/layers/token/benches/data/nyc_taxi.csv"
));
const LIFETIME: Duration = Duration::from_secs(60);
const MARGIN: Duration = Duration::from_secs(12);
const T0: u64 = 1_767_225_600;

/// One client holding two tokens, over real sockets: the gateway refreshes
/// within the margin and delivers the next token in a response header;
/// `DualTokenLayer` keeps it and switches at expiry.
async fn switch_over() {
    let clock = ManualClock::new(Duration::from_secs(T0));
    let shared: SharedClock = Arc::new(clock.clone());
    // The demo's one client logs in without a password: the simulation's
    // server accepts every subject; a real server checks credentials (see
    // the token crate's auth_server example).
    let auth = start_auth(shared.clone(), 1, LIFETIME).await;
    let layer = TokenPrefetchLayer::builder(auth.verifier().clone(), refresher(auth.base()))
        .with_token_lifetime(LIFETIME)
        .with_refresh_margin(MARGIN)
        .build();
    let handle = layer.handle().clone();
    let gateway = serve_gateway(
        ServiceBuilder::new()
            .layer(foresight::edge())
            .layer(layer)
            .service(service_fn(|_req: http::Request<Incoming>| async {
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
            })),
    )
    .await;
    let first =
        foresight_token::sim::login(&foresight_token::sim::http(), auth.base(), "alice").await;
    let slots = TokenSlots::new(shared);
    slots.deliver(&first.token);
    let client = DualTokenLayer::new(slots.clone()).layer(http_client::<Full<Bytes>>());
    let uri = format!("http://{gateway}/api");
    let get = async |at: u64| {
        clock.set(Duration::from_secs(at));
        let request = http::Request::get(&uri)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let status = client
            .clone()
            .oneshot(request)
            .await
            .expect("gateway reachable")
            .status();
        handle.wait_idle(Duration::from_secs(10)).await;
        status
    };
    let short = |jti: &str| jti[jti.len().saturating_sub(6)..].to_owned();
    let exp = first.exp;
    println!(
        "\none client, DualTokenLayer over hyper, {} s tokens; active token …{} expires at +{} s",
        LIFETIME.as_secs(),
        short(&first.jti),
        exp - T0
    );
    let mut statuses = vec![get(T0 + 10).await];
    statuses.push(get(exp - 10).await);
    println!(
        "  +{:>2} s  request {}; inside the {} s margin the gateway refreshes in the background",
        exp - 10 - T0,
        statuses[1].as_u16(),
        MARGIN.as_secs()
    );
    statuses.push(get(exp - 8).await);
    assert!(slots.has_next(), "the next token arrived in the header");
    println!(
        "  +{:>2} s  request {}; {NEXT_TOKEN_HEADER} delivered the next token: two held",
        exp - 8 - T0,
        statuses[2].as_u16()
    );
    statuses.push(get(exp - 3).await);
    let (jti, next_exp) = slots.active().expect("a token");
    let jti = jti.unwrap_or_default();
    assert_ne!(jti, first.jti, "switched to the pre-fetched token");
    println!(
        "  +{:>2} s  request {} sent with …{} (expires at +{} s): switched before expiry",
        exp - 3 - T0,
        statuses[3].as_u16(),
        short(&jti),
        next_exp - T0
    );
    statuses.push(get(exp + 5).await);
    let stale = http::Request::get(&uri)
        .header("authorization", format!("Bearer {}", first.token))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let old = http_client::<Full<Bytes>>()
        .request(stale)
        .await
        .expect("gateway reachable")
        .status();
    println!(
        "  +{:>2} s  request {}; the old token alone is now refused: {}",
        exp + 5 - T0,
        statuses[4].as_u16(),
        old.as_u16()
    );
    assert!(statuses.iter().all(|s| s.is_success()), "{statuses:?}");
    assert_eq!(old, http::StatusCode::UNAUTHORIZED);
}

pub async fn run() {
    println!("\n== 3. Tokens: refreshed ahead of the morning rush, seen coming ==");
    let trace = Arc::new(Trace::parse("nyc_taxi", TRACE).expect("the shipped trace"));
    let scenario = Scenario::default();
    let replay = Arc::new(Replay::new(trace, scenario.clone()).expect("a long enough trace"));
    let (start, _) = replay.window();
    println!(
        "{} sessions, {} s tokens; load: NYC taxi passengers per half hour (NAB nyc_taxi); \
         {} days fast-forwarded into the forecaster, then one day played from {:02}:00 at {:.0} \
         trace s per simulated s (one trace hour = {:.0} s); a peak is a load above {:.0} \
         passengers, a quarter of the training days' 99th percentile",
        scenario.sessions,
        scenario.lifetime.as_secs(),
        scenario.train_days,
        (start.rem_euclid(86_400.0) / 3600.0) as u32,
        scenario.compression,
        3600.0 / scenario.compression,
        replay.threshold(),
    );
    let mut outcomes = Vec::new();
    for mode in [Mode::Reactive, Mode::Jittered, Mode::Predictive] {
        outcomes.push(foresight_token::sim::run(replay.clone(), mode, 7).await);
    }
    let report = TraceReport::new(&replay, outcomes);
    println!(
        "\nforecaster (fed only the half hours that had ended): {}; the prefetch needs {:.0} \
         trace hours ({} simulated s) to spread its refreshes",
        report.leads_line(),
        scenario.lead.as_secs_f64() * scenario.compression / 3600.0,
        scenario.lead.as_secs(),
    );
    println!("\n{}", report.table());
    println!(
        "(waited: requests held until the client's own refresh returned; 401s: requests refused; \
         longest lifetime: simulated seconds)"
    );
    let reactive = report.get(Mode::Reactive).expect("ran");
    let predictive = report.get(Mode::Predictive).expect("ran");
    println!(
        "peak auth requests/s with the learned forecast: {:.2}x lower than reactive ({} -> {}), \
         {:.2}x lower than jittered early refresh",
        report.reduction_vs(Mode::Reactive).unwrap_or(f64::NAN),
        reactive.peak_1s,
        predictive.peak_1s,
        report.reduction_vs(Mode::Jittered).unwrap_or(f64::NAN),
    );
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_else(std::env::temp_dir);
    let file = dir.join("demo-tokens.svg");
    match svg(&replay, &report, &file) {
        Ok(()) => println!("figure: {}", file.display()),
        Err(e) => println!("figure not written: {e}"),
    }
    for o in &report.outcomes {
        assert_eq!(
            o.unauthorized,
            0,
            "no client-visible 401 ({})",
            o.mode.name()
        );
        assert_eq!(
            o.failed_refreshes,
            0,
            "no failed refresh ({})",
            o.mode.name()
        );
    }
    assert!(
        predictive.peak_1s < reactive.peak_1s,
        "prefetch lowers the peak"
    );

    switch_over().await;
}
