//! Reactive, jittered, predictive and oracle token refresh on recorded
//! load, against the real authentication server on loopback.
//!
//! ```text
//! cargo bench -p foresight-token --bench prefetch_sim -- --trace FILE.csv [--trace FILE2.csv ...]
//! ```
//!
//! Each trace (`timestamp,value`, e.g. the NAB series in
//! `/work/shared/data/seasonal/`; `benches/data/nyc_taxi.csv` when none is
//! given) is replayed under `foresight_token::sim::Scenario::default()`: the
//! first 28 days are fast-forwarded into the forecaster, then one day is
//! played at 30 trace seconds per simulated second, once per mode, with the
//! same clients (see the `sim` module and `benches/README.md`). Prints one
//! table per trace, the forecaster's warning before each onset, and last
//! `peak auth reduction vs reactive: …; vs jittered: …; share of oracle: …`
//! (means over the traces). Writes one SVG per trace to the system's
//! temporary directory and prints its path.
//!
//! `--sessions N` (or `FORESIGHT_SIM_SESSIONS`) changes the number of
//! sessions. Under `cargo test --benches` (no `--bench` argument) it only
//! says how to run it: a replay takes tens of seconds.

use std::path::PathBuf;
use std::sync::Arc;

use foresight_token::sim::{Mode, Replay, SIM_T0, Scenario, Trace, TraceReport, run, summary, svg};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "prefetch_sim: run it with `cargo bench -p foresight-token --bench prefetch_sim -- --trace FILE.csv`"
        );
        return;
    }
    let mut traces = Vec::new();
    let mut scenario = Scenario::default();
    if let Some(n) = std::env::var("FORESIGHT_SIM_SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        scenario.sessions = n;
    }
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--trace" => traces.push(PathBuf::from(it.next().expect("--trace FILE"))),
            "--sessions" => {
                scenario.sessions = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--sessions N")
            }
            _ => {}
        }
    }
    if traces.is_empty() {
        traces.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/data/nyc_taxi.csv"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let s = &scenario;
    println!(
        "{} sessions; {} training days fast-forwarded, then {} day replayed at {:.0} trace s per \
         simulated s; {} s tokens, {} s gateway margin, a request every {:.0} s per active session; \
         prefetch spread over {} s before a predicted onset, lifetimes extended by up to {} s",
        s.sessions,
        s.train_days,
        s.replay_days,
        s.compression,
        s.lifetime.as_secs(),
        s.margin.as_secs(),
        s.request_every,
        s.lead.as_secs(),
        s.max_extension.as_secs(),
    );
    let out_dir = std::env::temp_dir().join("foresight-prefetch-sim");
    std::fs::create_dir_all(&out_dir).expect("output directory");
    let mut reports = Vec::new();
    for path in &traces {
        let trace = Arc::new(Trace::load(path).unwrap_or_else(|e| panic!("{e}")));
        let replay = match Replay::new(trace, scenario.clone()) {
            Ok(r) => Arc::new(r),
            Err(e) => panic!("{}: {e}", path.display()),
        };
        let (start, end) = replay.window();
        println!(
            "\n## {} (step {:.0} s; replay {:.0}–{:.0} Unix s, from {:02}:00 UTC; peak: value ≥ {:.1}, \
             a quarter of the training part's p99 {:.1})",
            replay.trace().name(),
            replay.trace().step(),
            start,
            end,
            (start.rem_euclid(86_400.0) / 3600.0) as u32,
            replay.threshold(),
            replay.scale(),
        );
        let outcomes: Vec<_> = Mode::ALL
            .iter()
            .map(|&mode| runtime.block_on(run(replay.clone(), mode, 7)))
            .collect();
        let report = TraceReport::new(&replay, outcomes);
        let replay_start_sim = SIM_T0 as f64;
        for o in &report.outcomes {
            let mut busiest: Vec<(usize, u64)> =
                o.auth_per_second.iter().copied().enumerate().collect();
            busiest.sort_by_key(|(s, n)| (std::cmp::Reverse(*n), *s));
            // Each busiest second: its trace time, its requests, and how many
            // of them were clients refreshing an expired token themselves.
            let described: Vec<String> = busiest[..5.min(busiest.len())]
                .iter()
                .map(|&(second, n)| {
                    let t = replay.to_trace(replay_start_sim + second as f64);
                    format!(
                        "{:02}:{:02} {n} ({} waited)",
                        (t.rem_euclid(86_400.0) / 3600.0) as u32,
                        (t.rem_euclid(3600.0) / 60.0) as u32,
                        o.waited_per_second.get(second).copied().unwrap_or(0),
                    )
                })
                .collect();
            let hourly: Vec<u64> = o
                .auth_per_second
                .chunks(120)
                .map(|c| c.iter().sum::<u64>() / c.len() as u64)
                .collect();
            println!(
                "{}: busiest seconds (trace UTC, requests) {}; mean req/s per trace hour {:?}",
                o.mode.name(),
                described.join(", "),
                hourly
            );
        }
        println!("\n{}", report.table());
        println!("forecaster: {}", report.leads_line());
        println!(
            "predictive: {:.2}x lower peak than reactive, {:.2}x than jittered, {:.0}% of the oracle's reduction",
            report.reduction_vs(Mode::Reactive).unwrap_or(f64::NAN),
            report.reduction_vs(Mode::Jittered).unwrap_or(f64::NAN),
            100.0 * report.share_of_oracle().unwrap_or(f64::NAN),
        );
        let file = out_dir.join(format!("{}.svg", replay.trace().name()));
        match svg(&replay, &report, &file) {
            Ok(()) => println!("figure: {}", file.display()),
            Err(e) => println!("figure not written: {e}"),
        }
        reports.push(report);
    }
    println!("\n{}", summary(&reports));
}
