//! Series with known structure: the forecast must land within tolerance.

mod support;

use foresight_forecast::model::{ModelConfig, Times, train};
use support::{DAY, daily_sine, mae, ramp, step, white};

const N: usize = 14 * DAY;
const TRAIN: usize = 12 * DAY;

fn backtest(y: &[f64]) -> Vec<f64> {
    let config = ModelConfig::default();
    let model = train(&y[..TRAIN], Times::Unknown, &config).expect("a model");
    model
        .backtest(y, Times::Unknown, TRAIN..N)
        .expect("forecasts")
}

#[test]
fn daily_sine_is_tracked_better_than_naive() {
    // Amplitude 10, noise 0.5: over 6 steps the sine moves up to 1.3.
    let y = daily_sine(N, 50.0, 10.0, 0.5, 1);
    let preds = backtest(&y);
    for h in [1, 6, 12] {
        let (model, naive) = mae(&y, &preds, 12, TRAIN..N, h);
        // Noise of 0.5 alone gives an error of about 0.4 on the actual
        // value; the model must stay within twice the noise...
        assert!(model < 1.0, "h={h}: MAE {model}");
        // ...and, where the sine moves more than the noise, have learnt it.
        if h > 1 {
            assert!(model < 0.75 * naive, "h={h}: MAE {model} vs naive {naive}");
        } else {
            assert!(model < naive, "h={h}: MAE {model} vs naive {naive}");
        }
    }
}

#[test]
fn step_is_followed_to_the_new_level() {
    // Steps inside the training part and inside the test part.
    let mut y = step(N, DAY, 10.0, 40.0, 0.5, 2);
    for v in &mut y[TRAIN + DAY / 2..] {
        *v -= 25.0;
    }
    let preds = backtest(&y);
    // Once the lag window has passed the step, forecasts sit at the new level.
    let settled = TRAIN + DAY / 2 + 13;
    for t in settled..N - 12 {
        for h in [1, 6, 12] {
            let p = preds[(t - TRAIN) * 12 + h - 1];
            assert!((p - 15.0).abs() < 2.5, "origin {t}, h={h}: {p}");
        }
    }
}

#[test]
fn ramp_is_extrapolated() {
    let y = ramp(N, 5.0, 0.5, 0.2, 3);
    let preds = backtest(&y);
    for h in [1, 6, 12] {
        let (model, naive) = mae(&y, &preds, 12, TRAIN..N, h);
        // Naive misses by 0.5·h; the model sees the slope.
        assert!(model < 0.5, "h={h}: MAE {model}");
        assert!(
            model < naive / 2.0 || h == 1,
            "h={h}: {model} vs naive {naive}"
        );
    }
}

#[test]
fn white_noise_forecast_stays_near_the_mean_with_calibrated_intervals() {
    let y = white(N, 20.0, 1.0, 4);
    let config = ModelConfig::default();
    let model = train(&y[..TRAIN], Times::Unknown, &config).expect("a model");
    let mut out = [foresight_forecast::Forecast {
        mean: 0.0,
        lower: 0.0,
        upper: 0.0,
    }; 12];
    let (mut inside, mut total) = (0usize, 0usize);
    for t in TRAIN..N - 12 {
        model.predict(&y[..=t], None, &mut out).expect("forecast");
        for (h, f) in out.iter().enumerate() {
            // Within 1.5 standard deviations of the true mean.
            assert!(
                (f.mean - 20.0).abs() < 1.5,
                "origin {t}, h={}: {f:?}",
                h + 1
            );
            assert!(f.lower <= f.mean && f.mean <= f.upper);
            let actual = y[t + h + 1];
            inside += usize::from(f.lower <= actual && actual <= f.upper);
            total += 1;
        }
    }
    let coverage = inside as f64 / total as f64;
    assert!((0.8..=0.97).contains(&coverage), "coverage {coverage}");
}
