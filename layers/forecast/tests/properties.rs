//! Property tests of the forecasting maths.

use std::time::Duration;

use foresight_forecast::model::{ModelConfig, Times, min_samples, train};
use foresight_forecast::{Forecast, Forecaster, Signal};
use proptest::prelude::*;

fn config() -> ModelConfig {
    ModelConfig::default().with_horizons(6).with_lags(4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any finite series either trains or gives a reason; a trained model's
    /// forecasts are finite and ordered lower ≤ mean ≤ upper.
    #[test]
    fn training_is_total_and_intervals_are_ordered(
        values in prop::collection::vec(-1.0e6f64..1.0e6, 0..400),
    ) {
        let config = config();
        if let Ok(model) = train(&values, Times::Unknown, &config) {
            prop_assert!(values.len() >= min_samples(&config));
            let mut out = [Forecast { mean: 0.0, lower: 0.0, upper: 0.0 }; 6];
            model.predict(&values, None, &mut out).expect("enough context");
            for f in out {
                prop_assert!(f.mean.is_finite() && f.lower.is_finite() && f.upper.is_finite());
                prop_assert!(f.lower <= f.mean && f.mean <= f.upper);
            }
        }
    }

    /// Gaps anywhere never make a forecast non-finite.
    #[test]
    fn gaps_are_harmless(
        values in prop::collection::vec(prop_oneof![
            4 => (0.0f64..100.0).boxed(),
            1 => Just(f64::NAN).boxed(),
        ], 100..300),
    ) {
        let f = Forecaster::builder()
            .with_step(Duration::from_secs(1))
            .with_model(config())
            .with_system_sampler(false)
            .build()
            .expect("valid configuration");
        for v in &values {
            f.push(Signal::Cpu, *v);
        }
        f.retrain_blocking();
        if let Some(fc) = f.forecast(Signal::Cpu, Duration::from_millis(2_500)) {
            prop_assert!(fc.mean.is_finite());
            prop_assert!(fc.lower <= fc.mean && fc.mean <= fc.upper);
        } else {
            prop_assert!(values.iter().all(|v| v.is_nan()));
        }
    }

    /// Between two steps, a forecast lies between the forecasts of the
    /// steps on either side.
    #[test]
    fn interpolation_stays_between_steps(
        values in prop::collection::vec(0.0f64..50.0, 200..260),
        millis in 0u64..6_000,
    ) {
        let f = Forecaster::builder()
            .with_step(Duration::from_secs(1))
            .with_model(config())
            .with_system_sampler(false)
            .build()
            .expect("valid configuration");
        for v in &values {
            f.push(Signal::Memory, *v);
        }
        f.retrain_blocking();
        let at = |ms: u64| f.forecast(Signal::Memory, Duration::from_millis(ms)).expect("in range");
        let (below, above) = (millis / 1000 * 1000, (millis / 1000 + 1).min(6) * 1000);
        let (a, b, m) = (at(below), at(above), at(millis));
        let (lo, hi) = (a.mean.min(b.mean), a.mean.max(b.mean));
        prop_assert!(m.mean >= lo - 1e-9 && m.mean <= hi + 1e-9);
    }
}
