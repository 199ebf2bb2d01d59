//! Rolling-origin evaluation on NAB-format CSV files.
//!
//! ```text
//! cargo run --release -p foresight-forecast --example evaluate -- FILE.csv...
//! ```
//!
//! Trains on the first 80% of each file, forecasts from every origin of the
//! last 20% at horizons 1, 6 and 12, and prints per file MAE, MASE, relMAE
//! against the naive forecast, the precision and recall of the h = 6
//! threshold alarm and fit + predict time; then in aggregate the mean and
//! median MASE, relMAE (geometric mean), wins against naive, pooled alarm
//! precision, recall and F1, and mean time (MAE is on each series' own
//! scale, so it is aggregated through MASE and relMAE). The last line is
//! the aggregate `MASE h6 mean`.
//!
//! With `--protocol seasonal` it runs the protocol of the demand series
//! instead (`shared/data/seasonal/README.md`): horizons of one step, one
//! hour and six hours, the peak alarm one hour ahead and the onsets caught
//! one and six hours ahead, printed as the BASELINES.md table; the last
//! line is `MASE 1h mean`. `--candidate chosen|short|seasonal` scores the
//! model chosen per series (default) or one model alone; `--bounded` fits on the history the forecaster keeps at run time
//! (22 days, or `--history-days D`) instead of the whole training part; `--days K`,
//! `--weeks K`, `--seasonal-lags N`, `--seasonal-alpha A`,
//! `--robust ROUNDS`, `--no-log`, `--log-mean`, `--significance Z` and `--margin M` change the seasonal settings.
//!
//! Options before the files change the model from the crate's default:
//! `--forest TREES`, `--alpha A`, `--lags N`, `--windows W1,W2`,
//! `--calendar`, `--clip K`, `--drift`, `--refit EVERY`,
//! `--lag-choices L1,L2`, `--alpha-choices A1,A2`.

mod seasonal;

use std::path::PathBuf;
use std::process::ExitCode;

use foresight_forecast::evaluate::{
    Candidate, HORIZONS, Refit, aggregate, evaluate_with_seasonal, read_csv,
};
use foresight_forecast::model::{ModelConfig, ModelKind, SeasonalConfig};

fn main() -> ExitCode {
    let mut config = ModelConfig::default();
    let mut refit = Refit::Never;
    let mut files = Vec::new();
    let mut seasonal_protocol = false;
    let mut candidate = Candidate::Chosen;
    let mut bounded = false;
    let mut season = SeasonalConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match arg.as_str() {
            "--forest" => {
                let trees = value().parse().unwrap_or(50);
                config = config.with_kind(ModelKind::Forest {
                    trees,
                    max_depth: 10,
                });
            }
            "--alpha" => config = config.with_alpha(value().parse().unwrap_or(1.0)),
            "--lags" => config = config.with_lags(value().parse().unwrap_or(12)),
            "--windows" => {
                let w = value().split(',').filter_map(|w| w.parse().ok()).collect();
                config = config.with_windows(w);
            }
            "--refit" => {
                let every = value().parse().unwrap_or(288);
                refit = Refit::Every {
                    every,
                    window: 4032,
                };
            }
            "--lag-choices" => {
                let l = value().split(',').filter_map(|w| w.parse().ok()).collect();
                config = config.with_lag_choices(l);
            }
            "--alpha-choices" => {
                let a = value().split(',').filter_map(|w| w.parse().ok()).collect();
                config = config.with_alpha_choices(a);
            }
            "--drift" => config = config.with_drift(true),
            "--calendar" => config = config.with_calendar(true),
            "--no-calendar" => config = config.with_calendar(false),
            "--clip" => config = config.with_clip(value().parse().ok().filter(|k: &f64| *k > 0.0)),
            "--protocol" => seasonal_protocol = value() == "seasonal",
            "--candidate" => {
                candidate = match value().as_str() {
                    "short" => Candidate::Short,
                    "seasonal" => Candidate::Seasonal,
                    _ => Candidate::Chosen,
                }
            }
            "--bounded" => bounded = true,
            "--history-days" => season = season.with_history_days(value().parse().unwrap_or(22)),
            "--days" => season = season.with_days(value().parse().unwrap_or(7)),
            "--weeks" => season = season.with_weeks(value().parse().unwrap_or(1)),
            "--seasonal-lags" => season = season.with_lags(value().parse().unwrap_or(6)),
            "--seasonal-alpha" => season = season.with_alpha(value().parse().unwrap_or(0.01)),
            "--significance" => season = season.with_significance(value().parse().unwrap_or(3.0)),
            "--robust" => season = season.with_robust(value().parse().unwrap_or(2)),
            "--no-log" => season = season.with_log(false),
            "--log-mean" => season = season.with_log_mean(true),
            "--margin" => season = season.with_margin(value().parse().unwrap_or(0.02)),
            _ => files.push(PathBuf::from(arg)),
        }
    }
    if files.is_empty() {
        eprintln!("usage: evaluate [OPTIONS] FILE.csv...");
        return ExitCode::FAILURE;
    }
    if let Err(e) = config.validate().and_then(|()| season.validate()) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    if seasonal_protocol {
        let mut series = Vec::new();
        for file in &files {
            match read_csv(file) {
                Ok(s) => series.push(s),
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        return seasonal::run(&series, &config, &season, candidate, bounded);
    }
    println!("model: {config:?}, refit: {refit:?}");
    println!(
        "{:<36} {:>14} {:>14} {:>14} {:>7} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>8}",
        "series",
        "MAE h1",
        "MAE h6",
        "MAE h12",
        "MASE1",
        "MASE6",
        "MASE12",
        "rel1",
        "rel6",
        "rel12",
        "prec",
        "recall",
        "seconds"
    );
    let mut reports = Vec::new();
    for file in &files {
        let series = match read_csv(file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "{e}: {}",
                    std::error::Error::source(&e).map_or(String::new(), |s| s.to_string())
                );
                return ExitCode::FAILURE;
            }
        };
        let season = match candidate {
            Candidate::Short => None,
            _ => Some(&season),
        };
        let r = evaluate_with_seasonal(&series, &config, season, refit);
        let rel = |k: usize| r.horizons[k].mae / r.horizons[k].naive_mae;
        println!(
            "{:<36} {:>14.4} {:>14.4} {:>14.4} {:>7.3} {:>7.3} {:>7.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>8.4}{}",
            r.name,
            r.horizons[0].mae,
            r.horizons[1].mae,
            r.horizons[2].mae,
            r.horizons[0].mase,
            r.horizons[1].mase,
            r.horizons[2].mase,
            rel(0),
            rel(1),
            rel(2),
            r.alarm.precision(),
            r.alarm.recall(),
            r.seconds,
            r.fallback
                .as_deref()
                .map(|f| format!("  (naive: {f})"))
                .unwrap_or_default(),
        );
        reports.push(r);
    }
    let a = aggregate(&reports);
    println!();
    println!("aggregate over {} series", a.series);
    for (k, h) in HORIZONS.iter().enumerate() {
        println!(
            "h{h:<3} MASE mean {:.3}  median {:.3}  relMAE {:.3}  wins vs naive {}/{}  (naive MASE mean {:.3})",
            a.mase_mean[k],
            a.mase_median[k],
            a.rel_mae[k],
            a.wins[k],
            a.series,
            a.naive_mase_mean[k]
        );
    }
    println!(
        "alarm h6: precision {:.3}  recall {:.3}  F1 {:.3}  (naive: {:.3} {:.3} {:.3})",
        a.alarm.precision(),
        a.alarm.recall(),
        a.alarm.f1(),
        a.naive_alarm.precision(),
        a.naive_alarm.recall(),
        a.naive_alarm.f1()
    );
    println!("fit + predict: {:.4} s per series (mean)", a.seconds_mean);
    println!("MASE h6 mean: {:.3}", a.mase_mean[1]);
    ExitCode::SUCCESS
}
