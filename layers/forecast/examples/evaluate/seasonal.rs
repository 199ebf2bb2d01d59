//! The seasonal protocol of the evaluate example: per-series lines, then
//! the BASELINES.md table row and `MASE 1h mean`.

use std::process::ExitCode;

use foresight_forecast::evaluate::{Candidate, Series, aggregate_seasonal, evaluate_seasonal};
use foresight_forecast::model::{ModelConfig, SeasonalConfig};

pub(crate) fn run(
    series: &[Series],
    short: &ModelConfig,
    seasonal: &SeasonalConfig,
    candidate: Candidate,
    bounded: bool,
) -> ExitCode {
    println!("protocol: seasonal, candidate: {candidate:?}, bounded history: {bounded}");
    println!("short-term model: {short:?}");
    println!("seasonal model: {seasonal:?}");
    println!(
        "{:<26} {:>6} {:>7} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>5} {:>5} {:>8}  model",
        "series",
        "step",
        "MASE1",
        "MASE1h",
        "MASE6h",
        "rel1h",
        "rel6h",
        "prec",
        "recall",
        "F1",
        "onsets",
        "c1h",
        "c6h",
        "seconds"
    );
    let mut reports = Vec::new();
    for s in series {
        let r = evaluate_seasonal(s, short, seasonal, candidate, bounded);
        let rel = |k: usize| r.horizons[k].mae / r.horizons[k].naive_mae;
        println!(
            "{:<26} {:>6.0} {:>7.3} {:>7.3} {:>7.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>7} {:>5} {:>5} {:>8.4}  {}{}",
            r.name,
            r.step_secs,
            r.horizons[0].mase,
            r.horizons[1].mase,
            r.horizons[2].mase,
            rel(1),
            rel(2),
            r.alarm.precision(),
            r.alarm.recall(),
            r.alarm.f1(),
            r.onsets,
            r.caught[0],
            r.caught[1],
            r.seconds,
            r.model,
            r.note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
        );
        reports.push(r);
    }
    let a = aggregate_seasonal(&reports);
    let share = |c: usize| c as f64 / a.onsets.max(1) as f64;
    println!();
    println!("aggregate over {} series", a.series);
    println!(
        "| model | MASE 1 step | MASE 1 h | MASE 6 h | relMAE 1 h | relMAE 6 h | alarm 1 h P / R / F1 | onsets | onsets caught 1 h ahead | 6 h ahead | s/series |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| foresight-forecast ({}) | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} / {:.3} / {:.3} | {} | {:.2} | {:.2} | {:.4} |",
        match candidate {
            Candidate::Chosen => "chosen per series",
            Candidate::Short => "short-term only",
            Candidate::Seasonal => "seasonal only",
        },
        a.mase_mean[0],
        a.mase_mean[1],
        a.mase_mean[2],
        a.rel_mae[1],
        a.rel_mae[2],
        a.alarm.precision(),
        a.alarm.recall(),
        a.alarm.f1(),
        a.onsets,
        share(a.caught[0]),
        share(a.caught[1]),
        a.seconds_mean,
    );
    let naive_mase = |k: usize| {
        reports
            .iter()
            .map(|r| r.horizons[k].naive_mase)
            .sum::<f64>()
            / reports.len().max(1) as f64
    };
    let mut naive = foresight_forecast::evaluate::AlarmCounts::default();
    for r in &reports {
        naive.true_positive += r.naive_alarm.true_positive;
        naive.false_positive += r.naive_alarm.false_positive;
        naive.false_negative += r.naive_alarm.false_negative;
    }
    println!(
        "naive (protocol check): MASE {:.3} / {:.3} / {:.3}, alarm 1 h {:.3} / {:.3} / {:.3}",
        naive_mase(0),
        naive_mase(1),
        naive_mase(2),
        naive.precision(),
        naive.recall(),
        naive.f1()
    );
    println!("MASE 1h mean: {:.3}", a.mase_mean[1]);
    ExitCode::SUCCESS
}
