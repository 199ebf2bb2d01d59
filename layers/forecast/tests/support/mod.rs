//! Synthetic series with known structure, shared by the integration tests.
#![allow(dead_code)]

use std::f64::consts::TAU;

/// Steps per day at one sample every 5 minutes.
pub const DAY: usize = 288;

/// A small deterministic generator of standard normal noise.
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Box–Muller.
    pub fn normal(&mut self) -> f64 {
        let (a, b) = (self.uniform(), self.uniform());
        (-2.0 * a.ln()).sqrt() * (TAU * b).cos()
    }
}

/// A daily sine around `level` plus noise of standard deviation `sd`.
pub fn daily_sine(n: usize, level: f64, amplitude: f64, sd: f64, seed: u64) -> Vec<f64> {
    let mut noise = Noise::new(seed);
    (0..n)
        .map(|i| level + amplitude * (TAU * i as f64 / DAY as f64).sin() + sd * noise.normal())
        .collect()
}

/// `before` until `at`, then `after`, plus noise.
pub fn step(n: usize, at: usize, before: f64, after: f64, sd: f64, seed: u64) -> Vec<f64> {
    let mut noise = Noise::new(seed);
    (0..n)
        .map(|i| if i < at { before } else { after } + sd * noise.normal())
        .collect()
}

/// `start + slope · i` plus noise.
pub fn ramp(n: usize, start: f64, slope: f64, sd: f64, seed: u64) -> Vec<f64> {
    let mut noise = Noise::new(seed);
    (0..n)
        .map(|i| start + slope * i as f64 + sd * noise.normal())
        .collect()
}

/// White noise around `level`.
pub fn white(n: usize, level: f64, sd: f64, seed: u64) -> Vec<f64> {
    let mut noise = Noise::new(seed);
    (0..n).map(|_| level + sd * noise.normal()).collect()
}

/// Mean absolute error of the forecasts `h` steps ahead from every origin
/// in `origins`, of the model and of the naive forecast.
pub fn mae(
    y: &[f64],
    preds: &[f64],
    horizons: usize,
    origins: std::ops::Range<usize>,
    h: usize,
) -> (f64, f64) {
    let (mut model, mut naive, mut count) = (0.0, 0.0, 0.0);
    for t in origins.clone() {
        if t + h >= y.len() {
            break;
        }
        let p = preds[(t - origins.start) * horizons + h - 1];
        model += (p - y[t + h]).abs();
        naive += (y[t] - y[t + h]).abs();
        count += 1.0;
    }
    (model / count, naive / count)
}
