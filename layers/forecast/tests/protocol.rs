//! The offline evaluation protocol on a small generated CSV file.

mod support;

use foresight_forecast::evaluate::{Refit, aggregate, evaluate, read_csv};
use foresight_forecast::model::ModelConfig;
use support::{DAY, daily_sine};

fn write_csv(name: &str, values: &[f64]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "foresight-forecast-{}-{name}.csv",
        std::process::id()
    ));
    let mut text = String::from("timestamp,value\n");
    for (i, v) in values.iter().enumerate() {
        let minutes = i * 5;
        let (day, hour, minute) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
        text.push_str(&format!(
            "2014-02-{:02} {hour:02}:{minute:02}:00,{v}\n",
            day + 1
        ));
    }
    std::fs::write(&path, text).expect("temp file");
    path
}

#[test]
fn protocol_scores_a_model_against_naive() {
    let path = write_csv("sine", &daily_sine(10 * DAY, 50.0, 10.0, 0.5, 12));
    let series = read_csv(&path).expect("parses");
    std::fs::remove_file(&path).ok();
    assert_eq!(series.values.len(), 10 * DAY);
    assert_eq!(series.times[1] - series.times[0], 300.0);

    let config = ModelConfig::default();
    let once = evaluate(&series, &config, Refit::Never);
    let daily = evaluate(
        &series,
        &config,
        Refit::Every {
            every: DAY,
            window: 4032,
        },
    );
    for report in [&once, &daily] {
        assert!(report.fallback.is_none());
        // The naive error is in MASE units of itself at h = 1: about 1.
        assert!((0.8..1.3).contains(&report.horizons[0].naive_mase));
        for h in report.horizons {
            assert!(h.mae < h.naive_mae, "{h:?}");
        }
        let alarms = report.alarm;
        assert!(
            alarms.true_positive + alarms.false_negative > 0,
            "the test part has peaks"
        );
        assert!(
            alarms.recall() > 0.5 && alarms.precision() > 0.5,
            "{alarms:?}"
        );
    }
    let a = aggregate(&[once.clone(), daily]);
    assert_eq!(a.series, 2);
    assert_eq!(a.wins, [2, 2, 2]);
    assert!(a.rel_mae.iter().all(|r| *r < 1.0));
    assert!(a.mase_mean[1] < a.naive_mase_mean[1]);
}

#[test]
fn unreadable_files_are_typed_errors() {
    let missing = std::env::temp_dir().join("foresight-forecast-does-not-exist.csv");
    let err = read_csv(&missing).expect_err("missing file");
    assert!(std::error::Error::source(&err).is_some());
    let path = write_csv("bad", &[]);
    std::fs::write(&path, "timestamp,value\nyesterday,1\n").expect("temp file");
    assert!(read_csv(&path).is_err());
    std::fs::remove_file(&path).ok();
}

#[test]
fn choices_are_selected_on_the_held_back_window() {
    let path = write_csv("choices", &daily_sine(6 * DAY, 20.0, 5.0, 0.3, 13));
    let series = read_csv(&path).expect("parses");
    std::fs::remove_file(&path).ok();
    let config = ModelConfig::default()
        .with_lag_choices(vec![3, 12, 24])
        .with_alpha_choices(vec![0.001, 0.1]);
    let report = evaluate(&series, &config, Refit::Never);
    assert!(report.fallback.is_none());
    assert!(report.horizons[1].mae < report.horizons[1].naive_mae);
}
