//! The seasonal model and the choice between it and the short-term model.

mod support;

use foresight_forecast::FallbackReason;
use foresight_forecast::model::{
    ModelConfig, SeasonalConfig, Times, choice_min_samples, choose, cycle_strength, train,
    train_seasonal,
};
use support::{DAY, Noise, daily_sine, white};

const STEP: f64 = 300.0;
/// Six hours of 5-minute steps.
const H6: usize = 72;

/// A demand curve: a daily cycle of amplitude 40 around 100, noise 3.
fn demand(days: usize, seed: u64) -> Vec<f64> {
    daily_sine(days * DAY, 100.0, 40.0, 3.0, seed)
}

fn random_walk(n: usize, seed: u64) -> Vec<f64> {
    let mut noise = Noise::new(seed);
    let mut level = 500.0;
    (0..n)
        .map(|_| {
            level += noise.normal();
            level
        })
        .collect()
}

#[test]
fn a_daily_cycle_is_chosen_and_beats_the_short_term_model_at_six_hours() {
    let y = demand(14, 1);
    let train_end = 11 * DAY;
    let short = ModelConfig::default();
    let choice = choose(&y[..train_end], STEP, &short, &SeasonalConfig::default());
    assert!(choice.kept_short.is_none(), "{:?}", choice.kept_short);
    assert!(choice.strength > 0.5, "strength {}", choice.strength);
    assert!(choice.use_seasonal[H6 - 1]);
    let seasonal = choice.seasonal.expect("chosen");

    let origins = train_end..y.len() - H6;
    let s = seasonal.backtest(&y, origins.clone()).expect("forecasts");
    let b = train(&y[..train_end], Times::Unknown, &short)
        .expect("a short-term model")
        .backtest(&y, Times::Unknown, origins.clone())
        .expect("forecasts");
    let (mut s_err, mut b_err) = (0.0, 0.0);
    for (r, t) in origins.clone().enumerate() {
        let actual = y[t + H6];
        s_err += (s[r * seasonal.horizons() + H6 - 1] - actual).abs();
        // The short-term model's furthest forecast, held (12 steps).
        b_err += (b[r * 12 + 11] - actual).abs();
    }
    let (s_err, b_err) = (s_err / origins.len() as f64, b_err / origins.len() as f64);
    // Noise of 3 alone gives an error of about 2.4.
    assert!(s_err < 4.0, "seasonal MAE at 6 h: {s_err}");
    assert!(
        s_err < 0.25 * b_err,
        "seasonal {s_err} vs short-term {b_err}"
    );
}

#[test]
fn a_series_shorter_than_the_choice_needs_keeps_the_short_term_model() {
    let config = SeasonalConfig::default();
    let need = choice_min_samples(STEP, &config).expect("a daily cycle fits");
    assert_eq!(need, 1_056);
    assert_eq!(choice_min_samples(1_800.0, &config), Some(216));
    assert_eq!(choice_min_samples(8.0 * 3600.0, &config), None);
    let y = demand(4, 2);
    let short = choose(&y[..need - 1], STEP, &ModelConfig::default(), &config);
    assert!(short.seasonal.is_none());
    assert!(
        matches!(
            short.kept_short,
            Some(FallbackReason::TooShort { have, need: n }) if have == need - 1 && n == need
        ),
        "{:?}",
        short.kept_short
    );
    let enough = choose(&y[..need], STEP, &ModelConfig::default(), &config);
    assert!(enough.seasonal.is_some(), "{:?}", enough.kept_short);
}

#[test]
fn noise_a_random_walk_and_a_flat_series_keep_the_short_term_model() {
    let short = ModelConfig::default();
    let config = SeasonalConfig::default();
    for seed in 1..=4 {
        for (name, y) in [
            ("white noise", white(14 * DAY, 100.0, 5.0, seed)),
            ("random walk", random_walk(14 * DAY, seed)),
        ] {
            let choice = choose(&y, STEP, &short, &config);
            assert!(choice.seasonal.is_none(), "{name} {seed}: {choice:?}");
            assert!(
                matches!(
                    choice.kept_short,
                    Some(FallbackReason::WeakCycle { .. } | FallbackReason::NotBetter { .. })
                ),
                "{name} {seed}: {:?}",
                choice.kept_short
            );
        }
    }
    let flat = vec![42.0; 14 * DAY];
    let choice = choose(&flat, STEP, &short, &config);
    assert!(matches!(
        choice.kept_short,
        Some(FallbackReason::WeakCycle { .. })
    ));
}

#[test]
fn cycle_strength_separates_a_cycle_from_noise() {
    // Four days of pairs over five of spread: at most 0.8 for a pure cycle.
    assert!(cycle_strength(&demand(6, 3), DAY) > 0.7);
    assert!(cycle_strength(&white(6 * DAY, 10.0, 1.0, 3), DAY).abs() < 0.1);
    assert!(cycle_strength(&demand(2, 3), DAY).is_nan());
}

#[test]
fn weekly_features_need_two_weeks() {
    let config = SeasonalConfig::default();
    let short = train_seasonal(&demand(13, 4), STEP, &config).expect("a model");
    assert!(!short.weekly());
    assert_eq!(short.context(), DAY + 1);
    let long = train_seasonal(&demand(15, 4), STEP, &config).expect("a model");
    assert!(long.weekly());
    assert_eq!(long.context(), 7 * DAY + 1);
    assert_eq!(long.horizons(), 96);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]

    /// A forecast made at origin `t` does not change when anything after
    /// `t` does.
    #[test]
    fn forecasts_never_read_the_future(
        offset in 0usize..200,
        shift in -50.0f64..50.0,
    ) {
        let y = demand(5, 5);
        let model = train_seasonal(&y[..4 * DAY], STEP, &SeasonalConfig::default())
            .expect("a model");
        let t = 4 * DAY + offset;
        let before = model.backtest(&y, t..t + 1).expect("forecasts");
        let mut changed = y.clone();
        for v in &mut changed[t + 1..] {
            *v += shift;
        }
        let after = model.backtest(&changed, t..t + 1).expect("forecasts");
        proptest::prop_assert_eq!(before, after);
    }
}
